//! On-chain mode: Livepeer's contracts read and called over JSON-RPC (`alloy`).
//!
//! - [`Chain`]: one connection; contract addresses from the Controller (`getContract(keccak256(name))`).
//! - [`watcher`]: the block/round watcher that keeps the orchestrator's `BlockClock` on the chain (real
//!   expiration blocks, creation rounds and block hashes in ticket params).
//! - [`senders`]: the checks before a payment is credited (unlocking, unfunded, max float).
//! - [`redeemer`]: the ticket store's queue redeemed on the TicketBroker, exactly once.
//! - [`Chain::pool`]: the orchestrator pool with service URIs, for a gateway's discovery.
//! - [`Chain::fund`], [`Chain::unlock`], [`Chain::withdraw`]: a sender's funding from the CLI.

pub mod client;
pub mod contracts;
mod error;
pub mod redeemer;
pub mod senders;
pub mod watcher;

pub use client::{Chain, Contracts, SenderInfo};
pub use error::ChainError;
pub use redeemer::RedeemConfig;
pub use senders::{SenderRefusal, Senders};
pub use watcher::ChainState;
