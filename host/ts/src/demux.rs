//! An MPEG-TS demuxer to access units: H.264 (Annex-B, one PES per AU), Opus (control headers stripped,
//! one frame per Opus packet), anything else as whole PES payloads. Needed to send TS segments out as RTP.

use crate::nal::{Picture, first_picture};
use crate::{Codec, ElementaryStream, Packet, PacketReader, Pat, PesHeader, Pmt, Section, Timestamp};

/// stream_type of H.264 video.
const STREAM_TYPE_H264: u8 = 0x1b;

/// What a [`TsFrame`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// An H.264 access unit, Annex-B.
    H264,
    /// One Opus packet.
    Opus,
    /// The PES payload of another stream type (the PMT's stream_type).
    Other(u8),
}

/// One access unit out of a transport stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsFrame {
    /// What the data is.
    pub kind: FrameKind,
    /// The PID it came on.
    pub pid: u16,
    /// Presentation time, 90 kHz.
    pub pts: Option<u64>,
    /// Decode time, 90 kHz (the PTS when the PES has no DTS).
    pub dts: Option<u64>,
    /// An H.264 IDR (or a PES flagged random access).
    pub keyframe: bool,
    /// The elementary stream bytes.
    pub data: Vec<u8>,
}

/// Largest PES kept; a bigger one is dropped (bounds memory against broken input).
const MAX_PES: usize = 16 << 20;

struct PesBuf {
    pid: u16,
    kind: FrameKind,
    data: Vec<u8>,
    random_access: bool,
    active: bool,
}

/// Splits a transport stream into access units. Sans-IO: [`push`](Self::push) any chunking, then
/// [`finish`](Self::finish). Packets before the PAT/PMT are skipped; malformed packets are ignored.
#[derive(Default)]
pub struct TsDemuxer {
    packets: PacketReader,
    pmt_pids: Vec<u16>,
    streams: Vec<PesBuf>,
    out: Vec<TsFrame>,
}

impl TsDemuxer {
    /// A demuxer at the start of a stream.
    pub fn new() -> TsDemuxer {
        TsDemuxer::default()
    }

    /// Feeds bytes; returns the access units completed by them, in stream order per PID.
    pub fn push(&mut self, data: &[u8]) -> Vec<TsFrame> {
        let mut packets = std::mem::take(&mut self.packets);
        packets.push(data, |packet| {
            // Garbage between packets and malformed packets are skipped.
            if let Ok(packet) = packet {
                self.packet(&packet);
            }
        });
        self.packets = packets;
        std::mem::take(&mut self.out)
    }

