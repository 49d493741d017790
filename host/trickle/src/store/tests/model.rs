//! The store against a simple model, under arbitrary operation sequences.

use super::*;

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
