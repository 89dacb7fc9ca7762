//! The webhook handler against real HTTP: a server on 127.0.0.1:0 (axum, and plain hyper) and
//! real requests (reqwest, and raw TCP for what a client library refuses to send).
#![cfg(feature = "axum")]

mod bodies;
mod contract;
mod dedup;
mod error_chains;
mod hooks;
mod metrics;
mod serving;
mod support;
mod verification;
mod verify_bytes;
