//! Plumbing between a stream and the gateway's own media legs (RTMP, WHIP in; RTMP, WHEP out): input
//! segments published to whichever orchestrator serves the stream now, and the stream's output handed
//! to every local consumer. Both move in [`Piece`]s, as soon as they are muxed or arrive: a segment's
//! first frames travel on while its last ones are still being captured, so a leg adds no more than a
//! frame or two of delay, not a segment. Both follow the stream across orchestrator swaps and end with
//! it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use byoc_media::{OpusTranscode, Piece, PushConfig, RtmpPush, StartGate, audio_needs_opus};
use byoc_trickle::{HttpPublisher, HttpSegmentWriter, HttpSubscriber, SeqRequest, SubscriberOptions};
use tokio::sync::{broadcast, mpsc};

use crate::model::GwStream;

/// One live media session of the gateway (`leg`: `whip`, `whep`, `rtmp_in`, `rtmp_out`), counted in
/// `byoc_gateway_media_sessions{leg}` while it lives and in `byoc_gateway_media_sessions_total{leg}`.
pub(crate) struct MediaSession(&'static str);

impl MediaSession {
    pub(crate) fn open(leg: &'static str) -> MediaSession {
        metrics::gauge!("byoc_gateway_media_sessions", "leg" => leg).increment(1.0);
        metrics::counter!("byoc_gateway_media_sessions_total", "leg" => leg).increment(1);
        MediaSession(leg)
    }
}

impl Drop for MediaSession {
    fn drop(&mut self) {
        metrics::gauge!("byoc_gateway_media_sessions", "leg" => self.0).decrement(1.0);
    }
}

/// A media client refused (`leg` as above; `reason`: `bad_offer`, `busy`, `not_enabled`, `bad_key`,
/// `limit`).
pub(crate) fn refused(leg: &'static str, reason: &'static str) {
    metrics::counter!("byoc_gateway_media_refused_total", "leg" => leg, "reason" => reason).increment(1);
    // A client may retry as fast as it likes: one line a second.
    static LOG: byoc_net::LogThrottle = byoc_net::LogThrottle::new();
    if let Some(held_back) = LOG.allow() {
        tracing::info!(leg, reason, held_back, "media client refused");
    }
}

/// Output pieces kept for slow consumers before they skip to the next segment (a few seconds of
/// frames).
const OUTPUT_QUEUE: usize = 1024;

/// Input segments whose upload may still be finishing while the next one is written; beyond this (an
/// orchestrator that stopped reading), new segments are dropped whole until one completes, so that
/// memory stays bounded.
const UPLOADS_IN_FLIGHT: usize = 3;
/// An input segment not acknowledged this long after its last byte counts as lost (and the
/// connection to the orchestrator is made afresh).
const FINISH_WITHIN: Duration = Duration::from_secs(10);

/// Publishes the pieces from `pieces` as trickle segments of the stream's input (each segment's
/// upload starts with its first piece and ends when the next segment starts), on the orchestrator
/// serving it at that moment. Returns when `pieces` ends or the stream does.
pub(crate) async fn feed_input(stream: Arc<GwStream>, mut pieces: mpsc::Receiver<Piece>) {
    let mut current: Option<(String, HttpPublisher)> = None;
    let mut open: Option<HttpSegmentWriter> = None;
    let mut gate = StartGate::default();
    // Set when an upload that was finished in the background failed: reconnect at the next segment.
    let failed = Arc::new(AtomicBool::new(false));
    // Uploads to the current orchestrator still finishing (a new orchestrator starts from zero).
    let mut finishing = Arc::new(AtomicUsize::new(0));
    loop {
        let piece = tokio::select! {
            _ = stream.cancelled() => return,
            p = pieces.recv() => p,
        };
        let Some(piece) = piece else { break };
        if !gate.pass(&piece) {
            continue;
        }
        if piece.is_start() {
            if let Some(done) = open.take() {
                finish_upload(&stream, done, failed.clone(), finishing.clone());
            }
            if failed.swap(false, Ordering::Relaxed) {
                current = None;
            }
            if finishing.load(Ordering::Relaxed) >= UPLOADS_IN_FLIGHT {
                tracing::warn!(stream_id = %stream.id(), "the orchestrator is not taking input; segment dropped");
                metrics::counter!("byoc_gateway_errors_total", "kind" => "input_dropped").increment(1);
                gate.lost();
                continue;
            }
            let Some(url) = stream.input_url() else {
                tracing::debug!(stream_id = %stream.id(), "video ingress is not enabled; segment dropped");
                gate.lost();
                continue;
            };
            if current.as_ref().is_none_or(|(u, _)| *u != url) {
                // A new orchestrator (or the first segment): continue its channel from its live edge.
                let Ok(mut p) = HttpPublisher::new(&url, "video/mp2t") else {
                    gate.lost();
                    continue;
                };
                if let Err(e) = p.start_at_live_edge().await {
                    tracing::debug!(stream_id = %stream.id(), error = %e, "input channel not reachable");
                }
                current = Some((url, p));
                finishing = Arc::new(AtomicUsize::new(0));
            }
            open = current.as_mut().map(|(_, p)| p.next_segment());
        }
        let Some(upload) = open.as_mut() else { continue };
        if let Err(e) = upload.write(piece.into_bytes()) {
            tracing::debug!(stream_id = %stream.id(), error = %e, "input segment not delivered");
            open = None;
            current = None;
            gate.lost();
        }
    }
    if let Some(last) = open {
        tokio::select! {
            _ = stream.cancelled() => {}
            r = last.finish() => {
                if r.is_ok() {
                    metrics::counter!("byoc_gateway_segments_in_total").increment(1);
                }
            }
        }
    }
}

/// Ends a segment's upload without holding up the next one (`finishing` counts those under way); a
/// failure sets `failed`.
fn finish_upload(
    stream: &Arc<GwStream>,
    upload: HttpSegmentWriter,
    failed: Arc<AtomicBool>,
    finishing: Arc<AtomicUsize>,
) {
    let stream = stream.clone();
    finishing.fetch_add(1, Ordering::Relaxed);
    tokio::spawn(async move {
        let r = tokio::select! {
            _ = stream.cancelled() => None,
            r = tokio::time::timeout(FINISH_WITHIN, upload.finish()) => Some(r),
        };
        finishing.fetch_sub(1, Ordering::Relaxed);
        match r {
            None => {}
            Some(Ok(Ok(_))) => metrics::counter!("byoc_gateway_segments_in_total").increment(1),
            Some(Ok(Err(e))) => {
                tracing::debug!(stream_id = %stream.id(), error = %e, "input segment not delivered");
                failed.store(true, Ordering::Relaxed);
            }
            Some(Err(_)) => {
                tracing::debug!(stream_id = %stream.id(), "input segment not acknowledged in time");
                failed.store(true, Ordering::Relaxed);
            }
        }
    });
}

/// The stream's output, in pieces, for a new local consumer (live from now on: it should start at
/// the next [`Piece::Start`], e.g. with a [`StartGate`], and close the gate again when it lags). The
/// first call starts the reader; it ends with the stream.
pub(crate) fn output(stream: &Arc<GwStream>) -> broadcast::Receiver<Piece> {
    let (tx, started) = stream.output_sender(OUTPUT_QUEUE);
    if !started {
        tokio::spawn(read_output(stream.clone(), tx.clone()));
    }
    tx.subscribe()
}

/// The stream's output for a new WebRTC viewer (as [`output`]), with its audio in Opus: passed on as
/// it is when the output's audio is Opus (or there is none), else re-encoded by one ffmpeg per stream,
/// started with the first viewer (the video is copied, and segments start where they did).
pub(crate) fn webrtc_output(stream: &Arc<GwStream>) -> broadcast::Receiver<Piece> {
    let (tx, started) = stream.webrtc_output_sender(OUTPUT_QUEUE);
    if !started {
        tokio::spawn(feed_webrtc(stream.clone(), output(stream), tx.clone()));
    }
    tx.subscribe()
}

async fn feed_webrtc(stream: Arc<GwStream>, mut output: broadcast::Receiver<Piece>, tx: broadcast::Sender<Piece>) {
    // Decided at the first segment start that shows a PMT; kept for the stream's life.
    let mut decided = false;
    let mut transcode: Option<(OpusTranscode, mpsc::Sender<Piece>)> = None;
    let mut gate = StartGate::default();
    loop {
        let piece = tokio::select! {
            _ = stream.cancelled() => return,
            p = output.recv() => p,
        };
        let piece = match piece {
            Ok(p) => p,
            Err(broadcast::error::RecvError::Lagged(_)) => {
                gate.lost();
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if !gate.pass(&piece) {
            continue;
        }
        if !decided && piece.is_start() {
            let needs_opus = audio_needs_opus(piece.bytes());
            decided = needs_opus.is_some();
            if needs_opus == Some(true) {
                transcode = start_transcode(&stream, &tx);
            }
        }
        match &transcode {
            Some((_, input)) => {
                if input.try_send(piece).is_err() {
                    gate.lost(); // ffmpeg is behind: go on at the next segment.
                }
            }
            None => {
                let _ = tx.send(piece);
            }
        }
    }
}

fn start_transcode(
    stream: &Arc<GwStream>,
    tx: &broadcast::Sender<Piece>,
) -> Option<(OpusTranscode, mpsc::Sender<Piece>)> {
    let (input, input_rx) = mpsc::channel(256);
    let (out_tx, mut out_rx) = mpsc::channel(256);
    match OpusTranscode::spawn("ffmpeg".into(), input_rx, out_tx) {
        Ok(t) => {
            tracing::info!(stream_id = %stream.id(), "output audio is not Opus: re-encoded for WebRTC viewers");
            let tx = tx.clone();
            tokio::spawn(async move {
                while let Some(p) = out_rx.recv().await {
                    let _ = tx.send(p);
                }
            });
            Some((t, input))
        }
        Err(e) => {
            tracing::warn!(stream_id = %stream.id(), error = %e, "no Opus for WebRTC viewers; their audio is left out");
            None
        }
    }
}

/// Reads the output channel chunk by chunk and hands each chunk on at once.
async fn read_output(stream: Arc<GwStream>, tx: broadcast::Sender<Piece>) {
    while !stream.is_cancelled() {
        let Some(url) = stream.output_url() else { return };
        let opts = SubscriberOptions { start: SeqRequest::Next, ..SubscriberOptions::default() };
        let Ok(mut sub) = HttpSubscriber::new(&url, opts) else { return };
        loop {
            let next = tokio::select! {
                _ = stream.cancelled() => return,
                s = sub.next_segment() => s,
            };
            let Ok(Some(mut seg)) = next else { break };
            let mut first = true;
            loop {
                let chunk = tokio::select! {
                    _ = stream.cancelled() => return,
                    c = seg.next_chunk() => c,
                };
                // A segment cut short ends here; consumers go on at the next start.
                let Ok(Some(chunk)) = chunk else { break };
                if chunk.is_empty() {
                    continue;
                }
                let _ = tx.send(if first { Piece::Start(chunk) } else { Piece::More(chunk) });
                first = false;
            }
            if !first {
                metrics::counter!("byoc_gateway_segments_out_total").increment(1);
            }
            if stream.output_url().as_deref() != Some(url.as_str()) {
                break; // The stream moved: read the new orchestrator's output.
            }
        }
        // The channel ended or failed: wait for the stream to move (or end), then read again.
        tokio::select! {
            _ = stream.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
}

/// Pushes the stream's output to `destination` (an `rtmp://` URL) until the stream ends; ffmpeg
/// is restarted with backoff if the destination goes away.
pub(crate) fn push_output(stream: &Arc<GwStream>, destination: String) {
    let mut output = output(stream);
    let stream = stream.clone();
    let live = MediaSession::open("rtmp_out");
    tokio::spawn(async move {
        let _live = live;
        let push = RtmpPush::spawn(destination.clone(), PushConfig::default());
        let mut gate = StartGate::default();
        loop {
            let piece = tokio::select! {
                _ = stream.cancelled() => break,
                p = output.recv() => p,
            };
            match piece {
                Ok(piece) if gate.pass(&piece) => push.push(piece),
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::debug!(stream_id = %stream.id(), skipped = n, "RTMP output fell behind");
                    gate.lost();
                }
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
        let stats = push.close().await;
        tracing::info!(
            stream_id = %stream.id(),
            %destination,
            sent = stats.sent,
            dropped = stats.dropped,
            restarts = stats.restarts,
            "RTMP output ended"
        );
    });
}
