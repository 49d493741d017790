//! Priced mode on the orchestrator: ticket params in job tokens, `Livepeer-Payment` headers
//! validated and credited, balances per (sender, capability), winning tickets stored before a
//! payment is acknowledged, and streams debited as they run.
//!
//! On chain (`PaymentSettings::on_chain`), ticket params carry the chain's block, round and round hash (a
//! watcher keeps the clock on it), a sender is checked on the TicketBroker before its tickets are priced
//! or credited (unlocking, unfunded: 402 naming why; face values capped at its max float), and winning
//! tickets are redeemed from the ticket store once their params expire (`byoc_chain::redeemer`).
//!
//! A capability is priced when the node has a key (tickets name it as recipient) and its price
//! (the operator's, else the worker's or plugin's) is above zero; without a key everything is
//! free, as go-livepeer's offchain mode. Priced jobs must be signed: the balance is the signer's.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use byoc_chain::{ChainState, RedeemConfig, SenderRefusal, Senders};
use byoc_payment::{
    Address, Balance, BalanceKey, BlockClock, Ledger, Payment, Price, Recipient, RecipientConfig, SecretKey,
    TicketParams, TicketStore, Wei,
};
use http::{HeaderMap, StatusCode};
use tokio::sync::watch;

use byoc_protocol::headers;

use crate::error::ApiError;
use crate::registry::Capability;

/// How priced mode runs.
#[derive(Debug, Clone)]
pub struct PaymentSettings {
    /// Face value and win probability of the tickets this node asks for.
    pub recipient: RecipientConfig,
    /// A priced job starts only with at least this many seconds of price in the balance
    /// (go-livepeer: 60).
    pub min_balance_secs: u64,
    /// How often running streams are debited.
    pub debit_every: Duration,
    /// How long a stream may run on a negative balance before it is stopped.
    pub grace: Duration,
    /// Where winning tickets (and balances) are kept; in memory only when `None`.
    pub ticket_store: Option<PathBuf>,
    /// On-chain mode; off chain when `None`.
    pub on_chain: Option<OnChainSettings>,
}

/// On-chain mode: a connection to the chain (made before the node starts) and how it is used.
#[derive(Debug, Clone)]
pub struct OnChainSettings {
    /// The chain, with the contracts resolved and the node key as the sender of transactions.
    pub chain: Arc<byoc_chain::Chain>,
    /// The chain's state read at start (ticket params never come from a stale clock).
    pub first: ChainState,
    /// How often the chain is read.
    pub poll: Duration,
    /// How winning tickets are redeemed.
    pub redeem: RedeemConfig,
    /// How long a sender's funds read from the chain are trusted (a new round always re-reads).
    pub sender_ttl: Duration,
}

impl Default for PaymentSettings {
    fn default() -> Self {
        PaymentSettings {
            recipient: RecipientConfig::default(),
            min_balance_secs: 60,
            debit_every: Duration::from_secs(5),
            grace: Duration::from_secs(10),
            ticket_store: None,
            on_chain: None,
        }
    }
}

/// The orchestrator's side of payments.
pub(crate) struct Payments {
    recipient: Recipient,
    ledger: Ledger,
    /// Winning tickets (and balances), durable; `None`: in memory only.
    store: Option<Arc<TicketStore>>,
    /// On-chain mode's checks and tasks.
    chain: Option<ChainSide>,
    pub(crate) settings: PaymentSettings,
}

