//! Just enough FLV for RTMP: the tag kinds and codec ids of RTMP payloads (which are FLV tag bodies), and
//! a sans-IO [`FlvReader`] that splits ffmpeg's FLV output back into tags for RTMP viewers.

use bytes::{Buf, Bytes, BytesMut};

use crate::MediaError;

/// FLV tag types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TagKind {
    Audio = 8,
    Video = 9,
    /// AMF0 script data (`onMetaData`).
    Script = 18,
}

/// One FLV tag: its kind, timestamp (ms, DTS) and body (the RTMP message payload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tag {
    pub kind: TagKind,
    pub timestamp: u32,
    pub body: Bytes,
}

/// FLV's sound format for AAC and codec id for AVC.
pub(crate) const SOUND_AAC: u8 = 10;
pub(crate) const CODEC_AVC: u8 = 7;

impl Tag {
    /// An AVC decoder configuration record (the SPS/PPS a decoder needs first).
    pub fn is_video_config(&self) -> bool {
        self.kind == TagKind::Video && matches!(self.body.get(..2), Some(&[first, 0]) if first & 0x0f == CODEC_AVC)
    }

    /// An AAC AudioSpecificConfig.
    pub fn is_audio_config(&self) -> bool {
        self.kind == TagKind::Audio && matches!(self.body.get(..2), Some(&[first, 0]) if first >> 4 == SOUND_AAC)
    }

    /// A video frame a decoder can start at (a keyframe that is not a configuration record).
    pub fn is_keyframe(&self) -> bool {
        self.kind == TagKind::Video && self.body.first().is_some_and(|b| b >> 4 == 1) && !self.is_video_config()
    }

    /// `onMetaData` script data (AMF0 string marker, length 10, the name).
    pub fn is_metadata(&self) -> bool {
        self.kind == TagKind::Script && self.body.starts_with(b"\x02\x00\x0aonMetaData")
    }
}

/// Bytes after the 9-byte header that we accept skipping (the header's data offset is normally 9).
const MAX_HEADER_EXTRA: u32 = 1024;

/// Splits an FLV byte stream into tags. Sans-IO: [`push`](Self::push) bytes as they come, then take
/// tags with [`next_tag`](Self::next_tag) until it returns `Ok(None)`. Tags of other types than audio,
/// video and script data (and encrypted ones) are skipped. Memory is bounded by one tag (16 MiB).
#[derive(Debug, Default)]
pub(crate) struct FlvReader {
    buf: BytesMut,
    /// The file header and the first PreviousTagSize were consumed.
    in_body: bool,
}

