//! The trickle server and clients over real HTTP on loopback.

use crate::common;

use std::time::Duration;

use crate::common::{header, http, serve, serve_default, within};
use byoc_trickle::{
    ClientError, HttpPublisher, HttpSubscriber, LocalPublisher, LocalSubscriber, Seq, SeqRequest, SubscriberOptions,
    TrickleConfig,
};
use bytes::Bytes;

const TS: &str = "video/mp2t";

fn sub_opts(start: SeqRequest) -> SubscriberOptions {
    SubscriberOptions { start, max_retries: 3, retry_delay: Duration::from_millis(50) }
}

async fn publish_one(p: &mut HttpPublisher, data: &'static [u8]) -> Seq {
    let mut seg = p.next_segment();
    seg.write(Bytes::from_static(data)).unwrap();
    seg.finish().await.unwrap()
}

#[tokio::test]
async fn late_joiner_gets_the_segment_from_byte_zero_then_live_bytes() {
    let srv = serve_default().await;
    srv.store.create_channel("s", TS).unwrap();
    let mut p = HttpPublisher::new(srv.url("s"), TS).unwrap();
    let mut seg = p.next_segment();
    seg.write(Bytes::from_static(b"first-")).unwrap();
    seg.write(Bytes::from_static(b"second-")).unwrap();
    // Let the bytes reach the server before the subscriber joins.
    within("publisher bytes", async {
        while srv.store.next_seq("s").unwrap() == Seq(0) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let mut sub = HttpSubscriber::new(srv.url("s"), sub_opts(SeqRequest::At(Seq(0)))).unwrap();
    let mut r = within("segment", sub.next_segment()).await.unwrap().unwrap();
    assert_eq!(r.content_type(), Some(TS));
    let first = within("chunk", r.next_chunk()).await.unwrap().unwrap();
    assert_eq!(&first[..], b"first-second-", "the backlog arrives in one piece from byte 0");
    seg.write(Bytes::from_static(b"third")).unwrap();
    assert_eq!(&within("live chunk", r.next_chunk()).await.unwrap().unwrap()[..], b"third");
    assert_eq!(seg.finish().await.unwrap(), Seq(0));
    assert_eq!(within("end", r.next_chunk()).await.unwrap(), None);
}

#[tokio::test]
async fn a_subscriber_sees_the_first_chunk_before_the_publisher_finishes() {
    let srv = serve_default().await;
    srv.store.create_channel("s", TS).unwrap();
    let mut sub = HttpSubscriber::new(srv.url("s"), sub_opts(SeqRequest::Next)).unwrap();
    let reader = tokio::spawn(async move {
        let mut r = sub.next_segment().await.unwrap().unwrap();
        let first = r.next_chunk().await.unwrap().unwrap();
        (r, first)
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut p = HttpPublisher::new(srv.url("s"), TS).unwrap();
    let mut seg = p.next_segment();
    seg.write(Bytes::from_static(b"live")).unwrap();
    let (mut r, first) = within("first chunk while the segment is open", reader).await.unwrap();
    assert_eq!(&first[..], b"live");
    seg.write(Bytes::from_static(b"!")).unwrap();
    seg.finish().await.unwrap();
    assert_eq!(&r.next_chunk().await.unwrap().unwrap()[..], b"!");
    assert_eq!(r.next_chunk().await.unwrap(), None);
}

#[tokio::test]
async fn starts_at_minus_one_minus_two_and_explicit_seqs() {
    let srv = serve_default().await;
    srv.store.create_channel("s", TS).unwrap();
    let mut p = HttpPublisher::new(srv.url("s"), TS).unwrap();
    for d in [b"s0", b"s1", b"s2"] {
        publish_one(&mut p, d).await;
    }
    let mut cur = HttpSubscriber::new(srv.url("s"), sub_opts(SeqRequest::Current)).unwrap();
    let r = cur.next_segment().await.unwrap().unwrap();
    assert_eq!((r.seq(), &r.read_all().await.unwrap()[..]), (Seq(2), &b"s2"[..]));
    let mut at = HttpSubscriber::new(srv.url("s"), sub_opts(SeqRequest::At(Seq(1)))).unwrap();
    assert_eq!(&at.next_segment().await.unwrap().unwrap().read_all().await.unwrap()[..], b"s1");
    assert_eq!(&at.next_segment().await.unwrap().unwrap().read_all().await.unwrap()[..], b"s2");
    let mut next = HttpSubscriber::new(srv.url("s"), sub_opts(SeqRequest::Next)).unwrap();
    let waiting = tokio::spawn(async move { next.next_segment().await.unwrap().unwrap().read_all().await.unwrap() });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!waiting.is_finished(), "-1 waits for the next segment");
    publish_one(&mut p, b"s3").await;
    assert_eq!(&within("-1 segment", waiting).await.unwrap()[..], b"s3");
}

#[tokio::test]
async fn outside_the_window_is_470_with_latest_and_the_subscriber_jumps() {
    let srv = serve(TrickleConfig { window: 3, ..TrickleConfig::default() }).await;
    srv.store.create_channel("s", TS).unwrap();
    let mut p = HttpPublisher::new(srv.url("s"), TS).unwrap();
    for _ in 0..6 {
        publish_one(&mut p, b"x").await;
    }
    let resp = http().get(format!("{}/0", srv.url("s"))).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 470);
    assert_eq!(header(&resp, "Lp-Trickle-Latest").as_deref(), Some("6"));
    assert_eq!(header(&resp, "Lp-Trickle-Seq").as_deref(), Some("0"));
    let mut sub = HttpSubscriber::new(srv.url("s"), sub_opts(SeqRequest::At(Seq(0)))).unwrap();
    let reading = tokio::spawn(async move {
        let r = sub.next_segment().await.unwrap().unwrap();
        (r.seq(), sub.skipped())
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    publish_one(&mut p, b"y").await;
    assert_eq!(within("jump", reading).await.unwrap(), (Seq(6), 6));
}

#[tokio::test]
async fn out_of_order_publishes_lose_nothing_for_a_following_reader() {
    let srv = serve_default().await;
    srv.store.create_channel("s", TS).unwrap();
    let c = http();
    let mut sub = HttpSubscriber::new(srv.url("s"), sub_opts(SeqRequest::At(Seq(0)))).unwrap();
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        for _ in 0..4 {
            let r = sub.next_segment().await.unwrap().unwrap();
            got.push((r.seq().0, r.read_all().await.unwrap()));
        }
        got
    });
    // seq 1 overtakes seq 0, seq 3 overtakes seq 2.
    for seq in [1u64, 0, 3, 2] {
        let resp = c.post(format!("{}/{seq}", srv.url("s"))).body(format!("seg{seq}")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(header(&resp, "Lp-Trickle-Seq"), Some(seq.to_string()));
    }
    let got = within("four segments", reader).await.unwrap();
    let want: Vec<(u64, Bytes)> = (0..4).map(|i| (i, Bytes::from(format!("seg{i}")))).collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn every_200_get_carries_the_seq_header() {
    let srv = serve_default().await;
    srv.store.create_channel("s", TS).unwrap();
    let c = http();
    let url = srv.url("s");
    c.post(format!("{url}/0")).body("data").send().await.unwrap();
    c.post(format!("{url}/1")).body("").send().await.unwrap(); // an empty segment
    for (path, seq) in [("0", "0"), ("-2", "1"), ("1", "1")] {
        let resp = c.get(format!("{url}/{path}")).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        assert_eq!(header(&resp, "Lp-Trickle-Seq").as_deref(), Some(seq), "{path}");
    }
    let empty = c.get(format!("{url}/1")).send().await.unwrap();
    assert_eq!(header(&empty, "Lp-Trickle-Latest").as_deref(), Some("2"));
    assert!(header(&empty, "Lp-Trickle-Closed").is_none());
    assert_eq!(empty.bytes().await.unwrap().len(), 0);
    let next = c.get(format!("{url}/next")).send().await.unwrap();
    assert_eq!(header(&next, "Lp-Trickle-Latest").as_deref(), Some("2"));
    assert_eq!(next.text().await.unwrap(), "2");
}

#[tokio::test]
async fn bad_requests_get_clear_4xx_and_change_nothing() {
    let srv = serve(TrickleConfig { max_channels: 1, ..TrickleConfig::default() }).await;
    let c = http();
    let url = srv.url("s");
    assert_eq!(c.post(&url).send().await.unwrap().status(), 404, "no HTTP create without autocreate");
    assert_eq!(c.get(format!("{url}/0")).send().await.unwrap().status(), 404);
    assert_eq!(c.post(format!("{url}/0")).body("x").send().await.unwrap().status(), 404);
    assert_eq!(c.get(format!("{url}/next")).send().await.unwrap().status(), 404);
    assert_eq!(c.delete(&url).send().await.unwrap().status(), 404);
    srv.store.create_channel("s", TS).unwrap();
    for (method, path) in
        [("GET", "-3"), ("POST", "-3"), ("POST", "-2"), ("GET", "abc"), ("DELETE", "-1"), ("GET", "1e3")]
    {
        let req = c.request(method.parse().unwrap(), format!("{url}/{path}"));
        let resp = req.body("x").send().await.unwrap();
        assert_eq!(resp.status(), 400, "{method} {path}");
    }
    let huge = "9".repeat(40);
    assert_eq!(c.get(format!("{url}/{huge}")).send().await.unwrap().status(), 400);
    assert_eq!(c.delete(format!("{url}/7")).send().await.unwrap().status(), 400, "nonexistent segment");
    assert_eq!(srv.store.next_seq("s").unwrap(), Seq(0));
    // A second channel exceeds the limit.
    assert!(srv.store.create_channel("t", TS).is_err());
}

#[tokio::test]
async fn http_create_with_autocreate_uses_expect_content() {
    let srv = serve(TrickleConfig { autocreate: true, max_channels: 1, ..TrickleConfig::default() }).await;
    let c = http();
    let url = srv.url("auto");
    let resp = c.post(&url).header("Expect-Content", "application/json").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    c.post(format!("{url}/0")).body("{}").send().await.unwrap();
    let got = c.get(format!("{url}/0")).send().await.unwrap();
    assert_eq!(header(&got, "content-type").as_deref(), Some("application/json"));
    let refused = c.post(srv.url("other")).send().await.unwrap();
    assert_eq!(refused.status(), 503, "channel limit");
}

#[tokio::test]
async fn deleting_the_channel_ends_waiting_subscribers_and_publishers() {
    let srv = serve_default().await;
    srv.store.create_channel("s", TS).unwrap();
    let mut sub = HttpSubscriber::new(srv.url("s"), sub_opts(SeqRequest::Next)).unwrap();
    let waiting = tokio::spawn(async move { sub.next_segment().await.map(|s| s.is_none()) });
    let mut p = HttpPublisher::new(srv.url("s"), TS).unwrap();
    let mut seg = p.next_segment();
    seg.write(Bytes::from_static(b"partial")).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let resp = http().delete(srv.url("s")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(matches!(seg.finish().await, Err(ClientError::Closed)), "publisher sees the end of the stream");
    // The waiting subscriber got the cut segment (as an error) or the end; either way it stops.
    let _ = within("subscriber released", waiting).await.unwrap();
    let after = http().get(format!("{}/0", srv.url("s"))).send().await.unwrap();
    assert_eq!(after.status(), 404);
    let mut late = HttpSubscriber::new(srv.url("s"), sub_opts(SeqRequest::Next)).unwrap();
    assert!(late.next_segment().await.unwrap().is_none(), "404 is the end of the stream");
}

#[tokio::test]
async fn a_subscriber_parked_on_the_live_edge_sees_closed() {
    let srv = serve_default().await;
    srv.store.create_channel("s", TS).unwrap();
    let c = http();
    let url = srv.url("s");
    let parked = tokio::spawn({
        let c = c.clone();
        let url = url.clone();
        async move { c.get(format!("{url}/0")).send().await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    srv.store.delete_channel("s").unwrap();
    let resp = within("parked GET", parked).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "Lp-Trickle-Closed").as_deref(), Some("terminated"));
    assert_eq!(header(&resp, "Lp-Trickle-Seq").as_deref(), Some("0"));
}

#[tokio::test]
async fn delete_of_one_segment_releases_its_readers() {
    let srv = serve_default().await;
    srv.store.create_channel("s", TS).unwrap();
    let c = http();
    let url = srv.url("s");
    let parked = tokio::spawn({
        let (c, url) = (c.clone(), url.clone());
        async move { c.get(format!("{url}/0")).send().await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(c.delete(format!("{url}/0")).send().await.unwrap().status(), 200);
    let resp = within("released GET", parked).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "Lp-Trickle-Latest").as_deref(), Some("0"));
    assert!(header(&resp, "Lp-Trickle-Closed").is_none());
}

#[tokio::test]
async fn reset_unblocks_readers_of_older_segments() {
    let srv = serve_default().await;
    srv.store.create_channel("s", TS).unwrap();
    let c = http();
    let url = srv.url("s");
    let parked = tokio::spawn({
        let (c, url) = (c.clone(), url.clone());
        async move { c.get(format!("{url}/0")).send().await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let resp = c.post(format!("{url}/1")).header("Lp-Trickle-Reset", "1").body("fresh").send().await.unwrap();
    assert_eq!(header(&resp, "Lp-Trickle-Seq").as_deref(), Some("1"));
    let stuck = within("reset reader", parked).await.unwrap();
    assert_eq!(header(&stuck, "Lp-Trickle-Seq").as_deref(), Some("0"));
    assert_eq!(stuck.bytes().await.unwrap().len(), 0);
    assert_eq!(c.get(format!("{url}/1")).send().await.unwrap().text().await.unwrap(), "fresh");
}

#[tokio::test]
async fn oversized_segments_get_413_and_readers_never_see_them_as_whole() {
    let srv = serve(TrickleConfig { max_segment_bytes: 1000, ..TrickleConfig::default() }).await;
    srv.store.create_channel("s", TS).unwrap();
    let mut sub = HttpSubscriber::new(srv.url("s"), sub_opts(SeqRequest::At(Seq(0)))).unwrap();
    let reader = tokio::spawn(async move { sub.next_segment().await.unwrap().unwrap().read_all().await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut p = HttpPublisher::new(srv.url("s"), TS).unwrap();
    let mut seg = p.next_segment();
    seg.write(Bytes::from(vec![1u8; 600])).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    seg.write(Bytes::from(vec![2u8; 600])).unwrap();
    match seg.finish().await {
        Err(ClientError::Status { status: 413, .. }) => {}
        other => panic!("expected 413, got {other:?}"),
    }
    assert!(matches!(within("aborted read", reader).await.unwrap(), Err(ClientError::Aborted(Seq(0)))));
    // The next segment is unaffected.
    assert_eq!(publish_one(&mut p, b"ok").await, Seq(1));
}

#[tokio::test]
async fn a_publisher_that_vanishes_mid_segment_aborts_it_for_readers() {
    let srv = serve_default().await;
    srv.store.create_channel("s", TS).unwrap();
    let mut sub = HttpSubscriber::new(srv.url("s"), sub_opts(SeqRequest::At(Seq(0)))).unwrap();
    let reader = tokio::spawn(async move { sub.next_segment().await.unwrap().unwrap().read_all().await });
    let mut p = HttpPublisher::new(srv.url("s"), TS).unwrap();
    let mut seg = p.next_segment();
    seg.write(Bytes::from_static(b"half a segment")).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(seg);
    assert!(matches!(within("aborted read", reader).await.unwrap(), Err(ClientError::Aborted(Seq(0)))));
}

/// pytrickle's publisher, when two messages race, POSTs both to one seq at once. Both requests
/// succeed and readers get both bodies, whole and one after the other (go-livepeer appends them
/// byte by byte as they come, which can interleave them).
#[tokio::test]
async fn two_posts_of_one_seq_at_once_are_both_kept_whole_in_order() {
    let srv = serve_default().await;
    srv.store.create_channel("s", "application/json").unwrap();
    let reader = tokio::spawn({
        let c = http();
        let url = format!("{}/0", srv.url("s"));
        async move { c.get(url).send().await.unwrap().bytes().await.unwrap() }
    });
    let mut p = HttpPublisher::new(srv.url("s"), "application/json").unwrap();
    let mut seg = p.next_segment();
    seg.write(Bytes::from_static(br#"{"first":"#)).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let resp = http().post(format!("{}/0", srv.url("s"))).body(r#"{"second":2}"#).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "Lp-Trickle-Seq").as_deref(), Some("0"));
    seg.write(Bytes::from_static(b"1}")).unwrap();
    seg.finish().await.unwrap();
    let got = within("reader", reader).await.unwrap();
    assert_eq!(&got[..], br#"{"first":1}{"second":2}"#);
}

#[tokio::test]
async fn concurrent_publishers_on_one_channel_never_interleave() {
    let srv = serve_default().await;
    srv.store.create_channel("s", TS).unwrap();
    let url = srv.url("s");
    let mut tasks = Vec::new();
    for id in 0..4u8 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let c = http();
            let mut seqs = Vec::new();
            for round in 0..3u8 {
                let chunks: Vec<Result<Bytes, std::io::Error>> =
                    (0..8).map(|_| Ok(Bytes::from(vec![id * 16 + round; 512]))).collect();
                let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
                let resp = c.post(format!("{url}/-1")).body(body).send().await.unwrap();
                assert_eq!(resp.status(), 200);
                seqs.push((header(&resp, "Lp-Trickle-Seq").unwrap().parse::<u64>().unwrap(), id * 16 + round));
            }
            seqs
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(within("publishers", t).await.unwrap());
    }
    let c = http();
    let latest: u64 = srv.store.next_seq("s").unwrap().0;
    for (seq, tag) in all.iter().filter(|(s, _)| s + 5 > latest) {
        let body = c.get(format!("{url}/{seq}")).send().await.unwrap().bytes().await.unwrap();
        assert_eq!(body.len(), 8 * 512, "seq {seq}");
        assert!(body.iter().all(|b| b == tag), "seq {seq} mixes publishers");
    }
}

#[tokio::test]
async fn many_subscribers_on_one_segment_get_identical_bytes() {
    let srv = serve_default().await;
    srv.store.create_channel("s", TS).unwrap();
    let mut readers = Vec::new();
    for _ in 0..20 {
        let mut sub = HttpSubscriber::new(srv.url("s"), sub_opts(SeqRequest::At(Seq(0)))).unwrap();
        readers.push(tokio::spawn(async move { sub.next_segment().await.unwrap().unwrap().read_all().await.unwrap() }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let data: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
    let mut p = HttpPublisher::new(srv.url("s"), TS).unwrap();
    let mut seg = p.next_segment();
    for chunk in data.chunks(64 << 10) {
        seg.write(Bytes::copy_from_slice(chunk)).unwrap();
    }
    seg.finish().await.unwrap();
    for r in readers {
        assert_eq!(within("reader", r).await.unwrap(), data);
    }
}

#[tokio::test]
async fn idle_channels_are_swept() {
    let srv = serve(TrickleConfig {
        idle_timeout: Duration::from_millis(200),
        sweep_interval: Duration::from_millis(50),
        ..TrickleConfig::default()
    })
    .await;
    let _sweeper = srv.store.spawn_sweeper();
    srv.store.create_channel("s", TS).unwrap();
    srv.store.create_channel("_keep", TS).unwrap();
    within("sweep", async {
        while srv.store.contains("s") {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(srv.store.contains("_keep"));
    assert_eq!(http().get(format!("{}/0", srv.url("s"))).send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn the_publisher_retries_a_segment_whose_connection_failed_before_any_byte() {
    // Reserve a port, then free it: the preconnected POST is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/ai/trickle/s");
    let mut p = HttpPublisher::new(&url, TS).unwrap();
    let mut seg = p.next_segment();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The server comes up on that port; the retry happens once there is data to send.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let srv = common::serve_on(listener, TrickleConfig::default()).await;
    srv.store.create_channel("s", TS).unwrap();
    seg.write(Bytes::from_static(b"after retry")).unwrap();
    assert_eq!(within("retried publish", seg.finish()).await.unwrap(), Seq(0));
    let got = http().get(format!("{url}/0")).send().await.unwrap().text().await.unwrap();
    assert_eq!(got, "after retry");
}

#[tokio::test]
async fn publisher_can_continue_from_the_live_edge() {
    let srv = serve_default().await;
    srv.store.create_channel("s", TS).unwrap();
    let mut first = HttpPublisher::new(srv.url("s"), TS).unwrap();
    publish_one(&mut first, b"a").await;
    publish_one(&mut first, b"b").await;
    drop(first);
    let mut second = HttpPublisher::new(srv.url("s"), TS).unwrap();
    assert_eq!(second.start_at_live_edge().await.unwrap(), Seq(2));
    assert_eq!(publish_one(&mut second, b"c").await, Seq(2));
    second.close().await.unwrap();
    assert!(!srv.store.contains("s"));
}

#[tokio::test]
async fn local_and_http_clients_interoperate() {
    let srv = serve_default().await;
    srv.store.create_channel("s", TS).unwrap();
    // Local publisher -> HTTP subscriber.
    let mut sub = HttpSubscriber::new(srv.url("s"), sub_opts(SeqRequest::At(Seq(0)))).unwrap();
    let lp = LocalPublisher::new(&srv.store, "s").unwrap();
    let mut w = lp.next_segment().unwrap();
    w.write(Bytes::from_static(b"local")).unwrap();
    w.finish();
    assert_eq!(&sub.next_segment().await.unwrap().unwrap().read_all().await.unwrap()[..], b"local");
    // HTTP publisher -> local subscriber, starting at the current segment.
    let mut ls = LocalSubscriber::new(&srv.store, "s", SeqRequest::At(Seq(1)));
    let mut p = HttpPublisher::new(srv.url("s"), TS).unwrap();
    p.set_seq(Seq(1));
    publish_one(&mut p, b"remote").await;
    let r = ls.next_segment().await.unwrap().unwrap();
    assert_eq!((r.seq(), &r.read_all().await.unwrap()[..]), (Seq(1), &b"remote"[..]));
    assert_eq!(&sub.next_segment().await.unwrap().unwrap().read_all().await.unwrap()[..], b"remote");
    // Closing through the local publisher ends both kinds of subscriber.
    lp.close().unwrap();
    assert!(ls.next_segment().await.unwrap().is_none());
    assert!(sub.next_segment().await.unwrap().is_none());
    assert!(matches!(LocalPublisher::new(&srv.store, "s"), Err(ClientError::NotFound)));
}

#[tokio::test]
async fn local_subscriber_jumps_when_it_falls_behind() {
    let srv = serve(TrickleConfig { window: 3, ..TrickleConfig::default() }).await;
    srv.store.create_channel("s", TS).unwrap();
    let lp = LocalPublisher::new(&srv.store, "s").unwrap();
    let mut ls = LocalSubscriber::new(&srv.store, "s", SeqRequest::At(Seq(0)));
    for i in 0..6u8 {
        let mut w = lp.next_segment().unwrap();
        w.write(Bytes::from(vec![i])).unwrap();
        w.finish();
    }
    // Window 3 with the live edge at 6: seq 0 is gone, and the jump lands on the edge (seq 6),
    // which the reader waits for.
    let reader = tokio::spawn(async move {
        let r = ls.next_segment().await.unwrap().unwrap();
        (r.seq(), ls.skipped())
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut w = lp.next_segment().unwrap();
    w.write(Bytes::from_static(b"edge")).unwrap();
    w.finish();
    assert_eq!(within("jump", reader).await.unwrap(), (Seq(6), 6));
    let mut cur = LocalSubscriber::new(&srv.store, "s", SeqRequest::Current);
    let r = cur.next_segment().await.unwrap().unwrap();
    assert_eq!((r.seq(), &r.read_all().await.unwrap()[..]), (Seq(6), &b"edge"[..]));
    let mut old = LocalSubscriber::new(&srv.store, "s", SeqRequest::At(Seq(5)));
    let r = old.next_segment().await.unwrap().unwrap();
    assert_eq!((r.seq(), &r.read_all().await.unwrap()[..]), (Seq(5), &[5u8][..]));
}

/// A subscriber following a fast publisher on another thread sees every seq exactly once:
/// the live edge moves before a segment's first byte is visible, so "read N, ask N+1" never
/// finds N+1 ahead of the edge (which used to send a local subscriber back to N).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_following_subscriber_never_sees_a_duplicate_or_a_gap() {
    let srv = serve_default().await;
    srv.store.create_channel("race", TS).unwrap();
    let n = 20_000u64;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
    let mut sub = LocalSubscriber::new(&srv.store, "race", SeqRequest::At(Seq(0)));
    let reader = tokio::spawn(async move {
        let mut seqs = Vec::with_capacity(n as usize);
        while (seqs.len() as u64) < n {
            let Some(seg) = sub.next_segment().await.unwrap() else { break };
            seqs.push(seg.seq().0);
            let _ = tx.send(seg.seq().0);
        }
        seqs
    });
    let publisher = LocalPublisher::new(&srv.store, "race").unwrap();
    let mut read = 0u64;
    for i in 0..n {
        while read + 2 < i {
            rx.recv().await.unwrap();
            read += 1;
        }
        let mut w = publisher.segment(Seq(i)).unwrap();
        w.write(Bytes::from_static(b"x")).unwrap();
        w.finish();
    }
    let seqs = within("reader", reader).await.unwrap();
    assert_eq!(seqs, (0..n).collect::<Vec<_>>());
}

/// A confused server that answers 470 naming the very seq asked for as its latest: the subscriber
/// retries a bounded number of times, then fails, instead of asking again forever without a pause.
#[tokio::test]
async fn a_470_naming_the_asked_seq_as_latest_is_retried_then_an_error() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = asked.clone();
    let app = axum::Router::new().route(
        "/ch/{seq}",
        axum::routing::get(move |axum::extract::Path(seq): axum::extract::Path<String>| {
            counter.fetch_add(1, Ordering::SeqCst);
            async move { (http::StatusCode::from_u16(470).unwrap(), [("Lp-Trickle-Latest", seq)], "") }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/ch", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut sub = HttpSubscriber::new(url, sub_opts(SeqRequest::At(Seq(3)))).unwrap();
    let got = within("the subscriber gives up", sub.next_segment()).await;
    assert!(matches!(got, Err(ClientError::OutsideWindow { .. })), "{:?}", got.as_ref().err());
    assert_eq!(asked.load(Ordering::SeqCst), 4, "the first ask and max_retries (3) more");
}

/// A reader that asks for one seq at a time (no preconnection) and takes `pause` after each
/// segment; returns the seqs it read whole, stopping at the first one it did not get.
async fn slow_reader(url: String, segments: u64, pause: Duration) -> Vec<u64> {
    let client = http();
    let mut read = Vec::new();
    for seq in 0..segments {
        let resp = client.get(format!("{url}/{seq}")).send().await.unwrap();
        if resp.status() != 200 {
            break;
        }
        let body = resp.bytes().await.unwrap();
        assert_eq!(&body[..], seq.to_string().as_bytes(), "seq {seq}");
        read.push(seq);
        tokio::time::sleep(pause).await;
    }
    read
}

/// Publishes `segments` segments (each its seq as text), keeping within `max_ahead` of the slowest
/// reader when given, once the server sees a reader.
async fn publish_paced(srv: &common::Server, ch: &str, segments: u64, max_ahead: Option<u64>) {
    within("the reader to be seen", async {
        loop {
            let resp = http().get(format!("{}/next", srv.url(ch))).send().await.unwrap();
            if let Some(slowest) = header(&resp, byoc_trickle::headers::SLOWEST_READER) {
                assert_eq!(slowest, "0");
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let mut p = HttpPublisher::new(srv.url(ch), TS).unwrap();
    for seq in 0..segments {
        if let Some(n) = max_ahead {
            p.keep_within(n).await.unwrap();
        }
        let mut seg = p.next_segment();
        seg.write(Bytes::from(seq.to_string())).unwrap();
        assert_eq!(seg.finish().await.unwrap(), Seq(seq));
    }
}

/// `keep_within` (`byoc trickle publish --max-ahead N`): a publisher paced by the slowest reader
/// the server reports loses that reader nothing, though the reader is far slower and the window
/// holds three segments; the same publisher unpaced leaves the reader behind the window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_kept_within_reach_of_the_slowest_reader_loses_it_nothing() {
    let srv = serve(TrickleConfig { window: 3, ..Default::default() }).await;
    let pause = Duration::from_millis(20);
    for (ch, max_ahead) in [("paced", Some(2)), ("unpaced", None)] {
        srv.store.create_channel(ch, TS).unwrap();
        let reader = tokio::spawn(slow_reader(srv.url(ch), 25, pause));
        within("the publisher", publish_paced(&srv, ch, 25, max_ahead)).await;
        let read = within("the reader", reader).await.unwrap();
        match max_ahead {
            Some(_) => assert_eq!(read, (0..25).collect::<Vec<_>>(), "paced: every segment read"),
            None => assert!(read.len() < 25, "unpaced, the reader falls behind the window: {read:?}"),
        }
    }
    // Nobody reads: `keep_within` does not wait, and says so through the missing header.
    srv.store.create_channel("alone", TS).unwrap();
    let mut p = HttpPublisher::new(srv.url("alone"), TS).unwrap();
    for _ in 0..5 {
        within("a publish without readers", p.keep_within(1)).await.unwrap();
        publish_one(&mut p, b"x").await;
    }
    let resp = http().get(format!("{}/next?wait_reader=3", srv.url("alone"))).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, byoc_trickle::headers::SLOWEST_READER), None);
    let bad = http().get(format!("{}/next?wait_reader=soon", srv.url("alone"))).send().await.unwrap();
    assert_eq!(bad.status(), 400);
}
