//! `seing-engine` — the parapheur workflow engine of seing.
//!
//! Tenants (authorities), users, desks (*bureaux*) and delegations; circuits of steps (visa,
//! signature, seal, notification, transmission, archive); dossiers and their state machine; the
//! hash-chained audit journal; storage on SQLite or PostgreSQL, the document store and the outbox.
//! It never speaks HTTP: transmission, archive and mail are ports (traits) implemented by
//! `seing-connectors`. The entry point is [`Engine`]; every method takes the acting user and
//! returns [`EngineError`] variants that map onto HTTP statuses.

pub mod access;
pub mod bureau;
pub mod circuit;
pub mod clock;
pub mod directory;
pub mod docstore;
pub mod dossiers;
pub mod engine;
pub mod error;
pub mod ids;
pub mod journal;
pub mod metadata;
pub mod model;
pub mod outbox;
pub mod ports;
pub mod signing;
pub mod storage;
pub mod webhooks;
pub mod workflow;

pub use engine::Engine;
pub use error::{EngineError, EngineResult};
