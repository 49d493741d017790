//! `cargo xtask bench webrtc`: what the WebRTC server's one driver task costs as sessions add up.
//!
//! The server runs alone on a thread of its own (a current-thread runtime), so its CPU time is that
//! thread's (`/proc/thread-self/schedstat`, in ns). The peers are str0m WebRTC clients in this process
//! on other threads, each with its own loopback UDP socket: they offer (WHIP), run ICE and DTLS, and
//! one of them publishes H.264 at 30 frames a second, 4 RTP packets a frame.
//!
//! For N = 1 and N = 200 connected sessions: the server's CPU time per datagram while the one
//! publisher sends (the other N - 1 sessions are connected and idle, their peers driven as a browser
//! would: consent checks, RTCP), and its CPU use with all N idle (reported). Goal: a datagram costs as
//! much with 200 sessions as with 1 (ratio ≤ 1.5; a driver that visits every session per datagram or
//! per wake-up grows with N).
//!
//! Bounded: fixed seconds per phase, a deadline on every connection, at most 200 peers.

#[path = "webrtc/peer.rs"]
mod peer;

use std::time::{Duration, Instant};

use byoc_media::webrtc::{SessionOwner, WebRtcConfig, WebRtcServer};
use peer::Peer;
use str0m::media::Direction;
use tokio::sync::{mpsc, oneshot};

/// Seconds the publisher sends, per measurement.
const ACTIVE: Duration = Duration::from_secs(6);
/// Seconds the sessions sit idle, per measurement.
const IDLE: Duration = Duration::from_secs(4);
const GOAL_RATIO: f64 = 1.5;

/// Asks sent to the server's thread.
enum Ask {
    /// Its CPU time so far.
    Cpu(oneshot::Sender<Duration>),
    /// A WHIP offer from a peer; the answer comes back.
    Offer(String, String, oneshot::Sender<Result<String, String>>),
    /// Ends the server.
    Stop,
}

/// CPU time of the calling thread (ns on CPU, from the scheduler).
fn thread_cpu() -> Duration {
    let ns = std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0);
    Duration::from_nanos(ns)
}

/// The server on a thread of its own; asks go in through `asks`.
fn start_server() -> mpsc::Sender<Ask> {
    let (tx, mut rx) = mpsc::channel::<Ask>(256);
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async move {
            let config = WebRtcConfig {
                max_sessions: 1000,
                max_sessions_per_ip: 1000,
                max_pending_per_ip: 1000,
                ..WebRtcConfig::default()
            };
            let server = WebRtcServer::bind(config).await.expect("bind");
            // The segments each session publishes are drained (and dropped) on this thread too.
            while let Some(ask) = rx.recv().await {
                match ask {
                    Ask::Cpu(reply) => {
                        let _ = reply.send(thread_cpu());
                    }
                    Ask::Offer(stream, sdp, reply) => {
                        let (seg_tx, mut seg_rx) = mpsc::channel(64);
                        tokio::spawn(async move { while seg_rx.recv().await.is_some() {} });
                        let owner = SessionOwner { stream, client: None };
                        let answer = server.whip_offer(&sdp, seg_tx, owner).await.map(|(_, a)| a);
                        let _ = reply.send(answer.map_err(|e| e.to_string()));
                    }
                    Ask::Stop => break,
                }
            }
            server.shutdown().await;
        });
    });
    tx
}

async fn server_cpu(asks: &mpsc::Sender<Ask>) -> Duration {
    let (tx, rx) = oneshot::channel();
    let _ = asks.send(Ask::Cpu(tx)).await;
    rx.await.unwrap_or_default()
}

/// `n` peers, each offered, answered and connected (within 20 s).
async fn connect(asks: &mpsc::Sender<Ask>, n: usize, first: usize) -> Vec<Peer> {
    let mut peers = Vec::with_capacity(n);
    for i in 0..n {
        let (mut p, offer) = Peer::offer(Direction::SendOnly).await.expect("peer");
        let (tx, rx) = oneshot::channel();
        asks.send(Ask::Offer(format!("s{}", first + i), offer, tx)).await.expect("server");
        let answer = rx.await.expect("server").expect("answered");
        p.answer(&answer).expect("answer");
        peers.push(p);
    }
    let mut set = tokio::task::JoinSet::new();
    for mut p in peers {
        set.spawn(async move {
            let ok = p.connect(Duration::from_secs(20)).await;
            (p, ok)
        });
    }
    let mut out = Vec::with_capacity(n);
    while let Some(done) = set.join_next().await {
        let (p, ok) = done.expect("peer task");
        assert!(ok, "a peer did not connect in 20 s");
        out.push(p);
    }
    out
}

