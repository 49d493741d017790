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
    /// Pieces mode: the rest of a segment goes out in pieces spanning at least this much media time (by
    /// the PTS of the frames of the keyframe stream) rather than frame by frame, so that fewer, larger
    /// chunks cross the network and the plugin; a segment's first piece and its last always go out at
    /// once. A piece ends with a frame of the keyframe stream (video): the other streams' frames
    /// (audio) wait for the next one, unless they have waited three windows (the video stalled). Zero:
    /// every frame as soon as it is known.
    pub piece_window: Duration,
}

impl Default for SegmenterConfig {
    fn default() -> Self {
        SegmenterConfig {
            min_duration: Duration::from_secs(1),
            max_segment_bytes: 32 << 20,
            piece_window: Duration::ZERO,
        }
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
    /// The first bytes of a segment.
    Start(Bytes),
    /// More bytes of the current segment.
    More(Bytes),
}

impl Piece {
    /// The piece's bytes.
    pub fn bytes(&self) -> &Bytes {
        match self {
            Piece::Start(b) | Piece::More(b) => b,
        }
    }

    /// The piece's bytes, owned.
    pub fn into_bytes(self) -> Bytes {
        match self {
            Piece::Start(b) | Piece::More(b) => b,
        }
    }

    /// Whether the piece opens a segment.
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
    /// [`SegmenterConfig::piece_window`] in 90 kHz ticks.
    window_ticks: u64,
    /// What `current` holds that was not handed out yet.
    held: Held,
    /// The PTS of the last frame of the keyframe stream, and of any stream.
    last_key_pts: Option<Timestamp>,
    last_pts: Option<Timestamp>,
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
        let ticks = |d: Duration| u64::try_from(d.as_micros().saturating_mul(9) / 100).unwrap_or(u64::MAX);
        let (min_ticks, window_ticks) = (ticks(config.min_duration), ticks(config.piece_window));
        TsSegmenter {
            config,
            min_ticks,
            window_ticks,
            held: Held::default(),
            last_key_pts: None,
            last_pts: None,
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
        self.flush_due();
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
        if pusi && !is_key_pid && pid != 0 && !self.pmt_pids.contains(&pid) {
            // A frame of another stream (audio): its PTS counts for how long held bytes waited.
            if let Some(pts) = PesHeader::parse(payload).ok().and_then(|h| h.pts) {
                self.note_pts(pts);
            }
        }
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
        // The rest of a keyframe-stream frame whose start is in `current` or already went out.
        self.held.key_bytes |= is_key_pid;
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
        self.note_frame(pts);
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

    /// A frame of the keyframe stream with this PTS joins the open segment (called before its bytes
    /// are added, so a frame that opens a segment is counted in the new one).
    fn note_frame(&mut self, pts: Option<Timestamp>) {
        self.last_key_pts = pts;
        if !self.held.key {
            self.held.key = true;
            self.held.key_from = pts;
        }
        self.held.key_bytes = true;
        if let Some(pts) = pts {
            self.note_pts(pts);
        }
    }

    /// A frame of any stream with this PTS joins the open segment.
    fn note_pts(&mut self, pts: Timestamp) {
        self.last_pts = Some(pts);
        self.held.from.get_or_insert(pts);
    }

    /// Hands out what the open segment has that was not handed out yet.
    fn flush(&mut self) {
        self.held = Held::default();
        if !self.started || self.current.is_empty() {
            return;
        }
        let bytes = Bytes::from(std::mem::take(&mut self.current));
        self.out.push(if self.current_opened { Piece::More(bytes) } else { Piece::Start(bytes) });
        self.current_opened = true;
    }

    /// At the end of a push: hands out the open segment's new bytes if they are its start, or span
    /// the piece window, or there is no window; otherwise holds them for a later push.
    fn flush_due(&mut self) {
        if !self.started || self.current.is_empty() {
            return;
        }
        let spans = |from: Option<Timestamp>, to: Option<Timestamp>, ticks: u64| match (from, to) {
            (Some(from), Some(to)) => to.signed_ticks_since(from).unsigned_abs() >= ticks,
            // Without timestamps there is no window to measure.
            _ => true,
        };
        let held = &self.held;
        // A piece ends with a frame of the keyframe stream once the window is spanned, or with the
        // rest of one whose start went out already.
        let key_due =
            if held.key { spans(held.key_from, self.last_key_pts, self.window_ticks) } else { held.key_bytes };
        // Other streams' frames wait for the keyframe stream's piece, [`STALL_WINDOWS`] windows at most.
        let any_due = if held.key || held.from.is_some() {
            spans(held.from, self.last_pts, self.window_ticks.saturating_mul(STALL_WINDOWS))
        } else {
            true
        };
        if self.window_ticks == 0 || !self.current_opened || key_due || any_due {
            self.flush();
        }
    }
}

/// Held bytes go out once they span this many piece windows, whatever the keyframe stream does: a
/// frame of another stream that arrives just after a piece waits for the next two video frames (at
/// 30 fps and a 30 ms window, 67 ms), and must not be cut off from them in the normal flow; if the
/// video stalls, the audio goes on at this pace.
const STALL_WINDOWS: u64 = 3;

/// What the open segment holds that was not handed out yet (for the piece window).
#[derive(Debug, Default)]
struct Held {
    /// A frame of the keyframe stream starts in the held bytes; the PTS of the first one.
    key: bool,
    key_from: Option<Timestamp>,
    /// Bytes of the keyframe stream are held (a frame, or the rest of one).
    key_bytes: bool,
    /// The PTS of the first frame of any stream held.
    from: Option<Timestamp>,
}

#[cfg(test)]
#[path = "segmenter_tests.rs"]
pub(crate) mod tests;
