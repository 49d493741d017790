//! Credit balances, exact, keyed as go-livepeer keys them.
//!
//! The orchestrator keys by (sender, capability), the gateway by (orchestrator recipient, capability):
//! every stream and batch job of one payer for one capability shares one balance, as in the reference.
//! A [`BalanceKey`] may also name a stream, for the opt-in per-stream isolation the reference's users ask
//! for. Entries untouched for the TTL (10 minutes by default, as go-livepeer) are evicted by
//! [`Ledger::evict_expired`], which the owner calls on a timer.
//!
//! Credits and debits take non-negative amounts only, and [`Ledger::transfer`] moves money without
//! making any: no operation creates money except [`Ledger::sync_to_reported`], the gateway's rule that
//! "the orchestrator's number wins" (it reports what it holds, and the gateway adopts it).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::address::Address;
use crate::wei::Balance;

/// go-livepeer's balance TTL.
pub const DEFAULT_BALANCE_TTL: Duration = Duration::from_secs(600);

/// Whose balance, for what.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BalanceKey {
    /// The sender (on an orchestrator) or the orchestrator's recipient address (on a gateway).
    pub party: Address,
    /// The capability name (go-livepeer's ManifestID for BYOC).
    pub capability: String,
    /// Set for a per-stream balance; `None` for the shared one.
    pub stream: Option<String>,
}

impl BalanceKey {
    /// The shared balance of `party` for `capability`.
    pub fn shared(party: Address, capability: impl Into<String>) -> BalanceKey {
        BalanceKey { party, capability: capability.into(), stream: None }
    }

    /// The balance of one stream.
    pub fn stream(party: Address, capability: impl Into<String>, stream: impl Into<String>) -> BalanceKey {
        BalanceKey { party, capability: capability.into(), stream: Some(stream.into()) }
    }
}

/// Why a ledger operation was refused (nothing changed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[allow(missing_docs, reason = "each variant's #[error] message is its documentation")]
pub enum LedgerError {
    #[error("amount must not be negative, got {0}")]
    NegativeAmount(String),
}

struct Entry {
    balance: Balance,
    touched: Instant,
}

/// Balances in memory, safe to share between tasks.
pub struct Ledger {
    ttl: Duration,
    entries: Mutex<HashMap<BalanceKey, Entry>>,
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger::new(DEFAULT_BALANCE_TTL)
    }
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger").field("ttl", &self.ttl).field("entries", &self.len()).finish()
    }
}

fn non_negative(amount: &Balance) -> Result<(), LedgerError> {
    if amount.is_negative() { Err(LedgerError::NegativeAmount(amount.exact())) } else { Ok(()) }
}

