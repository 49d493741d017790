//! Cuts a continuous MPEG-TS byte stream into self-contained segments that start on a keyframe.

use std::time::Duration;

use bytes::Bytes;

use byoc_ts::{PACKET_SIZE as TS_PACKET_SIZE, Packet, PacketReader, PesHeader, Timestamp, TsError};

use super::{
    Picture, STREAM_TYPE_H264, STREAM_TYPE_HEVC, first_picture, is_video, pat_pmt_pids, pes_header, pmt_streams,
};

/// Limits of a [`TsSegmenter`].
#[derive(Debug, Clone)]
pub struct SegmenterConfig {
    /// A segment is cut at the first keyframe at least this long (by PTS) after the segment's own start.
    pub min_duration: Duration,
    /// A segment that grows past this many bytes without a keyframe is cut anyway (the next one then
    /// starts mid-GOP); this bounds memory against streams without keyframes.
    pub max_segment_bytes: usize,
}

impl Default for SegmenterConfig {
    fn default() -> Self {
        SegmenterConfig { min_duration: Duration::from_secs(1), max_segment_bytes: 32 << 20 }
    }
}

/// How many bytes of PES data are scanned for the first picture NAL before giving up on a keyframe.
const SCAN_CAP: usize = 16 << 10;
/// How many packets a PSI table (PAT or one PMT) may span before we stop copying it.
const PSI_PACKETS_CAP: usize = 4;
/// How many packets the scan of one PES may hold back before it is decided as "not a keyframe".
const PENDING_PACKETS_CAP: usize = 256;

/// Which elementary stream marks the segment boundaries, and how its keyframes are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    H264,
    Hevc,
    /// Other video: only the random_access_indicator marks keyframes.
    OtherVideo,
    /// No video in the program: every PES of the first stream may start a segment.
    Audio,
}

#[derive(Debug, Clone, Copy)]
struct KeyStream {
    pid: u16,
    kind: KeyKind,
}

/// A video PES whose first packets arrived but whose keyframe-ness is not known yet.
struct Pending {
    /// Every packet (all PIDs) since the PES started, in arrival order.
    packets: Vec<u8>,
    /// PAT+PMT as they were when the PES started (prepended if it opens a segment).
    psi: Vec<u8>,
    /// The start of the PES (header + elementary stream data), up to [`SCAN_CAP`].
    pes: Vec<u8>,
    random_access: bool,
}

/// A piece of a segmented MPEG-TS stream, handed on as soon as it is muxed: [`Piece::Start`] opens a
/// segment (the current PAT and PMT, then a keyframe), [`Piece::More`] continues it. A segment ends where
/// the next one starts, or where the stream ends. A consumer that joins late (or loses pieces) waits for
/// the next `Start`; from there on the bytes are a valid MPEG-TS stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Start(Bytes),
    More(Bytes),
}

impl Piece {
    pub fn bytes(&self) -> &Bytes {
        match self {
            Piece::Start(b) | Piece::More(b) => b,
        }
    }

    pub fn into_bytes(self) -> Bytes {
        match self {
            Piece::Start(b) | Piece::More(b) => b,
        }
    }

    pub fn is_start(&self) -> bool {
        matches!(self, Piece::Start(_))
    }
}

/// Lets pieces through from a segment start on: a consumer that joins a stream of [`Piece`]s, or loses
/// some, can only go on at the next [`Piece::Start`].
#[derive(Debug, Default, Clone)]
pub struct StartGate {
    open: bool,
}

impl StartGate {
    /// Whether `piece` goes on (it is a start, or continues a segment that went on).
    pub fn pass(&mut self, piece: &Piece) -> bool {
        self.open |= piece.is_start();
        self.open
    }

    /// Pieces were lost: wait for the next start.
    pub fn lost(&mut self) {
        self.open = false;
    }
}

