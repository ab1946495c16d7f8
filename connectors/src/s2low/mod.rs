//! Client of the S²LOW platform's HTTP API (the « tiers de télétransmission » most French
//! authorities use for @ctes and Hélios).
//!
//! What it follows: the API that S²LOW publishes and that its clients (Pastell among them) use —
//! form posts and plain-text or XML answers, not JSON:
//!
//! - Actes: `POST /modules/actes/actes_transac_create.php` (multipart: `api=1`, `nature_code`,
//!   `classif1`…`classif5`, `number`, `decision_date`, `subject`, `type_acte`, `type_pj[]`,
//!   `en_attente`, `document_papier`, files `acte_pdf_file`, `acte_pdf_file_sign`,
//!   `acte_attachments[]`, `acte_attachments_sign[]`) answers `OK\n<transaction id>` or
//!   `KO\n<message>`; S²LOW builds the @ctes envelope itself and refuses a second act with the
//!   same numéro interne. `GET /modules/actes/actes_transac_get_status.php?transaction=ID`
//!   answers `OK\n<status>\n` followed by the `ARActe` when the status is 4, or the error text
//!   when it is -1. `POST /modules/actes/actes_transac_cancel.php` (`api=1`, `id`) answers
//!   `OK\n<id of the cancellation>`. `GET /modules/actes/api/list_actes.php?status_id=N` lists
//!   the authority's transactions at a status (JSON), which finds an act again by its number.
//! - Hélios: `POST /modules/helios/api/helios_importer_fichier.php` (multipart file
//!   `enveloppe`) answers `<import><id/><resultat>OK|KO</resultat><message/></import>`; S²LOW
//!   refuses a file whose SHA-1 it has seen (« doublon »).
//!   `GET /modules/helios/api/helios_transac_get_status.php?transaction=ID` answers
//!   `<transaction><id/><resultat/><message/><status/></transaction>`;
//!   `GET /modules/helios/helios_download_acquit.php?id=ID` returns the `PES_Acquit`.
//! - Status codes: -1 error, 0 cancelled, 1 posted, 2 waiting for transmission, 3 transmitted,
//!   4 acknowledged, 5 validated, 6 refused, then Hélios 7 processing and 8 information
//!   available (the acquit can be fetched); anything else is kept as an unknown code.
//!
//! Authentication is a TLS client certificate (RGS), optionally with HTTP Basic login/password
//! (S²LOW accounts shared by several users need it). Calls are blocking (`ureq`); async callers
//! run them on a blocking thread.

mod actes;
mod client;
mod helios;
mod multipart;
mod status;

pub use actes::{ActesStatusReport, ActesTransaction, ListedActes};
pub use client::{ClientIdentity, Credentials, S2low, S2lowConfig};
pub use helios::{HeliosStatusReport, HeliosTransaction};
pub use status::{S2lowStatus, TransmissionState};
