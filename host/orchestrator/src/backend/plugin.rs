//! WebAssembly plugins hosted in this process (byoc-runtime).
//!
//! A stream's session is attached to its trickle channels in-process (local subscribers and
//! publishers, no HTTP hop). Its tasks, all ended by the stream's `ended` token:
//! - control: reads the control channel (keepalives dropped) into the session's command queue;
//! - driver: owns the session; reads the input channel segment by segment, chunk by chunk, and
//!   the command queue, and makes the calls in order; writes what the session puts out to the
//!   output, data and events channels as it comes (also while a call runs); applies the failure
//!   policy. One task, so a piece of media goes from the input channel through the plugin to the
//!   output channel without a hand-off between tasks.
//!
//! A frame plugin's stream has its own tasks (`frames`).
//!
//! A batch job is one `process` call on a fresh instance.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use byoc_protocol::headers;
use byoc_runtime::{CallError, LogLevel, Output, Outputs, Session};
use byoc_trickle::{LocalPublisher, LocalSegmentWriter, LocalSubscriber, Seq, SeqRequest};
use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderValue, StatusCode};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::call::{BackendError, BatchAnswer, BatchJob, StreamLife, StreamStart};
use super::frames::{FrameTasks, Frames};
use super::session::{Cmd, Input, Recovery, Ticker, next_segment, publish_text, recover};
use crate::error::ApiError;

/// Control messages and updates queued for the session; bounded so a slow plugin slows the control
/// reader (and an update waits). A byte-level session reads its input itself; a frame session's
/// decoder takes it.
const COMMAND_QUEUE: usize = 64;

/// A plugin of a runtime, by name.
#[derive(Clone)]
pub struct PluginRef {
    runtime: Arc<byoc_runtime::Runtime>,
    name: String,
}

impl std::fmt::Debug for PluginRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin").field("name", &self.name).finish_non_exhaustive()
    }
}

impl PluginRef {
    /// The plugin `name` of `runtime`.
    pub(crate) fn new(runtime: &Arc<byoc_runtime::Runtime>, name: &str) -> PluginRef {
        PluginRef { runtime: runtime.clone(), name: name.to_string() }
    }

    /// The plugin's current version, if it is still loaded.
    pub(crate) fn current(&self) -> Option<byoc_runtime::Plugin> {
        self.runtime.plugin(&self.name)
    }

    /// The plugin's current version, for a new job (503 when it is no longer loaded).
    pub(crate) fn loaded(&self) -> Result<byoc_runtime::Plugin, ApiError> {
        self.current().ok_or_else(|| ApiError::unavailable("the plugin is not loaded"))
    }
}

/// A stream served by a plugin session.
pub(crate) struct PluginStream {
    /// The session's command queue (updates arrive as control messages).
    commands: mpsc::Sender<Cmd>,
    /// Until the stream starts: the plugin and the receiving end of the queue.
    pending: Mutex<Option<Pending>>,
    /// A frame plugin's stream: `params.encoder` is the node's, not the plugin's.
    frame_plugin: bool,
}

struct Pending {
    plugin: byoc_runtime::Plugin,
    commands: mpsc::Receiver<Cmd>,
}

impl PluginStream {
    pub(crate) fn new(plugin: byoc_runtime::Plugin) -> PluginStream {
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let frame_plugin = plugin.describe().frames.is_some();
        PluginStream { commands: tx, pending: Mutex::new(Some(Pending { plugin, commands: rx })), frame_plugin }
    }