/// Splits an MPEG-TS byte stream into segments.
///
/// Each emitted segment is a whole number of 188-byte packets, begins with the current PAT and PMT, then
/// the packets from a keyframe (H.264 IDR or HEVC IRAP, found by the adaptation field's
/// random_access_indicator or by scanning NAL headers) up to the next keyframe at least
/// [`SegmenterConfig::min_duration`] later by PTS. A PTS that jumps backwards also starts a segment at the
/// next keyframe. Bytes before the first keyframe are dropped; lost sync is recovered by skipping to the
/// next sync byte. Sans-IO, in one of two ways (not both on one segmenter):
/// - pieces as they come ([`push_pieces`](Self::push_pieces), [`finish_pieces`](Self::finish_pieces)): live
///   paths use these, so that a segment's first frames
///   travel on while its last ones are still being captured;
/// - whole segments ([`push`](Self::push), [`finish`](Self::finish)).
pub struct TsSegmenter {
    config: SegmenterConfig,
    min_ticks: u64,
    packets: PacketReader,
    /// Bytes skipped to find a sync byte, so far.
    skipped: u64,
    pmt_pids: Vec<u16>,
    key: Option<KeyStream>,
    pat: Vec<u8>,
    pmts: Vec<(u16, Vec<u8>)>,
    /// Bytes of the open segment not handed out yet.
    current: Vec<u8>,
    /// Bytes of the open segment so far (handed out or not).
    current_len: usize,
    /// Whether the open segment's `Start` piece was handed out.
    current_opened: bool,
    current_pts: Option<Timestamp>,
    started: bool,
    pending: Option<Pending>,
    /// Cut at the next keyframe whatever the minimum duration ([`cut_at_next_keyframe`](Self::cut_at_next_keyframe)).
    cut_asked: bool,
    out: Vec<Piece>,
    /// Whole-segment mode: the segment being assembled from pieces.
    whole: Vec<u8>,
}

impl TsSegmenter {
    /// A segmenter with the given limits.
    pub fn new(config: SegmenterConfig) -> TsSegmenter {
        let min_ticks = u64::try_from(config.min_duration.as_micros().saturating_mul(9) / 100).unwrap_or(u64::MAX);
        TsSegmenter {
            config,
            min_ticks,
            packets: PacketReader::default(),
            skipped: 0,
            pmt_pids: Vec::new(),
            key: None,
            pat: Vec::new(),
            pmts: Vec::new(),
            current: Vec::new(),
            current_len: 0,
            current_opened: false,
            current_pts: None,
            started: false,
            pending: None,
            cut_asked: false,
            out: Vec::new(),
            whole: Vec::new(),
        }
    }

    /// Makes the next keyframe start a segment even if the open one is shorter than the minimum
    /// duration (a viewer is waiting for a segment start, and a keyframe was asked for).
    pub fn cut_at_next_keyframe(&mut self) {
        self.cut_asked = true;
    }

    /// Feeds bytes (any chunking) and returns the pieces they make, in order: everything of the open
    /// segment that is known to belong to it (a PES whose keyframe-ness is still being decided is held).
    pub fn push_pieces(&mut self, data: &[u8]) -> Vec<Piece> {
        let mut packets = std::mem::take(&mut self.packets);
        packets.push_raw(data, |packet| match packet {
            Ok(packet) => self.packet(packet),
            Err(TsError::LostSync { skipped, .. }) => self.skipped += skipped,
            Err(_) => {}
        });
        self.packets = packets;
        self.flush();
        std::mem::take(&mut self.out)
    }

    /// Ends the stream: returns the last pieces (the rest of the open segment).
    pub fn finish_pieces(mut self) -> Vec<Piece> {
        if let Some(p) = self.pending.take() {
            self.resolve(p, Picture::Delta);
        }
        self.flush();
        if self.skipped > 0 {
            tracing::debug!(skipped_bytes = self.skipped, "mpeg-ts sync lost and recovered");
        }
        self.out
    }

    /// Feeds bytes (any chunking) and returns the segments completed by them, in order.
    pub fn push(&mut self, data: &[u8]) -> Vec<Bytes> {
        let pieces = self.push_pieces(data);
        Self::assemble(&mut self.whole, pieces)
    }

    /// Ends the stream: returns the last (partial) segment, if one was started.
    pub fn finish(mut self) -> Option<Bytes> {
        let mut whole = std::mem::take(&mut self.whole);
        let mut done = Self::assemble(&mut whole, self.finish_pieces());
        done.extend((!whole.is_empty()).then(|| Bytes::from(whole)));
        done.pop()
    }

    /// Joins pieces into whole segments: returns the segments completed, `whole` keeps the open one.
    fn assemble(whole: &mut Vec<u8>, pieces: Vec<Piece>) -> Vec<Bytes> {
        let mut done = Vec::new();
        for piece in pieces {
            if piece.is_start() && !whole.is_empty() {
                done.push(Bytes::from(std::mem::take(whole)));
            }
            whole.extend_from_slice(piece.bytes());
        }
        done
    }