/// What on-chain mode runs beside the ledger.
struct ChainSide {
    senders: Arc<Senders>,
    state: watch::Receiver<ChainState>,
    /// The watcher and the redeemer, stopped with the node.
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for ChainSide {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// A sender refused on chain: 402 naming why, or 503 when the chain could not be read.
fn refused_sender(e: SenderRefusal) -> ApiError {
    match e {
        SenderRefusal::Chain(_) => ApiError::unavailable(e.to_string()),
        _ => ApiError::new(StatusCode::PAYMENT_REQUIRED, e.to_string()),
    }
}

/// `402 Payment Required` with go-livepeer's message.
fn insufficient(have: &Balance, need: &Balance) -> ApiError {
    ApiError::new(
        StatusCode::PAYMENT_REQUIRED,
        format!("Insufficient balance for request (balance {have} wei, at least {need} wei needed)"),
    )
}

impl Payments {
    /// Priced mode for a node paid at `key`'s address. Balances saved in the ticket store are
    /// restored (a restart loses no credit; outstanding ticket params are void, as the secret
    /// behind them is new: gateways fetch fresh tokens).
    pub(crate) fn new(key: &SecretKey, settings: PaymentSettings) -> Result<Payments, String> {
        let clock = match &settings.on_chain {
            Some(c) => BlockClock::chain(c.first.point),
            None => BlockClock::default(),
        };
        let recipient = Recipient::new(key.address(), settings.recipient.clone(), clock.clone());
        let ledger = Ledger::default();
        let store = match &settings.ticket_store {
            Some(path) => {
                let store = TicketStore::open(path).map_err(|e| format!("ticket store: {e}"))?;
                ledger.restore(store.load_balances().map_err(|e| format!("ticket store: {e}"))?);
                Some(Arc::new(store))
            }
            None => None,
        };
        let chain = match (&settings.on_chain, &store) {
            (None, _) => None,
            (Some(_), None) => return Err("on-chain mode needs a ticket store (--ticket-store FILE)".into()),
            (Some(c), Some(store)) => Some(start_chain(c, clock, key.address(), store.clone())?),
        };
        Ok(Payments { recipient, ledger, store, chain, settings })
    }

    /// The balance of `sender` for `capability` (zero if none).
    pub(crate) fn balance(&self, sender: &Address, capability: &str) -> Balance {
        self.ledger.balance(&BalanceKey::shared(*sender, capability))
    }

    /// The balance under `key` (zero if none).
    pub(crate) fn balance_of(&self, key: &BalanceKey) -> Balance {
        self.ledger.balance(key)
    }

    /// A per-stream balance goes back to its sender's shared balance when the stream ends.
    pub(crate) fn close_stream_balance(&self, key: &BalanceKey) {
        if key.stream.is_none() {
            return;
        }
        let left = self.ledger.remove(key).unwrap_or_default();
        let shared = BalanceKey::shared(key.party, key.capability.clone());
        let moved = if left.is_negative() {
            self.ledger.debit(&shared, &(&Balance::zero() - &left))
        } else {
            self.ledger.credit(&shared, &left)
        };
        let _ = moved;
    }

    /// Balances summed per capability, in whole wei (for `/metrics`).
    pub(crate) fn totals(&self) -> std::collections::BTreeMap<String, f64> {
        let mut sums: std::collections::BTreeMap<String, Balance> = Default::default();
        for (key, b) in self.ledger.snapshot() {
            *sums.entry(key.capability).or_default() += &b;
        }
        sums.into_iter().map(|(c, b)| (c, b.to_i64_saturating() as f64)).collect()
    }

    /// Saves every balance (a timer and shutdown call this) and forgets untouched ones.
    pub(crate) async fn persist(&self) {
        self.ledger.evict_expired();
        let Some(store) = self.store.clone() else { return };
        let all = self.ledger.snapshot();
        let saved = tokio::task::spawn_blocking(move || store.save_balances(&all)).await;
        if let Ok(Err(e)) = saved {
            tracing::warn!(error = %e, "balances not saved");
        }
    }

    /// Fresh ticket params for `sender` at `price`; on chain the sender is checked first (402 naming
    /// why it is refused) and the face value capped at its max float.
    pub(crate) async fn ticket_params(
        &self,
        sender: &Address,
        price: &Price,
    ) -> Result<Option<TicketParams>, ApiError> {
        let cap = match &self.chain {
            Some(c) if !price.is_free() => Some(self.max_float(c, sender).await?),
            _ => None,
        };
        Ok(self.recipient.ticket_params_capped(sender, price, cap.as_ref()).ok())
    }

    /// The most one ticket of `sender`'s may be worth now (see `byoc_chain::senders`).
    async fn max_float(&self, c: &ChainSide, sender: &Address) -> Result<Wei, ApiError> {
        let pending = match self.store.clone() {
            Some(store) => {
                let who = *sender;
                match tokio::task::spawn_blocking(move || store.pending_face_value(&who)).await {
                    Ok(Ok(w)) => w,
                    Ok(Err(e)) => return Err(ApiError::unavailable(format!("ticket store: {e}"))),
                    Err(e) => return Err(ApiError::unavailable(format!("ticket store: {e}"))),
                }
            }
            None => Wei::zero(),
        };
        let state = *c.state.borrow();
        c.senders.max_float(*sender, &state, &pending).await.map_err(refused_sender)
    }

    /// Takes `amount` from the balance under `key`; returns what is left (may go negative).
    pub(crate) fn debit(&self, key: &BalanceKey, amount: &Balance) -> Balance {
        self.ledger.debit(key, amount).unwrap_or_else(|_| self.ledger.balance(key))
    }

    /// Processes the request's `Livepeer-Payment` header, if any: every ticket is validated, the
    /// winning ones are stored, then the expected value is credited. Returns the balance.
    pub(crate) async fn accept(&self, h: &HeaderMap, sender: &Address, key: &BalanceKey) -> Result<Balance, ApiError> {
        let Some(value) = h.get(headers::PAYMENT) else { return Ok(self.ledger.balance(key)) };
        let refused = |e: String| ApiError::new(StatusCode::BAD_REQUEST, format!("invalid payment: {e}"));
        let value = value.to_str().map_err(|e| refused(e.to_string()))?;
        let payment = Payment::from_header(value).map_err(|e| refused(e.to_string()))?;
        if let Some(c) = &self.chain {
            // The sender's money must be there before anything is credited.
            let float = self.max_float(c, sender).await?;
            let params = payment.ticket_params.as_ref().map(TicketParams::from_proto).transpose();
            if let Ok(Some(p)) = params
                && p.face_value > float
            {
                return Err(ApiError::new(
                    StatusCode::PAYMENT_REQUIRED,
                    format!("ticket face value {} wei exceeds the sender's max float {float} wei", p.face_value),
                ));
            }
        }
        let receipt = self.recipient.receive_payment(&payment, sender).map_err(|e| refused(e.to_string()))?;
        if !receipt.winning.is_empty() {
            // A winning ticket is money: on disk (synced) before the payment is acknowledged.
            if let Some(store) = self.store.clone() {
                let winning = receipt.winning.clone();
                let stored = tokio::task::spawn_blocking(move || store.insert(&winning)).await;
                match stored {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Err(ApiError::unavailable(format!("ticket store: {e}"))),
                    Err(e) => return Err(ApiError::unavailable(format!("ticket store: {e}"))),
                }
            }
            metrics::counter!("byoc_orchestrator_winning_tickets_total").increment(receipt.winning.len() as u64);
            tracing::info!(sender = %sender, winning = receipt.winning.len(), "winning tickets received");
        }
        metrics::counter!("byoc_orchestrator_tickets_total").increment(receipt.tickets as u64);
        let balance = self.ledger.credit(key, &receipt.ev).unwrap_or_else(|_| self.ledger.balance(key));
        if let Some(store) = self.store.clone() {
            let (k, b) = (key.clone(), balance.clone());
            let _ = tokio::task::spawn_blocking(move || store.save_balance(&k, &b)).await;
        }
        Ok(balance)
    }

    /// Refuses (402) unless the balance under `key` covers `min_balance_secs` of `price`.
    pub(crate) fn require(&self, key: &BalanceKey, price: &Price) -> Result<Balance, ApiError> {
        let have = self.ledger.balance(key);
        let need = price
            .cost(self.settings.min_balance_secs)
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("bad price: {e}")))?;
        if have < need {
            return Err(insufficient(&have, &need));
        }
        Ok(have)
    }
}

