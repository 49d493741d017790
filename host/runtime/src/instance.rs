//! One plugin instance: a store with its limits, created from the plugin's `InstancePre`,
//! and the guard around every call into it (deadline, outer timeout, error classification).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, mpsc};
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Engine, Store, Trap, UpdateDeadline};
use wasmtime_wasi::{FsPerms, WasiCtx};

use crate::engine::{Ticker, Ticking};
use crate::error::CallError;
use crate::guest::{Guest, Pre};
use crate::state::{Fault, Grant, HostState};
use crate::types::Output;

/// The linker every plugin is instantiated against: WASI 0.2 (deny-all contexts), the
/// `wasi:http` outgoing handler (allowlisted hooks) and the `byoc:capability` imports of both
/// versions (0.2.0, and 0.1.0 for plugins built before frames).
pub(crate) fn linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    use crate::bindings::{v1, v2};
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    v2::byoc::capability::host::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    v2::byoc::capability::output::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    v2::byoc::capability::frames::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    crate::frames::add_shared_buffers_to_linker(&mut linker)?;
    v1::byoc::capability::host::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    v1::byoc::capability::output::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    Ok(linker)
}

/// Calls into the guest with the deadline armed and the outcome classified:
/// `guarded!(instance, |guest, store| guest.describe(store))`.
macro_rules! guarded {
    ($inst:expr, |$guest:ident, $store:ident| $call:expr) => {{
        let inst: &mut $crate::instance::Instance = $inst;
        let limit = inst.arm();
        let outcome = {
            let $guest = &inst.guest;
            let $store = &mut inst.store;
            tokio::time::timeout(limit, $call).await
        };
        inst.settle(outcome, limit)
    }};
}
pub(crate) use guarded;

/// How instances of one plugin version are made.
pub(crate) struct Template {
    pub pre: Pre,
    pub grant: Arc<Grant>,
    /// Granted read-only preopens: (host path, guest path).
    pub preopens: Vec<(std::path::PathBuf, String)>,
    pub call_timeout: Duration,
    pub semaphore: Arc<tokio::sync::Semaphore>,
    /// The engine's epoch ticker, which every call enters.
    pub ticker: Arc<Ticker>,
}

/// A deny-all WASI context: no env, args, stdin, network or clocks beyond the defaults;
/// stdout/stderr discarded; only the granted directories, read-only.
fn wasi_ctx(preopens: &[(std::path::PathBuf, String)]) -> Result<WasiCtx, CallError> {
    let mut builder = WasiCtx::builder();
    builder.allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false);
    for (host, guest) in preopens {
        builder
            .preopened_dir(host, guest, FsPerms::ReadOnly)
            .map_err(|e| CallError::Instantiate(format!("preopening {}: {e}", host.display())))?;
    }
    Ok(builder.build())
}

/// A live instance.
pub(crate) struct Instance {
    pub store: Store<HostState>,
    pub guest: Guest,
    call_timeout: Duration,
    ticker: Arc<Ticker>,
    /// The call under way, from [`arm`](Self::arm) to [`settle`](Self::settle): the epoch moves
    /// meanwhile.
    ticking: Option<Ticking>,
    /// Holds one slot of the runtime's instance budget for the instance's lifetime.
    _permit: OwnedSemaphorePermit,
}