impl Ledger {
    /// Entries untouched for `ttl` are evicted by [`Ledger::evict_expired`].
    pub fn new(ttl: Duration) -> Ledger {
        Ledger { ttl, entries: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<BalanceKey, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn apply(&self, key: &BalanceKey, f: impl FnOnce(&mut Balance)) -> Balance {
        let mut entries = self.lock();
        let e =
            entries.entry(key.clone()).or_insert_with(|| Entry { balance: Balance::zero(), touched: Instant::now() });
        f(&mut e.balance);
        e.touched = Instant::now();
        e.balance.clone()
    }

    /// Adds `amount` (≥ 0); returns the new balance.
    pub fn credit(&self, key: &BalanceKey, amount: &Balance) -> Result<Balance, LedgerError> {
        non_negative(amount)?;
        Ok(self.apply(key, |b| *b += amount))
    }

    /// Takes `amount` (≥ 0), possibly below zero (the owner decides what a negative balance means);
    /// returns the new balance.
    pub fn debit(&self, key: &BalanceKey, amount: &Balance) -> Result<Balance, LedgerError> {
        non_negative(amount)?;
        Ok(self.apply(key, |b| *b -= amount))
    }

    /// Moves `amount` (≥ 0) from one balance to another at once (e.g. a per-stream balance's remainder
    /// back to the shared one). Returns the two new balances.
    pub fn transfer(
        &self,
        from: &BalanceKey,
        to: &BalanceKey,
        amount: &Balance,
    ) -> Result<(Balance, Balance), LedgerError> {
        non_negative(amount)?;
        let mut entries = self.lock();
        let now = Instant::now();
        for (key, sign) in [(from, false), (to, true)] {
            let e = entries.entry(key.clone()).or_insert_with(|| Entry { balance: Balance::zero(), touched: now });
            if sign {
                e.balance += amount;
            } else {
                e.balance -= amount;
            }
            e.touched = now;
        }
        let get = |k: &BalanceKey| entries.get(k).map(|e| e.balance.clone()).unwrap_or_default();
        Ok((get(from), get(to)))
    }

    /// The balance, zero when there is none. Reading does not keep an entry alive.
    pub fn balance(&self, key: &BalanceKey) -> Balance {
        self.get(key).unwrap_or_default()
    }

    /// The balance, if there is an entry.
    pub fn get(&self, key: &BalanceKey) -> Option<Balance> {
        self.lock().get(key).map(|e| e.balance.clone())
    }

    /// Gateway side: adopt the orchestrator's reported balance ("the orchestrator's number wins", which
    /// also covers an orchestrator restart). Returns `reported − previous`, the adjustment made.
    pub fn sync_to_reported(&self, key: &BalanceKey, reported: &Balance) -> Balance {
        let mut diff = Balance::zero();
        self.apply(key, |b| {
            diff = reported - b;
            *b = reported.clone();
        });
        diff
    }

    /// Deletes the entry, returning its balance.
    pub fn remove(&self, key: &BalanceKey) -> Option<Balance> {
        self.lock().remove(key).map(|e| e.balance)
    }

    /// Evicts entries untouched for the TTL; returns how many.
    pub fn evict_expired(&self) -> usize {
        self.evict_untouched_at(Instant::now())
    }

    /// [`Ledger::evict_expired`] as of `now`.
    pub fn evict_untouched_at(&self, now: Instant) -> usize {
        let mut entries = self.lock();
        let before = entries.len();
        entries.retain(|_, e| now.saturating_duration_since(e.touched) < self.ttl);
        before - entries.len()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every balance (to persist them).
    pub fn snapshot(&self) -> Vec<(BalanceKey, Balance)> {
        let mut all: Vec<_> = self.lock().iter().map(|(k, e)| (k.clone(), e.balance.clone())).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// Sets balances loaded from storage (at start-up), replacing any with the same key.
    pub fn restore(&self, balances: impl IntoIterator<Item = (BalanceKey, Balance)>) {
        let mut entries = self.lock();
        let now = Instant::now();
        for (k, balance) in balances {
            entries.insert(k, Entry { balance, touched: now });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(i: u8) -> BalanceKey {
        if i % 3 == 2 {
            BalanceKey::stream(Address([i; 20]), "cap", "s")
        } else {
            BalanceKey::shared(Address([i; 20]), "cap")
        }
    }

    #[test]
    fn credits_debits_and_the_orchestrators_number() {
        let l = Ledger::default();
        let k = key(1);
        assert_eq!(l.get(&k), None);
        assert_eq!(l.credit(&k, &Balance::from_ratio(10, 3).unwrap()).unwrap(), Balance::from_ratio(10, 3).unwrap());
        assert_eq!(l.debit(&k, &Balance::from_i128(4)).unwrap(), Balance::from_ratio(-2, 3).unwrap());
        assert!(matches!(l.credit(&k, &Balance::from_i128(-1)), Err(LedgerError::NegativeAmount(_))));
        assert!(matches!(l.debit(&k, &Balance::from_i128(-1)), Err(LedgerError::NegativeAmount(_))));
        assert_eq!(l.balance(&k), Balance::from_ratio(-2, 3).unwrap());
        assert_eq!(l.sync_to_reported(&k, &Balance::from_i128(100)), Balance::from_ratio(302, 3).unwrap());
        assert_eq!(l.balance(&k), Balance::from_i128(100));
        assert_eq!(l.sync_to_reported(&k, &Balance::zero()), Balance::from_i128(-100));
        assert_eq!(l.balance(&k), Balance::zero());
        let s = BalanceKey::stream(Address([1; 20]), "cap", "stream-1");
        l.credit(&s, &Balance::from_i128(5)).unwrap();
        assert_eq!(l.transfer(&s, &k, &Balance::from_i128(5)).unwrap(), (Balance::zero(), Balance::from_i128(5)));
        assert_eq!(l.remove(&s), Some(Balance::zero()));
    }

    #[test]
    fn untouched_entries_expire() {
        let l = Ledger::new(Duration::from_secs(600));
        l.credit(&key(1), &Balance::from_i128(1)).unwrap();
        let now = Instant::now();
        assert_eq!(l.evict_untouched_at(now + Duration::from_secs(599)), 0);
        assert_eq!(l.evict_untouched_at(now + Duration::from_secs(601)), 1);
        assert!(l.is_empty());
        l.restore([(key(2), Balance::from_i128(7))]);
        assert_eq!(l.snapshot(), vec![(key(2), Balance::from_i128(7))]);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Credit(u8, i64, u8),
        Debit(u8, i64, u8),
        Transfer(u8, u8, i64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..4u8, -5i64..1_000_000, 1..7u8).prop_map(|(k, n, d)| Op::Credit(k, n, d)),
            (0..4u8, -5i64..1_000_000, 1..7u8).prop_map(|(k, n, d)| Op::Debit(k, n, d)),
            (0..4u8, 0..4u8, -5i64..1_000_000).prop_map(|(a, b, n)| Op::Transfer(a, b, n)),
        ]
    }

    proptest! {
        /// Per key, credits − debits ± transfers == balance; in total, credits − debits == sum of balances
        /// (transfers and refused negative amounts create nothing).
        #[test]
        fn no_operation_creates_money(ops in proptest::collection::vec(op(), 0..60)) {
            let l = Ledger::default();
            let mut model: HashMap<u8, Balance> = HashMap::new();
            let mut net = Balance::zero();
            for op in ops {
                match op {
                    Op::Credit(k, n, d) => {
                        let a = Balance::from_ratio(n.into(), d.into()).unwrap();
                        if l.credit(&key(k), &a).is_ok() {
                            *model.entry(k).or_default() += &a;
                            net += &a;
                        } else {
                            prop_assert!(a.is_negative());
                        }
                    }
                    Op::Debit(k, n, d) => {
                        let a = Balance::from_ratio(n.into(), d.into()).unwrap();
                        if l.debit(&key(k), &a).is_ok() {
                            *model.entry(k).or_default() -= &a;
                            net -= &a;
                        } else {
                            prop_assert!(a.is_negative());
                        }
                    }
                    Op::Transfer(a, b, n) => {
                        let amt = Balance::from_i128(n.into());
                        if l.transfer(&key(a), &key(b), &amt).is_ok() {
                            *model.entry(a).or_default() -= &amt;
                            *model.entry(b).or_default() += &amt;
                        } else {
                            prop_assert!(amt.is_negative());
                        }
                    }
                }
            }
            let mut total = Balance::zero();
            for (k, b) in &model {
                prop_assert_eq!(&l.balance(&key(*k)), b);
                total += b;
            }
            prop_assert_eq!(&total, &net);
            let sum = l.snapshot().iter().fold(Balance::zero(), |acc, (_, b)| &acc + b);
            prop_assert_eq!(sum, net);
        }
    }
}