/// Starts the chain watcher and the redeemer for a node paid at `recipient`.
fn start_chain(
    c: &OnChainSettings,
    clock: BlockClock,
    recipient: Address,
    store: Arc<TicketStore>,
) -> Result<ChainSide, String> {
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return Err("on-chain mode needs a tokio runtime".into());
    };
    let _guard = rt.enter();
    let (state, watcher) = byoc_chain::watcher::spawn(c.chain.clone(), clock, c.poll, c.first);
    let senders = Arc::new(Senders::new(c.chain.clone(), recipient, c.sender_ttl));
    let forget = senders.clone();
    let redeemer = byoc_chain::redeemer::spawn(c.chain.clone(), store, state.clone(), c.redeem.clone(), move |t| {
        forget.forget(&t.winning.ticket.sender)
    });
    tracing::info!(
        recipient = %recipient,
        round = c.first.point.round,
        block = c.first.point.block,
        pool = c.first.pool_size,
        "on-chain mode: tickets checked against the TicketBroker and redeemed after their params expire"
    );
    Ok(ChainSide { senders, state, tasks: vec![watcher, redeemer] })
}

/// A capability's price in go-livepeer's form (wei per second: `per_unit / scaling`).
pub(crate) fn price_of(cap: &Capability) -> Price {
    let clamp = |v: u128| i64::try_from(v).unwrap_or(i64::MAX);
    Price { price_per_unit: clamp(cap.price.per_unit), pixels_per_unit: clamp(cap.price.scaling).max(1) }
}

