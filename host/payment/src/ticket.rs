//! Probabilistic micropayment tickets, byte-compatible with go-livepeer `pm/`.
//!
//! - [`TicketParams`]: what an orchestrator issues to one sender (JSON as in go-livepeer's job token).
//! - [`Ticket::hash`]: keccak256 of the tightly packed fields `recipient(20) ‖ sender(20) ‖ faceValue(32) ‖
//!   winProb(32) ‖ senderNonce(32) ‖ recipientRandHash(32) ‖ auxData`, where auxData is
//!   `creationRound(32) ‖ creationRoundBlockHash(32)`, or nothing when both are zero.
//! - The sender signs with `personal_sign` over the 32-byte ticket hash, which is exactly
//!   [`SecretKey::sign`] of the packed bytes (it signs `TextHash(keccak256(msg))`).
//! - A ticket wins when `keccak256(sig ‖ recipientRand(32))`, read as a big-endian number, is below winProb.
//! - Expected value: `faceValue × winProb / (2^256 − 1)` (go-livepeer's `maxWinProb` is 2^256 − 1).
//! - [`create_payment`] and [`tickets_for_cost`] are the sender (gateway) side.

use num_bigint::BigUint;
use num_integer::Integer;
use num_rational::BigRational;
use num_traits::{One, ToPrimitive, Zero};

use crate::address::Address;
use crate::error::PaymentError;
use crate::hash::keccak256;
use crate::key::{SecretKey, Signature};
use crate::proto;
use crate::wei::{Balance, Price, Wei, be32, minimal_be, signed, uint256_from_be};

/// The most tickets one payment may carry, and the most nonces one set of ticket params accepts
/// (go-livepeer `maxSenderNonces`).
pub const MAX_TICKETS: usize = 600;

/// A winning probability as the numerator of a fraction over 2^256 − 1 (which is a certain win).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
pub struct WinProb(BigUint);

impl WinProb {
    /// Never wins.
    pub fn zero() -> WinProb {
        WinProb(BigUint::zero())
    }

    /// Always wins: 2^256 − 1.
    pub fn max() -> WinProb {
        WinProb((BigUint::one() << 256u32) - 1u32)
    }

    /// The probability go-livepeer advertises for a ticket of `face_value` worth `ev` wei:
    /// `ev × ceil((2^256 − 1) / face_value)`, capped at certain; zero when the face value is zero.
    pub fn for_ev(ev: &Wei, face_value: &Wei) -> WinProb {
        let fv = face_value.as_biguint();
        if fv.is_zero() {
            return WinProb::zero();
        }
        let max = WinProb::max().0;
        let (q, r) = max.div_rem(fv);
        let x = if r.is_zero() { q } else { q + 1u32 };
        WinProb((ev.as_biguint() * x).min(max))
    }

    /// The probability giving a ticket of face value `to` the expected value this one gives a ticket of
    /// `from`: `p × from / to` rounded up, capped at certain; zero when `to` is zero.
    pub fn rescaled(&self, from: &Wei, to: &Wei) -> WinProb {
        let to = to.as_biguint();
        if to.is_zero() {
            return WinProb::zero();
        }
        let (q, r) = (&self.0 * from.as_biguint()).div_rem(to);
        let p = if r.is_zero() { q } else { q + 1u32 };
        WinProb(p.min(WinProb::max().0))
    }

    /// From big-endian bytes (leading zeros allowed).
    pub fn from_be_bytes(bytes: &[u8]) -> Result<WinProb, PaymentError> {
        uint256_from_be(bytes).map(WinProb).map_err(|e| PaymentError::field("win_prob", e.to_string()))
    }

    /// Minimal big-endian bytes, empty for zero.
    pub fn to_be_bytes(&self) -> Vec<u8> {
        minimal_be(&self.0)
    }

    /// Whether the ticket can never win.
    pub fn is_zero(&self) -> bool {
        self.0.is_zero()
    }
}

/// The round a ticket was created in, and that round's block hash (go-livepeer `TicketExpirationParams`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug)]
pub struct ExpirationParams {
    /// The round the params were made in.
    pub creation_round: i64,
    /// The hash of that round's first block.
    pub creation_round_block_hash: [u8; 32],
}

impl ExpirationParams {
    /// `creationRound(32) ‖ creationRoundBlockHash(32)`, or empty when both are zero.
    pub(crate) fn aux_data(&self) -> Vec<u8> {
        if self.creation_round == 0 && self.creation_round_block_hash == [0; 32] {
            return Vec::new();
        }
        // Go pads `big.NewInt(round).Bytes()`, the magnitude: a negative round hashes as its absolute value.
        let mut out = be32(&BigUint::from(self.creation_round.unsigned_abs())).to_vec();
        out.extend_from_slice(&self.creation_round_block_hash);
        out
    }

    fn to_proto(self) -> proto::TicketExpirationParams {
        proto::TicketExpirationParams {
            creation_round: self.creation_round,
            creation_round_block_hash: self.creation_round_block_hash.to_vec(),
        }
    }

