//! The analysis itself, independent of the plugin interface: feed a segment's bytes in any
//! chunking, get a [`SegmentReport`].
//!
//! Program tables (PAT/PMT) carry over from one segment to the next, because a segment
//! that starts without them is still decodable by a player that saw them earlier;
//! everything else is counted per segment.

use std::collections::BTreeMap;

use byoc_sdk::ts::{
    Packet, PacketReader, Pat, PesHeader, Pid, Pmt, Section, SectionAssembler, StreamKind, Timestamp, TsError,
    ticks_to_duration,
};
use serde::Serialize;

/// Half the timestamp range: a difference larger than this is read as going backwards.
const HALF_RANGE: u64 = Timestamp::MODULUS / 2;

/// An elementary stream as announced by a PMT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StreamInfo {
    /// PID carrying it.
    pub pid: u16,
    /// Program it belongs to.
    pub program: u16,
    /// PMT `stream_type`.
    pub stream_type: u8,
    /// Codec name (`h264`, `aac`, …).
    pub codec: &'static str,
    /// `video`, `audio`, `data` or `unknown`.
    pub kind: &'static str,
    /// ISO 639 language, if announced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

fn kind_name(kind: StreamKind) -> &'static str {
    match kind {
        StreamKind::Video => "video",
        StreamKind::Audio => "audio",
        StreamKind::Data => "data",
        StreamKind::Unknown => "unknown",
    }
}

/// Error counts of one segment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ErrorCounts {
    /// Continuity counter jumps (lost or reordered packets).
    pub continuity: u64,
    /// Times the sync byte was lost and bytes skipped.
    pub sync: u64,
    /// Partial packets at the end of the segment.
    pub truncated: u64,
    /// Packets with `transport_error_indicator` set.
    pub transport: u64,
    /// Packets that could not be parsed (bad adaptation field, reserved bits).
    pub packet: u64,
    /// Malformed PES headers.
    pub pes: u64,
    /// Malformed or corrupted PAT/PMT sections (including CRC mismatches).
    pub psi: u64,
    /// Scrambled packets (their payload cannot be analysed).
    pub scrambled: u64,
}

impl ErrorCounts {
    /// Sum of all counts.
    pub fn total(&self) -> u64 {
        self.continuity
            + self.sync
            + self.truncated
            + self.transport
            + self.packet
            + self.pes
            + self.psi
            + self.scrambled
    }
}

/// What was seen on one PID during a segment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PidReport {
    /// The PID.
    pub pid: u16,
    /// `pat`, `pmt`, `null`, the stream kind (`video`, …) or `unknown`.
    pub role: &'static str,
    /// Codec, for elementary streams.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub codec: Option<&'static str>,
    /// Packets on this PID.
    pub packets: u64,
    /// PES packets started.
    pub pes: u64,
    /// PES starts flagged as random access points (keyframes for video).
    pub random_access: u64,
    /// Continuity errors on this PID.
    pub continuity_errors: u64,
    /// Presentation timestamp range, if the PID carried timestamps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pts: Option<PtsRange>,
}

/// A range of presentation timestamps, robust to the 33-bit wrap-around.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PtsRange {
    /// First PTS seen (90 kHz ticks).
    pub first: u64,
    /// Last PTS seen.
    pub last: u64,
    /// Lowest PTS (frames arrive in decoding order, so not necessarily the first).
    pub min: u64,
    /// Highest PTS.
    pub max: u64,
    /// Number of timestamps seen.
    pub count: u64,
    /// Presentation span covered, in milliseconds: from `min` to `max` plus one average
    /// frame interval (the last frame lasts too).
    pub duration_ms: f64,
}

