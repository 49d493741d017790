//! On-chain mode: Livepeer's contracts read and called over JSON-RPC.

pub mod contracts;
