//! What an Annex-B H.264 or HEVC access unit starts with: a picture that decodes on its own or one
//! that needs earlier pictures.

/// What an Annex-B NAL scan found about an access unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Picture {
    /// A picture decodable on its own (H.264 IDR, HEVC IRAP).
    Key,
    /// A picture that needs earlier ones.
    Delta,
}

/// Scans Annex-B data for the first picture (VCL) NAL unit and classifies it. `None` when no picture NAL
/// header is in `data` yet.
pub fn first_picture(data: &[u8], hevc: bool) -> Option<Picture> {
    for window in data.windows(4) {
        let [0, 0, 1, header] = *window else { continue };
        if hevc {
            match (header >> 1) & 0x3f {
                0..=9 => return Some(Picture::Delta),
                16..=21 => return Some(Picture::Key),
                _ => {}
            }
        } else {
            match header & 0x1f {
                1..=4 => return Some(Picture::Delta),
                5 => return Some(Picture::Key),
                _ => {}
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nal_scan_finds_idr_after_parameter_sets() {
        let au = [0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 1, 0x65, 0x88];
        assert_eq!(first_picture(&au, false), Some(Picture::Key));
        assert_eq!(first_picture(&[0, 0, 1, 0x41, 0x9a], false), Some(Picture::Delta));
        assert_eq!(first_picture(&[0, 0, 1, 0x67, 0x42], false), None);
        assert_eq!(first_picture(&[0, 0, 1, 0x26, 0x01], true), Some(Picture::Key));
        assert_eq!(first_picture(&[0, 0, 1], false), None);
    }
}
