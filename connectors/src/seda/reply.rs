//! `ArchiveTransferReply`: the archive service accepts or rejects a transfer.

use roxmltree::Node;

use super::SEDA21_NS;
use crate::xml::{self, child, children};
use crate::{Error, Result};

/// The verdict of a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyOutcome {
    /// The transfer was accepted (`ReplyCode` `OK` or `000`).
    Accepted,
    /// The transfer was accepted with warnings (`WARNING`).
    AcceptedWithWarnings,
    /// The transfer was rejected (any other code, e.g. `KO`, `FATAL`).
    Rejected,
}

/// One `Operation/Event` of the reply: a step of the service's processing and how it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyEvent {
    /// `EventTypeCode`.
    pub type_code: Option<String>,
    /// `EventType`.
    pub event_type: Option<String>,
    /// `EventDateTime`.
    pub date_time: Option<String>,
    /// `Outcome` (e.g. `OK`, `KO`).
    pub outcome: Option<String>,
    /// `OutcomeDetail`.
    pub outcome_detail: Option<String>,
    /// `OutcomeDetailMessage`: the reason in words.
    pub message: Option<String>,
}

/// A parsed `ArchiveTransferReply`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferReply {
    /// Accepted or rejected.
    pub outcome: ReplyOutcome,
    /// `ReplyCode` as written.
    pub reply_code: String,
    /// `MessageRequestIdentifier`: the `MessageIdentifier` of the transfer answered.
    pub message_request_identifier: String,
    /// `MessageIdentifier` of the reply.
    pub message_identifier: String,
    /// `Date` of the reply.
    pub date: String,
    /// `GrantDate`: when the archives were taken in charge.
    pub grant_date: Option<String>,
    /// `Comment`s.
    pub comments: Vec<String>,
    /// `Operation/Event`s.
    pub events: Vec<ReplyEvent>,
}

fn text(node: Node<'_, '_>, name: &str) -> Option<String> {
    child(node, SEDA21_NS, name)
        .and_then(|c| c.text())
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// Parses an `ArchiveTransferReply` (SEDA 2.1; DTDs refused).
pub fn parse_reply(bytes: &[u8]) -> Result<TransferReply> {
    let decoded = xml::decode(bytes)?;
    let doc = xml::parse(&decoded)?;
    let root = doc.root_element();
    if !xml::is(root, SEDA21_NS, "ArchiveTransferReply") {
        return Err(Error::Format(format!(
            "racine <{}>, ArchiveTransferReply SEDA 2.1 attendu",
            root.tag_name().name()
        )));
    }
    let required = |name: &str| {
        text(root, name).ok_or_else(|| Error::Format(format!("<{name}> absent ou vide")))
    };
    let reply_code = required("ReplyCode")?;
    let outcome = match reply_code.to_ascii_uppercase().as_str() {
        "OK" | "000" => ReplyOutcome::Accepted,
        "WARNING" => ReplyOutcome::AcceptedWithWarnings,
        _ => ReplyOutcome::Rejected,
    };
    let events = child(root, SEDA21_NS, "Operation")
        .map(|op| {
            children(op, SEDA21_NS, "Event")
                .map(|e| ReplyEvent {
                    type_code: text(e, "EventTypeCode"),
                    event_type: text(e, "EventType"),
                    date_time: text(e, "EventDateTime"),
                    outcome: text(e, "Outcome"),
                    outcome_detail: text(e, "OutcomeDetail"),
                    message: text(e, "OutcomeDetailMessage"),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(TransferReply {
        outcome,
        reply_code,
        message_request_identifier: required("MessageRequestIdentifier")?,
        message_identifier: required("MessageIdentifier")?,
        date: required("Date")?,
        grant_date: text(root, "GrantDate"),
        comments: children(root, SEDA21_NS, "Comment")
            .filter_map(|c| c.text().map(|t| t.trim().to_owned()))
            .collect(),
        events,
    })
}
