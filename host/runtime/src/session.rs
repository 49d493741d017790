//! A live stream session: one instance per stream, its calls, its failure and restart.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use wasmtime::component::ResourceAny;

use crate::code::PluginCode;
use crate::error::CallError;
use crate::instance::{Instance, guarded};
use crate::manifest::FailurePolicy;
use crate::types::{CapabilityError, Output};

/// The receiving end of a session's output, in production order. It ends (`recv` returns
/// `None`) once the session is closed or dropped and everything was read.
pub type Outputs = mpsc::Receiver<Output>;

/// Longest restart backoff, whatever the manifest's base and the restart count.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// How long a failing session waits to hand the reader the end of a cut segment.
const CUT_SEGMENT_GRACE: Duration = Duration::from_secs(1);

/// One stream on one plugin instance.
///
/// Calls are made one at a time (`&mut self`) in the order the WIT prescribes. A call that
/// returns [`CallError::Plugin`] leaves the session usable. Any other error is a failure:
/// the instance is discarded at once, an output segment it left open is ended (so readers
/// never wait on it; the segment is cut short), and further calls return
/// [`CallError::SessionFailed`] until [`Session::restart`] succeeds.
///
/// Failure policy: the session never restarts by itself. A node applies the manifest's
/// policy by calling [`Session::restart`] after a failure: for `restart-session` it waits the
/// backoff (`backoff_ms`, doubled per restart) and re-opens the session with the original
/// params on a fresh instance of the same code, up to `max_restarts`; for `fail-stream` (or
/// once the restarts are used up) it refuses, and the node ends the stream. Output sequence
/// numbers continue across restarts.
///
/// Dropping a session without [`Session::close`] discards its instance at once, without
/// calling the plugin's `close`.
pub struct Session {
    code: Arc<PluginCode>,
    kind: Kind,
    params: String,
    sink: mpsc::Sender<Output>,
    live: Option<Live>,
    state: State,
    restarts: u32,
    /// Output position carried over restarts.
    next_seq: u64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Open => "open",
            State::Failed(_) => "failed",
            State::Closed => "closed",
        };
        f.debug_struct("Session")
            .field("plugin", &self.code.info.name)
            .field("state", &state)
            .field("restarts", &self.restarts)
            .finish()
    }
}

struct Live {
    instance: Instance,
    handle: ResourceAny,
}

/// Which of the plugin's session resources a session is.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// `session`: MPEG-TS bytes in, whatever the plugin publishes out.
    Bytes,
    /// `frame-session`: decoded frames in and out, opened with what is known of the stream.
    Frames(byoc_frames::StreamInfo),
}

enum State {
    Open,
    Failed(CallError),
    Closed,
}

impl Session {
    /// Opens the plugin's `session`, or for a frame plugin its `frame-session` with `info`.
    pub(crate) async fn open(
        code: Arc<PluginCode>,
        params: &str,
        info: byoc_frames::StreamInfo,
    ) -> Result<(Self, Outputs), CallError> {
        let (sink, outputs) = mpsc::channel(code.output_buffer.max(1));
        let kind = if code.info.frames.is_some() { Kind::Frames(info) } else { Kind::Bytes };
        let mut session = Self {
            code,
            kind,
            params: params.to_owned(),
            sink,
            live: None,
            state: State::Closed,
            restarts: 0,
            next_seq: 0,
        };
        session.start().await?;
        Ok((session, outputs))
    }

    /// Instantiates and calls `session.open` (or `frame-session.open`).
    async fn start(&mut self) -> Result<(), CallError> {
        let mut instance = Instance::new(&self.code.template, Some(self.sink.clone()), self.next_seq).await?;
        let params = self.params.clone();
        let opened = match self.kind {
            Kind::Bytes => guarded!(&mut instance, |guest, store| guest.open(store, &params)),
            Kind::Frames(info) => {
                instance.store.data_mut().frame_session = true;
                guarded!(&mut instance, |guest, store| guest.frame_open(store, &params, info))
            }
        };
        match opened {
            Ok(Ok(handle)) => {
                self.live = Some(Live { instance, handle });
                self.state = State::Open;
                Ok(())
            }
            Ok(Err(e)) => Err(CallError::Plugin(e)),
            Err(e) => {
                self.discard(Some(instance), &e).await;
                Err(e)
            }
        }
    }

    /// The plugin's failure policy.
    pub fn failure_policy(&self) -> FailurePolicy {
        self.code.manifest.failure.policy
    }

    /// Restarts so far.
    pub fn restarts(&self) -> u32 {
        self.restarts
    }

