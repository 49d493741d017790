use std::time::Duration;

use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::segment::First;

fn store(window: usize) -> TrickleStore {
    TrickleStore::new(TrickleConfig { window, max_segment_bytes: 1024, ..TrickleConfig::default() })
}

fn chan(store: &TrickleStore) -> Arc<Channel> {
    store.create_channel("c", "video/mp2t").unwrap();
    store.channel("c").unwrap()
}

fn publish(ch: &Arc<Channel>, seq: u64, data: &'static [u8]) {
    let mut w = ch.open_write(SeqRequest::At(Seq(seq)), false).unwrap();
    w.write(Bytes::from_static(data)).unwrap();
    w.finish();
}

fn found(o: ReadOutcome) -> Arc<Segment> {
    match o {
        ReadOutcome::Segment { seg, .. } => seg,
        ReadOutcome::NotFound { seq, latest } => panic!("470 for {seq}, latest {latest}"),
        ReadOutcome::Closed { .. } => panic!("closed"),
    }
}

async fn contents(seg: Arc<Segment>) -> Result<Vec<u8>, crate::segment::Aborted> {
    let mut rh = ReadHandle::new(seg);
    let mut out = Vec::new();
    while let Some(b) = rh.cursor.next().await {
        out.extend_from_slice(&b?);
    }
    Ok(out)
}

#[tokio::test]
async fn minus_one_and_minus_two_follow_the_live_edge() {
    let s = store(5);
    let ch = chan(&s);
    // Empty channel: -2 is seq 0, -1 is seq 0.
    assert_eq!(found(ch.open_read(SeqRequest::Current)).seq(), Seq(0));
    publish(&ch, 0, b"a");
    publish(&ch, 1, b"b");
    assert_eq!(found(ch.open_read(SeqRequest::Current)).seq(), Seq(1));
    assert_eq!(found(ch.open_read(SeqRequest::Next)).seq(), Seq(2));
    assert_eq!(contents(found(ch.open_read(SeqRequest::At(Seq(0))))).await.unwrap(), b"a");
}

#[tokio::test]
async fn out_of_window_reads_get_latest() {
    let s = store(3);
    let ch = chan(&s);
    for i in 0..6 {
        publish(&ch, i, b"x");
    }
    match ch.open_read(SeqRequest::At(Seq(1))) {
        ReadOutcome::NotFound { seq, latest } => assert_eq!((seq, latest), (Seq(1), Seq(6))),
        _ => panic!("expected 470"),
    }
    // Ahead of the live edge by more than one: 470 too.
    assert!(matches!(ch.open_read(SeqRequest::At(Seq(9))), ReadOutcome::NotFound { .. }));
}

#[tokio::test]
async fn late_publish_within_the_window_is_waited_for() {
    let s = store(5);
    let ch = chan(&s);
    publish(&ch, 0, b"zero");
    publish(&ch, 2, b"two"); // overtook seq 1
    assert_eq!(ch.latest(), Seq(3));
    let waiting = found(ch.open_read(SeqRequest::At(Seq(1))));
    assert!(waiting.is_bare());
    publish(&ch, 1, b"one");
    assert_eq!(contents(waiting).await.unwrap(), b"one");
    assert_eq!(ch.latest(), Seq(3), "the live edge never moves back");
}

#[tokio::test]
async fn republishing_a_seq_replaces_it_and_never_appends() {
    let s = store(5);
    let ch = chan(&s);
    publish(&ch, 0, b"Hello");
    let old = found(ch.open_read(SeqRequest::At(Seq(0))));
    publish(&ch, 0, b"Goodbye");
    assert_eq!(contents(old).await.unwrap(), b"Hello");
    assert_eq!(contents(found(ch.open_read(SeqRequest::At(Seq(0))))).await.unwrap(), b"Goodbye");
}