    /// Opens the session with the start body's `params` and attaches it to the channels.
    pub(crate) async fn start(&self, start: StreamStart<'_>) -> Result<(), BackendError> {
        let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(Pending { plugin, commands }) = pending else {
            return Err(BackendError::refused(ApiError::internal("the stream has already started")));
        };
        let mut params = start.request.get("params").filter(|p| !p.is_null()).cloned().unwrap_or_else(|| json!({}));
        // A frame plugin's encoder settings are read (and taken out of its params) before the
        // plugin opens: a request beyond the node's limits is refused having started nothing.
        let encode = match self.frame_plugin {
            true => Some(encoder_settings(&mut params, start.encode_limits).map_err(BackendError::refused)?),
            false => None,
        };
        let params = params.to_string();
        let (session, outputs) = plugin.open_session(&params).await.map_err(|e| {
            let status = match &e {
                CallError::Plugin(pe) => StatusCode::from_u16(pe.http_status()).unwrap_or(StatusCode::BAD_REQUEST),
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            BackendError {
                error: ApiError::new(status, format!("plugin refused the stream: {e}")),
                why: "the plugin refused the stream",
                worker_gone: false,
            }
        })?;
        // A frame plugin's pipeline starts with the stream, so a node that cannot decode or
        // encode refuses it now rather than failing it later.
        let frames = match (plugin.describe().frames, encode) {
            (Some(needs), Some(encode)) if session.takes_frames() => {
                Some(Frames::start(needs, encode).map_err(|e| BackendError {
                    error: ApiError::internal(format!("the frame pipeline did not start: {e}")),
                    why: "the frame pipeline did not start",
                    worker_gone: false,
                })?)
            }
            _ => None,
        };
        spawn(&start, session, outputs, self.commands.clone(), commands, frames, self.frame_plugin);
        Ok(())
    }

    /// An update reaches the plugin as a control message, like those on the control channel.
    /// A frame plugin's encoder settings are fixed for the stream's life: an update naming them
    /// is refused (400) and changes nothing.
    pub(crate) async fn update(&self, body: Bytes) -> Result<Response, ApiError> {
        if let Some(why) = encoder_refusal(self.frame_plugin, &body) {
            return Err(ApiError::bad_request(why));
        }
        let text = String::from_utf8_lossy(&body).into_owned();
        self.commands
            .send(Cmd::Control(text))
            .await
            .map_err(|_| ApiError::new(StatusCode::GONE, "the stream's plugin session has ended"))?;
        Ok((StatusCode::OK, Json(json!({"status": "success"}))).into_response())
    }
}

/// Why a message (an update, or one on the control channel) to a frame plugin's stream is refused:
/// it names the encoder settings, which only the start sets. `None`: it goes to the plugin.
fn encoder_refusal(frame_plugin: bool, message: &[u8]) -> Option<String> {
    use byoc_frames::encoder::ENCODER_PARAM;
    let names_it = frame_plugin
        && serde_json::from_slice::<serde_json::Value>(message).is_ok_and(|v| v.get(ENCODER_PARAM).is_some());
    names_it.then(|| {
        format!(
            "params.{ENCODER_PARAM} is set when a stream starts and cannot be updated; start a new stream to change it"
        )
    })
}

/// Takes a frame plugin's encoder settings out of its `params`: what the stream asked for under
/// `encoder`, within the node's `limits` (400 naming the limit otherwise), or the defaults.
fn encoder_settings(
    params: &mut serde_json::Value,
    limits: &byoc_frames::EncodeLimits,
) -> Result<byoc_frames::EncodeSettings, ApiError> {
    use byoc_frames::encoder::ENCODER_PARAM;
    let request = match params.as_object_mut().and_then(|p| p.remove(ENCODER_PARAM)) {
        None => byoc_frames::EncoderRequest::default(),
        Some(asked) => {
            serde_json::from_value(asked).map_err(|e| ApiError::bad_request(format!("params.{ENCODER_PARAM}: {e}")))?
        }
    };
    limits.settings(&request).map_err(|e| ApiError::bad_request(format!("params.{e}")))
}

/// Starts the session's tasks; a frame plugin's with its pipeline.
fn spawn(
    start: &StreamStart<'_>,
    session: Session,
    outputs: Outputs,
    tx: mpsc::Sender<Cmd>,
    rx: mpsc::Receiver<Cmd>,
    frames: Option<Frames>,
    frame_plugin: bool,
) {
    let StreamLife { ended: cancel, failed } = start.life.clone();
    let (store, channels, id) = (start.trickle.clone(), start.channels, start.id);
    let input = channels.input.as_ref().map(|input| LocalSubscriber::new(&store, input, SeqRequest::At(Seq(0))));
    let sub = LocalSubscriber::new(&store, &channels.control, SeqRequest::At(Seq(0)));
    let events = LocalPublisher::new(&store, &channels.events).ok();
    let control = Control { id: id.to_string(), frame_plugin, events: events.clone() };
    tokio::spawn(read_control(sub, tx.clone(), cancel.clone(), control));
    publish_text(events.as_ref(), &json!({"type": "stream_started", "plugin": session.plugin_name()}).to_string());
    // A heartbeat on the events channel (as pytrickle workers send) lets a gateway tell a live
    // stream from a dead one even when the plugin itself is quiet.
    if let Some(events) = events.clone() {
        let (cancel, every) = (cancel.clone(), start.heartbeat_every);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
                let beat = json!({"event": {"type": "heartbeat"}, "queue_event_type": "stream_heartbeat"});
                publish_text(Some(&events), &beat.to_string());
            }
        });
    }
    let out = channels.output.as_ref().and_then(|name| LocalPublisher::new(&store, name).ok());
    let data = channels.data.as_ref().and_then(|name| LocalPublisher::new(&store, name).ok());
    let plugin_out = match frames {
        Some(frames) => {
            let tasks = FrameTasks {
                id: id.to_string(),
                session,
                commands: rx,
                input,
                output: out,
                events: events.clone(),
                cancel: cancel.clone(),
                failed,
            };
            super::frames::spawn(frames, tasks);
            // The pipeline encodes the video; the plugin publishes data and events only.
            None
        }
        None => {
            let writer = OutputWriter::new(id, out, data, events.clone());
            let driver = Driver { id: id.to_string(), session, outputs, writer, cancel, failed, events };
            tokio::spawn(driver.run(rx, input));
            return;
        }
    };
    tokio::spawn(write_outputs(outputs, OutputWriter::new(id, plugin_out, data, events), cancel));
}

