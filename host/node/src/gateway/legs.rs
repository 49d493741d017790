//! Plumbing between a stream and the gateway's own media legs (RTMP, WHIP in; RTMP, WHEP out):
//! whole MPEG-TS input segments published to whichever orchestrator serves the stream now, and
//! the stream's output segments handed to every local consumer. Both follow the stream across
//! orchestrator swaps and end with it.

use std::sync::Arc;
use std::time::Duration;

use byoc_trickle::{HttpPublisher, HttpSubscriber, SeqRequest, SubscriberOptions};
use bytes::Bytes;
use tokio::sync::{broadcast, mpsc};

use super::stream::GwStream;

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

/// A media client refused (`leg` as above; `reason`: `bad_offer`, `busy`, `not_enabled`, `bad_key`).
pub(crate) fn refused(leg: &'static str, reason: &'static str) {
    metrics::counter!("byoc_gateway_media_refused_total", "leg" => leg, "reason" => reason).increment(1);
}

/// Output segments kept for slow consumers before they start skipping.
const OUTPUT_QUEUE: usize = 16;

/// Publishes every segment from `segments` as one trickle segment of the stream's input, on the
/// orchestrator serving it at that moment. Returns when `segments` ends or the stream does.
pub(crate) async fn feed_input(stream: Arc<GwStream>, mut segments: mpsc::Receiver<Bytes>) {
    let mut current: Option<(String, HttpPublisher)> = None;
    loop {
        let seg = tokio::select! {
            _ = stream.cancelled() => return,
            s = segments.recv() => s,
        };
        let Some(seg) = seg else { return };
        let Some(url) = stream.input_url() else {
            tracing::debug!(stream_id = %stream.id(), "video ingress is not enabled; segment dropped");
            continue;
        };
        if current.as_ref().is_none_or(|(u, _)| *u != url) {
            // A new orchestrator (or the first segment): continue its channel from its live edge.
            let Ok(mut p) = HttpPublisher::new(&url, "video/mp2t") else { continue };
            if let Err(e) = p.start_at_live_edge().await {
                tracing::debug!(stream_id = %stream.id(), error = %e, "input channel not reachable");
            }
            current = Some((url, p));
        }
        let Some((_, publisher)) = current.as_mut() else { continue };
        let mut w = publisher.next_segment();
        let sent = match w.write(seg) {
            Ok(()) => tokio::select! {
                _ = stream.cancelled() => return,
                r = w.finish() => r.map(|_| ()),
            },
            Err(e) => Err(e),
        };
        match sent {
            Ok(()) => metrics::counter!("byoc_gateway_segments_in_total").increment(1),
            Err(e) => {
                tracing::debug!(stream_id = %stream.id(), error = %e, "input segment not delivered");
                current = None;
            }
        }
    }
}

/// The stream's output segments, for a new local consumer (live from now on). The first call
/// starts the reader; it ends with the stream.
pub(crate) fn output(stream: &Arc<GwStream>) -> broadcast::Receiver<Bytes> {
    let (tx, started) = stream.output_sender(OUTPUT_QUEUE);
    if !started {
        tokio::spawn(read_output(stream.clone(), tx.clone()));
    }
    tx.subscribe()
}

async fn read_output(stream: Arc<GwStream>, tx: broadcast::Sender<Bytes>) {
    while !stream.is_cancelled() {
        let Some(url) = stream.output_url() else { return };
        let opts = SubscriberOptions { start: SeqRequest::Next, ..SubscriberOptions::default() };
        let Ok(mut sub) = HttpSubscriber::new(&url, opts) else { return };
        loop {
            let next = tokio::select! {
                _ = stream.cancelled() => return,
                s = sub.next_segment() => s,
            };
            let Ok(Some(seg)) = next else { break };
            let body = tokio::select! {
                _ = stream.cancelled() => return,
                b = seg.read_all() => b,
            };
            if let Ok(b) = body {
                metrics::counter!("byoc_gateway_segments_out_total").increment(1);
                let _ = tx.send(b);
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
