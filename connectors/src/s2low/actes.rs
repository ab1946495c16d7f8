//! Actes over S²LOW: create a transaction from a validated act, follow it, cancel it.

use std::path::Path;

use serde::Deserialize;

use super::client::{S2low, first_line, latin1_or_utf8, ok_lines};
use super::multipart::Form;
use super::status::{S2lowStatus, TransmissionState};
use crate::actes::{ActesReturn, ValidActe, parse_return};
use crate::dates::format_date;
use crate::paths::file_name;
use crate::{Error, Result};

const CREATE: &str = "/modules/actes/actes_transac_create.php";
const STATUS: &str = "/modules/actes/actes_transac_get_status.php";
const CANCEL: &str = "/modules/actes/actes_transac_cancel.php";
const LIST: &str = "/modules/actes/api/list_actes.php";

/// The statuses searched, in this order, when looking an act up again by its number: those of
/// a live act first, then those of an act that can no longer go on (error, refused, cancelled),
/// which still holds its number.
const LISTED_STATUSES: [i32; 8] = [1, 2, 3, 4, 5, -1, 6, 0];

/// An S²LOW Actes transaction number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ActesTransaction(pub u64);

impl std::fmt::Display for ActesTransaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An act found again by its numéro interne: its transaction and where it stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedActes {
    /// The transaction.
    pub transaction: ActesTransaction,
    /// Its status when listed.
    pub status: S2lowStatus,
}

/// Where an act stands on S²LOW.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActesStatusReport {
    /// The status.
    pub status: S2lowStatus,
    /// The prefecture's return, when the status carries one (`ARActe` at status 4).
    pub r#return: Option<ActesReturn>,
    /// The return message as received (kept as proof).
    pub return_bytes: Option<Vec<u8>>,
    /// The platform's error text (status -1).
    pub message: Option<String>,
}

