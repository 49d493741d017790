//! The trickle server over real HTTP on loopback: the protocol as clients see it, and the attacks it
//! must refuse.
//!
//! One test binary for the crate; each module is one subject.

mod attack;
mod common;
mod http;
