//! `seing-signer` — the signature library of seing.
//!
//! It produces and verifies CAdES, XAdES, PAdES and DGFiP PES V2 (Hélios) signatures, baseline
//! levels B-B and B-T, with keys held on PKCS#11 tokens or in software files. Every format follows
//! one model: `prepare` builds what is signed and returns the data to sign with a serializable
//! state, a key signs, `finalize` checks the signature values and assembles the document. It knows
//! nothing of workflows, storage or HTTP servers, and depends on no other seing crate.

pub mod cades;
pub mod cms;
pub mod digest;
pub mod error;
pub mod key;
pub mod model;
pub mod pades;
pub mod pes;
pub mod tsp;
pub mod verify;
pub mod x509;
pub mod xades;
pub mod xml;