fn is_duplicate_number(message: &str) -> bool {
    message.contains("même numéro interne")
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

fn transaction_id(path: &str, text: &[u8]) -> Result<ActesTransaction> {
    let (line, _) = first_line(text);
    latin1_or_utf8(line)
        .trim()
        .parse()
        .map(ActesTransaction)
        .map_err(|_| {
            Error::Transport(format!(
                "S²LOW {path} : numéro de transaction illisible « {} »",
                latin1_or_utf8(line).trim()
            ))
        })
}

#[derive(Deserialize)]
struct Listing {
    #[serde(default)]
    transactions: Vec<Listed>,
}

#[derive(Deserialize)]
struct Listed {
    id: serde_json::Value,
    number: Option<String>,
}

impl S2low {
    /// Posts an act (`actes_transac_create.php`) and returns its transaction number.
    ///
    /// A second act with the same numéro interne is refused by S²LOW:
    /// [`Error::Duplicate`]; [`S2low::existing_actes`] then finds the first one again.
    pub fn create_actes(&self, acte: &ValidActe) -> Result<ActesTransaction> {
        let mut form = Form::new()
            .text("api", "1")
            .text("nature_code", &acte.nature.code().to_string())
            .text("number", acte.numero_interne.as_str())
            .text("decision_date", &format_date(acte.date_decision))
            .text("subject", &acte.objet)
            .text("en_attente", "0")
            .text("document_papier", "0")
            .text("type_acte", acte.act.type_pj.as_str());
        for (i, level) in acte.classification.iter().enumerate() {
            form = form.text(&format!("classif{}", i + 1), &level.to_string());
        }
        for annex in &acte.annexes {
            form = form.text("type_pj[]", annex.type_pj.as_str());
        }
        form = form.file(
            "acte_pdf_file",
            &file_name(&acte.act.path),
            &read(&acte.act.path)?,
        );
        if let Some((signature, _)) = &acte.act.signature {
            form = form.file(
                "acte_pdf_file_sign",
                &file_name(signature),
                &read(signature)?,
            );
        }
        for annex in &acte.annexes {
            form = form.file(
                "acte_attachments[]",
                &file_name(&annex.path),
                &read(&annex.path)?,
            );
        }
        for annex in &acte.annexes {
            if let Some((signature, _)) = &annex.signature {
                form = form.file(
                    "acte_attachments_sign[]",
                    &file_name(signature),
                    &read(signature)?,
                );
            }
        }
        let body = self.post(CREATE, form)?;
        transaction_id(CREATE, ok_lines(CREATE, &body, is_duplicate_number)?)
    }

    /// Finds the authority's act with numéro interne `number` (`api/list_actes.php`, status by
    /// status), to recover a transaction whose creation answer was lost, or to tell that the
    /// number belongs to a transaction in error, refused or cancelled.
    pub fn find_actes(&self, number: &str) -> Result<Option<ListedActes>> {
        for status in LISTED_STATUSES {
            let body = self.get(&format!("{LIST}?status_id={status}&offset=0&limit=1000"))?;
            let listing: Listing = serde_json::from_slice(&body)
                .map_err(|e| Error::Transport(format!("S²LOW {LIST} : JSON illisible ({e})")))?;
            for listed in listing.transactions {
                if listed.number.as_deref() == Some(number) {
                    let id = match &listed.id {
                        serde_json::Value::Number(n) => n.as_u64(),
                        serde_json::Value::String(s) => s.parse().ok(),
                        _ => None,
                    };
                    return id
                        .map(|id| {
                            Some(ListedActes {
                                transaction: ActesTransaction(id),
                                status: S2lowStatus::from_code(status),
                            })
                        })
                        .ok_or_else(|| {
                            Error::Transport(format!("S²LOW {LIST} : identifiant illisible"))
                        });
                }
            }
        }
        Ok(None)
    }

    /// The transaction of the act S²LOW refused as a repeat of numéro interne `number`: the
    /// one whose creation answer was lost, while it is alive; [`Error::NumberTaken`] when the
    /// number belongs to a transaction in error, refused or cancelled (with S²LOW's message
    /// for one in error), which no new act can take over.
    pub fn existing_actes(&self, number: &str) -> Result<ActesTransaction> {
        let listed = self.find_actes(number)?.ok_or_else(|| {
            Error::Transport(format!(
                "S²LOW a déjà un acte numéro {number} mais ne le retrouve pas"
            ))
        })?;
        if !matches!(
            listed.status.state(),
            TransmissionState::Refused | TransmissionState::Cancelled
        ) {
            return Ok(listed.transaction);
        }
        let message = if listed.status == S2lowStatus::Error {
            self.actes_status(listed.transaction)?.message
        } else {
            None
        };
        Err(Error::NumberTaken {
            number: number.to_owned(),
            transaction: listed.transaction,
            status: listed.status,
            message,
        })
    }

    /// The status of an act (`actes_transac_get_status.php`), with the prefecture's return.
    pub fn actes_status(&self, transaction: ActesTransaction) -> Result<ActesStatusReport> {
        let body = self.get(&format!("{STATUS}?transaction={transaction}"))?;
        let rest = ok_lines(STATUS, &body, |_| false)?;
        let (code, rest) = first_line(rest);
        let code = latin1_or_utf8(code);
        let status = code
            .trim()
            .parse()
            .map(S2lowStatus::from_code)
            .map_err(|_| {
                Error::Transport(format!(
                    "S²LOW {STATUS} : statut illisible « {} »",
                    code.trim()
                ))
            })?;
        let rest = rest.trim_ascii();
        let mut report = ActesStatusReport {
            status,
            r#return: None,
            return_bytes: None,
            message: None,
        };
        if rest.is_empty() {
            return Ok(report);
        }
        if rest.starts_with(b"<") {
            report.r#return = Some(parse_return(rest).map_err(|e| {
                Error::Transport(format!("S²LOW {STATUS} : retour illisible ({e})"))
            })?);
            report.return_bytes = Some(rest.to_vec());
        } else {
            report.message = Some(latin1_or_utf8(rest).trim().to_owned());
        }
        Ok(report)
    }

    /// Asks S²LOW to cancel a transmitted act (`actes_transac_cancel.php`); returns the
    /// cancellation's own transaction number.
    pub fn cancel_actes(&self, transaction: ActesTransaction) -> Result<ActesTransaction> {
        let form = Form::new()
            .text("api", "1")
            .text("id", &transaction.to_string());
        let body = self.post(CANCEL, form)?;
        transaction_id(CANCEL, ok_lines(CANCEL, &body, |_| false)?)
    }
}