/// What the control reader needs to know of its stream.
struct Control {
    id: String,
    /// Messages naming the encoder settings are refused, as an update naming them is.
    frame_plugin: bool,
    /// Where a refusal is told.
    events: Option<LocalPublisher>,
}

/// Feeds the control channel's messages to the session (keepalives dropped; a frame plugin's
/// stream refuses those naming its encoder settings, with an event saying why).
async fn read_control(mut sub: LocalSubscriber, tx: mpsc::Sender<Cmd>, ended: CancellationToken, control: Control) {
    while let Some(seg) = next_segment(&mut sub, &ended).await {
        let Ok(body) = seg.read_all().await else { continue };
        let text = String::from_utf8_lossy(&body);
        // Usually one JSON message per segment, but racing publishers may have put several.
        let msgs = byoc_protocol::messages::json_values(&text).unwrap_or_else(|| vec![text.trim()]);
        for msg in msgs {
            let keepalive = serde_json::from_str::<serde_json::Value>(msg).is_ok_and(|v| v == json!({"keep": "alive"}));
            if msg.is_empty() || keepalive {
                continue;
            }
            if let Some(why) = encoder_refusal(control.frame_plugin, msg.as_bytes()) {
                tracing::warn!(stream_id = %control.id, reason = %why, "control message refused");
                let event = json!({"type": "control_refused", "reason": why});
                publish_text(control.events.as_ref(), &event.to_string());
                continue;
            }
            if tx.send(Cmd::Control(msg.to_string())).await.is_err() {
                return;
            }
        }
    }
}

/// A byte-level session's driver: owns the session and what it writes to.
struct Driver {
    id: String,
    session: Session,
    /// What the session puts out, written as it comes.
    outputs: Outputs,
    writer: OutputWriter,
    cancel: CancellationToken,
    failed: CancellationToken,
    /// Where a failed call is reported: the writer's too, held apart because the recovery that
    /// reports runs while the writer writes.
    events: Option<LocalPublisher>,
}

impl Driver {
    /// Makes the calls, in order: the input channel's segments and chunks, the commands, and
    /// the plugin's ticks; applies the plugin's failure policy.
    async fn run(mut self, mut commands: mpsc::Receiver<Cmd>, input: Option<LocalSubscriber>) {
        // The input's next item stays under way across the other branches (it is not dropped
        // when a command or a tick comes first).
        let input = futures_util::stream::unfold(input.map(Input::new), |input| async move {
            let mut input = input?;
            let next = input.next().await?;
            Some((next, Some(input)))
        });
        let mut input = std::pin::pin!(input);
        let mut input_open = true;
        // After a restart, chunks of the segment that was cut short are skipped up to the next start.
        let mut skipping = false;
        let mut ticker = Ticker::default();
        loop {
            ticker.follow(self.session.tick_interval());
            let cmd = tokio::select! {
                _ = self.cancel.cancelled() => break,
                _ = ticker.tick() => None,
                c = commands.recv() => match c {
                    Some(c) => Some(c),
                    None => break,
                },
                c = input.next(), if input_open => match c {
                    Some(c) => Some(c),
                    None => {
                        input_open = false;
                        continue;
                    }
                },
            };
            if matches!(cmd, Some(Cmd::Chunk(_) | Cmd::End)) && skipping {
                continue;
            }
            if matches!(cmd, Some(Cmd::Start(_))) {
                skipping = false;
            }
            let began = std::time::Instant::now();
            let session = &mut self.session;
            let call = async {
                match cmd {
                    None => ("tick", session.on_tick().await),
                    Some(Cmd::Start(seq)) => ("segment_start", session.on_segment_start(seq).await),
                    Some(Cmd::Chunk(c)) => ("chunk", session.on_chunk(&c).await),
                    Some(Cmd::End) => ("segment_end", session.on_segment_end().await),
                    Some(Cmd::Control(text)) => ("control", session.on_control(&text).await),
                }
            };
            let (call, result) = writing(&mut self.outputs, &mut self.writer, call).await;
            byoc_protocol::telemetry::plugin_call(call, began);
            let Err(e) = result else { continue };
            let recovery = recover(&self.id, &mut self.session, e, &self.cancel, self.events.as_ref());
            match writing(&mut self.outputs, &mut self.writer, recovery).await {
                Recovery::CarryOn => {}
                Recovery::Restarted => skipping = true,
                Recovery::Failed => {
                    // The stream's monitor ends it (one place ends streams).
                    self.failed.cancel();
                    return;
                }
            }
        }
        let Driver { session, mut outputs, mut writer, .. } = self;
        let _ = writing(&mut outputs, &mut writer, session.close()).await;
    }
}

