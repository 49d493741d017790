//! The wasmtime engine: configuration, the pooling allocator with its on-demand fallback, and
//! the epoch ticker that drives per-call deadlines and cooperative yielding.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::error::LoadError;

/// How the engine was built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocator {
    /// Pre-reserved instance slots (fast instantiation, bounded count).
    Pooling,
    /// mmap per instance: the fallback when the pool's address space cannot be reserved.
    OnDemand,
}

/// Settings of the engine that matter to the rest of the runtime.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EngineSettings {
    /// Concurrent instances (pool slots).
    pub max_instances: u32,
    /// Largest linear memory of one instance, in bytes (the pool's slot size).
    pub max_memory_bytes: u64,
    /// Epoch tick period.
    pub epoch_tick: Duration,
    /// Try the pooling allocator first.
    pub pooling: bool,
}

/// The engine and how it allocates instances.
pub(crate) struct EngineHandle {
    pub engine: Engine,
    pub allocator: Allocator,
    /// Every call into a guest enters it, so that its deadline is driven.
    pub ticker: Arc<Ticker>,
}

fn base_config() -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    // Deadlines: an epoch check at function entries and loop headers; the per-store callback
    // decides between yielding and trapping (see `instance.rs`).
    config.epoch_interruption(true);
    config.parallel_compilation(true);
    // Keep a guest's host stack bounded; async calls run on fibers of this size.
    config.max_wasm_stack(1024 * 1024);
    config.async_stack_size(2 * 1024 * 1024);
    config
}

impl EngineHandle {
    pub(crate) fn new(settings: EngineSettings) -> Result<Self, LoadError> {
        let (engine, allocator) = if settings.pooling {
            match Engine::new(&pooling_config(settings)) {
                Ok(engine) => (engine, Allocator::Pooling),
                Err(e) => {
                    // E.g. a 39-bit address space or strict overcommit: the reservation fails.
                    let error = format!("{e:#}");
                    tracing::warn!(%error, "pooling allocator unavailable, falling back to on-demand allocation");
                    (on_demand(settings)?, Allocator::OnDemand)
                }
            }
        } else {
            (on_demand(settings)?, Allocator::OnDemand)
        };
        let ticker = Arc::new(Ticker::default());
        spawn_ticker(&engine, settings.epoch_tick, [IDLE_AFTER, SLEEP_CHECK], ticker.clone())?;
        Ok(Self { engine, allocator, ticker })
    }

    /// A hash of everything that makes a compiled artefact (in)compatible with this engine:
    /// wasmtime's version and compiler settings (from wasmtime itself), plus the target.
    pub(crate) fn compatibility_key(&self) -> String {
        // FNV-1a: stable across processes and Rust versions, unlike `DefaultHasher`.
        struct Fnv(u64);
        impl Hasher for Fnv {
            fn finish(&self) -> u64 {
                self.0
            }
            fn write(&mut self, bytes: &[u8]) {
                for b in bytes {
                    self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
                }
            }
        }
        let mut hasher = Fnv(0xcbf2_9ce4_8422_2325);
        self.engine.precompile_compatibility_hash().hash(&mut hasher);
        std::env::consts::ARCH.hash(&mut hasher);
        std::env::consts::OS.hash(&mut hasher);
        format!("{:016x}", hasher.finish())
    }
}

fn on_demand(settings: EngineSettings) -> Result<Engine, LoadError> {
    let _ = settings;
    Engine::new(&base_config()).map_err(|e| LoadError::Engine(format!("{e:?}")))
}

fn pooling_config(settings: EngineSettings) -> Config {
    let n = settings.max_instances.max(1);
    let mut pool = PoolingAllocationConfig::new();
    // A Rust wasip2 component holds a few core instances (its module plus adapter shims),
    // one memory and a few tables; size the pool from the one knob, as Spin does.
    pool.total_component_instances(n)
        .total_core_instances(n.saturating_mul(8))
        .total_memories(n.saturating_mul(2))
        .total_tables(n.saturating_mul(8))
        .total_stacks(n)
        .max_memory_size(usize::try_from(settings.max_memory_bytes).unwrap_or(usize::MAX))
        // Reset only the pages an instance dirtied (Linux ≥ 6.7, else ignored) instead of an
        // madvise of the whole slot: halves session start (33 → 14 µs measured, bench), the
        // madvise's TLB shootdowns being the main cost. Within the first 64 KiB, dirty pages
        // are reset in place and stay resident.
        .pagemap_scan(wasmtime::Enabled::Auto)
        .linear_memory_keep_resident(64 * 1024)
        .table_keep_resident(16 * 1024);
    let mut config = base_config();
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

/// How long the ticker goes on after the last call ended before it sleeps.
const IDLE_AFTER: Duration = Duration::from_secs(1);
/// How often a sleeping ticker checks whether its engine is gone.
const SLEEP_CHECK: Duration = Duration::from_secs(1);

/// What the epoch ticker and the calls into guests share. Deadlines only move while the epoch
/// does, so the ticker runs while any call is under way; with none for [`IDLE_AFTER`] it sleeps
/// (an idle node's process then wakes about once a second instead of every tick), and the next
/// call wakes it.
#[derive(Debug, Default)]
pub(crate) struct Ticker {
    /// Calls under way.
    running: AtomicUsize,
    /// Calls started so far: the ticker sees activity between two ticks by this changing.
    started: AtomicU64,
    /// The ticker is asleep, or about to be: a starting call must wake it.
    sleeping: AtomicBool,
    /// Epoch increments so far.
    ticks: AtomicU64,
    thread: OnceLock<std::thread::Thread>,
}

impl Ticker {
    /// A call is starting: the epoch moves until the returned guard is dropped.
    ///
    /// With the ticker's side of [`spawn_ticker`], no call can run with the ticker asleep: the
    /// call counts itself before it reads `sleeping`, and the ticker sets `sleeping` before it
    /// reads the counts (all `SeqCst`), so at least one of the two sees the other.
    pub(crate) fn enter(self: &Arc<Self>) -> Ticking {
        self.running.fetch_add(1, SeqCst);
        self.started.fetch_add(1, SeqCst);
        if self.sleeping.load(SeqCst)
            && let Some(thread) = self.thread.get()
        {
            thread.unpark();
        }
        Ticking(self.clone())
    }

    #[cfg(test)]
    fn ticks(&self) -> u64 {
        self.ticks.load(SeqCst)
    }

    #[cfg(test)]
    fn is_sleeping(&self) -> bool {
        self.sleeping.load(SeqCst)
    }
}

/// A call under way (see [`Ticker::enter`]).
#[derive(Debug)]
pub(crate) struct Ticking(Arc<Ticker>);

impl Drop for Ticking {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, SeqCst);
    }
}