    fn packet(&mut self, pkt: &[u8; TS_PACKET_SIZE]) {
        // A malformed packet is left out of the segments.
        let Ok(packet) = Packet::parse(pkt) else { return };
        let (pid, pusi) = (packet.pid.value(), packet.payload_unit_start);
        let payload = packet.payload.unwrap_or_default();
        if pid == 0 {
            if pusi {
                self.pat.clear();
                if let Some(pids) = pat_pmt_pids(payload) {
                    self.pmt_pids = pids;
                    self.pmts.retain(|(pid, _)| self.pmt_pids.contains(pid));
                }
            }
            if self.pat.len() < PSI_PACKETS_CAP * TS_PACKET_SIZE {
                self.pat.extend_from_slice(pkt);
            }
        } else if self.pmt_pids.contains(&pid) {
            self.pmt_packet(pid, pusi, pkt, payload);
        }

        let is_key_pid = self.key.is_some_and(|k| k.pid == pid);
        if is_key_pid && pusi {
            if let Some(p) = self.pending.take() {
                self.resolve(p, Picture::Delta);
            }
            let p = Pending {
                packets: pkt.to_vec(),
                psi: self.psi(),
                pes: payload.to_vec(),
                random_access: packet.is_random_access(),
            };
            match self.classify(&p) {
                Some(picture) => self.resolve(p, picture),
                None => self.pending = Some(p),
            }
            return;
        }
        if let Some(mut p) = self.pending.take() {
            p.packets.extend_from_slice(pkt);
            if is_key_pid && p.pes.len() < SCAN_CAP {
                p.pes.extend_from_slice(payload);
            }
            let decided = match self.classify(&p) {
                Some(picture) => Some(picture),
                None if p.pes.len() >= SCAN_CAP || p.packets.len() >= PENDING_PACKETS_CAP * TS_PACKET_SIZE => {
                    Some(Picture::Delta)
                }
                None => None,
            };
            match decided {
                Some(picture) => self.resolve(p, picture),
                None => self.pending = Some(p),
            }
            return;
        }
        self.append(pkt);
    }

    fn pmt_packet(&mut self, pid: u16, pusi: bool, pkt: &[u8], payload: &[u8]) {
        let idx = match self.pmts.iter().position(|(stored, _)| *stored == pid) {
            Some(idx) => idx,
            None => {
                self.pmts.push((pid, Vec::new()));
                self.pmts.len() - 1
            }
        };
        let Some((_, stored)) = self.pmts.get_mut(idx) else { return };
        if pusi {
            stored.clear();
            if let Some(streams) = pmt_streams(payload) {
                let chosen = streams.iter().find(|s| is_video(s)).or(streams.first());
                let key = chosen.map(|s| KeyStream {
                    pid: s.pid.value(),
                    kind: match s.stream_type {
                        STREAM_TYPE_H264 => KeyKind::H264,
                        STREAM_TYPE_HEVC => KeyKind::Hevc,
                        _ if is_video(s) => KeyKind::OtherVideo,
                        _ => KeyKind::Audio,
                    },
                });
                if key.map(|k| k.pid) != self.key.map(|k| k.pid)
                    && let Some(p) = self.pending.take()
                {
                    self.resolve(p, Picture::Delta);
                }
                if key.is_some() {
                    self.key = key;
                }
            }
        }
        let Some((_, stored)) = self.pmts.get_mut(idx) else { return };
        if stored.len() < PSI_PACKETS_CAP * TS_PACKET_SIZE {
            stored.extend_from_slice(pkt);
        }
    }

    /// The current PAT and PMT packets.
    fn psi(&self) -> Vec<u8> {
        let mut psi = self.pat.clone();
        for (_, pmt) in &self.pmts {
            psi.extend_from_slice(pmt);
        }
        psi
    }

    fn classify(&self, p: &Pending) -> Option<Picture> {
        let kind = self.key.map(|k| k.kind)?;
        if p.random_access || kind == KeyKind::Audio {
            return Some(Picture::Key);
        }
        let es = p.pes.get(pes_header(&p.pes)?.payload_offset..)?;
        match kind {
            KeyKind::H264 => first_picture(es, false),
            KeyKind::Hevc => first_picture(es, true),
            KeyKind::OtherVideo | KeyKind::Audio => Some(Picture::Delta),
        }
    }