/// Runs `call`, writing what the session puts out meanwhile (it waits when its output queue is
/// full) and, once the call is done, what it left in the queue. A session puts out only during
/// its calls, so between calls nothing waits on the queue. The queue is watched only while a
/// call waits: a session's output then wakes this task, but not during a call that runs through
/// (the task would wake itself, which the runtime takes as a yield and answers with a wake-up of
/// another worker: one more thread wake-up per piece of media, measured).
async fn writing<T>(outputs: &mut Outputs, writer: &mut OutputWriter, call: impl Future<Output = T>) -> T {
    let mut call = std::pin::pin!(call);
    loop {
        tokio::select! {
            biased;
            done = &mut call => {
                while let Ok(o) = outputs.try_recv() {
                    writer.write(o);
                }
                return done;
            }
            Some(o) = outputs.recv() => writer.write(o),
        }
    }
}

/// Publishes what a session puts out on the stream's output, data and events channels.
struct OutputWriter {
    id: String,
    out: Option<LocalPublisher>,
    data: Option<LocalPublisher>,
    events: Option<LocalPublisher>,
    /// The output segment being written.
    segment: Option<LocalSegmentWriter>,
}

impl OutputWriter {
    fn new(
        id: &str,
        out: Option<LocalPublisher>,
        data: Option<LocalPublisher>,
        events: Option<LocalPublisher>,
    ) -> Self {
        OutputWriter { id: id.to_string(), out, data, events, segment: None }
    }

    fn write(&mut self, output: Output) {
        match output {
            Output::SegmentStart { seq } => {
                self.segment = self.out.as_ref().and_then(|p| p.segment(Seq(seq)).ok());
            }
            Output::SegmentChunk(bytes) => {
                if let Some(w) = self.segment.as_mut()
                    && w.write(bytes).is_err()
                {
                    self.segment = None;
                }
            }
            Output::SegmentEnd => {
                if let Some(w) = self.segment.take() {
                    w.finish();
                }
            }
            Output::Data(line) => {
                let mut text = line;
                if !text.ends_with('\n') {
                    text.push('\n');
                }
                publish_text(self.data.as_ref(), &text);
            }
            Output::Event(json) => publish_text(self.events.as_ref(), &json),
            // A plugin's own levels, capped at warn: what a plugin reports is not the node's error.
            Output::Log { level, msg } => match level {
                LogLevel::Trace | LogLevel::Debug => tracing::debug!(stream_id = %self.id, "plugin: {msg}"),
                LogLevel::Info => tracing::info!(stream_id = %self.id, "plugin: {msg}"),
                LogLevel::Warn | LogLevel::Error => {
                    tracing::warn!(stream_id = %self.id, level = level.as_str(), "plugin: {msg}")
                }
            },
        }
    }
}

/// Publishes what a frame session puts out (its data and events; the pipeline encodes the video).
async fn write_outputs(mut outputs: Outputs, mut writer: OutputWriter, cancel: CancellationToken) {
    loop {
        let next = tokio::select! {
            _ = cancel.cancelled() => return,
            o = outputs.recv() => o,
        };
        let Some(output) = next else { return };
        writer.write(output);
    }
}

/// A batch job run by a plugin: one fresh instance, one `process` call. Its answer is complete,
/// a refusal included.
pub(crate) async fn batch(plugin: &byoc_runtime::Plugin, job: BatchJob<'_>) -> BatchAnswer {
    BatchAnswer::Complete(process(plugin, job).await.unwrap_or_else(IntoResponse::into_response))
}