impl Instance {
    /// Instantiates the template. `sink` is the session's output, `None` for batch calls.
    pub(crate) async fn new(
        template: &Template,
        sink: Option<mpsc::Sender<Output>>,
        next_seq: u64,
    ) -> Result<Self, CallError> {
        let permit = template
            .semaphore
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| CallError::Instantiate("the runtime is shutting down".into()))?;
        let wasi = wasi_ctx(&template.preopens)?;
        let state = HostState::new(template.grant.clone(), wasi, sink, next_seq);
        let mut store = Store::new(template.pre.engine(), state);
        store.limiter(|s| &mut s.limiter);
        // At every epoch tick during a call: yield to the executor (so a busy guest never
        // starves other tasks) until the call's deadline, then stop the guest.
        store.epoch_deadline_callback(|ctx| {
            if Instant::now() >= ctx.data().deadline {
                Err(wasmtime::Error::new(Fault::Deadline))
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        let limit = arm(&mut store, template.call_timeout);
        let ticking = template.ticker.enter();
        let outcome = tokio::time::timeout(limit, template.pre.instantiate_async(&mut store)).await;
        drop(ticking);
        let guest = settle(&store, outcome, limit).map_err(|e| match e {
            CallError::Trap(m) => CallError::Instantiate(m),
            other => other,
        })?;
        Ok(Self {
            store,
            guest,
            call_timeout: template.call_timeout,
            ticker: template.ticker.clone(),
            ticking: None,
            _permit: permit,
        })
    }

    /// Prepares a call; see [`arm`]. The epoch ticker runs until [`settle`](Self::settle).
    pub(crate) fn arm(&mut self) -> Duration {
        self.ticking = Some(self.ticker.enter());
        arm(&mut self.store, self.call_timeout)
    }

    /// Classifies a call's outcome; see [`settle`].
    pub(crate) fn settle<R>(
        &mut self,
        outcome: Result<wasmtime::Result<R>, tokio::time::error::Elapsed>,
        limit: Duration,
    ) -> Result<R, CallError> {
        self.ticking = None;
        settle(&self.store, outcome, limit)
    }

    /// The output state to carry into a restarted instance: the next output seq, and
    /// whether a segment was left open.
    pub(crate) fn output_position(&self) -> (u64, bool) {
        let out = &self.store.data().out;
        (out.next_seq, out.segment_open)
    }
}

/// Prepares a call: re-arms the epoch deadline (deadlines are relative to the epoch at the
/// time they are set, so they must be set before every call) and resets the per-call output
/// budget. Returns the call's wall-clock limit.
fn arm(store: &mut Store<HostState>, limit: Duration) -> Duration {
    let state = store.data_mut();
    state.deadline = Instant::now() + limit;
    state.out.used = 0;
    state.out.breached = false;
    store.set_epoch_deadline(1);
    limit
}

/// Classifies the outcome of a call made after [`arm`]. Any error but a returned plugin error
/// means the instance must be discarded.
fn settle<R>(
    store: &Store<HostState>,
    outcome: Result<wasmtime::Result<R>, tokio::time::error::Elapsed>,
    limit: Duration,
) -> Result<R, CallError> {
    let state = store.data();
    match outcome {
        // The outer timeout covers time spent in host calls (e.g. a slow HTTP worker), which
        // epochs do not interrupt.
        Err(_elapsed) => Err(CallError::Timeout(limit)),
        Ok(Err(e)) => Err(classify(&e, state, limit)),
        Ok(Ok(_)) if state.out.breached => Err(CallError::OutputLimit { limit_bytes: state.grant.max_output_bytes }),
        Ok(Ok(value)) => Ok(value),
    }
}

/// Maps a call's error to a [`CallError`].
fn classify(e: &wasmtime::Error, state: &HostState, limit: Duration) -> CallError {
    if let Some(fault) = e.downcast_ref::<Fault>() {
        return match fault {
            Fault::Deadline => CallError::Timeout(limit),
            Fault::Memory { limit, .. } => CallError::MemoryLimit { limit_bytes: *limit as u64 },
        };
    }
    if state.limiter.hit {
        return CallError::MemoryLimit { limit_bytes: state.grant.memory_bytes as u64 };
    }
    if let Some(trap) = e.downcast_ref::<Trap>() {
        return match trap {
            Trap::Interrupt => CallError::Timeout(limit),
            other => CallError::Trap(other.to_string()),
        };
    }
    CallError::Trap(format!("{:#}", e.root_cause()))
}
