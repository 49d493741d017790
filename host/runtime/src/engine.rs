//! The wasmtime engine: configuration, the pooling allocator with its on-demand fallback, and
//! the epoch ticker that drives per-call deadlines and cooperative yielding.

use std::hash::{Hash, Hasher};
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
        spawn_ticker(&engine, settings.epoch_tick)?;
        Ok(Self { engine, allocator })
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

/// Increments the engine's epoch every `tick` on a dedicated thread (not a tokio task, so
/// the runtime works from any executor). The thread holds only a weak reference and exits
/// once the last user of the engine is gone: the runtime, and also any session that outlives
/// it, since its deadlines depend on the ticks.
fn spawn_ticker(engine: &Engine, tick: Duration) -> Result<(), LoadError> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("byoc-epoch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(tick);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        })
        .map(drop)
        .map_err(|e| LoadError::Engine(format!("spawning the epoch ticker: {e}")))
}
