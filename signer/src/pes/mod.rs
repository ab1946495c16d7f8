//! The DGFiP Hélios PES V2 profile: what a PES_Aller file holds (the bordereaux summary an élu
//! sees before signing), the pre-flight check, and XAdES-EPES signatures of its bordereaux.
//!
//! One enveloped `ds:Signature` per bordereau, as the bordereau's last child, referencing its
//! `Id` — or one over the whole `PES_Aller` when a bordereau has no `Id`. The file keeps its
//! encoding and every byte outside the inserted signatures.

pub mod check;
pub mod sign;
pub mod summary;
pub mod verify;

pub use check::{PreflightReport, preflight};
pub use sign::{Pes, PesRequest, PesSigned, PesState, sign_pes};
pub use summary::{BordereauSummary, Domain, PesSummary, summarize};