    /// The elementary streams of the last PMT read, as (PID, kind), in PMT order.
    pub fn streams(&self) -> impl Iterator<Item = (u16, FrameKind)> + '_ {
        self.streams.iter().map(|s| (s.pid, s.kind))
    }

    /// Ends the stream: returns the access units still buffered.
    pub fn finish(mut self) -> Vec<TsFrame> {
        self.flush_all()
    }

    /// Ends a piece of the stream (a segment) and carries on: returns the access units still buffered
    /// and drops a partial packet, while the PAT and PMT stay known for the next piece.
    pub fn flush_all(&mut self) -> Vec<TsFrame> {
        self.packets.finish(|_| {});
        for idx in 0..self.streams.len() {
            self.flush(idx);
        }
        std::mem::take(&mut self.out)
    }

    fn packet(&mut self, packet: &Packet<'_>) {
        let (pid, pusi) = (packet.pid.value(), packet.payload_unit_start);
        let payload = packet.payload.unwrap_or_default();
        if pid == 0 {
            if pusi && let Some(pids) = pat_pmt_pids(payload) {
                self.pmt_pids = pids;
            }
            return;
        }
        if self.pmt_pids.contains(&pid) {
            if pusi && let Some(streams) = pmt_streams(payload) {
                for es in streams {
                    let kind = match es.stream_type {
                        STREAM_TYPE_H264 => FrameKind::H264,
                        _ if es.codec == Codec::Opus => FrameKind::Opus,
                        other => FrameKind::Other(other),
                    };
                    let es_pid = es.pid.value();
                    match self.streams.iter_mut().find(|s| s.pid == es_pid) {
                        Some(s) => s.kind = kind,
                        None => self.streams.push(PesBuf {
                            pid: es_pid,
                            kind,
                            data: Vec::new(),
                            random_access: false,
                            active: false,
                        }),
                    }
                }
            }
            return;
        }
        let Some(idx) = self.streams.iter().position(|s| s.pid == pid) else { return };
        if pusi {
            self.flush(idx);
        }
        let Some(s) = self.streams.get_mut(idx) else { return };
        if pusi {
            s.active = true;
            s.random_access = packet.is_random_access();
        }
        if !s.active {
            return;
        }
        if s.data.len() + payload.len() > MAX_PES {
            s.data.clear();
            s.active = false;
            return;
        }
        s.data.extend_from_slice(payload);
        // A PES with a length is complete as soon as it is all here (no need to wait for the next one).
        let declared = PesHeader::parse(&s.data).map(|h| usize::from(h.packet_length));
        if let Ok(len) = declared
            && len > 0
            && s.data.len() >= len + 6
        {
            self.flush(idx);
        }
    }

    fn flush(&mut self, idx: usize) {
        let Some(s) = self.streams.get_mut(idx) else { return };
        if !s.active {
            return;
        }
        s.active = false;
        let pes = std::mem::take(&mut s.data);
        let (pid, kind, random_access) = (s.pid, s.kind, s.random_access);
        let Some(header) = pes_header(&pes) else { return };
        let declared = usize::from(header.packet_length);
        let end = if declared > 0 { (declared + 6).min(pes.len()) } else { pes.len() };
        let es = pes.get(header.payload_offset..end).unwrap_or_default();
        let pts = header.pts.map(Timestamp::ticks);
        // The DTS is the PTS when the PES carries no DTS.
        let dts = header.dts.or(header.pts).map(Timestamp::ticks);
        match kind {
            FrameKind::Opus => self.opus_frames(pid, pts, es),
            FrameKind::H264 => {
                let keyframe = random_access || first_picture(es, false) == Some(Picture::Key);
                self.out.push(TsFrame { kind, pid, pts, dts, keyframe, data: es.to_vec() });
            }
            FrameKind::Other(_) => {
                self.out.push(TsFrame { kind, pid, pts, dts, keyframe: random_access, data: es.to_vec() });
            }
        }
    }

    /// Strips the 0x7FE0 control headers; each Opus packet becomes a frame, timed by the TOC durations.
    fn opus_frames(&mut self, pid: u16, pts: Option<u64>, mut es: &[u8]) {
        let mut pts = pts;
        while let [0x7f, flags, rest @ ..] = es {
            if flags & 0xe0 != 0xe0 {
                return;
            }
            let mut rest = rest;
            let mut size = 0usize;
            loop {
                let Some((&b, tail)) = rest.split_first() else { return };
                rest = tail;
                size += usize::from(b);
                if b != 0xff {
                    break;
                }
            }
            let skip = if flags & 0x10 != 0 { 2 } else { 0 } + if flags & 0x08 != 0 { 2 } else { 0 };
            rest = rest.get(skip..).unwrap_or_default();
            if flags & 0x04 != 0 {
                let Some((&len, tail)) = rest.split_first() else { return };
                rest = tail.get(usize::from(len)..).unwrap_or_default();
            }
            let Some(packet) = rest.get(..size) else { return };
            self.out.push(TsFrame { kind: FrameKind::Opus, pid, pts, dts: pts, keyframe: true, data: packet.to_vec() });
            pts = pts.map(|p| Timestamp::wrap(p + opus_duration_90k(packet)).ticks());
            es = rest.get(size..).unwrap_or_default();
        }
    }
}

/// The section of a one-packet PSI table that starts in `payload` (of a packet with payload_unit_start);
/// `None` when none starts and ends there. The CRC is taken as it comes, as players take it.
fn table(payload: &[u8]) -> Option<Result<Section<'_>, crate::TsError>> {
    crate::section_in_unit_start(payload).map(Section::parse_unchecked)
}

