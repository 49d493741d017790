//! The store's byte budget: what it admits, evicts and gives back.

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
