//! The orchestrator side of probabilistic micropayments: issuing [`TicketParams`] and receiving payments.
//!
//! As in go-livepeer `pm/recipient.go`, the recipient keeps no record of the params it issues. Its random
//! number for a sender is `HMAC-SHA256(secret, seed ‖ sender ‖ faceValue ‖ winProb ‖ expirationBlock ‖
//! price.num ‖ price.den ‖ auxData)` (Go `big.Int.Bytes()` forms: minimal big-endian, empty for zero; the
//! price in lowest terms) and it advertises `keccak256(rand)`. A payment is checked by recomputing that
//! hash from what the payment carries: a match proves we issued exactly these params to this sender at this
//! price, so nothing (face value, win probability, expiry, price, round) can have been altered.
//!
//! Block numbers and rounds come from a [`BlockClock`]. Off chain: wall-clock time divided by a block time
//! (12 s, an L1 block), and the "round" is `block / blocks_per_round + 1` with a block hash derived from the
//! round number (never zero, so go-livepeer senders keep our expiration params instead of substituting
//! theirs). On chain ([`BlockClock::chain`]): the last block a watcher saw (on Arbitrum the L1 block), the
//! last initialized round and its block hash, as the TicketBroker checks them. Either way params expire
//! `params_expiration_blocks` (40, as go-livepeer) blocks after issue.
//!
//! The secret is random per process. A restart therefore invalidates every outstanding set of params,
//! which is what makes the in-memory nonce table safe: nonces of forgotten params can never be replayed.
//! Senders fetch a fresh token (new params) for every payment anyway.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use num_bigint::BigUint;
use sha2::Sha256;

use crate::address::Address;
use crate::error::PaymentError;
use crate::hash::keccak256;
use crate::key::Signature;
use crate::proto::Payment;
use crate::ticket::{ExpirationParams, MAX_TICKETS, Ticket, TicketParams, WinProb};
use crate::wei::{AmountError, Balance, Price, Wei, minimal_be};

/// Where the chain is, as ticket params need it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ChainPoint {
    /// The last block seen (on Arbitrum the L1 block number the chain reports).
    pub block: u64,
    /// The last initialized round.
    pub round: u64,
    /// That round's block hash.
    pub round_block_hash: [u8; 32],
}

/// The source of block numbers and rounds: a clock off chain, a chain watcher's last reading on chain.
#[derive(Clone, Debug)]
pub struct BlockClock(ClockKind);

#[derive(Clone, Debug)]
enum ClockKind {
    System { block_secs: u64 },
    Manual(Arc<AtomicU64>),
    Chain(Arc<Mutex<ChainPoint>>),
}

impl BlockClock {
    /// Block `n` is the `n`-th period of `block_time` since the Unix epoch.
    pub fn system(block_time: Duration) -> BlockClock {
        BlockClock(ClockKind::System { block_secs: block_time.as_secs().max(1) })
    }

    /// A clock that only moves when told to (tests).
    pub fn manual(start: u64) -> BlockClock {
        BlockClock(ClockKind::Manual(Arc::new(AtomicU64::new(start))))
    }

    /// A clock that reads what a chain watcher last saw ([`BlockClock::set_chain_point`]).
    pub fn chain(start: ChainPoint) -> BlockClock {
        BlockClock(ClockKind::Chain(Arc::new(Mutex::new(start))))
    }

    /// Moves a manual clock forward; does nothing to the others.
    pub fn advance(&self, blocks: u64) {
        if let ClockKind::Manual(b) = &self.0 {
            b.fetch_add(blocks, Ordering::SeqCst);
        }
    }

    /// Records a chain watcher's reading; does nothing to the other clocks.
    pub fn set_chain_point(&self, point: ChainPoint) {
        if let ClockKind::Chain(p) = &self.0 {
            *p.lock().unwrap_or_else(PoisonError::into_inner) = point;
        }
    }

