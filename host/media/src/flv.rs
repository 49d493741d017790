//! Just enough FLV to hand RTMP messages to ffmpeg: the file header and tags around RTMP payloads
//! (which already are FLV tag bodies).

/// FLV tag types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TagKind {
    Audio = 8,
    Video = 9,
}

/// The 9-byte file header plus the first (zero) PreviousTagSize.
pub(crate) fn header(audio: bool, video: bool) -> [u8; 13] {
    let flags = (if audio { 0x04 } else { 0 }) | (if video { 0x01 } else { 0 });
    [b'F', b'L', b'V', 1, flags, 0, 0, 0, 9, 0, 0, 0, 0]
}

/// Largest tag body FLV can describe (24-bit size).
pub(crate) const MAX_TAG_BODY: usize = (1 << 24) - 1;

/// Appends one tag (header, body, PreviousTagSize) to `out`; `None` when the body is too large for FLV.
pub(crate) fn write_tag(out: &mut Vec<u8>, kind: TagKind, timestamp_ms: u32, body: &[u8]) -> Option<()> {
    if body.len() > MAX_TAG_BODY {
        return None;
    }
    let size = u32::try_from(body.len()).ok()?;
    let ts = timestamp_ms.to_be_bytes();
    out.push(kind as u8);
    out.extend_from_slice(&size.to_be_bytes()[1..]);
    // Lower 24 bits, then the extension byte with the upper 8.
    out.extend_from_slice(&[ts[1], ts[2], ts[3], ts[0], 0, 0, 0]);
    out.extend_from_slice(body);
    out.extend_from_slice(&(size + 11).to_be_bytes());
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_layout() {
        let mut out = Vec::new();
        write_tag(&mut out, TagKind::Video, 0x0102_0304, &[0xaa, 0xbb]).expect("small tag");
        assert_eq!(out, [9, 0, 0, 2, 0x02, 0x03, 0x04, 0x01, 0, 0, 0, 0xaa, 0xbb, 0, 0, 0, 13]);
        assert_eq!(header(true, true)[4], 5);
    }
}
