//! [`PaymentError`]: every reason a payment is refused, each with a message fit for a 4xx body.

use crate::address::Address;
use crate::proto::HeaderError;
use crate::wei::AmountError;

/// Why a payment (or a ticket in it) was refused. Every variant is the payer's fault: answer 4xx.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[allow(missing_docs, reason = "each variant's #[error] message is its documentation")]
pub enum PaymentError {
    #[error(transparent)]
    Header(#[from] HeaderError),
    #[error("payment has no ticket_params")]
    MissingTicketParams,
    #[error("payment has no expiration_params")]
    MissingExpirationParams,
    #[error("payment has no expected_price")]
    MissingPrice,
    #[error("payment field {field} is invalid: {reason}")]
    BadField { field: &'static str, reason: String },
    #[error("invalid expected_price: {0}")]
    BadPrice(AmountError),
    #[error("payment has no tickets")]
    NoTickets,
    #[error("payment has {count} tickets, more than the {max} allowed")]
    TooManyTickets { count: usize, max: usize },
    #[error("payment is from {payment}, but the job is signed by {job}")]
    SenderMismatch { payment: Address, job: Address },
    #[error("ticket recipient is {got}, not this orchestrator ({expected})")]
    WrongRecipient { expected: Address, got: Address },
    #[error(
        "ticket params were not issued by this orchestrator for this sender, or were altered \
         (recipient_rand_hash does not match seed, face value, win probability, expiry or price)"
    )]
    UnknownParams,
    #[error("ticket params expired at block {expiration_block} (now {current_block}); fetch a new token")]
    Expired { expiration_block: u64, current_block: u64 },
    #[error("ticket with sender nonce {nonce} has an invalid signature: {reason}")]
    BadSignature { nonce: u32, reason: String },
    #[error("ticket sender nonce {nonce} was already used with these ticket params")]
    ReplayedNonce { nonce: u32 },
    #[error("too many tickets for one set of ticket params (at most {max} nonces); fetch a new token")]
    TooManyNonces { max: usize },
    #[error("too many ticket params in use at once ({max}); try again later")]
    TooManySessions { max: usize },
    #[error("ticket expected value is zero (face value or win probability is 0)")]
    ZeroEv,
}

impl PaymentError {
    pub(crate) fn field(field: &'static str, reason: impl Into<String>) -> PaymentError {
        PaymentError::BadField { field, reason: reason.into() }
    }
}
