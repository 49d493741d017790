//! Helpers for the end-to-end tests (`tests/tests/*.rs`): real servers on loopback port 0 and
//! real third-party peers as child processes.
//!
//! - [`server`]: an in-process trickle server (optionally under a base path such as
//!   `/ai/trickle`) with a [`server::RequestLog`] of every request it handled, so a test can wait
//!   for "the subscriber's `GET ch/-1` has been resolved" instead of sleeping.
//! - [`peers`]: finding the peers' Python (`BYOC_PEERS_PYTHON`, set by `cargo xtask test`),
//!   running `tests/peers/trickle_peer.py` with bounded waits, and reading its result lines.
//! - [`chain`]: a local test chain for on-chain mode: anvil with the project's own contracts
//!   (`tests/chain/contracts/`, compiled with solc-js), deployed and registered, and helpers to
//!   fund senders, redeem tickets, move rounds and manage the transcoder pool.
//! - [`clients`]: the project's own trickle clients driven with the same payload convention as
//!   the Python peers, and plain HTTP calls (create / delete a channel).
//! - [`media`]: real MPEG-TS segments from ffmpeg's test sources, and ffprobe.
//! - [`nodes`]: the repository root, the bundled plugins (built on demand), job headers.
//! - [`wait`]: waiting for a condition (bounded, named) instead of sleeping.
//!
//! Every wait has a timeout and every child is killed when dropped; nothing listens anywhere but
//! 127.0.0.1.

pub mod chain;
pub mod clients;
pub mod media;
pub mod nodes;
pub mod peers;
pub mod server;
pub mod wait;

/// Whether the run must have every third-party peer and tool (`BYOC_REQUIRE_PEERS=1`, set by
/// `cargo xtask test`): a missing one is then a failure, not a skip.
pub fn peers_required() -> bool {
    std::env::var("BYOC_REQUIRE_PEERS").is_ok_and(|v| v == "1")
}