    /// The current block number.
    pub fn current_block(&self) -> u64 {
        match &self.0 {
            ClockKind::System { block_secs } => {
                SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() / block_secs)
            }
            ClockKind::Manual(b) => b.load(Ordering::SeqCst),
            ClockKind::Chain(p) => p.lock().unwrap_or_else(PoisonError::into_inner).block,
        }
    }

    /// The block, round and round block hash now. Off chain the round is `block / blocks_per_round + 1`
    /// and its hash is derived from the round number.
    pub fn point(&self, blocks_per_round: u64) -> ChainPoint {
        if let ClockKind::Chain(p) = &self.0 {
            return *p.lock().unwrap_or_else(PoisonError::into_inner);
        }
        let block = self.current_block();
        let round = block / blocks_per_round.max(1) + 1;
        ChainPoint {
            block,
            round,
            round_block_hash: keccak256(&[b"byoc round ".as_slice(), &round.to_be_bytes()].concat()),
        }
    }
}

impl Default for BlockClock {
    fn default() -> Self {
        BlockClock::system(Duration::from_secs(12))
    }
}

/// What tickets a recipient asks for, and its limits.
#[derive(Clone, Debug)]
pub struct RecipientConfig {
    /// Pay-out of a winning ticket.
    pub face_value: Wei,
    /// Probability of a win (numerator over 2^256 − 1).
    pub win_prob: WinProb,
    /// How many blocks issued params stay valid (go-livepeer: 40).
    pub params_expiration_blocks: u64,
    /// Blocks per round (Livepeer: 5760).
    pub blocks_per_round: u64,
    /// Most tickets in one payment, and most nonces per set of params (go-livepeer: 600).
    pub max_tickets: usize,
    /// Most sets of params with nonces remembered at once (bounds memory).
    pub max_tracked_params: usize,
}

impl RecipientConfig {
    /// Tickets of `face_value` whose expected value is at least `ev` wei (go-livepeer's win probability).
    pub fn for_ev(face_value: Wei, ev: &Wei) -> RecipientConfig {
        RecipientConfig { win_prob: WinProb::for_ev(ev, &face_value), face_value, ..RecipientConfig::default() }
    }
}

impl Default for RecipientConfig {
    /// go-livepeer's defaults without gas prices: EV 1e12 wei (`-ticketEV`), face value 100 × EV.
    fn default() -> Self {
        let ev = Wei::from_u128(1_000_000_000_000);
        let face_value = Wei::from_u128(100_000_000_000_000);
        RecipientConfig {
            win_prob: WinProb::for_ev(&ev, &face_value),
            face_value,
            params_expiration_blocks: 40,
            blocks_per_round: 5760,
            max_tickets: MAX_TICKETS,
            max_tracked_params: 100_000,
        }
    }
}

/// A winning ticket with what redeeming it needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WinningTicket {
    /// The ticket.
    pub ticket: Ticket,
    /// The sender's signature of the ticket.
    pub sig: Signature,
    /// The preimage of the ticket's recipient_rand_hash.
    pub recipient_rand: [u8; 32],
}

/// What an accepted payment is worth.
#[derive(Clone, Debug)]
pub struct Receipt {
    /// The sender the payment was credited to.
    pub sender: Address,
    /// The price the params were issued at (checked: it is bound into recipient_rand_hash).
    pub price: Price,
    /// Number of tickets accepted (all of the payment's).
    pub tickets: usize,
    /// Total expected value to credit to the sender.
    pub ev: Balance,
    /// Winning tickets, to be stored durably before the payment is acknowledged.
    pub winning: Vec<WinningTicket>,
}

/// Nonces seen for one recipient_rand_hash.
struct Nonces {
    seen: HashSet<u32>,
    expiration_block: u64,
}

/// An orchestrator receiving tickets.
pub struct Recipient {
    address: Address,
    secret: zeroize::Zeroizing<[u8; 32]>,
    config: RecipientConfig,
    clock: BlockClock,
    nonces: Mutex<HashMap<[u8; 32], Nonces>>,
}

