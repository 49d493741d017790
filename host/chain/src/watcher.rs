//! The block and round watcher: polls the chain and keeps the node's [`BlockClock`] on it.

use std::sync::Arc;
use std::time::Duration;

use byoc_payment::{BlockClock, ChainPoint};
use tokio::sync::watch;

use crate::client::Chain;
use crate::error::ChainError;

/// What the watcher last read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ChainState {
    /// Block (L1 on Arbitrum), last initialized round and its block hash.
    pub point: ChainPoint,
    /// `RoundsManager.currentRound()` (ahead of `point.round` until someone initializes the round).
    pub current_round: u64,
    /// Orchestrators in the pool.
    pub pool_size: u64,
}

/// The longest wait between polls while the node keeps failing.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Reads the chain's state once.
pub async fn read_state(chain: &Chain) -> Result<ChainState, ChainError> {
    let point = chain.point().await?;
    let current_round = chain.current_round().await?;
    let pool_size = chain.pool_size().await?;
    Ok(ChainState { point, current_round, pool_size })
}

/// Polls `chain` every `poll` (doubling the wait up to [`MAX_BACKOFF`] while reads fail), sets `clock`
/// to each reading and publishes it. `first` is a reading already made (the node reads once before it
/// starts serving, so params are never issued against a stale clock).
pub fn spawn(
    chain: Arc<Chain>,
    clock: BlockClock,
    poll: Duration,
    first: ChainState,
) -> (watch::Receiver<ChainState>, tokio::task::JoinHandle<()>) {
    clock.set_chain_point(first.point);
    let (tx, rx) = watch::channel(first);
    let task = tokio::spawn(async move {
        let mut wait = poll;
        loop {
            tokio::time::sleep(wait).await;
            match read_state(&chain).await {
                Ok(state) => {
                    wait = poll;
                    let last = *tx.borrow();
                    if state.point.round != last.point.round {
                        tracing::info!(round = state.point.round, block = state.point.block, "new round");
                    }
                    clock.set_chain_point(state.point);
                    metrics::gauge!("byoc_chain_block").set(state.point.block as f64);
                    metrics::gauge!("byoc_chain_round").set(state.point.round as f64);
                    if tx.send(state).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    wait = (wait * 2).min(MAX_BACKOFF).max(poll);
                    metrics::counter!("byoc_chain_rpc_errors_total").increment(1);
                    tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "chain watcher: read failed");
                }
            }
        }
    });
    (rx, task)
}