/// What `elapsed` of compute at `price` costs, exactly.
pub(crate) fn cost_of(price: &Price, elapsed: Duration) -> Balance {
    let ms = i128::try_from(elapsed.as_millis()).unwrap_or(i128::MAX);
    let den = u128::try_from(price.pixels_per_unit.max(1)).unwrap_or(1) * 1000;
    Balance::from_ratio(i128::from(price.price_per_unit).saturating_mul(ms), den).unwrap_or_default()
}

/// The balance as go-livepeer reports it in `Livepeer-Balance`: whole wei.
pub(crate) fn balance_header(b: &Balance) -> http::HeaderValue {
    http::HeaderValue::from(b.to_i64_saturating())
}

/// Who pays for a job on a priced capability, and at what price.
#[derive(Debug, Clone)]
pub(crate) struct Payer {
    pub(crate) sender: Address,
    pub(crate) price: Price,
    /// The balance paid from: the shared one, or the stream's own (opt-in).
    pub(crate) key: BalanceKey,
}

/// Before a job on `cap` runs: nothing for a free capability; otherwise the job's payment is
/// credited and the balance must cover `min_balance_secs` of price (402 if not). `own_balance`:
/// a stream that opted into a balance of its own (the stream id).
pub(crate) async fn prepare(
    payments: Option<&Payments>,
    h: &HeaderMap,
    sender: Option<Address>,
    cap: &Capability,
    own_balance: Option<&str>,
) -> Result<Option<Payer>, ApiError> {
    let price = price_of(cap);
    // Without a key a node is in free mode (go-livepeer's offchain): every capability is free.
    let Some(payments) = payments.filter(|_| !price.is_free()) else { return Ok(None) };
    let Some(sender) = sender else {
        return Err(ApiError::new(
            StatusCode::PAYMENT_REQUIRED,
            format!("{} is priced: jobs must be signed", cap.name),
        ));
    };
    let key = match own_balance {
        Some(id) => BalanceKey::stream(sender, cap.name.clone(), id),
        None => BalanceKey::shared(sender, cap.name.clone()),
    };
    payments.accept(h, &sender, &key).await?;
    payments.require(&key, &price)?;
    Ok(Some(Payer { sender, price, key }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compute_costs_its_price_per_second_exactly() {
        let price = Price { price_per_unit: 3, pixels_per_unit: 2 };
        assert_eq!(cost_of(&price, Duration::from_millis(1500)), Balance::from_ratio(4500, 2000).unwrap());
        assert_eq!(cost_of(&price, Duration::ZERO), Balance::zero());
        let free = Price { price_per_unit: 0, pixels_per_unit: 1 };
        assert_eq!(cost_of(&free, Duration::from_secs(3600)), Balance::zero());
    }

    #[test]
    fn the_balance_header_is_whole_wei() {
        assert_eq!(balance_header(&Balance::from_ratio(10, 1).unwrap()), "10");
        assert_eq!(balance_header(&Balance::zero()), "0");
    }
}
