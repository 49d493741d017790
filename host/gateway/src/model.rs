//! The gateway's model of a stream: the stream as the client knows it (`GwStream`), its attachment
//! to the orchestrator serving it now (`Attachment`), and the SSE feeds of its events and data.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use byoc_payment::job::JobRequest;
use serde_json::Value;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::discovery::Candidate;
use byoc_protocol::JobParameters;

/// One stream as the gateway runs it.
pub(crate) struct GwStream {
    pub(crate) id: String,
    /// The control secret (`stream_secret`): every route, publishing and stopping included.
    pub(crate) secret: String,
    /// The viewer token (`viewer_token`): watching only (WHEP, RTMP play, data, events, status, egress).
    pub(crate) viewer: String,
    pub(crate) capability: String,
    /// The job's `parameters`, re-sent on every (re)start.
    pub(crate) parameters: String,
    pub(crate) timeout_seconds: i64,
    /// The orchestrator currently serving the stream.
    pub(crate) att: Mutex<Arc<Attachment>>,
    /// Orchestrators that failed this stream (not tried again).
    pub(crate) failed: Mutex<Vec<String>>,
    /// When the stream last moved to another orchestrator.
    pub(crate) swaps: Mutex<Vec<Instant>>,
    pub(crate) params: Mutex<Value>,
    pub(crate) last_status: Mutex<Value>,
    /// Why the stream is looking for another orchestrator, while it is (status `reconnecting`).
    pub(crate) reconnecting: Mutex<Option<&'static str>>,
    pub(crate) events: Feed,
    pub(crate) data: Feed,
    pub(crate) cancel: CancellationToken,
    pub(crate) started_ms: u64,
    /// Output segments for the gateway's own egress legs (see `media::output`).
    pub(crate) output: std::sync::OnceLock<broadcast::Sender<byoc_media::Piece>>,
    /// The output as WebRTC viewers get it (audio in Opus), started with the first of them.
    pub(crate) webrtc_output: std::sync::OnceLock<broadcast::Sender<byoc_media::Piece>>,
    /// The WHIP publisher's session, if one is connected (one at a time).
    pub(crate) whip_session: tokio::sync::Mutex<Option<byoc_media::SessionId>>,
}

/// What a stream's secret lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// The control secret: everything (update, stop, publish, watch).
    Control,
    /// The viewer token: watch only.
    View,
}

impl Access {
    /// What `given` is, compared in constant time with a stream's control `secret` and `viewer` token.
    pub(crate) fn of(given: &str, secret: &str, viewer: &str) -> Option<Access> {
        let control = byoc_protocol::same_secret(given.as_bytes(), secret.as_bytes());
        let view = byoc_protocol::same_secret(given.as_bytes(), viewer.as_bytes());
        if control {
            Some(Access::Control)
        } else if view {
            Some(Access::View)
        } else {
            None
        }
    }

    /// How the status answer names it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Access::Control => "control",
            Access::View => "view",
        }
    }
}

/// One message of a feed and its number in the feed (1, 2, …): the SSE event's `id`.
pub(crate) type Numbered = (u64, Arc<str>);

/// Messages for SSE readers: live ones, plus the last few for readers that connect late (a
/// client usually opens its event stream right after `start`, when the first events may
/// already have gone by). Each message has a number, sent as its SSE `id`: a reader that
/// reconnects with `Last-Event-ID` (as a browser's `EventSource` does) is given only what came after.
pub(crate) struct Feed {
    /// The last messages kept, and the number the next one gets.
    history: Mutex<(std::collections::VecDeque<Numbered>, u64)>,
    keep: usize,
    live: broadcast::Sender<Numbered>,
}

impl Feed {
    pub(crate) fn new(keep: usize) -> Self {
        Feed { history: Mutex::new((std::collections::VecDeque::new(), 1)), keep, live: broadcast::channel(64).0 }
    }

    pub(crate) fn send(&self, msg: Arc<str>) {
        let mut guard = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let (h, next) = &mut *guard;
        if h.len() == self.keep {
            h.pop_front();
        }
        let numbered = (*next, msg);
        *next += 1;
        h.push_back(numbered.clone());
        // Sent under the lock, so a reader subscribing concurrently sees it exactly once.
        let _ = self.live.send(numbered);
    }

    /// The kept messages numbered after `after` (all of them when `None`), and the live ones to come.
    pub(crate) fn subscribe(&self, after: Option<u64>) -> (Vec<Numbered>, broadcast::Receiver<Numbered>) {
        let guard = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let kept = guard.0.iter().filter(|(n, _)| after.is_none_or(|a| *n > a)).cloned().collect();
        (kept, self.live.subscribe())
    }
}

/// The stream as attached to one orchestrator; its watchers (see `watchers`) end with `cancel`.
pub(crate) struct Attachment {
    pub(crate) orchestrator: String,
    /// Who the orchestrator's tickets pay (priced capabilities only).
    pub(crate) recipient: Option<byoc_payment::Address>,
    /// The stream's own balance there, as last reported, when it pays from one (opt-in,
    /// `per_stream_balance`); `None`: it pays from the gateway's shared balance.
    pub(crate) own_balance: Mutex<Option<i64>>,
    pub(crate) urls: OrchUrls,
    pub(crate) cancel: CancellationToken,
    /// When the last event arrived (or the attachment started).
    pub(crate) last_event: Mutex<Instant>,
}