/// Everything observed in one segment; serialized as the `segment` data line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentReport {
    /// Always `segment`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Input sequence number.
    pub seq: u64,
    /// Bytes in the segment.
    pub bytes: u64,
    /// Whole packets in the segment.
    pub packets: u64,
    /// Duration from the primary stream's timestamps (video if any, else audio), in ms.
    pub duration_ms: f64,
    /// `bytes × 8 / duration`, in bits per second; 0 when the duration is unknown.
    pub bitrate_bps: u64,
    /// Keyframes (random access points) of the video streams.
    pub keyframes: u64,
    /// Whether the first video PES of the segment is a keyframe; `None` without video.
    pub starts_with_keyframe: Option<bool>,
    /// PID of the stream the duration was measured on.
    pub primary_pid: Option<u16>,
    /// Per-PID details, by PID.
    pub pids: Vec<PidReport>,
    /// Error counts.
    pub errors: ErrorCounts,
    /// The first few errors, described.
    pub error_samples: Vec<String>,
}

/// Per-PID accumulator.
#[derive(Debug, Default)]
struct PidState {
    packets: u64,
    pes: u64,
    random_access: u64,
    continuity_errors: u64,
    last_cc: Option<u8>,
    pts: Option<PtsAccumulator>,
}

/// Tracks a timestamp range as signed offsets from the first timestamp, so that a wrap
/// inside the segment does not look like a 26-hour jump.
#[derive(Debug, Clone, Copy)]
struct PtsAccumulator {
    first: Timestamp,
    last: Timestamp,
    min_offset: i64,
    max_offset: i64,
    count: u64,
}

impl PtsAccumulator {
    fn new(first: Timestamp) -> Self {
        Self { first, last: first, min_offset: 0, max_offset: 0, count: 1 }
    }

    fn add(&mut self, pts: Timestamp) {
        let forward = pts.ticks_since(self.first);
        // Both values are below 2^33, so they fit in i64.
        let offset = if forward < HALF_RANGE { forward as i64 } else { forward as i64 - Timestamp::MODULUS as i64 };
        self.min_offset = self.min_offset.min(offset);
        self.max_offset = self.max_offset.max(offset);
        self.last = pts;
        self.count += 1;
    }

    fn at_offset(&self, offset: i64) -> u64 {
        let modulus = Timestamp::MODULUS as i64;
        (self.first.ticks() as i64 + offset).rem_euclid(modulus) as u64
    }

    fn range(&self) -> PtsRange {
        let span = self.max_offset.abs_diff(self.min_offset);
        let frame = if self.count > 1 { span / (self.count - 1) } else { 0 };
        PtsRange {
            first: self.first.ticks(),
            last: self.last.ticks(),
            min: self.at_offset(self.min_offset),
            max: self.at_offset(self.max_offset),
            count: self.count,
            duration_ms: ticks_to_duration(span + frame).as_secs_f64() * 1000.0,
        }
    }
}

/// Analyses a transport stream segment by segment.
#[derive(Debug)]
pub struct Analyzer {
    max_error_samples: usize,
    reader: PacketReader,
    /// PMT PID → program number, from the latest PAT.
    pmt_pids: BTreeMap<Pid, u16>,
    /// Elementary streams from the latest PMTs.
    streams: BTreeMap<Pid, StreamInfo>,
    streams_changed: bool,
    assemblers: BTreeMap<Pid, SectionAssembler>,
    segment: SegmentState,
}

#[derive(Debug, Default)]
struct SegmentState {
    seq: u64,
    bytes: u64,
    packets: u64,
    pids: BTreeMap<Pid, PidState>,
    errors: ErrorCounts,
    error_samples: Vec<String>,
    first_video_pes_is_keyframe: Option<bool>,
}

impl Analyzer {
    /// An analyzer that keeps up to `max_error_samples` error descriptions per segment.
    pub fn new(max_error_samples: usize) -> Self {
        Self {
            max_error_samples,
            reader: PacketReader::new(),
            pmt_pids: BTreeMap::new(),
            streams: BTreeMap::new(),
            streams_changed: false,
            assemblers: BTreeMap::new(),
            segment: SegmentState::default(),
        }
    }

    /// Changes how many error descriptions are kept per segment.
    pub fn set_max_error_samples(&mut self, max: usize) {
        self.max_error_samples = max;
    }

    /// Starts a segment; per-segment counts restart.
    pub fn begin_segment(&mut self, seq: u64) {
        self.reader.reset();
        self.segment = SegmentState { seq, ..SegmentState::default() };
        // A section cannot span segments: each segment is a self-contained muxer output.
        self.assemblers.clear();
    }

