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
            0x02, 0xb0, 23, 0, 1, 0xc1, 0, 0, 0xe1, 0x00, 0xf0, 0, 0x1b, 0xe1, 0x00, 0xf0, 0, 0x0f, 0xe1, 0x01, 0xf0,
            0, 0, 0, 0, 0,
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

/// Pieces of `ts` pushed in 3-packet chunks with this piece window.
fn pieces_with_window(ts: &[u8], window: Duration) -> Vec<Piece> {
    let mut seg = TsSegmenter::new(SegmenterConfig { piece_window: window, ..SegmenterConfig::default() });
    let mut pieces: Vec<Piece> = ts.chunks(188 * 3).flat_map(|c| seg.push_pieces(c)).collect();
    pieces.extend(seg.finish_pieces());
    pieces
}

#[test]
fn a_piece_window_coalesces_frames_into_fewer_pieces_of_the_same_segments() {
    // 90 frames at 30 fps, IDR every 15, cut at 1 s: 3 segments.
    let ts = synthetic_ts(90, 15, false);
    let whole = segment_all(&ts, ts.len(), SegmenterConfig::default());
    let each = pieces_with_window(&ts, Duration::ZERO);
    let coalesced = pieces_with_window(&ts, Duration::from_millis(100));
    let join = |pieces: &[Piece]| -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = Vec::new();
        for p in pieces {
            if p.is_start() {
                out.push(Vec::new());
            }
            out.last_mut().expect("starts with a start").extend_from_slice(p.bytes());
        }
        out
    };
    assert_eq!(join(&coalesced), whole.iter().map(|b| b.to_vec()).collect::<Vec<_>>(), "the same bytes, cut alike");
    assert_eq!(join(&each), join(&coalesced));
    let more = |pieces: &[Piece]| pieces.iter().filter(|p| !p.is_start()).count();
    // Frame by frame: about one piece a frame. With 100 ms (3 frames): about a third as many.
    assert!(more(&each) >= 80, "{}", more(&each));
    assert!(more(&coalesced) <= more(&each) / 3 + 3, "{} vs {}", more(&coalesced), more(&each));
    assert_eq!(coalesced.iter().filter(|p| p.is_start()).count(), 3, "segment starts are not held");
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
    let config =
        SegmenterConfig { min_duration: Duration::from_secs(60), max_segment_bytes: 188 * 50, ..Default::default() };
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
        let _ = segment_all(&data, chunk, SegmenterConfig { min_duration: Duration::ZERO, max_segment_bytes: 2000, ..Default::default() });
    }

    #[test]
    fn never_panics_on_corrupted_stream(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..64)) {
        let mut ts = synthetic_ts(20, 5, true);
        let len = ts.len();
        for (at, byte) in flips { ts[at % len] = byte; }
        let config = SegmenterConfig { min_duration: Duration::from_millis(100), max_segment_bytes: 188 * 30, ..Default::default() };
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

/// 3 s as live ingest pushes it (WHIP, RTMP): one push per frame, in time order, H.264 at 30 fps
/// (a keyframe a second) and an audio frame every 20 ms. Each push: its PTS, whether it is video.
fn live_pushes() -> Vec<(u64, bool, Vec<u8>)> {
    let (mut vcc, mut acc) = (0u8, 0u8);
    let mut pushes = Vec::new();
    for f in 0..90u64 {
        let mut out = Vec::new();
        if f % 15 == 0 {
            out.extend(pat_pmt());
        }
        let key = f % 30 == 0;
        let mut es = vec![0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x06];
        es.extend(std::iter::repeat_n(0x55, 400));
        es.extend([0, 0, 0, 1, if key { 0x65 } else { 0x41 }]);
        es.extend(std::iter::repeat_n(f as u8 | 0x80, 300));
        let pts = 900_000 + f * 3000;
        out.extend(pes_packets(VIDEO_PID, &pes(0xe0, pts, &es), false, &mut vcc));
        pushes.push((pts, true, out));
    }
    for a in 0..150u64 {
        let pts = 900_000 + a * 1800 + 1;
        pushes.push((pts, false, pes_packets(AUDIO_PID, &pes(0xc0, pts, &[0xaa; 50]), false, &mut acc)));
    }
    pushes.sort_by_key(|p| p.0);
    pushes
}

/// Pushes [`live_pushes`] with this window: the pieces, and for each video frame how long (ms of
/// media time) it was held before the piece that carries it went out, sorted.
fn live_pieces(window: Duration) -> (Vec<Piece>, Vec<u64>) {
    let mut seg = TsSegmenter::new(SegmenterConfig { piece_window: window, ..SegmenterConfig::default() });
    let (mut pieces, mut held, mut waits) = (Vec::new(), Vec::new(), Vec::new());
    for (pts, video, bytes) in live_pushes() {
        if video {
            held.push(pts);
        }
        let out = seg.push_pieces(&bytes);
        if !out.is_empty() {
            waits.extend(held.drain(..).map(|v| (pts - v) / 90));
            pieces.extend(out);
        }
    }
    pieces.extend(seg.finish_pieces());
    waits.sort_unstable();
    (pieces, waits)
}

#[test]
fn audio_between_video_frames_joins_the_next_video_piece_instead_of_going_alone() {
    let (each, waits) = live_pieces(Duration::ZERO);
    assert_eq!(waits.last(), Some(&0), "without a window nothing waits");
    assert!(each.len() >= 230, "a piece per frame, audio and video: {}", each.len());

    // 30 ms at 30 fps: two video frames a piece (the first waits one frame), and the audio frames
    // between them in the same piece, not in pieces of their own (there were 122 pieces in 3 s).
    let (pieces, waits) = live_pieces(Duration::from_millis(30));
    assert!(pieces.len() <= 48, "about 15 pieces a second: {}", pieces.len());
    assert_eq!((waits[waits.len() / 2], *waits.last().unwrap()), (0, 33), "video waits at most one frame");

    let bytes = |pieces: &[Piece]| pieces.iter().flat_map(|p| p.bytes().to_vec()).collect::<Vec<u8>>();
    assert_eq!(bytes(&pieces), bytes(&each), "the same bytes");
    assert_eq!(pieces.iter().filter(|p| p.is_start()).count(), 3, "segment starts are not held");
}

#[test]
fn audio_alone_goes_out_once_it_spans_three_windows() {
    // Video stops after 10 frames; the audio goes on.
    let mut seg =
        TsSegmenter::new(SegmenterConfig { piece_window: Duration::from_millis(30), ..SegmenterConfig::default() });
    let mut flushed_at = Vec::new();
    for (pts, video, bytes) in live_pushes().into_iter().filter(|(pts, video, _)| !video || *pts < 900_000 + 10 * 3000)
    {
        if !seg.push_pieces(&bytes).is_empty() && !video && pts > 900_000 + 10 * 3000 {
            flushed_at.push(pts);
        }
    }
    assert!(flushed_at.len() >= 20, "audio still goes out: {flushed_at:?}");
    assert!(
        flushed_at.windows(2).all(|w| w[1] - w[0] <= 90 * 90 + 2 * 1800),
        "three windows, and up to a frame on each side: {flushed_at:?}"
    );
}
