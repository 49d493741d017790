//! What a stream id may be. The gateway makes a stream's id from the start request's `stream_id`
//! (or a random one) and `stream_name`, as `{stream_name}-{stream_id}`; the id then names the
//! stream's trickle channels, its URLs and the CLI's file of it, so it must never climb out of a
//! path.

/// Most bytes in one part of a stream id.
pub const ID_PART_MAX: usize = 64;

fn id_chars(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.len() <= max
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// Whether `s` may be a part of a stream id (`stream_name` or `stream_id`): letters, digits, `-`,
/// `_` and `.`, at most [`ID_PART_MAX`] bytes, and not `.` or `..`.
pub fn valid_id_part(s: &str) -> bool {
    id_chars(s, ID_PART_MAX)
}

/// Whether `id` may be a whole stream id as the gateway makes them (two parts and a `-` at most),
/// which makes it a safe file name too.
pub fn valid_stream_id(id: &str) -> bool {
    id_chars(id, 2 * ID_PART_MAX + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_id_part_is_a_short_name_that_cannot_climb() {
        for ok in ["a", "my-stream_1.2", &"x".repeat(64)] {
            assert!(valid_id_part(ok), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "é", &"x".repeat(65)] {
            assert!(!valid_id_part(bad), "{bad}");
        }
    }

    #[test]
    fn a_whole_stream_id_is_two_parts_at_most_and_cannot_climb() {
        for ok in ["demo-1a2b.x_y", &format!("{}-{}", "n".repeat(64), "i".repeat(64))] {
            assert!(valid_stream_id(ok), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "../x", "a b", &"x".repeat(130)] {
            assert!(!valid_stream_id(bad), "{bad}");
        }
    }
}
