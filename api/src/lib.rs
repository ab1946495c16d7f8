//! `seing-api` — the `seing` binary and its HTTP service.
//!
//! The REST API (axum) for business software, the web UI for élus and agents, the command line,
//! the local signing agent and the background workers. It is the only crate that speaks HTTP to
//! people and software, and it may depend on every other seing crate
//! (`api → connectors → engine → signer`).

pub mod agent;
pub mod cli;
pub mod config;
pub mod demo;
pub mod http;
pub mod server;
pub mod ui;
pub mod worker;
