//! Redemption: the ticket store's queue worked against the TicketBroker.
//!
//! A winning ticket is redeemed only after its params expire (the recipient's random number must stay
//! secret until then) and while its creation round is still valid on chain. Before a transaction:
//! `usedTickets` (someone redeemed it already: closed as `used`), the gas price against the operator's
//! maximum (over it: every ticket waits), a gas estimate (the contract's refusal counts as a failed attempt,
//! retried with backoff up to `max_attempts`, then given up) and the cost against the face value and the
//! sender's funds (not worth it: waits). The transaction's hash is stored before its receipt is awaited, so
//! a crash never redeems twice: after a restart a submitted ticket is found used and keeps its hash, or its
//! transaction is still pending and is waited for, or it was dropped and is sent again.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use byoc_payment::{RedemptionState, StoredTicket, TicketStore, Wei};
use tokio::sync::watch;

use crate::client::Chain;
use crate::error::ChainError;
use crate::watcher::ChainState;

/// How redemption runs.
#[derive(Clone, Debug)]
pub struct RedeemConfig {
    /// The most wei per gas a redemption may pay; over it, redemption waits (`None`: no limit).
    pub max_gas_price: Option<u128>,
    /// Failed attempts (the contract refusing, a reverted transaction) before a ticket is given up.
    pub max_attempts: u32,
    /// The wait after the first failed attempt; doubled after each (capped at an hour).
    pub retry_after: Duration,
    /// How long a sent transaction may go unmined before it is looked at again.
    pub receipt_timeout: Duration,
    /// How often the queue is looked at.
    pub every: Duration,
    /// Rounds a ticket stays redeemable after its creation round (the TicketBroker's
    /// `ticketValidityPeriod`, read at start).
    pub ticket_validity_period: u64,
}

impl Default for RedeemConfig {
    fn default() -> Self {
        RedeemConfig {
            max_gas_price: None,
            max_attempts: 5,
            retry_after: Duration::from_secs(30),
            receipt_timeout: Duration::from_secs(120),
            every: Duration::from_secs(5),
            ticket_validity_period: 2,
        }
    }
}

/// What one pass over the queue did (logged; tests read it through the store).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pass {
    /// Tickets redeemed by our transactions.
    pub redeemed: usize,
    /// Tickets found already used.
    pub used: usize,
    /// Tickets given up.
    pub failed: usize,
    /// Tickets whose attempt failed and will be retried.
    pub retried: usize,
    /// Whether the gas price held everything back.
    pub gas_too_high: bool,
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// Works the queue of `store` every `config.every` until the task is dropped.
pub fn spawn(
    chain: Arc<Chain>,
    store: Arc<TicketStore>,
    state: watch::Receiver<ChainState>,
    config: RedeemConfig,
    on_redeemed: impl Fn(&StoredTicket) + Send + Sync + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let current = *state.borrow();
            match pass(&chain, &store, &current, &config, &on_redeemed).await {
                Ok(p) if p != Pass::default() => tracing::info!(
                    redeemed = p.redeemed,
                    used = p.used,
                    failed = p.failed,
                    retried = p.retried,
                    gas_too_high = p.gas_too_high,
                    "redemption pass"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "redemption pass failed"),
            }
            tokio::time::sleep(config.every).await;
        }
    })
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, byoc_payment::StoreError> + Send + 'static,
) -> Result<T, ChainError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(|e| ChainError::Config(format!("ticket store: {e}"))),
        Err(e) => Err(ChainError::Config(format!("ticket store task: {e}"))),
    }
}