    pub(crate) fn from_proto(p: &proto::TicketExpirationParams) -> Result<ExpirationParams, PaymentError> {
        Ok(ExpirationParams {
            creation_round: p.creation_round,
            creation_round_block_hash: hash32(&p.creation_round_block_hash, "creation_round_block_hash")?,
        })
    }
}

/// Ticket parameters an orchestrator (the recipient) issues to a sender. Serde uses go-livepeer's JSON form
/// (`ticket_params` of a job token: byte fields in standard base64).
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
#[serde(into = "proto::TicketParams", try_from = "proto::TicketParams")]
pub struct TicketParams {
    /// Who the tickets pay.
    pub recipient: Address,
    /// What a winning ticket pays.
    pub face_value: Wei,
    /// The chance that a ticket wins.
    pub win_prob: WinProb,
    /// keccak256 of the recipient's random number for this sender and seed.
    pub recipient_rand_hash: [u8; 32],
    /// The random value the recipient derives its random number from.
    pub seed: [u8; 32],
    /// The block at which these parameters stop being accepted.
    pub expiration_block: u64,
    /// When the params were made: the creation round and its block hash.
    pub expiration_params: ExpirationParams,
}

impl TicketParams {
    /// The expected value of one ticket, in wei.
    pub fn ev(&self) -> Balance {
        ticket_ev(&self.face_value, &self.win_prob)
    }

    /// The protobuf form, as carried in a payment.
    pub fn to_proto(&self) -> proto::TicketParams {
        proto::TicketParams {
            recipient: self.recipient.0.to_vec(),
            face_value: self.face_value.to_be_bytes(),
            win_prob: self.win_prob.to_be_bytes(),
            recipient_rand_hash: self.recipient_rand_hash.to_vec(),
            seed: minimal_be(&BigUint::from_bytes_be(&self.seed)),
            expiration_block: minimal_be(&BigUint::from(self.expiration_block)),
            expiration_params: Some(self.expiration_params.to_proto()),
        }
    }

    /// From the protobuf form, checking lengths and ranges.
    pub fn from_proto(p: &proto::TicketParams) -> Result<TicketParams, PaymentError> {
        let recipient = Address(p.recipient.as_slice().try_into().map_err(|_| {
            PaymentError::field("ticket_params.recipient", format!("{} bytes, not 20", p.recipient.len()))
        })?);
        let face_value =
            Wei::from_be_bytes(&p.face_value).map_err(|e| PaymentError::field("face_value", e.to_string()))?;
        let seed = uint256_from_be(&p.seed).map_err(|e| PaymentError::field("seed", e.to_string()))?;
        let expiration_block = uint256_from_be(&p.expiration_block)
            .ok()
            .and_then(|b| b.to_u64())
            .ok_or_else(|| PaymentError::field("expiration_block", "does not fit in 64 bits"))?;
        Ok(TicketParams {
            recipient,
            face_value,
            win_prob: WinProb::from_be_bytes(&p.win_prob)?,
            recipient_rand_hash: hash32(&p.recipient_rand_hash, "recipient_rand_hash")?,
            seed: be32(&seed),
            expiration_block,
            expiration_params: match &p.expiration_params {
                Some(e) => ExpirationParams::from_proto(e)?,
                None => ExpirationParams::default(),
            },
        })
    }
}

impl From<TicketParams> for proto::TicketParams {
    fn from(t: TicketParams) -> Self {
        t.to_proto()
    }
}

impl TryFrom<proto::TicketParams> for TicketParams {
    type Error = PaymentError;
    fn try_from(p: proto::TicketParams) -> Result<Self, PaymentError> {
        TicketParams::from_proto(&p)
    }
}

/// One ticket: the params it was made from, the sender and its nonce.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Ticket {
    /// Who the ticket pays.
    pub recipient: Address,
    /// Who pays.
    pub sender: Address,
    /// What the ticket pays if it wins.
    pub face_value: Wei,
    /// The chance that it wins.
    pub win_prob: WinProb,
    /// The sender's nonce, unique per recipient random hash.
    pub sender_nonce: u32,
    /// keccak256 of the recipient's secret random number.
    pub recipient_rand_hash: [u8; 32],
    /// When the ticket's params were made: the creation round and its block hash.
    pub expiration: ExpirationParams,
    /// Not hashed: when the params the ticket was made from expire.
    pub params_expiration_block: u64,
}

impl Ticket {
    /// The ticket `params` and `expiration` make for `sender` with `nonce`.
    pub fn new(params: &TicketParams, expiration: ExpirationParams, sender: Address, nonce: u32) -> Ticket {
        Ticket {
            recipient: params.recipient,
            sender,
            face_value: params.face_value.clone(),
            win_prob: params.win_prob.clone(),
            sender_nonce: nonce,
            recipient_rand_hash: params.recipient_rand_hash,
            expiration,
            params_expiration_block: params.expiration_block,
        }
    }