/// Increments the engine's epoch every `tick` on a dedicated thread (not a tokio task, so the
/// runtime works from any executor) while calls run, and for `idle_after` after the last one;
/// then sleeps until a call enters `ticker` (looking every `check` whether the engine is gone).
/// The thread holds only a weak reference and exits once the last user of the engine is gone:
/// the runtime, and also any session that outlives it, since its deadlines depend on the ticks.
fn spawn_ticker(
    engine: &Engine,
    tick: Duration,
    [idle_after, check]: [Duration; 2],
    ticker: Arc<Ticker>,
) -> Result<(), LoadError> {
    let weak = engine.weak();
    let idle_ticks = (idle_after.as_nanos() / tick.as_nanos().max(1)).max(1);
    std::thread::Builder::new()
        .name("byoc-epoch".into())
        .spawn(move || {
            let _ = ticker.thread.set(std::thread::current());
            let (mut seen, mut quiet) = (ticker.started.load(SeqCst), 0u128);
            loop {
                std::thread::sleep(tick);
                let Some(engine) = weak.upgrade() else { break };
                engine.increment_epoch();
                drop(engine);
                ticker.ticks.fetch_add(1, SeqCst);
                let started = ticker.started.load(SeqCst);
                if started != seen || ticker.running.load(SeqCst) > 0 {
                    (seen, quiet) = (started, 0);
                    continue;
                }
                quiet += 1;
                if quiet < idle_ticks {
                    continue;
                }
                ticker.sleeping.store(true, SeqCst);
                while ticker.started.load(SeqCst) == seen && ticker.running.load(SeqCst) == 0 {
                    std::thread::park_timeout(check);
                    if weak.upgrade().is_none() {
                        return;
                    }
                }
                ticker.sleeping.store(false, SeqCst);
                (seen, quiet) = (ticker.started.load(SeqCst), 0);
            }
        })
        .map(drop)
        .map_err(|e| LoadError::Engine(format!("spawning the epoch ticker: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `cond` holds within 5 s.
    fn eventually(cond: impl Fn() -> bool) -> bool {
        let end = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < end {
            if cond() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        cond()
    }

    /// 1 ms ticks, asleep after 20 ms without a call, and (here) never waking by itself: only a
    /// call can wake it.
    fn ticker() -> (Engine, Arc<Ticker>) {
        let engine = Engine::new(&base_config()).unwrap();
        let ticker = Arc::new(Ticker::default());
        let times = [Duration::from_millis(20), Duration::from_secs(3600)];
        spawn_ticker(&engine, Duration::from_millis(1), times, ticker.clone()).unwrap();
        (engine, ticker)
    }

    #[test]
    fn the_ticker_sleeps_without_calls_and_ticks_for_as_long_as_one_runs() {
        let (_engine, ticker) = ticker();
        assert!(eventually(|| ticker.is_sleeping()), "no call: the ticker goes to sleep");
        let asleep = ticker.ticks();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(ticker.ticks(), asleep, "asleep, it does not tick");

        // A call wakes it, and it ticks for as long as the call runs: 200 ticks is ten times the
        // idle time, so had it gone back to sleep mid-call, the ticks would have stopped.
        let call = ticker.enter();
        assert!(eventually(|| ticker.ticks() >= asleep + 200), "a long call is ticked throughout");
        assert!(!ticker.is_sleeping());
        drop(call);
        assert!(eventually(|| ticker.is_sleeping()), "after the call, it sleeps again");

        // Calls that start and end between two ticks wake it too.
        let asleep = ticker.ticks();
        drop(ticker.enter());
        assert!(eventually(|| ticker.ticks() > asleep), "a short call woke it");
    }
}
