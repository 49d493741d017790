//! Payments against the Python reference implementations (eth-account vectors, ticket peers).
//!
//! One test binary for the crate; each module is one subject.

mod common;
mod python_tickets;
mod python_vectors;