#[tokio::test]
async fn a_second_writer_of_a_seq_being_written_follows_the_first_whole() {
    let s = store(5);
    let ch = chan(&s);
    let reader = found(ch.open_read(SeqRequest::At(Seq(0))));
    let mut first = ch.open_write(SeqRequest::At(Seq(0)), false).unwrap();
    first.write(Bytes::from_static(b"{\"a\":")).unwrap();
    let mut second = ch.open_write(SeqRequest::At(Seq(0)), false).unwrap();
    second.write(Bytes::from_static(b"{\"b\":")).unwrap();
    first.write(Bytes::from_static(b"1}")).unwrap();
    second.write(Bytes::from_static(b"2}")).unwrap();
    // `-1` skips the segment being written instead of sharing it.
    let w3 = ch.open_write(SeqRequest::Next, false).unwrap();
    assert_eq!(w3.seq(), Seq(1));
    assert_eq!(ch.open_write(SeqRequest::Current, false).err(), Some(StoreError::CurrentOnPublish));
    // The second body finishes first: it still waits for the first one, and the segment is
    // complete only when both are.
    second.finish();
    let mut cursor = Cursor::new(&reader);
    assert_eq!(cursor.next().await.unwrap().unwrap(), Bytes::from_static(b"{\"a\":1}"));
    first.finish();
    assert_eq!(contents(reader).await.unwrap(), b"{\"a\":1}{\"b\":2}");
}

#[tokio::test]
async fn a_queued_body_is_dropped_if_its_publisher_goes_away_and_the_segment_goes_on() {
    let s = store(5);
    let ch = chan(&s);
    let mut first = ch.open_write(SeqRequest::At(Seq(0)), false).unwrap();
    first.write(Bytes::from_static(b"one")).unwrap();
    let mut second = ch.open_write(SeqRequest::At(Seq(0)), false).unwrap();
    second.write(Bytes::from_static(b"cut")).unwrap();
    drop(second);
    let mut third = ch.open_write(SeqRequest::At(Seq(0)), false).unwrap();
    third.write(Bytes::from_static(b"three")).unwrap();
    third.finish();
    first.finish();
    assert_eq!(contents(found(ch.open_read(SeqRequest::At(Seq(0))))).await.unwrap(), b"onethree");
}

#[tokio::test]
async fn queued_bodies_count_against_the_segment_cap() {
    let s = TrickleStore::new(TrickleConfig { window: 5, max_segment_bytes: 8, ..TrickleConfig::default() });
    let ch = chan(&s);
    let mut first = ch.open_write(SeqRequest::At(Seq(0)), false).unwrap();
    first.write(Bytes::from_static(b"12345")).unwrap();
    let mut second = ch.open_write(SeqRequest::At(Seq(0)), false).unwrap();
    assert_eq!(second.write(Bytes::from_static(b"6789")), Err(StoreError::TooLarge(8)));
    first.finish();
    assert_eq!(contents(found(ch.open_read(SeqRequest::At(Seq(0))))).await.unwrap(), b"12345");
}

#[tokio::test]
async fn a_writer_that_goes_away_mid_segment_aborts_it() {
    let s = store(5);
    let ch = chan(&s);
    let mut w = ch.open_write(SeqRequest::At(Seq(0)), false).unwrap();
    let seg = found(ch.open_read(SeqRequest::At(Seq(0))));
    w.write(Bytes::from_static(b"part")).unwrap();
    drop(w);
    assert!(contents(seg).await.is_err(), "a cut-off segment must not read as whole");
    // A retry of the seq starts afresh.
    publish(&ch, 0, b"whole");
    assert_eq!(contents(found(ch.open_read(SeqRequest::At(Seq(0))))).await.unwrap(), b"whole");
}

#[tokio::test]
async fn a_writer_that_goes_away_before_its_first_byte_leaves_the_slot_waiting() {
    let s = store(5);
    let ch = chan(&s);
    let seg = found(ch.open_read(SeqRequest::At(Seq(0))));
    drop(ch.open_write(SeqRequest::At(Seq(0)), false).unwrap());
    assert!(seg.is_bare());
    publish(&ch, 0, b"late");
    assert_eq!(contents(seg).await.unwrap(), b"late");
}

#[tokio::test]
async fn size_cap_aborts_the_segment() {
    let s = store(5);
    let ch = chan(&s);
    let mut w = ch.open_write(SeqRequest::At(Seq(0)), false).unwrap();
    w.write(Bytes::from(vec![0u8; 1000])).unwrap();
    assert_eq!(w.write(Bytes::from(vec![0u8; 100])), Err(StoreError::TooLarge(1024)));
    drop(w);
    assert!(contents(found(ch.open_read(SeqRequest::At(Seq(0))))).await.is_err());
}

