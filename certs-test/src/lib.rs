//! `seing-certs-test` — test fixtures for seing's signatures.
//!
//! A PKI shaped like an RGS** hierarchy (root, "personnes" and "cachets" intermediates, élu, seal
//! and TSA certificates, expired, revoked and wrong-usage signers, a CRL), isolated SoftHSM2 tokens
//! whose keys are generated on the token, and a test RFC 3161 timestamp authority over HTTP. It is
//! never used by the product at run time; it may depend on `seing-signer` only.

mod command;
mod error;
mod files;
pub mod pki;
pub mod token;
pub mod tsa;

pub use error::Error;
pub use pki::TestPki;
pub use token::TestToken;
pub use tsa::TestTsa;