    /// The failure that stopped the session, if it failed.
    pub fn failure(&self) -> Option<&CallError> {
        match &self.state {
            State::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// The capability's name.
    pub fn plugin_name(&self) -> &str {
        &self.code.info.name
    }

    /// The delay [`Session::restart`] would wait now, or `None` if it would refuse.
    pub fn restart_delay(&self) -> Option<Duration> {
        let failure = self.code.manifest.failure;
        let allowed = matches!(self.state, State::Failed(_))
            && failure.policy == FailurePolicy::RestartSession
            && self.restarts < failure.max_restarts;
        allowed.then(|| {
            let factor = 1u64.checked_shl(self.restarts).unwrap_or(u64::MAX);
            Duration::from_millis(failure.backoff_ms.saturating_mul(factor)).min(MAX_BACKOFF)
        })
    }

    /// Applies the `restart-session` policy after a failure: waits the backoff, then re-opens
    /// the session on a fresh instance. See the type's docs.
    pub async fn restart(&mut self) -> Result<(), CallError> {
        let Some(delay) = self.restart_delay() else {
            let reason = match (&self.state, self.failure_policy()) {
                (State::Open, _) => "the session has not failed".to_owned(),
                (State::Closed, _) => "the session is closed".to_owned(),
                (State::Failed(_), FailurePolicy::FailStream) => {
                    "the plugin's failure policy is fail-stream".to_owned()
                }
                (State::Failed(_), FailurePolicy::RestartSession) => {
                    format!("all {} restarts are used up", self.code.manifest.failure.max_restarts)
                }
            };
            return Err(CallError::RestartRefused(reason));
        };
        tokio::time::sleep(delay).await;
        self.restarts = self.restarts.saturating_add(1);
        tracing::info!(capability = %self.code.info.name, restart = self.restarts, "restarting session");
        self.start().await
    }

    /// Whether this is a frame plugin's session (the node feeds it frames, not segments).
    pub fn takes_frames(&self) -> bool {
        matches!(self.kind, Kind::Frames(_))
    }

    /// The interval at which the plugin asked for `on-tick` (`host.set-tick`), if it did.
    pub fn tick_interval(&self) -> Option<Duration> {
        self.live.as_ref().and_then(|l| l.instance.store.data().tick)
    }

    /// A new input segment begins.
    pub async fn on_segment_start(&mut self, seq: u64) -> Result<(), CallError> {
        let live = self.live_bytes()?;
        let handle = live.handle;
        let result = guarded!(&mut live.instance, |guest, store| guest.on_segment_start(store, handle, seq));
        self.finish(result).await
    }

    /// The next bytes of the current input segment.
    pub async fn on_chunk(&mut self, bytes: &[u8]) -> Result<(), CallError> {
        let live = self.live_bytes()?;
        let handle = live.handle;
        let result = guarded!(&mut live.instance, |guest, store| guest.on_chunk(store, handle, bytes));
        self.finish(result).await
    }

    /// The current input segment is complete.
    pub async fn on_segment_end(&mut self) -> Result<(), CallError> {
        let live = self.live_bytes()?;
        let handle = live.handle;
        let result = guarded!(&mut live.instance, |guest, store| guest.on_segment_end(store, handle));
        self.finish(result).await
    }

    /// One decoded video frame for a frame session; the plugin returns it (changed or not), a
    /// new frame, or `None` to drop it.
    pub async fn on_video_frame(
        &mut self,
        frame: byoc_frames::VideoFrame,
    ) -> Result<Option<byoc_frames::VideoFrame>, CallError> {
        let live = self.live_frames()?;
        let handle = live.handle;
        let resource = live.instance.store.data_mut().push_video(frame).map_err(|e| CallError::Trap(e.to_string()))?;
        let result = guarded!(&mut live.instance, |guest, store| guest.frame_video(store, handle, resource));
        let returned = self.finish(result).await?;
        let Some(resource) = returned else { return Ok(None) };
        let live = self.live()?;
        let frame = live.instance.store.data_mut().take_video(resource);
        frame.map(Some).map_err(|e| CallError::Trap(format!("the plugin returned a video frame it does not own: {e}")))
    }

    /// One decoded audio frame for a frame session, as [`Session::on_video_frame`].
    pub async fn on_audio_frame(
        &mut self,
        frame: byoc_frames::AudioFrame,
    ) -> Result<Option<byoc_frames::AudioFrame>, CallError> {
        let live = self.live_frames()?;
        let handle = live.handle;
        let resource = live.instance.store.data_mut().push_audio(frame).map_err(|e| CallError::Trap(e.to_string()))?;
        let result = guarded!(&mut live.instance, |guest, store| guest.frame_audio(store, handle, resource));
        let returned = self.finish(result).await?;
        let Some(resource) = returned else { return Ok(None) };
        let live = self.live()?;
        let frame = live.instance.store.data_mut().take_audio(resource);
        frame.map(Some).map_err(|e| CallError::Trap(format!("the plugin returned an audio frame it does not own: {e}")))
    }

    /// A timer tick the plugin asked for with `host.set-tick`.
    pub async fn on_tick(&mut self) -> Result<(), CallError> {
        let kind = self.kind;
        let live = self.live()?;
        let handle = live.handle;
        let result = match kind {
            Kind::Bytes => guarded!(&mut live.instance, |guest, store| guest.on_tick(store, handle)),
            Kind::Frames(_) => guarded!(&mut live.instance, |guest, store| guest.frame_tick(store, handle)),
        };
        self.finish(result).await
    }

    /// A whole input segment: start, one chunk, end.
    pub async fn on_segment(&mut self, seq: u64, bytes: &[u8]) -> Result<(), CallError> {
        self.on_segment_start(seq).await?;
        self.on_chunk(bytes).await?;
        self.on_segment_end().await
    }

    /// A control message (JSON text).
    pub async fn on_control(&mut self, message: &str) -> Result<(), CallError> {
        let kind = self.kind;
        let live = self.live()?;
        let handle = live.handle;
        let result = match kind {
            Kind::Bytes => guarded!(&mut live.instance, |guest, store| guest.on_control(store, handle, message)),
            Kind::Frames(_) => guarded!(&mut live.instance, |guest, store| guest.frame_control(store, handle, message)),
        };
        self.finish(result).await
    }

    /// Closes the session: the plugin's `close` (it may still publish), then the instance is
    /// dropped and the output receiver ends. A failed session closes without a call.
    pub async fn close(mut self) -> Result<(), CallError> {
        let kind = self.kind;
        let result = match self.live() {
            Ok(live) => {
                let handle = live.handle;
                let closed = match kind {
                    Kind::Bytes => guarded!(&mut live.instance, |guest, store| guest.close(store, handle)),
                    Kind::Frames(_) => guarded!(&mut live.instance, |guest, store| guest.frame_close(store, handle)),
                };
                self.finish(closed).await
            }
            Err(CallError::SessionFailed(_)) => Ok(()),
            Err(e) => Err(e),
        };
        if let Some(mut live) = self.live.take() {
            // The plugin's own destructor runs under the same guard as any call.
            let limit = live.instance.arm();
            let dropped = tokio::time::timeout(limit, live.handle.resource_drop_async(&mut live.instance.store)).await;
            if let Err(e) = live.instance.settle(dropped, limit) {
                tracing::warn!(capability = %self.code.info.name, error = %e, "session resource drop failed");
            }
            let (_, open) = live.instance.output_position();
            if open {
                let _ = self.sink.send_timeout(Output::SegmentEnd, CUT_SEGMENT_GRACE).await;
            }
        }
        self.state = State::Closed;
        result
    }

    /// The live instance of a byte-level session.
    fn live_bytes(&mut self) -> Result<&mut Live, CallError> {
        match self.kind {
            Kind::Bytes => self.live(),
            Kind::Frames(_) => Err(CallError::Plugin(CapabilityError::Unsupported(
                "a frame plugin's session takes frames, not segments".into(),
            ))),
        }
    }

    /// The live instance of a frame session.
    fn live_frames(&mut self) -> Result<&mut Live, CallError> {
        match self.kind {
            Kind::Frames(_) => self.live(),
            Kind::Bytes => Err(CallError::Plugin(CapabilityError::Unsupported(
                "a byte-level plugin's session takes segments, not frames".into(),
            ))),
        }
    }

    fn live(&mut self) -> Result<&mut Live, CallError> {
        match &self.state {
            State::Open => self.live.as_mut().ok_or(CallError::Closed),
            State::Failed(e) => Err(CallError::SessionFailed(Box::new(e.clone()))),
            State::Closed => Err(CallError::Closed),
        }
    }

    /// Turns a guarded call's result into the caller's, failing the session on a failure.
    async fn finish<T>(&mut self, result: Result<Result<T, CapabilityError>, CallError>) -> Result<T, CallError> {
        match result {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(CallError::Plugin(e)),
            Err(e) => {
                let instance = self.live.take().map(|l| l.instance);
                self.discard(instance, &e).await;
                Err(e)
            }
        }
    }

    /// Drops a failed instance, ends a segment it left open and records the failure.
    async fn discard(&mut self, instance: Option<Instance>, error: &CallError) {
        tracing::warn!(capability = %self.code.info.name, kind = error.kind(), error = %error, "session failed");
        if let Some(instance) = instance {
            let (next_seq, open) = instance.output_position();
            self.next_seq = next_seq;
            drop(instance);
            if open {
                let _ = self.sink.send_timeout(Output::SegmentEnd, CUT_SEGMENT_GRACE).await;
            }
        }
        self.state = State::Failed(error.clone());
    }
}