#[tokio::test]
async fn reset_ends_older_segments_and_releases_their_readers() {
    let s = store(5);
    let ch = chan(&s);
    let stuck = found(ch.open_read(SeqRequest::At(Seq(0))));
    let mut rh = ReadHandle::new(stuck);
    let w = ch.open_write(SeqRequest::At(Seq(1)), true).unwrap();
    assert_eq!(rh.cursor.first().await, First::Empty);
    assert_eq!(w.seq(), Seq(1));
}

#[tokio::test]
async fn eviction_of_a_segment_in_progress_aborts_it() {
    let s = store(2);
    let ch = chan(&s);
    let mut w0 = ch.open_write(SeqRequest::At(Seq(0)), false).unwrap();
    w0.write(Bytes::from_static(b"slow")).unwrap();
    let seg0 = found(ch.open_read(SeqRequest::At(Seq(0))));
    publish(&ch, 2, b"fast"); // same slot as 0
    assert!(contents(seg0).await.is_err());
    assert_eq!(w0.write(Bytes::from_static(b"more")), Err(StoreError::NoSegment));
}

#[tokio::test]
async fn publishing_far_behind_the_window_is_refused() {
    let s = store(3);
    let ch = chan(&s);
    for i in 0..5 {
        publish(&ch, i, b"x");
    }
    assert!(matches!(ch.open_write(SeqRequest::At(Seq(0)), false), Err(StoreError::OutsideWindow { .. })));
    assert!(matches!(ch.open_write(SeqRequest::At(Seq(1)), false), Err(StoreError::OutsideWindow { .. })));
}

#[tokio::test]
async fn publishing_a_window_or_more_ahead_of_the_live_edge_is_refused() {
    let s = store(3);
    let ch = chan(&s);
    let far = |seq| StoreError::TooFarAhead { seq: Seq(seq), latest: Seq(0), max: Seq(2) };
    assert_eq!(ch.open_write(SeqRequest::At(Seq(3)), false).err(), Some(far(3)));
    assert_eq!(ch.open_write(SeqRequest::At(Seq(MAX_SEQ)), false).err(), Some(far(MAX_SEQ)));
    // Up to window - 1 ahead is fine (a preconnect, a reordered publish).
    let parked = ch.open_write(SeqRequest::At(Seq(2)), false).unwrap();
    // `-1` with every slot ahead taken by a publisher is refused rather than evicting one.
    let a = ch.open_write(SeqRequest::Next, false).unwrap();
    let b = ch.open_write(SeqRequest::Next, false).unwrap();
    assert_eq!((a.seq(), b.seq()), (Seq(0), Seq(1)));
    assert!(matches!(ch.open_write(SeqRequest::Next, false), Err(StoreError::TooFarAhead { .. })));
    drop((parked, a, b));
    publish(&ch, 0, b"ok");
    assert_eq!(ch.latest(), Seq(1));
}

#[tokio::test]
async fn delete_segment_and_close_channel() {
    let s = store(5);
    let ch = chan(&s);
    assert_eq!(ch.close_segment(Seq(0)), Err(StoreError::NoSegment));
    let seg = found(ch.open_read(SeqRequest::At(Seq(0))));
    ch.close_segment(Seq(0)).unwrap();
    assert_eq!(seg.len(), 0);
    let waiting = found(ch.open_read(SeqRequest::At(Seq(0))));
    let mut rh = ReadHandle::new(waiting);
    s.delete_channel("c").unwrap();
    assert_eq!(rh.cursor.first().await, First::Empty);
    assert!(ch.is_closed());
    assert!(matches!(ch.open_read(SeqRequest::Next), ReadOutcome::Closed { .. }));
    assert_eq!(ch.open_write(SeqRequest::Next, false).err(), Some(StoreError::Closed));
    assert_eq!(s.delete_channel("c"), Err(StoreError::NoChannel));
    assert!(!s.contains("c"));
}

