//! Sender checks before a payment is credited: is the sender's money there, and how much of it can
//! back one ticket (its max float)?

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use byoc_payment::{Address, Wei};

use crate::client::{Chain, SenderInfo};
use crate::error::ChainError;
use crate::watcher::ChainState;

/// Why a sender's tickets are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SenderRefusal {
    /// The sender asked to withdraw its funds.
    #[error(
        "sender {sender} is unlocking its deposit and reserve (withdraw round {withdraw_round}): its tickets are not accepted"
    )]
    Unlocking {
        /// The sender.
        sender: String,
        /// The round its unlock ends.
        withdraw_round: u64,
    },
    /// Nothing backs the sender's tickets.
    #[error("sender {sender} has no deposit and no reserve on the TicketBroker: fund them first (byoc sender fund)")]
    Unfunded {
        /// The sender.
        sender: String,
    },
    /// The reserve share left for this orchestrator cannot back a ticket.
    #[error(
        "sender {sender}'s reserve cannot back a ticket to this orchestrator (reserve {reserve} wei over {pool} orchestrators, {pending} wei of its tickets unredeemed): add reserve"
    )]
    NoFloat {
        /// The sender.
        sender: String,
        /// Its reserve.
        reserve: Wei,
        /// The pool it is split over.
        pool: u64,
        /// Its tickets we hold and have not redeemed.
        pending: Wei,
    },
    /// The chain could not be read.
    #[error("the sender's funds could not be read from the chain: {0}")]
    Chain(ChainError),
}

/// The most one ticket from `info`'s sender may be worth to `recipient`: its share of the reserve
/// (`(fundsRemaining + claimedInCurrentRound) / poolSize − claimedByRecipient`), less the face value of
/// its tickets we hold unredeemed, unless the deposit alone covers those three times over.
pub fn max_float(info: &SenderInfo, claimed_by_recipient: &Wei, pool_size: u64, pending: &Wei) -> Wei {
    let share =
        info.reserve.saturating_add(&info.claimed_in_round).div_floor(pool_size).saturating_sub(claimed_by_recipient);
    let deposit_covers_pending = pending.is_zero() || info.deposit >= pending.times(3);
    if deposit_covers_pending { share } else { share.saturating_sub(pending) }
}

/// Checks `info` and returns its max float, or why the sender is refused.
pub fn check(
    sender: Address,
    info: &SenderInfo,
    claimed: &Wei,
    pool: u64,
    pending: &Wei,
) -> Result<Wei, SenderRefusal> {
    let name = sender.to_checksum();
    if info.unlocking() {
        return Err(SenderRefusal::Unlocking { sender: name, withdraw_round: info.withdraw_round });
    }
    if info.deposit.is_zero() && info.reserve.is_zero() {
        return Err(SenderRefusal::Unfunded { sender: name });
    }
    let float = max_float(info, claimed, pool, pending);
    if float.is_zero() {
        return Err(SenderRefusal::NoFloat {
            sender: name,
            reserve: info.reserve.clone(),
            pool,
            pending: pending.clone(),
        });
    }
    Ok(float)
}

#[derive(Clone)]
struct Cached {
    info: SenderInfo,
    claimed: Wei,
    round: u64,
    at: Instant,
}

/// Senders' funds read from the chain, cached per sender until the round changes or `ttl` passes.
pub struct Senders {
    chain: Arc<Chain>,
    recipient: Address,
    ttl: Duration,
    max_cached: usize,
    cache: Mutex<HashMap<Address, Cached>>,
}

impl std::fmt::Debug for Senders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Senders").field("recipient", &self.recipient).field("ttl", &self.ttl).finish()
    }
}

impl Senders {
    /// Checks for payments to `recipient`; a sender's funds are read again after `ttl` or a new round.
    pub fn new(chain: Arc<Chain>, recipient: Address, ttl: Duration) -> Senders {
        Senders { chain, recipient, ttl, max_cached: 10_000, cache: Mutex::new(HashMap::new()) }
    }

    /// The sender's max float now (see [`check`]), with `pending` the face value of its tickets we hold.
    pub async fn max_float(&self, sender: Address, state: &ChainState, pending: &Wei) -> Result<Wei, SenderRefusal> {
        let cached = self.cache.lock().unwrap_or_else(PoisonError::into_inner).get(&sender).cloned();
        let fresh = cached.filter(|c| c.round == state.point.round && c.at.elapsed() < self.ttl);
        let c = match fresh {
            Some(c) => c,
            None => {
                let info = self.chain.sender_info(sender).await.map_err(SenderRefusal::Chain)?;
                let claimed = self.chain.claimed_reserve(sender, self.recipient).await.map_err(SenderRefusal::Chain)?;
                let c = Cached { info, claimed, round: state.point.round, at: Instant::now() };
                let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
                if cache.len() >= self.max_cached {
                    let ttl = self.ttl;
                    cache.retain(|_, v| v.at.elapsed() < ttl);
                    if cache.len() >= self.max_cached {
                        cache.clear();
                    }
                }
                cache.insert(sender, c.clone());
                c
            }
        };
        check(sender, &c.info, &c.claimed, state.pool_size, pending)
    }

    /// Forgets what was read of `sender` (its funds changed: a redemption, a refusal worth re-checking).
    pub fn forget(&self, sender: &Address) {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner).remove(sender);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(deposit: u128, reserve: u128, claimed_in_round: u128) -> SenderInfo {
        SenderInfo {
            deposit: Wei::from_u128(deposit),
            withdraw_round: 0,
            reserve: Wei::from_u128(reserve),
            claimed_in_round: Wei::from_u128(claimed_in_round),
        }
    }

    #[test]
    fn max_float_is_the_reserve_share_less_what_we_hold_unless_the_deposit_covers_it() {
        let w = Wei::from_u128;
        // (900 + 100) / 4 − 50 claimed by us = 200.
        assert_eq!(max_float(&info(0, 900, 100), &w(50), 4, &w(0)), w(200));
        // 30 pending: the deposit (60) is under 3 × 30, so the pending comes off.
        assert_eq!(max_float(&info(60, 900, 100), &w(50), 4, &w(30)), w(170));
        // A deposit of 90 covers 3 × 30: pending is ignored.
        assert_eq!(max_float(&info(90, 900, 100), &w(50), 4, &w(30)), w(200));
        // More claimed than the share, or an empty pool: nothing.
        assert_eq!(max_float(&info(0, 100, 0), &w(500), 1, &w(0)), w(0));
        assert_eq!(max_float(&info(0, 100, 0), &w(0), 0, &w(0)), w(0));
    }

    #[test]
    fn unlocking_unfunded_and_floatless_senders_are_refused_with_why() {
        let a = Address([7; 20]);
        let z = Wei::zero();
        let mut unlocking = info(10, 10, 0);
        unlocking.withdraw_round = 12;
        let e = check(a, &unlocking, &z, 1, &z).unwrap_err();
        assert!(e.to_string().contains("unlocking") && e.to_string().contains("12"), "{e}");
        let e = check(a, &info(0, 0, 0), &z, 1, &z).unwrap_err();
        assert!(e.to_string().contains("no deposit and no reserve"), "{e}");
        let e = check(a, &info(100, 0, 0), &z, 1, &z).unwrap_err();
        assert!(matches!(e, SenderRefusal::NoFloat { .. }), "{e}");
        assert_eq!(check(a, &info(0, 10, 0), &z, 2, &z).unwrap(), Wei::from_u128(5));
    }
}
