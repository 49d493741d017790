//! Attacks on the nodes, as an outside client would try them over real HTTP on loopback, each
//! refused. One module per node; each test is named for the attack it refuses, so the files read
//! as a list of what an attacker may try and what happens.

mod gateway;
mod media;
mod orchestrator;