#[test]
fn channel_names_and_limits() {
    let s = TrickleStore::new(TrickleConfig { max_channels: 2, ..TrickleConfig::default() });
    assert_eq!(s.create_channel("", "m"), Err(StoreError::BadName));
    assert_eq!(s.create_channel("a b", "m"), Err(StoreError::BadName));
    assert_eq!(s.create_channel(&"x".repeat(256), "m"), Err(StoreError::BadName));
    for bad in [".", "..", "a/b", "a\\b", "a:b", "é", "a%2e", "~", "a\0"] {
        assert_eq!(s.create_channel(bad, "m"), Err(StoreError::BadName), "{bad:?}");
    }
    assert!(ChannelName::new(&"x".repeat(255)).is_ok());
    assert_eq!(s.create_channel("m", &"m".repeat(256)), Err(StoreError::BadMime));
    assert_eq!(s.create_channel("m", "video/mp2t\n"), Err(StoreError::BadMime));
    assert!(ChannelName::new("...").is_ok() && ChannelName::new("s1-out_2.ts").is_ok());
    s.create_channel("a", "m").unwrap();
    s.create_channel("a", "m").unwrap();
    s.create_channel("b", "m").unwrap();
    assert_eq!(s.create_channel("c", "m"), Err(StoreError::TooManyChannels(2)));
    assert_eq!(s.channel_count(), 2);
}

#[tokio::test(start_paused = true)]
async fn idle_channels_are_swept_except_underscored_ones() {
    let s = TrickleStore::new(TrickleConfig { idle_timeout: Duration::from_secs(10), ..TrickleConfig::default() });
    s.create_channel("busy", "m").unwrap();
    s.create_channel("idle", "m").unwrap();
    s.create_channel("_meta", "m").unwrap();
    tokio::time::advance(Duration::from_secs(6)).await;
    let busy = s.channel("busy").unwrap();
    publish(&busy, 0, b"x");
    tokio::time::advance(Duration::from_secs(6)).await;
    assert_eq!(s.sweep_idle(), 1);
    assert!(s.contains("busy") && s.contains("_meta") && !s.contains("idle"));
}

/// Operations for the model test.
#[derive(Debug, Clone)]
enum Op {
    Publish { seq: u64, reset: bool, bytes: u8 },
    Abandon { seq: u64 },
    Read(i8, u64),
    DeleteSeg(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u64..40, any::<bool>(), 0u8..4).prop_map(|(seq, reset, bytes)| Op::Publish { seq, reset, bytes }),
        (0u64..40).prop_map(|seq| Op::Abandon { seq }),
        (-3i8..1, 0u64..45).prop_map(|(k, s)| Op::Read(k, s)),
        (0u64..40).prop_map(Op::DeleteSeg),
    ]
}

