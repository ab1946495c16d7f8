//! Hélios over S²LOW: import a signed `PES_Aller`, follow it, fetch its `PES_Acquit`.

use super::client::{S2low, latin1_or_utf8};
use super::multipart::Form;
use super::status::S2lowStatus;
use crate::helios::{Acquit, parse_acquit};
use crate::xml;
use crate::{Error, Result};

const IMPORT: &str = "/modules/helios/api/helios_importer_fichier.php";
const STATUS: &str = "/modules/helios/api/helios_transac_get_status.php";
const ACQUIT: &str = "/modules/helios/helios_download_acquit.php";
const FILE: &str = "/modules/helios/helios_download_file.php";

/// An S²LOW Hélios transaction number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HeliosTransaction(pub u64);

impl std::fmt::Display for HeliosTransaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Where a PES stands on S²LOW.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeliosStatusReport {
    /// The status.
    pub status: S2lowStatus,
    /// The platform's message about it.
    pub message: String,
}

/// The children of the XML answer's root: `(name, text)`.
fn answer_fields(path: &str, body: &[u8]) -> Result<Vec<(String, String)>> {
    let unreadable = |e: Error| Error::Transport(format!("S²LOW {path} : réponse illisible ({e})"));
    let text = xml::decode(body).map_err(unreadable)?;
    let doc = xml::parse(&text).map_err(unreadable)?;
    Ok(doc
        .root_element()
        .children()
        .filter(|n| n.is_element())
        .map(|n| {
            (
                n.tag_name().name().to_owned(),
                n.text().unwrap_or("").trim().to_owned(),
            )
        })
        .collect())
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn parse_id(path: &str, text: Option<&str>) -> Result<HeliosTransaction> {
    text.and_then(|t| t.parse().ok())
        .map(HeliosTransaction)
        .ok_or_else(|| {
            Error::Transport(format!(
                "S²LOW {path} : numéro de transaction illisible « {} »",
                text.unwrap_or("")
            ))
        })
}

impl S2low {
    /// Imports a signed `PES_Aller` (`helios_importer_fichier.php`).
    ///
    /// S²LOW refuses a file whose SHA-1 it already has: [`Error::Duplicate`].
    pub fn import_pes(&self, file_name: &str, pes: &[u8]) -> Result<HeliosTransaction> {
        // S²LOW keeps only these characters of the name (as its own clients do).
        let name: String = file_name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ' ') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let body = self.post(IMPORT, Form::new().file("enveloppe", &name, pes))?;
        let fields = answer_fields(IMPORT, &body)?;
        let message = field(&fields, "message").unwrap_or("").to_owned();
        match field(&fields, "resultat") {
            Some("OK") => parse_id(IMPORT, field(&fields, "id")),
            Some("KO") if message.contains("doublon") => Err(Error::Duplicate(message)),
            Some("KO") => Err(Error::Refused(format!("S²LOW {IMPORT} : {message}"))),
            other => Err(Error::Transport(format!(
                "S²LOW {IMPORT} : résultat inattendu « {} »",
                other.unwrap_or("")
            ))),
        }
    }

    /// The status of a PES (`helios_transac_get_status.php`).
    pub fn helios_status(&self, transaction: HeliosTransaction) -> Result<HeliosStatusReport> {
        let body = self.get(&format!("{STATUS}?transaction={transaction}"))?;
        let fields = answer_fields(STATUS, &body)?;
        let message = field(&fields, "message").unwrap_or("").to_owned();
        match field(&fields, "resultat") {
            Some("OK") => {
                let code = field(&fields, "status").unwrap_or("");
                let status = code.parse().map(S2lowStatus::from_code).map_err(|_| {
                    Error::Transport(format!("S²LOW {STATUS} : statut illisible « {code} »"))
                })?;
                Ok(HeliosStatusReport { status, message })
            }
            Some("KO") => Err(Error::Refused(format!("S²LOW {STATUS} : {message}"))),
            other => Err(Error::Transport(format!(
                "S²LOW {STATUS} : résultat inattendu « {} »",
                other.unwrap_or("")
            ))),
        }
    }

    /// Downloads and reads the `PES_Acquit` of a PES (`helios_download_acquit.php`); returns
    /// the bytes as received (kept as proof) and what they say.
    pub fn download_acquit(&self, transaction: HeliosTransaction) -> Result<(Vec<u8>, Acquit)> {
        let body = self.get(&format!("{ACQUIT}?id={transaction}"))?;
        let acquit = parse_acquit(&body).map_err(|e| {
            Error::Transport(format!(
                "S²LOW {ACQUIT} : PES_Acquit illisible ({e}) : « {} »",
                latin1_or_utf8(&body[..body.len().min(120)])
            ))
        })?;
        Ok((body, acquit))
    }

    /// Downloads the PES file S²LOW holds for a transaction (`helios_download_file.php`, the
    /// page behind the « télécharger » link of a transaction). For a transaction it will not
    /// show, S²LOW redirects to its Hélios home page: the answer is then not the file.
    pub fn download_pes(&self, transaction: HeliosTransaction) -> Result<Vec<u8>> {
        self.get(&format!("{FILE}?id={transaction}"))
    }
}