    /// Feeds bytes of the current segment.
    pub fn push(&mut self, bytes: &[u8]) {
        self.segment.bytes += bytes.len() as u64;
        // The reader borrows itself while it calls back, so take it out for the walk.
        let mut reader = std::mem::take(&mut self.reader);
        reader.push(bytes, |item| self.on_item(item));
        self.reader = reader;
    }

    /// Ends the segment and reports it.
    pub fn end_segment(&mut self) -> SegmentReport {
        let mut reader = std::mem::take(&mut self.reader);
        reader.finish(|item| self.on_item(item));
        self.reader = reader;
        self.report()
    }

    /// The streams announced by the PMTs seen so far.
    pub fn streams(&self) -> Vec<StreamInfo> {
        self.streams.values().cloned().collect()
    }

    /// Whether the announced streams changed since the last call (true after the first
    /// PMT).
    pub fn take_streams_changed(&mut self) -> bool {
        std::mem::take(&mut self.streams_changed)
    }

    fn sample(&mut self, description: impl FnOnce() -> String) {
        if self.segment.error_samples.len() < self.max_error_samples {
            self.segment.error_samples.push(description());
        }
    }

    fn on_item(&mut self, item: Result<Packet<'_>, TsError>) {
        match item {
            Ok(packet) => self.on_packet(&packet),
            Err(e) => {
                let counts = &mut self.segment.errors;
                match e {
                    TsError::LostSync { .. } => counts.sync += 1,
                    TsError::Truncated { .. } => counts.truncated += 1,
                    _ => counts.packet += 1,
                }
                self.sample(|| e.to_string());
            }
        }
    }

    fn on_packet(&mut self, packet: &Packet<'_>) {
        self.segment.packets += 1;
        let pid = packet.pid;
        if packet.transport_error {
            // The demodulator says the bits are wrong; nothing in it can be trusted.
            self.segment.errors.transport += 1;
            self.sample(|| format!("transport error indicator on PID {pid}"));
            return;
        }
        self.check_continuity(packet);
        if packet.scrambling != 0 {
            self.segment.errors.scrambled += 1;
            return;
        }
        if pid == Pid::PAT || self.pmt_pids.contains_key(&pid) {
            self.on_psi_packet(packet);
        } else if self.streams.contains_key(&pid) {
            self.on_es_packet(packet);
        }
    }

    fn check_continuity(&mut self, packet: &Packet<'_>) {
        let pid = packet.pid;
        let state = self.segment.pids.entry(pid).or_default();
        state.packets += 1;
        // Null packets carry no counter, and packets without payload do not increment it.
        if pid == Pid::NULL || packet.payload.is_none() {
            return;
        }
        let cc = packet.continuity_counter;
        let broken = match state.last_cc {
            None => false,
            Some(_) if packet.is_discontinuity() => false,
            // One duplicate packet is allowed by the standard.
            Some(last) => cc != last && cc != (last + 1) & 0x0f,
        };
        state.last_cc = Some(cc);
        if broken {
            state.continuity_errors += 1;
            self.segment.errors.continuity += 1;
            self.sample(|| format!("continuity counter jump on PID {pid}"));
        }
    }

    fn on_psi_packet(&mut self, packet: &Packet<'_>) {
        let mut sections = Vec::new();
        self.assemblers
            .entry(packet.pid)
            .or_default()
            .push(packet, |section| sections.push(section.map(<[u8]>::to_vec)));
        for section in sections {
            let result = section.and_then(|bytes| self.on_section(&bytes));
            if let Err(e) = result {
                self.segment.errors.psi += 1;
                self.sample(|| format!("PID {}: {e}", packet.pid));
            }
        }
    }

    fn on_section(&mut self, bytes: &[u8]) -> Result<(), TsError> {
        let section = Section::parse(bytes)?;
        if !section.current {
            return Ok(());
        }
        match section.table_id {
            Pat::TABLE_ID => {
                let pat = Pat::parse(&section)?;
                let pmt_pids =
                    pat.programs.iter().filter(|p| p.program_number != 0).map(|p| (p.pid, p.program_number)).collect();
                self.pmt_pids = pmt_pids;
            }
            Pmt::TABLE_ID => {
                let pmt = Pmt::parse(&section)?;
                self.on_pmt(&pmt);
            }
            // Other tables (SDT, private sections) on these PIDs are not analysed.
            _ => {}
        }
        Ok(())
    }

