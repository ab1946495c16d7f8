//! SEDA 2.1 (French archives' exchange standard): the `ArchiveTransfer` package of a finished
//! dossier, the archive service's `ArchiveTransferReply`, and the transfer by HTTP.

mod format;
mod manifest;
mod reply;
mod transfer;

pub use format::FileFormat;
pub use manifest::{
    AccessRule, AppraisalRule, FinalAction, ObjectRole, SedaFile, SedaMetadata, SedaPackage,
    WrittenObject, validate, write_package,
};
pub use reply::{ReplyEvent, ReplyOutcome, TransferReply, parse_reply};
pub use transfer::{ArchiveClient, ArchiveHttp, MESSAGE_ID_HEADER, pack};

/// The SEDA 2.1 namespace.
pub const SEDA21_NS: &str = "fr:gouv:culture:archivesdefrance:seda:v2.1";