/// Drives every peer until `until`; peer 0 publishes when `publish`. Returns the peers and the
/// datagrams they sent meanwhile.
async fn run(peers: Vec<Peer>, until: Instant, publish: bool) -> (Vec<Peer>, u64) {
    let before: u64 = peers.iter().map(|p| p.sent).sum();
    let mut set = tokio::task::JoinSet::new();
    for (i, mut p) in peers.into_iter().enumerate() {
        set.spawn(async move {
            if i == 0 && publish {
                let mut pts = 0u64;
                while Instant::now() < until {
                    // A frame every 33 ms: a keyframe a second, 4 packets of ~1.1 KB each.
                    p.write_frame(pts, pts.is_multiple_of(90_000), 4400);
                    pts += 3000;
                    p.run_until((Instant::now() + Duration::from_millis(33)).min(until)).await;
                }
            } else {
                p.run_until(until).await;
            }
            p
        });
    }
    let mut out = Vec::new();
    while let Some(p) = set.join_next().await {
        out.push(p.expect("peer task"));
    }
    let after: u64 = out.iter().map(|p| p.sent).sum();
    (out, after - before)
}

struct Figures {
    per_datagram: Duration,
    datagrams: u64,
    idle_percent: f64,
}

async fn measure(asks: &mpsc::Sender<Ask>, peers: Vec<Peer>) -> (Vec<Peer>, Figures) {
    let cpu0 = server_cpu(asks).await;
    let (peers, datagrams) = run(peers, Instant::now() + ACTIVE, true).await;
    let cpu1 = server_cpu(asks).await;
    let t = Instant::now();
    let (peers, _) = run(peers, t + IDLE, false).await;
    let cpu2 = server_cpu(asks).await;
    let per_datagram = (cpu1 - cpu0) / u32::try_from(datagrams.max(1)).unwrap_or(u32::MAX);
    let idle_percent = 100.0 * (cpu2 - cpu1).as_secs_f64() / t.elapsed().as_secs_f64();
    (peers, Figures { per_datagram, datagrams, idle_percent })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let asks = start_server();
    println!("WebRTC driver: one publisher (30 fps, 4 packets a frame) among N connected WHIP sessions");
    let peers = connect(&asks, 1, 0).await;
    let (peers, one) = measure(&asks, peers).await;
    let mut peers = peers;
    peers.extend(connect(&asks, 199, 1).await);
    // Peer 0 must be the publisher again: it is whichever came back first; any one will do.
    let (_peers, many) = measure(&asks, peers).await;
    let _ = asks.send(Ask::Stop).await;
    let ratio = many.per_datagram.as_secs_f64() / one.per_datagram.as_secs_f64().max(1e-12);
    println!(
        "  N=1:   {:>6.2} us per datagram ({} datagrams), idle {:.2}% of a core",
        one.per_datagram.as_secs_f64() * 1e6,
        one.datagrams,
        one.idle_percent
    );
    println!(
        "  N=200: {:>6.2} us per datagram ({} datagrams), idle {:.2}% of a core",
        many.per_datagram.as_secs_f64() * 1e6,
        many.datagrams,
        many.idle_percent
    );
    let met = |ok: bool| if ok { "met" } else { "NOT MET" };
    println!(
        "  per-datagram cost, 200 sessions / 1 session: {ratio:.2}x (goal <= {GOAL_RATIO}x: {})",
        met(ratio <= GOAL_RATIO)
    );
    println!(
        "  200 idle sessions: {:.2}% of a core, {:.1} us of CPU per session-second (reported, no goal)",
        many.idle_percent,
        many.idle_percent * 1e4 / 200.0
    );
}