    fn resolve(&mut self, p: Pending, picture: Picture) {
        let pts = PesHeader::parse(&p.pes).ok().and_then(|h| h.pts);
        if picture == Picture::Key && (self.should_cut(pts) || std::mem::take(&mut self.cut_asked)) {
            self.open(p.psi);
            self.current.extend_from_slice(&p.packets);
            self.current_len += p.packets.len();
            self.current_pts = pts;
            self.started = true;
        } else {
            for pkt in p.packets.chunks_exact(TS_PACKET_SIZE) {
                self.append(pkt);
            }
        }
    }

    fn should_cut(&self, pts: Option<Timestamp>) -> bool {
        if !self.started {
            return true;
        }
        match (self.current_pts, pts) {
            (Some(start), Some(pts)) => {
                // A clock that went backwards (half the PTS range or more "ahead"): a new timeline.
                let elapsed = pts.signed_ticks_since(start);
                elapsed < 0 || elapsed.unsigned_abs() >= self.min_ticks
            }
            (None, Some(_)) => true,
            (_, None) => false,
        }
    }

    fn append(&mut self, pkt: &[u8]) {
        if !self.started {
            return;
        }
        if self.current_len + pkt.len() > self.config.max_segment_bytes {
            tracing::warn!(
                max_segment_bytes = self.config.max_segment_bytes,
                "no keyframe within the segment size limit; cutting mid-GOP"
            );
            let psi = self.psi();
            self.open(psi);
            self.current_pts = None;
        }
        self.current.extend_from_slice(pkt);
        self.current_len += pkt.len();
    }

    /// Ends the open segment (handing out its rest) and opens the next with `head`.
    fn open(&mut self, head: Vec<u8>) {
        self.flush();
        self.current_len = head.len();
        self.current = head;
        self.current_opened = false;
    }

    /// Hands out what the open segment has that was not handed out yet.
    fn flush(&mut self) {
        if !self.started || self.current.is_empty() {
            return;
        }
        let bytes = Bytes::from(std::mem::take(&mut self.current));
        self.out.push(if self.current_opened { Piece::More(bytes) } else { Piece::Start(bytes) });
        self.current_opened = true;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::SYNC_BYTE;
    use super::*;
    use proptest::prelude::*;

    pub(crate) const VIDEO_PID: u16 = 0x100;
    pub(crate) const AUDIO_PID: u16 = 0x101;

    fn packet(pid: u16, pusi: bool, cc: u8, rai: bool, payload: &[u8]) -> Vec<u8> {
        let mut pkt = vec![SYNC_BYTE, (pid >> 8) as u8 | if pusi { 0x40 } else { 0 }, pid as u8];
        let room = TS_PACKET_SIZE - 4;
        let take = payload.len().min(room);
        let stuffing = room - take;
        if stuffing > 0 || rai {
            let af_len = if rai { stuffing.max(2) - 1 } else { stuffing - 1 };
            pkt.push(0x30 | (cc & 0xf));
            pkt.push(af_len as u8);
            pkt.push(if rai { 0x40 } else { 0 });
            pkt.resize(5 + af_len, 0xff);
            let take = TS_PACKET_SIZE - pkt.len();
            pkt.extend_from_slice(&payload[..take]);
        } else {
            pkt.push(0x10 | (cc & 0xf));
            pkt.extend_from_slice(&payload[..take]);
        }
        pkt
    }

    /// Splits a PES into packets (the first with PUSI and optionally RAI).
    fn pes_packets(pid: u16, pes: &[u8], rai: bool, cc: &mut u8) -> Vec<u8> {
        let mut out = Vec::new();
        let mut rest = pes;
        let mut first = true;
        while !rest.is_empty() {
            let room = if first && rai { TS_PACKET_SIZE - 6 } else { TS_PACKET_SIZE - 4 };
            let take = rest.len().min(room);
            out.extend(packet(pid, first, *cc, first && rai, &rest[..take]));
            *cc = cc.wrapping_add(1);
            rest = &rest[take..];
            first = false;
        }
        out
    }

    fn pes(stream_id: u8, pts: u64, es: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, 1, stream_id, 0, 0, 0x80, 0x80, 5];
        v.extend(Timestamp::wrap(pts).to_pes_field(0b0010));
        v.extend_from_slice(es);
        v
    }

    fn psi_packet(pid: u16, section: &[u8]) -> Vec<u8> {
        let mut payload = vec![0u8];
        payload.extend_from_slice(section);
        packet(pid, true, 0, false, &payload)
    }

