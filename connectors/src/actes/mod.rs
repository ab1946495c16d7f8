//! @ctes: the transmission of acts to the prefecture for legality control.
//!
//! [`validate`] checks a dossier's metadata and files (every problem at once), [`write_package`]
//! builds the `<TRIGRAMME>-EACT--<SIREN>--<YYYYMMDD>-<n>.tar.gz` archive with its
//! `EnveloppeCLMISILL` envelope and `Acte` message (schema `actesv1_1.xsd`), [`read_archive`]
//! lists such an archive, and [`parse_return`] reads what the prefecture sends back.

mod classification;
mod message;
mod metadata;
mod nature;
mod package;
mod reader;
mod returns;

pub use classification::TenantClassification;
pub use message::ActeData;
pub use metadata::{
    ActeDocument, ActesMetadata, Arrondissement, Departement, NumeroInterne, Referent, Siren,
    SizeLimits, Trigramme, TypePj, ValidActe, ValidDocument, validate,
};
pub use nature::NatureActe;
pub use package::{ArchiveName, Package, write_package};
pub use reader::{ActesArchive, ArchiveMember, EnvelopeData, read_archive};
pub use returns::{
    ActesReturn, AnomalieActe, AnomalieEnveloppe, ArActe, ArAnnulation, parse_return,
};
/// The @ctes namespace (`actes:` prefix).
pub const ACTES_NS: &str = "http://www.interieur.gouv.fr/ACTES#v1.1-20040216";
/// The INSEE namespace, which carries the `SIREN` attribute.
pub const INSEE_NS: &str = "http://xml.insee.fr/schema";