/// Why the watchers of an attachment gave it up (the first one to notice reports it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Loss {
    /// The orchestrator lost the stream (it closed a channel, died or went quiet): move the stream
    /// to another one.
    Lost(&'static str),
    /// The orchestrator stopped the stream for want of payment: end it (another orchestrator would
    /// not be paid either).
    Unpaid,
}

/// At most this many moves to another orchestrator within [`SWAP_WINDOW`]; beyond, the stream
/// ends (a stream that kills every orchestrator it lands on must not roam forever).
pub(crate) const MAX_SWAPS: usize = 3;
pub(crate) const SWAP_WINDOW: Duration = Duration::from_secs(60);

/// Pauses before each round of looking for another orchestrator for a lost stream: at once
/// among those that have not failed it, then among all of them again.
pub(crate) const REDISCOVERY_PAUSES: [Duration; 5] =
    [Duration::ZERO, Duration::from_secs(1), Duration::from_secs(2), Duration::from_secs(4), Duration::from_secs(8)];

impl Attachment {
    /// Keeps the stream's own balance only if the job asked for one.
    pub(crate) fn set_own_balance(&self, parameters: &str) {
        let own = serde_json::from_str::<JobParameters>(parameters).is_ok_and(|p| p.per_stream_balance);
        if !own {
            *self.own_balance.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }

    pub(crate) fn own_balance(&self) -> Option<i64> {
        *self.own_balance.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn new(cand: &Candidate, urls: OrchUrls, cancel: CancellationToken) -> Arc<Attachment> {
        Arc::new(Attachment {
            orchestrator: cand.url.clone(),
            recipient: cand.token.recipient(),
            own_balance: Mutex::new(urls.own_balance),
            urls,
            cancel,
            last_event: Mutex::new(Instant::now()),
        })
    }
}

impl GwStream {
    /// The stream `id` of `job`, just started on the orchestrator of `att` (whose token is a child of
    /// `cancel`), with a fresh secret.
    pub(crate) fn new(
        id: String,
        job: &JobRequest,
        params: Value,
        att: Arc<Attachment>,
        cancel: CancellationToken,
    ) -> Self {
        GwStream {
            id,
            secret: byoc_payment::random_hex(16),
            viewer: byoc_payment::random_hex(16),
            capability: job.capability.clone(),
            parameters: job.parameters.clone(),
            timeout_seconds: job.timeout_seconds,
            att: Mutex::new(att),
            failed: Mutex::new(Vec::new()),
            swaps: Mutex::new(Vec::new()),
            params: Mutex::new(params),
            last_status: Mutex::new(Value::Null),
            reconnecting: Mutex::new(None),
            events: Feed::new(32),
            data: Feed::new(5),
            cancel,
            started_ms: byoc_protocol::now_ms(),
            output: std::sync::OnceLock::new(),
            webrtc_output: std::sync::OnceLock::new(),
            whip_session: tokio::sync::Mutex::new(None),
        }
    }

    /// The attachment to the orchestrator serving the stream now.
    pub(crate) fn att(&self) -> Arc<Attachment> {
        self.att.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Resolves when the stream has ended.
    pub(crate) async fn cancelled(&self) {
        self.cancel.cancelled().await
    }

    /// The input channel on the orchestrator serving the stream now, if ingress is enabled.
    pub(crate) fn input_url(&self) -> Option<String> {
        self.att().urls.publish.clone()
    }

    /// The output channel on the orchestrator serving the stream now, if egress is enabled.
    pub(crate) fn output_url(&self) -> Option<String> {
        self.att().urls.subscribe.clone()
    }

    /// What `given` lets its holder do with this stream, if it is one of its secrets (constant time).
    pub(crate) fn access(&self, given: &str) -> Option<Access> {
        Access::of(given, &self.secret, &self.viewer)
    }

    /// The output fan-out, and whether it existed already.
    pub(crate) fn output_sender(&self, queue: usize) -> (broadcast::Sender<byoc_media::Piece>, bool) {
        fan_out(&self.output, queue)
    }

    /// The fan-out of the output as WebRTC viewers get it, and whether it existed already.
    pub(crate) fn webrtc_output_sender(&self, queue: usize) -> (broadcast::Sender<byoc_media::Piece>, bool) {
        fan_out(&self.webrtc_output, queue)
    }
}

/// The sender in `cell` (made with room for `queue` pieces on first use), and whether it existed.
pub(crate) fn fan_out(
    cell: &std::sync::OnceLock<broadcast::Sender<byoc_media::Piece>>,
    queue: usize,
) -> (broadcast::Sender<byoc_media::Piece>, bool) {
    let mut created = false;
    let tx = cell.get_or_init(|| {
        created = true;
        broadcast::channel(queue).0
    });
    (tx.clone(), !created)
}

#[derive(Debug, Clone)]
pub(crate) struct OrchUrls {
    /// `Livepeer-Balance` of the start answer (the stream's own balance, if it has one).
    pub(crate) own_balance: Option<i64>,
    pub(crate) publish: Option<String>,
    pub(crate) subscribe: Option<String>,
    pub(crate) control: String,
    pub(crate) events: String,
    pub(crate) data: Option<String>,
}
