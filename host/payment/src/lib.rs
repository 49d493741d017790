//! Keys, signing and payments for BYOC, byte-compatible with go-livepeer.
//!
//! - [`Address`]: a 20-byte Ethereum address with EIP-55 checksummed text form.
//! - [`SecretKey`] / [`Signature`]: secp256k1, EIP-191 `personal_sign` over `keccak256(message)`
//!   (go-livepeer signs the 32-byte digest, not the raw message), 65-byte `r||s||v` with v 27/28,
//!   low-s enforced on verification, address recovery.
//! - [`keyfile`]: Ethereum JSON keystores (scrypt + AES-128-CTR) and plain hex key files, 0600.
//! - [`job`]: the `Livepeer` job header (`JobRequest`) and the `Livepeer-Eth-Address` credential.
//! - Money: [`Wei`], exact fractional [`Balance`]s (never floats) and [`Price`]s in wei per second.
//! - Probabilistic micropayments as go-livepeer `pm/`: [`TicketParams`] (job-token JSON form), the
//!   `Livepeer-Payment` header ([`Payment`], protobuf in [`proto`]), [`create_payment`] and
//!   [`tickets_for_cost`] for the gateway, a [`Recipient`] for the orchestrator that validates every
//!   ticket and reports its value and winners ([`Receipt`]), or a [`PaymentError`] fit for a 4xx.
//! - [`segcreds`]: orchestrator session tokens and `Livepeer-Segment` credentials.
//! - [`Ledger`]: balances by (payer, capability[, stream]) with TTL eviction.
//! - [`TicketStore`]: winning tickets and balances in SQLite, synced before a payment is acknowledged;
//!   the redemption queue, each ticket with its [`RedemptionState`] (on-chain mode redeems from it).

mod address;
mod error;
mod hash;
pub mod job;
mod key;
pub mod keyfile;
mod ledger;
pub mod proto;
mod recipient;
pub mod segcreds;
mod store;
mod ticket;
mod wei;

pub use address::{Address, AddressError};
pub use error::PaymentError;
pub use hash::keccak256;
pub use key::{SecretKey, Signature, SignatureError, random_hex};
pub use ledger::{BalanceKey, DEFAULT_BALANCE_TTL, Ledger, LedgerError};
pub use proto::Payment;
pub use recipient::{BlockClock, ChainPoint, Receipt, Recipient, RecipientConfig, WinningTicket};
pub use store::{RedemptionState, StoreError, StoredTicket, TicketStore};
pub use ticket::{
    ExpirationParams, MAX_TICKETS, Ticket, TicketParams, WinProb, create_payment, ticket_ev, tickets_for_cost,
};
pub use wei::{AmountError, Balance, Price, Wei};