proptest! {
    /// Whatever the order of operations: no panic, the live edge never moves back, and a read
    /// only ever hands out the seq it was asked for.
    #[test]
    fn arbitrary_operations_keep_the_invariants(window in 2usize..7, ops in proptest::collection::vec(op(), 1..80)) {
        let s = store(window);
        let ch = chan(&s);
        let mut last = 0;
        for op in ops {
            match op {
                Op::Publish { seq, reset, bytes } => {
                    if let Ok(mut w) = ch.open_write(SeqRequest::At(Seq(seq)), reset) {
                        prop_assert_eq!(w.seq(), Seq(seq));
                        for _ in 0..bytes {
                            let _ = w.write(Bytes::from_static(b"ab"));
                        }
                        w.finish();
                    }
                }
                Op::Abandon { seq } => {
                    if let Ok(mut w) = ch.open_write(SeqRequest::At(Seq(seq)), false) {
                        let _ = w.write(Bytes::from_static(b"cut"));
                    }
                }
                Op::Read(k, seq) => {
                    let req = match k { -1 => SeqRequest::Next, -2 | -3 => SeqRequest::Current, _ => SeqRequest::At(Seq(seq)) };
                    if let (ReadOutcome::Segment { seg, .. }, SeqRequest::At(want)) = (ch.open_read(req), req) {
                        prop_assert_eq!(seg.seq(), want);
                    }
                }
                Op::DeleteSeg(seq) => { let _ = ch.close_segment(Seq(seq)); }
            }
            let now = ch.latest().0;
            prop_assert!(now >= last, "live edge moved back from {} to {}", last, now);
            last = now;
        }
    }

    /// A publisher whose segments arrive out of order (each displaced by at most one place, as
    /// the livepeer-gateway publisher does under load) and a reader following the sequence: the
    /// reader gets every segment, in order, with the right bytes.
    #[test]
    fn reordered_publishes_within_the_window_lose_nothing(swaps in proptest::collection::vec(any::<bool>(), 1..60)) {
        let s = store(5);
        let ch = chan(&s);
        let n = swaps.len() as u64 + 1;
        let mut order: Vec<u64> = (0..n).collect();
        let mut i = 0;
        while i + 1 < order.len() {
            if swaps[i] { order.swap(i, i + 1); i += 2; } else { i += 1; }
        }
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let mut next_read = 0u64;
        let mut waiting: Option<Arc<Segment>> = None;
        let mut published = 0usize;
        while next_read < n {
            // The reader asks for its next seq (pre-creating it if need be) and takes it once
            // it has its bytes.
            let seg = match waiting.take() {
                Some(seg) => seg,
                None => match ch.open_read(SeqRequest::At(Seq(next_read))) {
                    ReadOutcome::Segment { seg, .. } => seg,
                    other => {
                        let (seq, latest) = match other { ReadOutcome::NotFound { seq, latest } | ReadOutcome::Closed { seq, latest } => (seq, latest), ReadOutcome::Segment { .. } => unreachable!() };
                        return Err(TestCaseError::fail(format!("reader lost seq {seq} (latest {latest}) with order {order:?}")));
                    }
                },
            };
            if seg.len() > 0 {
                let got = rt.block_on(contents(seg)).map_err(|_| TestCaseError::fail("aborted"))?;
                prop_assert_eq!(got, next_read.to_be_bytes().to_vec());
                next_read += 1;
            } else {
                waiting = Some(seg);
                // The publisher runs at most two segments ahead of the reader.
                let p = order.get(published).copied().ok_or_else(|| TestCaseError::fail("publisher done, reader stuck"))?;
                prop_assert!(p < next_read + 4);
                let mut w = ch.open_write(SeqRequest::At(Seq(p)), false).map_err(|e| TestCaseError::fail(e.to_string()))?;
                w.write(Bytes::copy_from_slice(&p.to_be_bytes())).unwrap();
                w.finish();
                published += 1;
            }
        }
    }
}

#[tokio::test]
async fn an_idle_preconnected_writer_is_overtaken_and_waiting_readers_keep_their_segment() {
    let s = store(5);
    let ch = chan(&s);
    let reader = found(ch.open_read(SeqRequest::At(Seq(0))));
    let idle = ch.open_write(SeqRequest::At(Seq(0)), false).unwrap();
    let idle_end = idle.ended_waiter();
    let mut fresh = ch.open_write(SeqRequest::At(Seq(0)), true).unwrap();
    fresh.write(Bytes::from_static(b"new")).unwrap();
    fresh.finish();
    // The idle one sent nothing while the other completed the segment: its request ends.
    idle_end.await;
    drop(idle);
    assert_eq!(contents(reader).await.unwrap(), b"new");
}

#[tokio::test]
async fn an_idle_writer_that_wakes_up_while_another_streams_follows_it() {
    let s = store(5);
    let ch = chan(&s);
    let mut idle = ch.open_write(SeqRequest::At(Seq(0)), false).unwrap();
    let mut other = ch.open_write(SeqRequest::At(Seq(0)), false).unwrap();
    other.write(Bytes::from_static(b"first")).unwrap();
    idle.write(Bytes::from_static(b"second")).unwrap();
    idle.finish();
    other.finish();
    assert_eq!(contents(found(ch.open_read(SeqRequest::At(Seq(0))))).await.unwrap(), b"firstsecond");
}

mod memory {
    use super::*;
    use crate::memory::CHUNK_COST;

    /// A store whose budget holds `segments` one-chunk segments of 100 bytes.
    fn budget_store(segments: usize) -> TrickleStore {
        TrickleStore::new(TrickleConfig {
            window: 5,
            max_segment_bytes: 1024,
            max_buffered_bytes: segments * (100 + CHUNK_COST),
            ..TrickleConfig::default()
        })
    }

    fn publish100(s: &TrickleStore, ch: &str, seq: u64) -> Result<(), StoreError> {
        let _ = s.create_channel(ch, "m");
        let mut w = s.channel(ch)?.open_write(SeqRequest::At(Seq(seq)), false)?;
        w.write(Bytes::from(vec![seq as u8; 100]))?;
        w.finish();
        Ok(())
    }

