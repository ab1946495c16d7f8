//! `seing-engine` — the parapheur workflow engine of seing.
//!
//! Tenants (authorities), users, desks (*bureaux*) and delegations; circuits of steps (visa,
//! signature, seal, notification, transmission, archive); dossiers and their state machine; the
//! hash-chained audit journal; storage on SQLite or PostgreSQL, the document store and the outbox.
//! It may depend on `seing-signer` (for signed-document types) and never speaks HTTP: transmission,
//! archive and mail are ports (traits) implemented by `seing-connectors`.

pub mod storage;
