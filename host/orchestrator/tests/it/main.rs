//! The orchestrator's integration tests, in one binary:
//! - `routes`: the router alone (no sockets), each route's refusals, status by status;
//! - `over_http`: streams and batch jobs over real HTTP on loopback, against a toy worker;
//! - `python_peers`: third-party Python peers (pytrickle's registration, livepeer-gateway's
//!   batch client);
//! - `grpc`: `GetOrchestrator` over TLS with the official Python SDK as the client, payments and
//!   segment credentials made from what it got, TLS beside plain HTTP on one port;
//! - `pytrickle_worker`: a real pytrickle worker serving a stream through the orchestrator.

#![allow(missing_docs)]

mod common;
mod grpc;
mod over_http;
mod python_peers;
mod pytrickle_worker;
mod routes;