    #[tokio::test]
    async fn over_budget_the_oldest_ended_segment_of_any_channel_is_dropped_and_reads_of_it_get_470() {
        let s = budget_store(3);
        publish100(&s, "a", 0).unwrap();
        let a = s.channel("a").unwrap();
        let held = found(a.open_read(SeqRequest::At(Seq(0))));
        publish100(&s, "a", 1).unwrap();
        publish100(&s, "b", 0).unwrap();
        assert_eq!((s.buffered_bytes(), s.segments_dropped_for_memory()), (3 * (100 + CHUNK_COST), 0));
        publish100(&s, "b", 1).unwrap();
        assert_eq!(s.segments_dropped_for_memory(), 1);
        assert_eq!(s.buffered_bytes(), 3 * (100 + CHUNK_COST));
        assert!(matches!(a.open_read(SeqRequest::At(Seq(0))), ReadOutcome::NotFound { seq: Seq(0), latest: Seq(2) }));
        assert!(contents(held).await.is_err(), "a reader of the dropped segment sees it cut off");
        assert_eq!(contents(found(a.open_read(SeqRequest::At(Seq(1))))).await.unwrap(), vec![1u8; 100]);
        // A dropped seq can be published again.
        publish100(&s, "a", 0).unwrap();
        assert_eq!(s.segments_dropped_for_memory(), 2);
    }

    #[tokio::test]
    async fn a_chunk_that_cannot_fit_is_refused_and_costs_no_other_stream_a_segment() {
        let s = budget_store(3);
        s.create_channel("a", "m").unwrap();
        s.create_channel("b", "m").unwrap();
        publish100(&s, "a", 0).unwrap();
        // Two segments being written fill the rest; neither may be dropped.
        let mut wa = s.channel("a").unwrap().open_write(SeqRequest::At(Seq(1)), false).unwrap();
        wa.write(Bytes::from(vec![1; 100])).unwrap();
        let mut wb = s.channel("b").unwrap().open_write(SeqRequest::At(Seq(0)), false).unwrap();
        wb.write(Bytes::from(vec![2; 100])).unwrap();
        // 300 bytes more would need all of the room: refused, and seq 0 of "a" is kept.
        let mut big = s.channel("b").unwrap().open_write(SeqRequest::At(Seq(1)), false).unwrap();
        let limit = s.config().max_buffered_bytes;
        assert_eq!(big.write(Bytes::from(vec![3; 300])), Err(StoreError::OverBudget(limit)));
        assert_eq!(s.segments_dropped_for_memory(), 0);
        assert_eq!(s.buffered_bytes(), 3 * (100 + CHUNK_COST));
        drop(big);
        // 100 bytes fit by dropping the one ended segment.
        let mut w = s.channel("b").unwrap().open_write(SeqRequest::At(Seq(1)), false).unwrap();
        w.write(Bytes::from(vec![4; 100])).unwrap();
        assert_eq!(s.segments_dropped_for_memory(), 1);
        // Channel close and the end of every handle give everything back.
        drop((w, wa, wb));
        s.delete_channel("a").unwrap();
        s.delete_channel("b").unwrap();
        assert_eq!(s.buffered_bytes(), 0);
    }

    #[tokio::test]
    async fn one_byte_chunks_are_charged_their_bookkeeping() {
        let s = budget_store(1);
        let ch = chan(&s);
        let mut w = ch.open_write(SeqRequest::At(Seq(0)), false).unwrap();
        let mut sent = 0;
        while w.write(Bytes::from_static(b"x")).is_ok() {
            sent += 1;
            assert!(sent <= 100, "one-byte chunks are not free");
        }
        assert_eq!(sent, (100 + CHUNK_COST) / (1 + CHUNK_COST));
    }

    /// Operations for the accounting model test, over three channels.
    #[derive(Debug, Clone)]
    enum MOp {
        /// Publish `chunks` (sizes) to `seq` of channel `ch`; finish it, or keep it open.
        Publish {
            ch: u8,
            seq: u64,
            chunks: Vec<u16>,
            finish: bool,
        },
        /// End a kept publisher: finish it or drop it (abort).
        EndWriter {
            i: usize,
            finish: bool,
        },
        /// A reader takes a segment and holds it (a slow reader pins it).
        Read {
            ch: u8,
            seq: u64,
        },
        /// A held reader lets go.
        Release(usize),
        DeleteSeg {
            ch: u8,
            seq: u64,
        },
        /// Close a channel (it is created again by the next publish to it).
        Close(u8),
    }