    fn on_pmt(&mut self, pmt: &Pmt) {
        let mut streams: BTreeMap<Pid, StreamInfo> = self
            .streams
            .iter()
            .filter(|(_, s)| s.program != pmt.program_number)
            .map(|(pid, s)| (*pid, s.clone()))
            .collect();
        for es in &pmt.streams {
            streams.insert(
                es.pid,
                StreamInfo {
                    pid: es.pid.value(),
                    program: pmt.program_number,
                    stream_type: es.stream_type,
                    codec: es.codec.name(),
                    kind: kind_name(es.codec.kind()),
                    language: es.language.clone(),
                },
            );
        }
        if streams != self.streams {
            self.streams = streams;
            self.streams_changed = true;
        }
    }

    fn on_es_packet(&mut self, packet: &Packet<'_>) {
        let (true, Some(payload)) = (packet.payload_unit_start, packet.payload) else {
            return;
        };
        let is_video = self.streams.get(&packet.pid).is_some_and(|s| s.kind == "video");
        let header = match PesHeader::parse(payload) {
            Ok(header) => header,
            Err(e) => {
                self.segment.errors.pes += 1;
                self.sample(|| format!("PID {}: {e}", packet.pid));
                return;
            }
        };
        let random_access = packet.is_random_access();
        if is_video && self.segment.first_video_pes_is_keyframe.is_none() {
            self.segment.first_video_pes_is_keyframe = Some(random_access);
        }
        let state = self.segment.pids.entry(packet.pid).or_default();
        state.pes += 1;
        if random_access {
            state.random_access += 1;
        }
        if let Some(pts) = header.pts {
            match &mut state.pts {
                Some(acc) => acc.add(pts),
                None => state.pts = Some(PtsAccumulator::new(pts)),
            }
        }
    }

    fn role(&self, pid: Pid) -> (&'static str, Option<&'static str>) {
        if pid == Pid::PAT {
            ("pat", None)
        } else if pid == Pid::NULL {
            ("null", None)
        } else if self.pmt_pids.contains_key(&pid) {
            ("pmt", None)
        } else if let Some(stream) = self.streams.get(&pid) {
            (stream.kind, Some(stream.codec))
        } else {
            ("unknown", None)
        }
    }

    fn report(&self) -> SegmentReport {
        let seg = &self.segment;
        let pids: Vec<PidReport> = seg
            .pids
            .iter()
            .map(|(pid, state)| {
                let (role, codec) = self.role(*pid);
                PidReport {
                    pid: pid.value(),
                    role,
                    codec,
                    packets: state.packets,
                    pes: state.pes,
                    random_access: state.random_access,
                    continuity_errors: state.continuity_errors,
                    pts: state.pts.map(|acc| acc.range()),
                }
            })
            .collect();
        let primary = ["video", "audio"].iter().find_map(|kind| {
            pids.iter()
                .filter(|p| p.role == *kind)
                .filter_map(|p| p.pts.map(|pts| (p.pid, pts)))
                .max_by_key(|(_, pts)| pts.count)
        });
        let duration_ms = primary.map_or(0.0, |(_, pts)| pts.duration_ms);
        let bitrate_bps =
            if duration_ms > 0.0 { (seg.bytes as f64 * 8.0 * 1000.0 / duration_ms).round() as u64 } else { 0 };
        let keyframes = pids.iter().filter(|p| p.role == "video").map(|p| p.random_access).sum();
        SegmentReport {
            kind: "segment",
            seq: seg.seq,
            bytes: seg.bytes,
            packets: seg.packets,
            duration_ms,
            bitrate_bps,
            keyframes,
            starts_with_keyframe: seg.first_video_pes_is_keyframe,
            primary_pid: primary.map(|(pid, _)| pid),
            pids,
            errors: seg.errors,
            error_samples: seg.error_samples.clone(),
        }
    }
}