impl std::fmt::Debug for Recipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recipient").field("address", &self.address).field("config", &self.config).finish()
    }
}

impl Recipient {
    /// A recipient paid at `address`, with a fresh random secret.
    pub fn new(address: Address, config: RecipientConfig, clock: BlockClock) -> Recipient {
        let mut secret = zeroize::Zeroizing::new([0u8; 32]);
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, secret.as_mut());
        Recipient { address, secret, config, clock, nonces: Mutex::new(HashMap::new()) }
    }

    /// The address tickets must name.
    pub fn address(&self) -> Address {
        self.address
    }

    /// The settings.
    pub fn config(&self) -> &RecipientConfig {
        &self.config
    }

    /// Fresh params (a new random seed) for `sender` paying `price`. A free price gets zero face value
    /// and win probability, as in go-livepeer (no payment is needed).
    pub fn ticket_params(&self, sender: &Address, price: &Price) -> Result<TicketParams, AmountError> {
        self.ticket_params_capped(sender, price, None)
    }

    /// As [`Recipient::ticket_params`], with the face value capped at `max_face_value` (on chain: the
    /// sender's max float); the win probability rises to keep the expected value of a ticket.
    pub fn ticket_params_capped(
        &self,
        sender: &Address,
        price: &Price,
        max_face_value: Option<&Wei>,
    ) -> Result<TicketParams, AmountError> {
        price.check()?;
        let mut seed = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut seed);
        let (face_value, win_prob) = if price.is_free() {
            (Wei::zero(), WinProb::zero())
        } else {
            match max_face_value.filter(|cap| **cap < self.config.face_value) {
                Some(cap) => (cap.clone(), self.config.win_prob.rescaled(&self.config.face_value, cap)),
                None => (self.config.face_value.clone(), self.config.win_prob.clone()),
            }
        };
        let point = self.clock.point(self.config.blocks_per_round);
        let mut params = TicketParams {
            recipient: self.address,
            face_value,
            win_prob,
            recipient_rand_hash: [0; 32],
            seed,
            expiration_block: point.block.saturating_add(self.config.params_expiration_blocks),
            expiration_params: ExpirationParams {
                creation_round: i64::try_from(point.round).unwrap_or(i64::MAX),
                creation_round_block_hash: point.round_block_hash,
            },
        };
        let rand = self.rand(&params, sender, params.expiration_params, price)?;
        params.recipient_rand_hash = keccak256(&rand);
        Ok(params)
    }

    /// Validates every ticket of `payment` from `sender` (the job's signer) and, only if all are valid,
    /// records their nonces and returns what they are worth. Nothing is recorded for a refused payment.
    pub fn receive_payment(&self, payment: &Payment, sender: &Address) -> Result<Receipt, PaymentError> {
        let payer = Address(
            payment
                .sender
                .as_slice()
                .try_into()
                .map_err(|_| PaymentError::field("sender", format!("{} bytes, not 20", payment.sender.len())))?,
        );
        if payer != *sender {
            return Err(PaymentError::SenderMismatch { payment: payer, job: *sender });
        }
        let params =
            TicketParams::from_proto(payment.ticket_params.as_ref().ok_or(PaymentError::MissingTicketParams)?)?;
        let expiration = ExpirationParams::from_proto(
            payment.expiration_params.as_ref().ok_or(PaymentError::MissingExpirationParams)?,
        )?;
        let price_info = payment.expected_price.as_ref().ok_or(PaymentError::MissingPrice)?;
        let price = Price { price_per_unit: price_info.price_per_unit, pixels_per_unit: price_info.pixels_per_unit };
        price.check().map_err(PaymentError::BadPrice)?;
        let count = payment.ticket_sender_params.len();
        if count == 0 {
            return Err(PaymentError::NoTickets);
        }
        if count > self.config.max_tickets {
            return Err(PaymentError::TooManyTickets { count, max: self.config.max_tickets });
        }
        if params.recipient != self.address {
            return Err(PaymentError::WrongRecipient { expected: self.address, got: params.recipient });
        }
        if params.face_value.is_zero() || params.win_prob.is_zero() {
            return Err(PaymentError::ZeroEv);
        }
        let rand = self.rand(&params, &payer, expiration, &price).map_err(PaymentError::BadPrice)?;
        if keccak256(&rand) != params.recipient_rand_hash {
            return Err(PaymentError::UnknownParams);
        }
        let current_block = self.clock.current_block();
        if params.expiration_block <= current_block {
            return Err(PaymentError::Expired { expiration_block: params.expiration_block, current_block });
        }

        let mut nonces = HashSet::with_capacity(count);
        let mut winning = Vec::new();
        for tsp in &payment.ticket_sender_params {
            let nonce = tsp.sender_nonce;
            let sig = Signature(tsp.sig.as_slice().try_into().map_err(|_| PaymentError::BadSignature {
                nonce,
                reason: format!("{} bytes, not 65", tsp.sig.len()),
            })?);
            let ticket = Ticket::new(&params, expiration, payer, nonce);
            ticket.verify(&sig)?;
            if !nonces.insert(nonce) {
                return Err(PaymentError::ReplayedNonce { nonce });
            }
            if ticket.is_winning(&sig, &rand) {
                winning.push(WinningTicket { ticket, sig, recipient_rand: rand });
            }
        }
        self.record_nonces(params.recipient_rand_hash, params.expiration_block, &nonces, current_block)?;
        Ok(Receipt { sender: payer, price, tickets: count, ev: params.ev().times(count as u64), winning })
    }

    /// Sets of params whose nonces are remembered now.
    pub fn tracked_params(&self) -> usize {
        self.nonces.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    fn record_nonces(
        &self,
        rand_hash: [u8; 32],
        expiration_block: u64,
        new: &HashSet<u32>,
        current_block: u64,
    ) -> Result<(), PaymentError> {
        let mut table = self.nonces.lock().unwrap_or_else(PoisonError::into_inner);
        if !table.contains_key(&rand_hash) {
            // Expired params are refused before their nonces matter, so their entries can go.
            table.retain(|_, n| n.expiration_block > current_block);
            if table.len() >= self.config.max_tracked_params {
                return Err(PaymentError::TooManySessions { max: self.config.max_tracked_params });
            }
        }
        let entry = table.entry(rand_hash).or_insert_with(|| Nonces { seen: HashSet::new(), expiration_block });
        if let Some(&nonce) = new.iter().filter(|n| entry.seen.contains(n)).min() {
            return Err(PaymentError::ReplayedNonce { nonce });
        }
        if entry.seen.len() + new.len() > self.config.max_tickets {
            return Err(PaymentError::TooManyNonces { max: self.config.max_tickets });
        }
        entry.seen.extend(new);
        Ok(())
    }

    /// The recipient's random number for these params, sender and price (see the module docs).
    fn rand(
        &self,
        params: &TicketParams,
        sender: &Address,
        expiration: ExpirationParams,
        price: &Price,
    ) -> Result<[u8; 32], AmountError> {
        let (num, den) = price.reduced()?;
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.secret.as_ref()).expect("HMAC takes any key length");
        mac.update(&minimal_be(&BigUint::from_bytes_be(&params.seed)));
        mac.update(&sender.0);
        mac.update(&params.face_value.to_be_bytes());
        mac.update(&params.win_prob.to_be_bytes());
        mac.update(&minimal_be(&BigUint::from(params.expiration_block)));
        mac.update(&minimal_be(&num));
        mac.update(&minimal_be(&den));
        mac.update(&expiration.aux_data());
        Ok(mac.finalize().into_bytes().into())
    }
}

#[cfg(test)]
#[path = "recipient_tests.rs"]
mod tests;
