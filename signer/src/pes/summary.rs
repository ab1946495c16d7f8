//! The typed summary of a PES_Aller: its bordereaux with Id, exercice, number, type, pièces and
//! amount, which is what the élu sees before signing (CLI and web UI alike).

use bergshamra_xml::uppsala::{Document, NodeId};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::xml::{DS_NS, encoding, parse};

/// The domain a bordereau belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Domain {
    /// PES_DepenseAller: mandats.
    Depense,
    /// PES_RecetteAller: titres.
    Recette,
}

impl Domain {
    /// The French label shown to users.
    pub fn label(self) -> &'static str {
        match self {
            Self::Depense => "dépense",
            Self::Recette => "recette",
        }
    }

    fn of_container(local: &str) -> Option<Self> {
        match local {
            "PES_DepenseAller" => Some(Self::Depense),
            "PES_RecetteAller" => Some(Self::Recette),
            _ => None,
        }
    }
}

/// One bordereau as the élu sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BordereauSummary {
    /// The `Id` attribute that a signature references (absent in some files).
    pub id: Option<String>,
    /// Dépense or recette.
    pub domain: Domain,
    /// `Exer`: the budget year.
    pub exercice: Option<String>,
    /// `IdBord`: the bordereau number.
    pub number: Option<String>,
    /// `TypBord`: the bordereau type code ("01" ordinaire, …).
    pub kind: Option<String>,
    /// `NbrPce`: the number of pièces the bordereau declares.
    pub declared_pieces: Option<u32>,
    /// The number of `Piece` elements actually present.
    pub pieces: usize,
    /// `MtBordHT` (dépense) or `MtBordHt` (recette), as written (decimal with a dot).
    pub amount: Option<String>,
    /// Whether the bordereau already carries a `ds:Signature`.
    pub signed: bool,
}

/// What a PES_Aller file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PesSummary {
    /// The file's character encoding as found ("UTF-8", "ISO-8859-1", …).
    pub encoding: String,
    /// The `Id` of `PES_Aller`.
    pub id: Option<String>,
    /// `Enveloppe/Parametres/NomFic`.
    pub file_name: Option<String>,
    /// `EnTetePES/IdColl`: the authority's SIRET.
    pub collectivite: Option<String>,
    /// `EnTetePES/LibelleColBud`: the budget's label.
    pub budget: Option<String>,
    /// Every bordereau, in file order.
    pub bordereaux: Vec<BordereauSummary>,
    /// `InfoDematerialisee` of each domain present (`None` when the element is absent).
    pub info_dematerialisee: Vec<(Domain, Option<String>)>,
    /// Whether `PES_Aller` itself carries a signature (whole-file signature).
    pub file_signed: bool,
    /// The number of pièces justificatives (`PES_PJ/PJ`) embedded in the file.
    pub pj_count: usize,
}

/// The `V` attribute of the first child `name` of `node`.
pub(crate) fn v_of(doc: &Document<'_>, node: NodeId, name: &str) -> Option<String> {
    parse::child_elements(doc, node)
        .find(|c| parse::local_name(doc, *c) == Some(name))
        .and_then(|c| doc.get_attribute(c, "V").map(str::to_string))
}

fn child_named(doc: &Document<'_>, node: NodeId, name: &str) -> Option<NodeId> {
    parse::child_elements(doc, node).find(|c| parse::local_name(doc, *c) == Some(name))
}

/// Whether `node` has a `ds:Signature` child.
pub(crate) fn has_signature_child(doc: &Document<'_>, node: NodeId) -> bool {
    parse::child(doc, node, Some(DS_NS), "Signature").is_some()
}

/// The bordereaux of a parsed PES_Aller, with their domain.
pub(crate) fn bordereaux(doc: &Document<'_>, root: NodeId) -> Vec<(NodeId, Domain)> {
    parse::child_elements(doc, root)
        .filter_map(|c| Some((c, Domain::of_container(parse::local_name(doc, c)?)?)))
        .flat_map(|(container, domain)| {
            parse::child_elements(doc, container)
                .filter(|b| parse::local_name(doc, *b) == Some("Bordereau"))
                .map(move |b| (b, domain))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The root `PES_Aller` of a parsed document.
pub(crate) fn pes_root(doc: &Document<'_>) -> Result<NodeId> {
    let root = doc
        .document_element()
        .ok_or_else(|| Error::Document("document vide".into()))?;
    if parse::local_name(doc, root) != Some("PES_Aller") {
        return Err(Error::Document(format!(
            "l'élément racine est {} et non PES_Aller",
            parse::local_name(doc, root).unwrap_or("?")
        )));
    }
    Ok(root)
}

/// Summarizes a parsed PES_Aller.
pub(crate) fn summarize_doc(doc: &Document<'_>, encoding_label: &str) -> Result<PesSummary> {
    let root = pes_root(doc)?;
    let enveloppe = child_named(doc, root, "Enveloppe");
    let parametres = enveloppe.and_then(|e| child_named(doc, e, "Parametres"));
    let entete = child_named(doc, root, "EnTetePES");
    let mut info = Vec::new();
    for container in parse::child_elements(doc, root) {
        let Some(domain) = parse::local_name(doc, container).and_then(Domain::of_container) else {
            continue;
        };
        let header_name = match domain {
            Domain::Depense => "EnTeteDepense",
            Domain::Recette => "EnTeteRecette",
        };
        let value = child_named(doc, container, header_name)
            .and_then(|h| v_of(doc, h, "InfoDematerialisee"));
        info.push((domain, value));
    }
    let bordereaux = bordereaux(doc, root)
        .into_iter()
        .map(|(b, domain)| {
            let bloc = child_named(doc, b, "BlocBordereau");
            let field = |name: &str| bloc.and_then(|bl| v_of(doc, bl, name));
            BordereauSummary {
                id: doc.get_attribute(b, "Id").map(str::to_string),
                domain,
                exercice: field("Exer"),
                number: field("IdBord"),
                kind: field("TypBord"),
                declared_pieces: field("NbrPce").and_then(|n| n.trim().parse().ok()),
                pieces: parse::child_elements(doc, b)
                    .filter(|c| parse::local_name(doc, *c) == Some("Piece"))
                    .count(),
                amount: field("MtBordHT").or_else(|| field("MtBordHt")),
                signed: has_signature_child(doc, b),
            }
        })
        .collect();
    let pj_count = child_named(doc, root, "PES_PJ")
        .map(|pj| {
            parse::child_elements(doc, pj)
                .filter(|c| parse::local_name(doc, *c) == Some("PJ"))
                .count()
        })
        .unwrap_or(0);
    Ok(PesSummary {
        encoding: encoding_label.to_string(),
        id: doc.get_attribute(root, "Id").map(str::to_string),
        file_name: parametres.and_then(|p| v_of(doc, p, "NomFic")),
        collectivite: entete.and_then(|e| v_of(doc, e, "IdColl")),
        budget: entete.and_then(|e| v_of(doc, e, "LibelleColBud")),
        bordereaux,
        info_dematerialisee: info,
        file_signed: has_signature_child(doc, root),
        pj_count,
    })
}

/// Reads a PES_Aller file's bytes and returns its summary.
pub fn summarize(bytes: &[u8]) -> Result<PesSummary> {
    let decoded = encoding::decode(bytes).map_err(|e| Error::Document(e.to_string()))?;
    let doc = parse::parse(&decoded.text).map_err(|e| Error::Document(e.to_string()))?;
    summarize_doc(&doc, decoded.encoding.label())
}