impl FlvReader {
    pub fn new() -> FlvReader {
        FlvReader::default()
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete tag; `Ok(None)` when more bytes are needed; an error when the stream is not FLV.
    pub fn next_tag(&mut self) -> Result<Option<Tag>, MediaError> {
        if !self.in_body && !self.read_header()? {
            return Ok(None);
        }
        loop {
            let Some(&[kind, s0, s1, s2, t0, t1, t2, t3, ..]) = self.buf.get(..11) else { return Ok(None) };
            let size = usize::from(s0) << 16 | usize::from(s1) << 8 | usize::from(s2);
            // Tag header, body, PreviousTagSize.
            let total = 11 + size + 4;
            if self.buf.len() < total {
                self.buf.reserve(total - self.buf.len());
                return Ok(None);
            }
            let timestamp = u32::from_be_bytes([t3, t0, t1, t2]);
            let mut tag = self.buf.split_to(total);
            tag.advance(11);
            tag.truncate(size);
            let kind = match kind {
                8 => TagKind::Audio,
                9 => TagKind::Video,
                18 => TagKind::Script,
                // Other types, and the filter (encryption) bit set: nothing we can forward.
                _ => continue,
            };
            return Ok(Some(Tag { kind, timestamp, body: tag.freeze() }));
        }
    }

    /// Consumes the file header and the first PreviousTagSize; `false` when more bytes are needed.
    fn read_header(&mut self) -> Result<bool, MediaError> {
        let Some(&[f, l, v, _version, _flags, o0, o1, o2, o3]) = self.buf.get(..9) else {
            if !b"FLV".starts_with(self.buf.get(..self.buf.len().min(3)).unwrap_or_default()) {
                return Err(MediaError::Protocol("not an FLV stream".into()));
            }
            return Ok(false);
        };
        if [f, l, v] != *b"FLV" {
            return Err(MediaError::Protocol("not an FLV stream".into()));
        }
        let offset = u32::from_be_bytes([o0, o1, o2, o3]);
        if !(9..=9 + MAX_HEADER_EXTRA).contains(&offset) {
            return Err(MediaError::Protocol(format!("bad FLV header size {offset}")));
        }
        let skip = usize::try_from(offset).unwrap_or(usize::MAX).saturating_add(4);
        if self.buf.len() < skip {
            return Ok(false);
        }
        self.buf.advance(skip);
        self.in_body = true;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The 9-byte file header plus the first (zero) PreviousTagSize.
    fn header(audio: bool, video: bool) -> [u8; 13] {
        let flags = (if audio { 0x04 } else { 0 }) | (if video { 0x01 } else { 0 });
        [b'F', b'L', b'V', 1, flags, 0, 0, 0, 9, 0, 0, 0, 0]
    }

    /// Appends one tag (header, body, PreviousTagSize) to `out`.
    fn write_tag(out: &mut Vec<u8>, kind: TagKind, timestamp_ms: u32, body: &[u8]) -> Option<()> {
        let size = u32::try_from(body.len()).ok().filter(|&s| s < 1 << 24)?;
        let ts = timestamp_ms.to_be_bytes();
        out.push(kind as u8);
        out.extend_from_slice(&size.to_be_bytes()[1..]);
        // Lower 24 bits, then the extension byte with the upper 8.
        out.extend_from_slice(&[ts[1], ts[2], ts[3], ts[0], 0, 0, 0]);
        out.extend_from_slice(body);
        out.extend_from_slice(&(size + 11).to_be_bytes());
        Some(())
    }

    #[test]
    fn tag_layout() {
        let mut out = Vec::new();
        write_tag(&mut out, TagKind::Video, 0x0102_0304, &[0xaa, 0xbb]).expect("small tag");
        assert_eq!(out, [9, 0, 0, 2, 0x02, 0x03, 0x04, 0x01, 0, 0, 0, 0xaa, 0xbb, 0, 0, 0, 13]);
        assert_eq!(header(true, true)[4], 5);
    }

    fn sample_stream() -> (Vec<u8>, Vec<Tag>) {
        let tags = vec![
            Tag { kind: TagKind::Script, timestamp: 0, body: Bytes::from_static(b"\x02\x00\x0aonMetaData\x08") },
            Tag { kind: TagKind::Video, timestamp: 0, body: Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 0x64]) },
            Tag { kind: TagKind::Audio, timestamp: 0, body: Bytes::from_static(&[0xaf, 0, 0x11, 0x90]) },
            Tag { kind: TagKind::Video, timestamp: 33, body: Bytes::from_static(&[0x17, 1, 0, 0, 0, 0xee]) },
            Tag { kind: TagKind::Audio, timestamp: 21, body: Bytes::from_static(&[0xaf, 1, 0x21]) },
            Tag { kind: TagKind::Video, timestamp: 0x0100_0042, body: Bytes::from_static(&[0x27, 1, 0, 0, 0]) },
        ];
        let mut out = header(true, true).to_vec();
        for (i, tag) in tags.iter().enumerate() {
            write_tag(&mut out, tag.kind, tag.timestamp, &tag.body).expect("small tag");
            if i == 2 {
                // A tag type we do not know is skipped.
                write_tag(&mut out, TagKind::Audio, 7, &[1, 2, 3]).expect("small tag");
                let at = out.len() - (11 + 3 + 4);
                out[at] = 0x0f;
            }
        }
        (out, tags)
    }

    fn read_all(reader: &mut FlvReader) -> Vec<Tag> {
        let mut tags = Vec::new();
        while let Some(tag) = reader.next_tag().expect("valid flv") {
            tags.push(tag);
        }
        tags
    }

    #[test]
    fn reads_back_what_was_written_and_classifies() {
        let (bytes, expected) = sample_stream();
        let mut reader = FlvReader::new();
        reader.push(&bytes);
        let tags = read_all(&mut reader);
        assert_eq!(tags, expected);
        assert!(tags[0].is_metadata());
        assert!(tags[1].is_video_config() && !tags[1].is_keyframe());
        assert!(tags[2].is_audio_config());
        assert!(tags[3].is_keyframe() && !tags[3].is_video_config());
        assert!(!tags[4].is_audio_config());
        assert!(!tags[5].is_keyframe());
    }

    #[test]
    fn rejects_what_is_not_flv() {
        let mut reader = FlvReader::new();
        reader.push(b"GET / HTTP/1.1");
        assert!(reader.next_tag().is_err());
        let mut reader = FlvReader::new();
        reader.push(b"FLV\x01\x05\xff\xff\xff\xff");
        assert!(reader.next_tag().is_err(), "absurd header size");
        let mut reader = FlvReader::new();
        reader.push(b"FL");
        assert!(matches!(reader.next_tag(), Ok(None)), "a valid prefix waits for more");
    }

    proptest! {
        #[test]
        fn any_chunking_gives_the_same_tags(cuts in proptest::collection::vec(any::<usize>(), 0..20)) {
            let (bytes, expected) = sample_stream();
            let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
            points.push(0);
            points.push(bytes.len());
            points.sort_unstable();
            let mut reader = FlvReader::new();
            let mut tags = Vec::new();
            for pair in points.windows(2) {
                reader.push(&bytes[pair[0]..pair[1]]);
                tags.extend(read_all(&mut reader));
            }
            prop_assert_eq!(tags, expected);
        }

        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..2000), flv_header in any::<bool>()) {
            let mut reader = FlvReader::new();
            if flv_header {
                reader.push(&header(true, true));
            }
            reader.push(&data);
            for _ in 0..data.len() + 1 {
                match reader.next_tag() {
                    Ok(Some(tag)) => {
                        let _ = (tag.is_keyframe(), tag.is_audio_config(), tag.is_metadata());
                    }
                    _ => break,
                }
            }
        }
    }
}