/// PMT PIDs listed in the PAT that starts in `payload` (program 0, the NIT, skipped).
fn pat_pmt_pids(payload: &[u8]) -> Option<Vec<u16>> {
    let pat = table(payload)?.and_then(|section| Pat::parse(&section));
    Some(
        pat.map(|pat| pat.programs.iter().filter(|p| p.program_number != 0).map(|p| p.pid.value()).collect())
            .unwrap_or_default(),
    )
}

/// Elementary streams listed in the PMT that starts in `payload`.
fn pmt_streams(payload: &[u8]) -> Option<Vec<ElementaryStream>> {
    let pmt = table(payload)?.and_then(|section| Pmt::parse(&section));
    Some(pmt.map(|pmt| pmt.streams).unwrap_or_default())
}

/// The PES header at the start of `pes` when all of it is there.
fn pes_header(pes: &[u8]) -> Option<PesHeader> {
    PesHeader::parse(pes).ok().filter(|h| h.payload_offset <= pes.len())
}

/// Duration of an Opus packet in 90 kHz ticks, from its TOC byte (RFC 6716 §3.1).
fn opus_duration_90k(packet: &[u8]) -> u64 {
    let Some(&toc) = packet.first() else { return 0 };
    let config = toc >> 3;
    // Frame duration in units of 1/400 s (2.5 ms).
    let frame_400ths: u64 = match config {
        0..=11 => match config % 4 {
            0 => 4,
            1 => 8,
            2 => 16,
            _ => 24,
        },
        12..=15 => 4 << (config % 2),
        _ => 1 << (config % 4),
    };
    let frames = match toc & 0x3 {
        0 => 1,
        1 | 2 => 2,
        _ => packet.get(1).map_or(0, |b| u64::from(b & 0x3f)),
    };
    frames * frame_400ths * 225
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TsMuxer;
    use proptest::prelude::*;

    #[test]
    fn round_trip_through_the_muxer() {
        let mut mux = TsMuxer::new(Some(2));
        let mut ts = Vec::new();
        let mut sent = Vec::new();
        for i in 0..20u64 {
            let key = i % 10 == 0;
            if key {
                mux.psi(&mut ts);
            }
            let mut au = vec![0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, if key { 0x65 } else { 0x41 }];
            au.extend(std::iter::repeat_n(i as u8, 50 + 97 * i as usize));
            mux.video(3000 * i + 6000, 3000 * i, key, &au, &mut ts);
            // A 20 ms CELT packet (config 31, code 0), length crossing 255.
            let opus: Vec<u8> =
                std::iter::once(0xf8).chain(std::iter::repeat_n(i as u8, 200 + 10 * i as usize)).collect();
            mux.opus(1800 * i, &opus, &mut ts);
            sent.push((au, opus));
        }
        let mut demux = TsDemuxer::new();
        let mut frames = Vec::new();
        for chunk in ts.chunks(1000) {
            frames.extend(demux.push(chunk));
        }
        frames.extend(demux.finish());
        let video: Vec<&TsFrame> = frames.iter().filter(|f| f.kind == FrameKind::H264).collect();
        let audio: Vec<&TsFrame> = frames.iter().filter(|f| f.kind == FrameKind::Opus).collect();
        assert_eq!(video.len(), 20);
        assert_eq!(audio.len(), 20);
        for (i, ((au, opus), (v, a))) in sent.iter().zip(video.iter().zip(&audio)).enumerate() {
            let i = i as u64;
            assert_eq!(&v.data[..], &au[..]);
            assert_eq!((v.pts, v.dts, v.keyframe), (Some(3000 * i + 6000), Some(3000 * i), i.is_multiple_of(10)));
            assert_eq!(&a.data[..], &opus[..]);
            assert_eq!(a.pts, Some(1800 * i));
        }
        assert_eq!(opus_duration_90k(&[0xf8]), 1800);
    }

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..3000), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..32)) {
            let mut mux = TsMuxer::new(Some(1));
            let mut ts = Vec::new();
            mux.psi(&mut ts);
            mux.video(0, 0, true, &data, &mut ts);
            mux.opus(0, &data, &mut ts);
            let len = ts.len();
            for (at, b) in flips { ts[at % len] = b; }
            let mut demux = TsDemuxer::new();
            let _ = demux.push(&ts);
            let _ = demux.finish();
        }
    }
}
