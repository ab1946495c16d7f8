//! The classification a tenant received from its prefecture (`RetourClassification`): the
//! subject codes (matières) and, per nature, the document types it accepts.

use std::collections::{BTreeMap, BTreeSet};

use roxmltree::Node;
use time::Date;

use super::{ACTES_NS, NatureActe};
use crate::xml::{self, child, children};
use crate::{Error, Result};

/// A tenant's @ctes classification, as last received from the prefecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantClassification {
    /// `DateClassification`: the version, written in every act as `ClassificationDateVersion`.
    pub date: Date,
    /// Every known subject path, e.g. `[7, 1, 2]` for 7.1.2 (each prefix is present too).
    pub subjects: BTreeSet<Vec<u32>>,
    /// Document type codes (`CodeTypePJ`) accepted for each nature.
    pub types_pj: BTreeMap<u8, BTreeSet<String>>,
}

impl TenantClassification {
    /// Parses a `RetourClassification` message (UTF-8 or ISO-8859-1).
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let text = xml::decode(bytes)?;
        let doc = xml::parse(&text)?;
        let root = doc.root_element();
        if !xml::is(root, ACTES_NS, "RetourClassification") {
            return Err(Error::Format(format!(
                "racine <{}>, <actes:RetourClassification> attendue",
                root.tag_name().name()
            )));
        }
        let date =
            crate::dates::parse_date(&xml::required_text(root, ACTES_NS, "DateClassification")?)?;
        let mut types_pj: BTreeMap<u8, BTreeSet<String>> = BTreeMap::new();
        if let Some(natures) = child(root, ACTES_NS, "NaturesActes") {
            for nature in children(natures, ACTES_NS, "NatureActe") {
                let Some(code) = nature
                    .attribute((ACTES_NS, "CodeNatureActe"))
                    .and_then(|c| c.trim().parse::<u8>().ok())
                else {
                    continue;
                };
                let codes = types_pj.entry(code).or_default();
                for t in children(nature, ACTES_NS, "TypePJNatureActe") {
                    if let Some(c) = t.attribute((ACTES_NS, "CodeTypePJ")) {
                        codes.insert(c.trim().to_owned());
                    }
                }
            }
        }
        let mut subjects = BTreeSet::new();
        if let Some(matieres) = child(root, ACTES_NS, "Matieres") {
            collect_subjects(matieres, 1, &mut Vec::new(), &mut subjects)?;
        }
        Ok(Self {
            date,
            subjects,
            types_pj,
        })
    }

    /// Whether the subject path (e.g. `[7, 1]`) exists in this classification.
    pub fn knows_subject(&self, path: &[u32]) -> bool {
        self.subjects.contains(path)
    }

    /// Whether the type code is accepted for the nature; `None` when the classification lists no
    /// type for that nature (then nothing can be said).
    pub fn accepts_type_pj(&self, nature: NatureActe, code: &str) -> Option<bool> {
        self.types_pj
            .get(&nature.code())
            .filter(|codes| !codes.is_empty())
            .map(|codes| codes.contains(code))
    }
}

fn collect_subjects(
    parent: Node<'_, '_>,
    level: usize,
    path: &mut Vec<u32>,
    out: &mut BTreeSet<Vec<u32>>,
) -> Result<()> {
    let name = format!("Matiere{level}");
    for node in parent
        .children()
        .filter(|c| c.is_element() && xml::is(*c, ACTES_NS, &name))
    {
        let code = node
            .attribute((ACTES_NS, "CodeMatiere"))
            .and_then(|c| c.trim().parse::<u32>().ok())
            .ok_or_else(|| Error::Format(format!("<{name}> sans CodeMatiere numérique")))?;
        path.push(code);
        out.insert(path.clone());
        collect_subjects(node, level + 1, path, out)?;
        path.pop();
    }
    Ok(())
}