/// One pass over the queue at chain state `st`.
pub async fn pass(
    chain: &Chain,
    store: &Arc<TicketStore>,
    st: &ChainState,
    config: &RedeemConfig,
    on_redeemed: &(impl Fn(&StoredTicket) + Send + Sync),
) -> Result<Pass, ChainError> {
    let mut out = Pass::default();
    let queue = {
        let s = store.clone();
        blocking(move || s.pending()).await?
    };
    let due: Vec<StoredTicket> = queue
        .into_iter()
        .filter(|t| t.next_attempt_at <= now() && t.winning.ticket.params_expiration_block <= st.point.block)
        .collect();
    if due.is_empty() {
        return Ok(out);
    }
    metrics::gauge!("byoc_chain_redemption_due").set(due.len() as f64);
    for t in due {
        let id = t.id;
        let store_c = store.clone();
        let close = |state: RedemptionState, why: String| {
            let s = store_c.clone();
            blocking(move || s.mark_closed(id, state, &why))
        };
        let created = t.winning.ticket.expiration.creation_round.unsigned_abs();
        // A transaction already sent for it (before a crash, or a receipt that timed out).
        if let Some(tx) = t.submitted_tx.as_deref().and_then(parse_hash) {
            match chain.receipt_status(tx).await? {
                Some(true) => {
                    redeemed(store, &t, tx, on_redeemed).await?;
                    out.redeemed += 1;
                    continue;
                }
                Some(false) => {}
                None if chain.transaction_known(tx).await? => continue,
                None => {}
            }
        }
        if chain.used_ticket(t.winning.ticket.hash()).await? {
            close(RedemptionState::Used, "already redeemed on chain".into()).await?;
            metrics::counter!("byoc_chain_tickets_closed_total", "state" => "used").increment(1);
            tracing::info!(ticket = id, "ticket already redeemed on chain; closed");
            out.used += 1;
            continue;
        }
        if created.saturating_add(config.ticket_validity_period) <= st.current_round {
            let why = format!(
                "expired on chain: created in round {created}, valid for {} rounds, now round {}",
                config.ticket_validity_period, st.current_round
            );
            tracing::warn!(ticket = id, %why, "ticket closed unredeemed");
            close(RedemptionState::Failed, why).await?;
            metrics::counter!("byoc_chain_tickets_closed_total", "state" => "expired").increment(1);
            out.failed += 1;
            continue;
        }
        let gas_price = chain.gas_price().await?;
        if let Some(max) = config.max_gas_price.filter(|max| gas_price > *max) {
            let why = format!("waiting: gas price {gas_price} wei is over the maximum {max}");
            let s = store.clone();
            blocking(move || s.note_waiting(id, &why)).await?;
            metrics::counter!("byoc_chain_redemption_gas_waits_total").increment(1);
            out.gas_too_high = true;
            break;
        }
        let gas = match chain.estimate_redeem(&t).await {
            Ok(g) => g,
            Err(ChainError::Reverted(why)) => {
                out_failure(store, &t, &why, config, &mut out).await?;
                continue;
            }
            Err(e) => return Err(e),
        };
        // Pay at most the maximum (or twice today's price, room for the next block's base fee).
        let fee_cap = config.max_gas_price.unwrap_or(gas_price.saturating_mul(2)).max(gas_price);
        let cost = Wei::from_u128(u128::from(gas).saturating_mul(fee_cap));
        if cost >= t.winning.ticket.face_value {
            let why = format!(
                "waiting: redeeming costs up to {cost} wei ({gas} gas at {fee_cap} wei), the face value is {}",
                t.winning.ticket.face_value
            );
            let s = store.clone();
            blocking(move || s.note_waiting(id, &why)).await?;
            continue;
        }
        let sender_funds = chain.sender_info(t.winning.ticket.sender).await?;
        if sender_funds.deposit.saturating_add(&sender_funds.reserve) < cost {
            let why = "waiting: the sender's deposit and reserve are below the transaction's cost".to_string();
            let s = store.clone();
            blocking(move || s.note_waiting(id, &why)).await?;
            continue;
        }
        let hash = match chain.send_redeem(&t, gas.saturating_add(gas / 5), fee_cap).await {
            Ok(hash) => hash,
            Err(e) => {
                // Not the ticket's fault (no ETH for gas, the node refusing): it waits, and says why.
                let (s, why) = (store.clone(), format!("waiting: the transaction could not be sent: {e}"));
                blocking(move || s.note_waiting(id, &why)).await?;
                return Err(e);
            }
        };
        {
            let s = store.clone();
            let hex = format!("0x{}", hex_of(&hash));
            blocking(move || s.mark_submitted(id, &hex)).await?;
        }
        match wait_receipt(chain, hash, config.receipt_timeout).await? {
            Some(true) => {
                redeemed(store, &t, hash, on_redeemed).await?;
                out.redeemed += 1;
            }
            Some(false) => out_failure(store, &t, "the redemption transaction reverted", config, &mut out).await?,
            // Still unmined: it stays submitted and the next pass looks at it again.
            None => {}
        }
    }
    Ok(out)
}

async fn redeemed(
    store: &Arc<TicketStore>,
    t: &StoredTicket,
    tx: [u8; 32],
    on_redeemed: &(impl Fn(&StoredTicket) + Send + Sync),
) -> Result<(), ChainError> {
    let (s, id, hex) = (store.clone(), t.id, format!("0x{}", hex_of(&tx)));
    blocking(move || s.mark_redeemed(id, &hex)).await?;
    metrics::counter!("byoc_chain_tickets_redeemed_total").increment(1);
    tracing::info!(ticket = t.id, sender = %t.winning.ticket.sender, face_value = %t.winning.ticket.face_value, tx = %format!("0x{}", hex_of(&tx)), "ticket redeemed");
    on_redeemed(t);
    Ok(())
}

async fn out_failure(
    store: &Arc<TicketStore>,
    t: &StoredTicket,
    why: &str,
    config: &RedeemConfig,
    out: &mut Pass,
) -> Result<(), ChainError> {
    let backoff = config.retry_after.saturating_mul(1 << t.attempts.min(16)).min(Duration::from_secs(3600));
    let retry_at = now().saturating_add(backoff.as_secs() as i64);
    let (s, id, w) = (store.clone(), t.id, why.to_string());
    let attempts = blocking(move || s.record_failure(id, &w, retry_at)).await?;
    tracing::warn!(ticket = t.id, attempts, error = why, "redemption attempt failed");
    if attempts >= config.max_attempts {
        let (s, id, w) = (store.clone(), t.id, format!("given up after {attempts} attempts: {why}"));
        blocking(move || s.mark_closed(id, RedemptionState::Failed, &w)).await?;
        metrics::counter!("byoc_chain_tickets_closed_total", "state" => "failed").increment(1);
        tracing::warn!(ticket = t.id, attempts, "ticket given up: closed unredeemed");
        out.failed += 1;
    } else {
        out.retried += 1;
    }
    Ok(())
}

/// Polls for the receipt of `hash` until `timeout`.
async fn wait_receipt(chain: &Chain, hash: [u8; 32], timeout: Duration) -> Result<Option<bool>, ChainError> {
    let start = std::time::Instant::now();
    let mut wait = Duration::from_millis(100);
    loop {
        if let Some(status) = chain.receipt_status(hash).await? {
            return Ok(Some(status));
        }
        if start.elapsed() >= timeout {
            return Ok(None);
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(2));
    }
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn parse_hash(s: &str) -> Option<[u8; 32]> {
    let s = s.strip_prefix("0x")?;
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_round_trip_and_bad_ones_are_none() {
        let h = [0xab; 32];
        assert_eq!(parse_hash(&format!("0x{}", hex_of(&h))), Some(h));
        assert_eq!(parse_hash("0x12"), None);
        assert_eq!(parse_hash(&"z".repeat(66)), None);
    }
}