async fn process(plugin: &byoc_runtime::Plugin, job: BatchJob<'_>) -> Result<Response, ApiError> {
    let body = axum::body::to_bytes(job.body, job.max_body_bytes)
        .await
        .map_err(|_| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"))?;
    let content_type = job.headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let request = byoc_runtime::Request::new(job.route.decoded(), content_type, body);
    let began = std::time::Instant::now();
    let result = plugin.process(&request).await;
    byoc_protocol::telemetry::plugin_call("process", began);
    match result {
        Ok(resp) => response(resp),
        Err(CallError::Plugin(e)) => {
            let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            Err(ApiError::new(status, e.to_string()))
        }
        Err(e) => {
            tracing::warn!(plugin = %plugin.name(), kind = e.kind(), error = %e, "plugin batch call failed");
            Err(ApiError::internal(format!("plugin failed ({}): {e}", e.kind())))
        }
    }
}

/// The plugin's answer as the client's.
fn response(resp: byoc_runtime::Response) -> Result<Response, ApiError> {
    let status = StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut out = Response::builder().status(status).header(headers::BALANCE, "0");
    for hd in &resp.headers {
        if let (Ok(n), Ok(v)) = (http::HeaderName::try_from(hd.name.as_str()), HeaderValue::from_str(&hd.value)) {
            out = out.header(n, v);
        }
    }
    let body = match resp.body {
        byoc_runtime::ResponseBody::Bytes(b) => {
            if !resp.content_type.is_empty() {
                out = out.header(http::header::CONTENT_TYPE, resp.content_type.as_str());
            }
            Body::from(b)
        }
        byoc_runtime::ResponseBody::Events(events) => {
            out = out.header(http::header::CONTENT_TYPE, "text/event-stream");
            let mut text = String::new();
            for ev in events {
                if let Some(e) = &ev.event {
                    text.push_str(&format!("event: {e}\n"));
                }
                if let Some(id) = &ev.id {
                    text.push_str(&format!("id: {id}\n"));
                }
                for line in ev.data.split('\n') {
                    text.push_str(&format!("data: {line}\n"));
                }
                text.push('\n');
            }
            Body::from(text)
        }
    };
    out.body(body).map_err(|e| ApiError::internal(format!("response: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use byoc_runtime::{ResponseBody, SseEvent};

    async fn text(resp: Response) -> String {
        String::from_utf8(axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap().to_vec()).unwrap()
    }

    fn answer(status: u16, content_type: &str, body: ResponseBody) -> byoc_runtime::Response {
        byoc_runtime::Response { status, content_type: content_type.into(), headers: Vec::new(), body }
    }

    #[tokio::test]
    async fn events_are_written_as_server_sent_events() {
        let events = vec![
            SseEvent { event: Some("tick".into()), id: Some("1".into()), data: "a\nb".into() },
            SseEvent { event: None, id: None, data: "c".into() },
        ];
        let resp = response(answer(200, "ignored", ResponseBody::Events(events))).unwrap();
        assert_eq!(resp.headers()[http::header::CONTENT_TYPE], "text/event-stream");
        assert_eq!(resp.headers()[headers::BALANCE], "0");
        assert_eq!(text(resp).await, "event: tick\nid: 1\ndata: a\ndata: b\n\ndata: c\n\n");
    }

    #[tokio::test]
    async fn a_plain_answer_keeps_its_status_and_content_type() {
        let resp = response(answer(201, "text/plain", ResponseBody::Bytes(Bytes::from_static(b"hi")))).unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
        assert_eq!(resp.headers()[http::header::CONTENT_TYPE], "text/plain");
        assert_eq!(text(resp).await, "hi");
        let bad = response(answer(1000, "", ResponseBody::Bytes(Bytes::new()))).unwrap();
        assert_eq!(bad.status(), StatusCode::INTERNAL_SERVER_ERROR, "an impossible status is a failure");
    }

    #[test]
    fn only_a_frame_plugins_messages_naming_the_encoder_are_refused() {
        // The gateway keeps the key across updates under the protocol's name: the same key.
        assert_eq!(byoc_protocol::params::ENCODER_PARAM, byoc_frames::encoder::ENCODER_PARAM);
        let naming = br#"{"effect": "invert", "encoder": {"bitrate_kbps": 300}}"#;
        assert!(encoder_refusal(true, naming).is_some_and(|why| why.contains("cannot be updated")));
        assert_eq!(encoder_refusal(false, naming), None, "a byte-level plugin's own param");
        assert_eq!(encoder_refusal(true, br#"{"effect": "invert"}"#), None);
        assert_eq!(encoder_refusal(true, b"not json, encoder"), None);
    }
}
