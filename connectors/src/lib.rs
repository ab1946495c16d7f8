//! `seing-connectors` — the outside world of seing.
//!
//! Transmission of acts to the prefecture (@ctes) and of PES V2 files to the treasury (Hélios),
//! through the S²LOW HTTP API or a drop folder; SEDA 2.1 archive packages; notification mail with
//! proof of receipt. It implements the ports (traits) that `seing-engine` defines, and may depend on
//! `seing-engine` and `seing-signer`, never on the API crate.
//!
//! This first layer holds the formats, as plain functions over typed inputs: the @ctes
//! transmission archive and the prefecture's returns ([`actes`]), the Hélios `PES_Acquit`
//! ([`helios`]), and the SEDA 2.1 transfer package and its reply ([`seda`]).
//!
//! Transports: the S²LOW platform's HTTP API ([`s2low`]) and drop folders ([`dropfolder`]);
//! notification mail with timestamped proof of receipt ([`notification`]); the engine's ports
//! over them ([`ports`]), configured per tenant ([`settings`]); [`recovery`] lets an
//! administrator give a PES whose S²LOW answer was lost its transaction number.
//! [`webhooks`] delivers the engine's webhook events over HTTP, signed with HMAC-SHA256.

pub mod actes;
mod dates;
pub mod dropfolder;
mod error;
pub mod helios;
pub mod notification;
mod paths;
pub mod ports;
mod problem;
pub mod recovery;
pub mod s2low;
pub mod seda;
pub mod settings;
mod tls;
pub mod webhooks;
mod xml;

pub use error::{Error, Result};
pub use problem::Problem;