    fn mop() -> impl Strategy<Value = MOp> {
        prop_oneof![
            4 => (0u8..3, 0u64..12, proptest::collection::vec(0u16..400, 0..4), any::<bool>())
                .prop_map(|(ch, seq, chunks, finish)| MOp::Publish { ch, seq, chunks, finish }),
            2 => (0usize..4, any::<bool>()).prop_map(|(i, finish)| MOp::EndWriter { i, finish }),
            2 => (0u8..3, 0u64..12).prop_map(|(ch, seq)| MOp::Read { ch, seq }),
            1 => (0usize..4).prop_map(MOp::Release),
            1 => (0u8..3, 0u64..12).prop_map(|(ch, seq)| MOp::DeleteSeg { ch, seq }),
            1 => (0u8..3).prop_map(MOp::Close),
        ]
    }

    proptest! {
        /// After any sequence of publishes (finished, aborted, refused, several to one seq),
        /// reads that pin segments, segment deletes and channel closes: the budget's total is
        /// exactly what the live segments buffer, and never above the limit.
        #[test]
        fn the_accounted_total_is_what_live_segments_buffer(
            budget in 0usize..3000,
            window in 2usize..5,
            ops in proptest::collection::vec(mop(), 1..60),
        ) {
            let s = TrickleStore::new(TrickleConfig {
                window,
                max_segment_bytes: 700,
                max_buffered_bytes: budget,
                ..TrickleConfig::default()
            });
            let name = |ch: u8| format!("c{ch}");
            let mut writers: Vec<WriteHandle> = Vec::new();
            let mut readers: Vec<Arc<Segment>> = Vec::new();
            let mut dropped = 0;
            for op in ops {
                match op {
                    MOp::Publish { ch, seq, chunks, finish } => {
                        let _ = s.create_channel(&name(ch), "m");
                        if let Ok(mut w) = s.channel(&name(ch)).unwrap().open_write(SeqRequest::At(Seq(seq)), false) {
                            for n in chunks {
                                if w.write(Bytes::from(vec![0u8; n as usize])).is_err() {
                                    break;
                                }
                            }
                            if finish { w.finish() } else { writers.push(w) }
                        }
                    }
                    MOp::EndWriter { i, finish } => {
                        if i < writers.len() {
                            let w = writers.remove(i);
                            if finish { w.finish() } else { drop(w) }
                        }
                    }
                    MOp::Read { ch, seq } => {
                        if let Ok(c) = s.channel(&name(ch))
                            && let ReadOutcome::Segment { seg, .. } = c.open_read(SeqRequest::At(Seq(seq)))
                        {
                            readers.push(seg);
                        }
                    }
                    MOp::Release(i) => {
                        if i < readers.len() {
                            readers.remove(i);
                        }
                    }
                    MOp::DeleteSeg { ch, seq } => {
                        if let Ok(c) = s.channel(&name(ch)) {
                            let _ = c.close_segment(Seq(seq));
                        }
                    }
                    MOp::Close(ch) => { let _ = s.delete_channel(&name(ch)); }
                }
                let mut live: Vec<Arc<Segment>> = s.window_segments();
                live.extend(readers.iter().cloned());
                live.extend(writers.iter().map(|w| w.seg.clone()));
                live.sort_by_key(|seg| Arc::as_ptr(seg) as usize);
                live.dedup_by_key(|seg| Arc::as_ptr(seg) as usize);
                let buffered: usize = live.iter().map(|seg| seg.buffered_cost()).sum();
                prop_assert_eq!(s.buffered_bytes(), buffered);
                prop_assert!(buffered <= budget, "{} buffered over a budget of {}", buffered, budget);
                prop_assert!(s.segments_dropped_for_memory() >= dropped);
                dropped = s.segments_dropped_for_memory();
            }
            drop(writers);
            drop(readers);
            for ch in 0..3 {
                let _ = s.delete_channel(&name(ch));
            }
            prop_assert_eq!(s.buffered_bytes(), 0);
        }
    }
}