    /// The tightly packed bytes whose keccak256 is the ticket hash.
    pub fn flatten(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(20 + 20 + 32 * 4 + 64);
        buf.extend_from_slice(&self.recipient.0);
        buf.extend_from_slice(&self.sender.0);
        buf.extend_from_slice(&self.face_value.to_be_bytes32());
        buf.extend_from_slice(&be32(&self.win_prob.0));
        buf.extend_from_slice(&be32(&BigUint::from(self.sender_nonce)));
        buf.extend_from_slice(&self.recipient_rand_hash);
        buf.extend_from_slice(&self.expiration.aux_data());
        buf
    }

    /// The ticket hash (what the sender signs, and what the TicketBroker contract checks).
    pub fn hash(&self) -> [u8; 32] {
        keccak256(&self.flatten())
    }

    /// The sender's signature: `personal_sign` over the ticket hash.
    pub fn sign(&self, key: &SecretKey) -> Result<Signature, PaymentError> {
        key.sign(&self.flatten())
            .map_err(|e| PaymentError::BadSignature { nonce: self.sender_nonce, reason: e.to_string() })
    }

    /// Checks that the ticket's sender signed it.
    pub fn verify(&self, sig: &Signature) -> Result<(), PaymentError> {
        sig.verify(&self.flatten(), &self.sender)
            .map_err(|e| PaymentError::BadSignature { nonce: self.sender_nonce, reason: e.to_string() })
    }

    /// Whether the ticket won: `keccak256(sig ‖ recipientRand) < winProb`.
    pub fn is_winning(&self, sig: &Signature, recipient_rand: &[u8; 32]) -> bool {
        let mut buf = Vec::with_capacity(65 + 32);
        buf.extend_from_slice(&sig.0);
        buf.extend_from_slice(recipient_rand);
        BigUint::from_bytes_be(&keccak256(&buf)) < self.win_prob.0
    }

    /// The expected value, in wei.
    pub fn ev(&self) -> Balance {
        ticket_ev(&self.face_value, &self.win_prob)
    }
}

/// `faceValue × winProb / (2^256 − 1)`, exactly.
pub fn ticket_ev(face_value: &Wei, win_prob: &WinProb) -> Balance {
    let num = signed(face_value.as_biguint()) * signed(&win_prob.0);
    Balance::from_rational(BigRational::new(num, signed(&WinProb::max().0)))
}

/// How many tickets of expected value `ev` pay for `cost`: `ceil(cost / ev)`, at most [`MAX_TICKETS`];
/// 0 when either is zero or negative. Exact (go-livepeer goes through a float here).
pub fn tickets_for_cost(cost: &Balance, ev: &Balance) -> u32 {
    if !ev.is_positive() {
        return 0;
    }
    let max = MAX_TICKETS as u32;
    cost.units_covering(ev).map_or(max, |n| u32::try_from(n).map_or(max, |n| n.min(max)))
}

/// Builds a `Livepeer-Payment` of `n_tickets` tickets signed by `key`, with sender nonces 1..=n like a fresh
/// go-livepeer session. Ticket params must come from a fresh token for every payment (each carries a fresh
/// seed): reusing them would repeat nonces, which the recipient refuses.
pub fn create_payment(
    key: &SecretKey,
    params: &TicketParams,
    price: &Price,
    n_tickets: u32,
) -> Result<proto::Payment, PaymentError> {
    if n_tickets == 0 {
        return Err(PaymentError::NoTickets);
    }
    if n_tickets as usize > MAX_TICKETS {
        return Err(PaymentError::TooManyTickets { count: n_tickets as usize, max: MAX_TICKETS });
    }
    price.check().map_err(PaymentError::BadPrice)?;
    let sender = key.address();
    let mut senders = Vec::with_capacity(n_tickets as usize);
    for nonce in 1..=n_tickets {
        let sig = Ticket::new(params, params.expiration_params, sender, nonce).sign(key)?;
        senders.push(proto::TicketSenderParams { sender_nonce: nonce, sig: sig.0.to_vec() });
    }
    Ok(proto::Payment {
        ticket_params: Some(params.to_proto()),
        sender: sender.0.to_vec(),
        expiration_params: Some(params.expiration_params.to_proto()),
        ticket_sender_params: senders,
        expected_price: Some(proto::PriceInfo {
            price_per_unit: price.price_per_unit,
            pixels_per_unit: price.pixels_per_unit,
            ..Default::default()
        }),
    })
}

fn hash32(bytes: &[u8], field: &'static str) -> Result<[u8; 32], PaymentError> {
    // Go's BytesToHash keeps the last 32 bytes and left-pads shorter input; we only accept 0 or 32 bytes.
    match bytes.len() {
        0 => Ok([0; 32]),
        32 => Ok(bytes.try_into().unwrap_or([0; 32])),
        n => Err(PaymentError::field(field, format!("{n} bytes, not 32"))),
    }
}

#[cfg(test)]
#[path = "ticket_tests.rs"]
mod tests;