    pub(crate) fn pat_pmt() -> Vec<u8> {
        let mut out = psi_packet(0, &[0x00, 0xb0, 13, 0, 1, 0xc1, 0, 0, 0, 1, 0xf0, 0, 0, 0, 0, 0]);
        out.extend(psi_packet(
            0x1000,
            &[
                0x02, 0xb0, 23, 0, 1, 0xc1, 0, 0, 0xe1, 0x00, 0xf0, 0, 0x1b, 0xe1, 0x00, 0xf0, 0, 0x0f, 0xe1, 0x01,
                0xf0, 0, 0, 0, 0, 0,
            ],
        ));
        out
    }

    /// A synthetic H.264+audio TS: `frames` video frames at 30 fps with an IDR every `gop` frames (marked
    /// with RAI when `rai`), a big SEI first so the IDR NAL sits in a later packet, and audio between.
    pub(crate) fn synthetic_ts(frames: u64, gop: u64, rai: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let (mut vcc, mut acc) = (0u8, 0u8);
        for f in 0..frames {
            if f % 15 == 0 {
                out.extend(pat_pmt());
            }
            let key = f % gop == 0;
            let mut es = vec![0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x06];
            es.extend(std::iter::repeat_n(0x55, 400));
            es.extend([0, 0, 0, 1, if key { 0x65 } else { 0x41 }]);
            es.extend(std::iter::repeat_n(f as u8 | 0x80, 300));
            let pts = 900_000 + f * 3000;
            out.extend(pes_packets(VIDEO_PID, &pes(0xe0, pts, &es), key && rai, &mut vcc));
            out.extend(pes_packets(AUDIO_PID, &pes(0xc0, pts, &[0xaa; 50]), false, &mut acc));
        }
        out
    }

    fn first_video_es(segment: &[u8]) -> Option<Vec<u8>> {
        let mut es = Vec::new();
        let mut inside = false;
        for pkt in segment.chunks_exact(TS_PACKET_SIZE) {
            let p = Packet::parse(pkt).ok()?;
            if p.pid.value() != VIDEO_PID {
                continue;
            }
            if p.payload_unit_start && inside {
                break;
            }
            inside |= p.payload_unit_start;
            if inside {
                es.extend_from_slice(p.payload.unwrap_or_default());
            }
        }
        Some(es)
    }

    fn segment_all(ts: &[u8], chunk: usize, config: SegmenterConfig) -> Vec<Bytes> {
        let mut seg = TsSegmenter::new(config);
        let mut out = Vec::new();
        for c in ts.chunks(chunk.max(1)) {
            out.extend(seg.push(c));
        }
        out.extend(seg.finish());
        out
    }

    fn check_segments(segments: &[Bytes]) {
        for s in segments {
            assert_eq!(s.len() % TS_PACKET_SIZE, 0);
            assert_eq!(&s[..3], &[0x47, 0x40, 0x00], "segment starts with the PAT");
            let es = first_video_es(s).expect("well-formed packets");
            let hdr = pes_header(&es).expect("pes header").payload_offset;
            assert_eq!(first_picture(&es[hdr..], false), Some(Picture::Key), "segment starts on a keyframe");
        }
    }

    #[test]
    fn cuts_on_idr_after_min_duration_by_nal_scan() {
        // 90 frames, IDR every 15 (0.5 s): with 1 s minimum, segments hold 30 frames.
        let segments = segment_all(&synthetic_ts(90, 15, false), 188 * 7, SegmenterConfig::default());
        assert_eq!(segments.len(), 3);
        check_segments(&segments);
    }

    #[test]
    fn pieces_flow_before_the_segment_ends_and_join_into_the_same_segments() {
        // 90 frames, IDR every 15 (0.5 s), cut at 1 s: 3 segments of 30 frames.
        let ts = synthetic_ts(90, 15, false);
        let whole = segment_all(&ts, ts.len(), SegmenterConfig::default());
        let mut seg = TsSegmenter::new(SegmenterConfig::default());
        let mut pieces = Vec::new();
        let mut first_piece_after = None;
        for (i, c) in ts.chunks(188 * 3).enumerate() {
            let got = seg.push_pieces(c);
            if first_piece_after.is_none() && !got.is_empty() {
                first_piece_after = Some(i);
            }
            pieces.extend(got);
        }
        pieces.extend(seg.finish_pieces());
        // The first frames are handed on long before the first segment is complete (30 frames).
        assert!(first_piece_after.is_some_and(|i| i < 4), "{first_piece_after:?}");
        assert!(pieces.first().is_some_and(Piece::is_start));
        assert_eq!(pieces.iter().filter(|p| p.is_start()).count(), whole.len());
        let mut joined: Vec<Vec<u8>> = Vec::new();
        for p in &pieces {
            if p.is_start() {
                joined.push(Vec::new());
            }
            joined.last_mut().expect("starts first").extend_from_slice(p.bytes());
        }
        assert_eq!(joined, whole.iter().map(|b| b.to_vec()).collect::<Vec<_>>());
    }

