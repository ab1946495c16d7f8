//! Reading the act data (`DonneesActe`) that the `Acte` message and the prefecture's returns share.

use roxmltree::Node;
use time::Date;

use super::{ACTES_NS, NatureActe};
use crate::dates::parse_date;
use crate::xml::{self, child, children};
use crate::{Error, Result};

/// The content of an `Acte` message (also echoed as `ActeRecu` in returns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActeData {
    /// `CodeNatureActe`.
    pub nature: NatureActe,
    /// `NumeroInterne`: the authority's own number for the act.
    pub numero_interne: String,
    /// `Date`: the date of the decision.
    pub date_decision: Date,
    /// `CodeMatiere1` … `CodeMatiere5`: the subject classification, e.g. `[7, 1]`.
    pub classification: Vec<u32>,
    /// `Objet`.
    pub objet: String,
    /// `ClassificationDateVersion`.
    pub classification_date: Date,
    /// The act's file name (`Document/NomFichier`).
    pub document: String,
    /// The annexes' file names (`Annexes/Annexe/NomFichier`), in order.
    pub annexes: Vec<String>,
}

fn required_attribute<'a>(node: Node<'a, '_>, name: &str) -> Result<&'a str> {
    node.attribute((ACTES_NS, name)).ok_or_else(|| {
        Error::Format(format!(
            "attribut actes:{name} absent de <{}>",
            node.tag_name().name()
        ))
    })
}

fn file_name(node: Node<'_, '_>) -> Result<String> {
    xml::required_text(node, ACTES_NS, "NomFichier")
}

/// Reads a `DonneesActe` element (`Acte`, `ActeRecu`).
pub(crate) fn parse_acte_data(node: Node<'_, '_>) -> Result<ActeData> {
    let code = required_attribute(node, "CodeNatureActe")?;
    let nature = code
        .trim()
        .parse::<u8>()
        .ok()
        .and_then(NatureActe::from_code)
        .ok_or_else(|| Error::Format(format!("CodeNatureActe « {code} » inconnu")))?;
    let mut classification = Vec::new();
    for level in 1..=5 {
        if let Some(m) = child(node, ACTES_NS, &format!("CodeMatiere{level}")) {
            let value = required_attribute(m, "CodeMatiere")?;
            classification.push(value.trim().parse::<u32>().map_err(|_| {
                Error::Format(format!("CodeMatiere{level} « {value} » non numérique"))
            })?);
        }
    }
    let document = child(node, ACTES_NS, "Document")
        .ok_or_else(|| Error::Format("<actes:Document> absent".into()))
        .and_then(file_name)?;
    let annexes = match child(node, ACTES_NS, "Annexes") {
        Some(a) => children(a, ACTES_NS, "Annexe")
            .map(file_name)
            .collect::<Result<Vec<_>>>()?,
        None => Vec::new(),
    };
    Ok(ActeData {
        nature,
        numero_interne: required_attribute(node, "NumeroInterne")?.to_owned(),
        date_decision: parse_date(required_attribute(node, "Date")?)?,
        classification,
        objet: xml::required_text(node, ACTES_NS, "Objet")?,
        classification_date: parse_date(&xml::required_text(
            node,
            ACTES_NS,
            "ClassificationDateVersion",
        )?)?,
        document,
        annexes,
    })
}
