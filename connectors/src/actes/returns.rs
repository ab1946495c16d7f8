//! What the prefecture sends back about a transmitted act: acknowledgement, anomaly, or the
//! acknowledgement of its cancellation.

use time::Date;

use super::message::parse_acte_data;
use super::{ACTES_NS, ActeData, INSEE_NS};
use crate::dates::parse_date;
use crate::xml::{self, child, children};
use crate::{Error, Result};

/// `ARActe`: the prefecture received the act.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArActe {
    /// `IDActe`: the act's identifier at the prefecture, e.g. `006-210600235-20180522-684-AI`.
    pub id_acte: String,
    /// `DateReception`: the legal date of receipt.
    pub date_reception: Date,
    /// The act as received.
    pub acte: ActeData,
    /// `ClassificationDateVersionEnCours`: the prefecture's current classification version.
    pub classification_date_en_cours: Date,
}

/// `AnomalieActe`: the act was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnomalieActe {
    /// `Date` of the anomaly.
    pub date: Date,
    /// `Nature`: three-digit anomaly code.
    pub nature: String,
    /// `Detail`: the prefecture's explanation.
    pub detail: Option<String>,
    /// The act as received.
    pub acte: ActeData,
    /// `ClassificationDateVersionEnCours`.
    pub classification_date_en_cours: Date,
}

/// `AnomalieEnveloppe`: the envelope itself was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnomalieEnveloppe {
    /// `Date` of the anomaly.
    pub date: Date,
    /// `Nature`: anomaly code.
    pub nature: String,
    /// `Detail`: the explanation.
    pub detail: Option<String>,
    /// SIREN of the sender, as the prefecture read it.
    pub siren: Option<String>,
    /// The messages the refused envelope listed.
    pub forms: Vec<String>,
}

/// `ARAnnulation`: the prefecture acknowledges the cancellation of an act's transmission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArAnnulation {
    /// `IDActe` of the cancelled act.
    pub id_acte: String,
    /// `DateReception` of the cancellation.
    pub date_reception: Date,
}

/// A return message from the prefecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActesReturn {
    /// The act was received (`ARActe`).
    Acknowledged(ArActe),
    /// The act was refused (`AnomalieActe`).
    Anomaly(AnomalieActe),
    /// The envelope was refused (`AnomalieEnveloppe`).
    EnvelopeAnomaly(AnomalieEnveloppe),
    /// The cancellation was received (`ARAnnulation`).
    CancellationAcknowledged(ArAnnulation),
}

/// Parses a return message (UTF-8 or ISO-8859-1; DTDs refused).
///
/// Other @ctes messages (letters, requests for documents, …) are reported as
/// [`Error::Format`] naming their root, not silently ignored.
pub fn parse_return(bytes: &[u8]) -> Result<ActesReturn> {
    let text = xml::decode(bytes)?;
    let doc = xml::parse(&text)?;
    let root = doc.root_element();
    if root.tag_name().namespace() != Some(ACTES_NS) {
        return Err(Error::Format(format!(
            "racine <{}> hors de l'espace de noms @ctes",
            root.tag_name().name()
        )));
    }
    let attribute = |name: &str| {
        root.attribute((ACTES_NS, name))
            .ok_or_else(|| Error::Format(format!("attribut actes:{name} absent")))
    };
    let acte_recu = || {
        child(root, ACTES_NS, "ActeRecu")
            .ok_or_else(|| Error::Format("<actes:ActeRecu> absent".into()))
            .and_then(parse_acte_data)
    };
    let text_of = |name: &str| xml::required_text(root, ACTES_NS, name);
    let optional_text = |name: &str| {
        child(root, ACTES_NS, name)
            .and_then(|d| d.text())
            .map(|d| d.trim().to_owned())
            .filter(|d| !d.is_empty())
    };
    match root.tag_name().name() {
        "ARActe" => Ok(ActesReturn::Acknowledged(ArActe {
            id_acte: attribute("IDActe")?.to_owned(),
            date_reception: parse_date(attribute("DateReception")?)?,
            acte: acte_recu()?,
            classification_date_en_cours: parse_date(&text_of(
                "ClassificationDateVersionEnCours",
            )?)?,
        })),
        "AnomalieActe" => Ok(ActesReturn::Anomaly(AnomalieActe {
            date: parse_date(&text_of("Date")?)?,
            nature: text_of("Nature")?,
            detail: optional_text("Detail"),
            acte: acte_recu()?,
            classification_date_en_cours: parse_date(&text_of(
                "ClassificationDateVersionEnCours",
            )?)?,
        })),
        "AnomalieEnveloppe" => {
            let received = child(root, ACTES_NS, "EnveloppeRecue");
            let siren = received
                .and_then(|r| child(r, ACTES_NS, "Emetteur"))
                .and_then(|e| child(e, ACTES_NS, "IDCL"))
                .and_then(|i| i.attribute((INSEE_NS, "SIREN")))
                .map(str::to_owned);
            let forms = received
                .and_then(|r| child(r, ACTES_NS, "FormulairesEnvoyes"))
                .map(|f| {
                    children(f, ACTES_NS, "Formulaire")
                        .filter_map(|form| xml::required_text(form, ACTES_NS, "NomFichier").ok())
                        .collect()
                })
                .unwrap_or_default();
            Ok(ActesReturn::EnvelopeAnomaly(AnomalieEnveloppe {
                date: parse_date(&text_of("Date")?)?,
                nature: text_of("Nature")?,
                detail: optional_text("Detail"),
                siren,
                forms,
            }))
        }
        "ARAnnulation" => Ok(ActesReturn::CancellationAcknowledged(ArAnnulation {
            id_acte: attribute("IDActe")?.to_owned(),
            date_reception: parse_date(attribute("DateReception")?)?,
        })),
        other => Err(Error::Format(format!(
            "message @ctes <{other}> non pris en charge ici"
        ))),
    }
}
