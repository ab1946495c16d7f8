//! Hélios (PES V2): what the DGFiP answers about a sent file.

mod acquit;

pub use acquit::{AckDomain, AckElement, AckError, AckSubject, Acquit, parse_acquit};

/// Namespace of `PES_ACQUIT` (`PES_V2/Rev0/PES_V2_Acquit_Autonome_V2.xsd`).
pub const PES_ACQUIT_NS: &str = "http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/retour/v2";