    #[test]
    fn a_cut_can_be_asked_for_before_the_minimum_duration() {
        // IDR every 5 frames (1/6 s); 1 s minimum: 30 frames per segment unless a cut is asked for.
        let ts = synthetic_ts(60, 5, false);
        let mut seg = TsSegmenter::new(SegmenterConfig::default());
        let mut segments = Vec::new();
        let packets: Vec<&[u8]> = ts.chunks(TS_PACKET_SIZE).collect();
        let (head, tail) = packets.split_at(packets.len() / 4);
        for p in head {
            segments.extend(seg.push(p));
        }
        seg.cut_at_next_keyframe();
        for p in tail {
            segments.extend(seg.push(p));
        }
        segments.extend(seg.finish());
        // Frames 0..15 come first; the asked cut lands on the next IDR (frame 15 or 20), then 1 s segments.
        assert_eq!(segments.len(), 3, "{:?}", segments.iter().map(|s| s.len()).collect::<Vec<_>>());
        check_segments(&segments);
        assert!(segments[0].len() < segments[1].len());
    }

    #[test]
    fn the_gate_passes_from_a_start_and_closes_on_loss() {
        let (start, more) = (Piece::Start(Bytes::from_static(b"s")), Piece::More(Bytes::from_static(b"m")));
        let mut gate = StartGate::default();
        assert!(!gate.pass(&more));
        assert!(gate.pass(&start) && gate.pass(&more));
        gate.lost();
        assert!(!gate.pass(&more));
        assert!(gate.pass(&start));
    }

    #[test]
    fn cuts_on_random_access_indicator() {
        let config = SegmenterConfig { min_duration: Duration::from_millis(400), ..Default::default() };
        let segments = segment_all(&synthetic_ts(60, 15, true), 1000, config);
        assert_eq!(segments.len(), 4);
        check_segments(&segments);
    }

    #[test]
    fn drops_leading_bytes_before_first_keyframe_and_resyncs() {
        let mut ts = vec![1, 2, 3];
        let body = synthetic_ts(45, 15, false);
        // Start mid-GOP: skip PSI + the first 5 frames' worth of packets, then garbage.
        ts.extend_from_slice(&body[188 * 40..]);
        let segments = segment_all(&ts, 4096, SegmenterConfig::default());
        assert!(!segments.is_empty());
        check_segments(&segments);
    }

    #[test]
    fn oversized_segment_is_cut_with_psi() {
        let config = SegmenterConfig { min_duration: Duration::from_secs(60), max_segment_bytes: 188 * 50 };
        let segments = segment_all(&synthetic_ts(30, 30, false), 188, config);
        assert!(segments.len() > 2);
        for s in &segments {
            assert!(s.len() <= 188 * 50);
            assert_eq!(&s[..3], &[0x47, 0x40, 0x00]);
        }
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..4000), chunk in 1usize..500) {
            // Sprinkle sync bytes so that packet parsing paths are reached.
            let mut data = data;
            for i in (0..data.len()).step_by(188) { data[i] = SYNC_BYTE; }
            let _ = segment_all(&data, chunk, SegmenterConfig { min_duration: Duration::ZERO, max_segment_bytes: 2000 });
        }

        #[test]
        fn never_panics_on_corrupted_stream(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..64)) {
            let mut ts = synthetic_ts(20, 5, true);
            let len = ts.len();
            for (at, byte) in flips { ts[at % len] = byte; }
            let config = SegmenterConfig { min_duration: Duration::from_millis(100), max_segment_bytes: 188 * 30 };
            for s in segment_all(&ts, 777, config) {
                prop_assert_eq!(s.len() % TS_PACKET_SIZE, 0);
            }
        }

        #[test]
        fn chunking_does_not_change_segments(chunk in 1usize..3000) {
            let ts = synthetic_ts(60, 10, false);
            let whole = segment_all(&ts, ts.len(), SegmenterConfig::default());
            let split = segment_all(&ts, chunk, SegmenterConfig::default());
            prop_assert_eq!(whole, split);
        }
    }
}
