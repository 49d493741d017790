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

mod memory;
mod model;
