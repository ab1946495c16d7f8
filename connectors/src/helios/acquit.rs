//! `PES_ACQUIT`: the acceptance or refusal, item by item, of a PES sent to Hélios.
//!
//! Entry point of the schema: `PES_V2/Rev0/PES_V2_Acquit_Autonome_V2.xsd`, root `PES_ACQUIT` in
//! namespace [`super::PES_ACQUIT_NS`]; its children are unqualified and every value sits in a
//! `V` attribute.

use roxmltree::Node;
use time::Date;

use super::PES_ACQUIT_NS;
use crate::dates::parse_date;
use crate::xml::{self, child, children};
use crate::{Error, Result};

/// What an acknowledgement element is about (`DomaineAck`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckDomain {
    /// 0 — technical checks of the file.
    Technique,
    /// 1 — technical signature.
    SignatureTechnique,
    /// 2 — global signature.
    SignatureGlobale,
    /// 3 — signature of a bordereau.
    SignatureBordereau,
    /// 4 — pièce justificative.
    PieceJustificative,
    /// 5 — expense bordereau.
    Depense,
    /// 6 — revenue bordereau.
    Recette,
    /// 7 — rôle.
    Role,
    /// 8 — budget.
    Budget,
    /// 9 — état de l'actif.
    EtatActif,
    /// 10 — état du passif.
    EtatPassif,
    /// 11 — public contract.
    Marche,
    /// 12 — invoice.
    Facture,
    /// 99 — parameters.
    Parametrage,
}

impl AckDomain {
    fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "0" => Self::Technique,
            "1" => Self::SignatureTechnique,
            "2" => Self::SignatureGlobale,
            "3" => Self::SignatureBordereau,
            "4" => Self::PieceJustificative,
            "5" => Self::Depense,
            "6" => Self::Recette,
            "7" => Self::Role,
            "8" => Self::Budget,
            "9" => Self::EtatActif,
            "10" => Self::EtatPassif,
            "11" => Self::Marche,
            "12" => Self::Facture,
            "99" => Self::Parametrage,
            _ => return None,
        })
    }
}

/// Which item of the sent file an element answers for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckSubject {
    /// A bordereau: `NumBord` and `ExerciceBord` (either may be absent).
    Bordereau {
        /// Number of the bordereau.
        number: Option<u32>,
        /// Financial year.
        year: Option<u16>,
    },
    /// A public contract (`IdMarche`).
    Marche(String),
    /// A pièce justificative (`IdUnique`).
    PieceJustificative(String),
    /// The whole file.
    File,
}

/// One refusal reason given by the DGFiP, with where it applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckError {
    /// `NumAnoAck`, e.g. `ERREUR_DOUBLON_PJ`.
    pub code: Option<String>,
    /// `LibelleAnoAck`, e.g. `1984 - L'identifiant unique de la PJ a déjà été intégré dans HELIOS`.
    pub label: Option<String>,
    /// `NumPiece` when the error is about a piece.
    pub piece: Option<String>,
    /// `NumLigne` when the error is about a line of that piece.
    pub line: Option<String>,
}

/// One `ElementACQUIT`: an item accepted or refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckElement {
    /// What kind of item.
    pub domain: AckDomain,
    /// `EtatAck`: accepted (1) or refused (0).
    pub accepted: bool,
    /// Which item.
    pub subject: AckSubject,
    /// Every reason given, at the element, piece and line levels.
    pub errors: Vec<AckError>,
}

/// A parsed `PES_ACQUIT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acquit {
    /// `Enveloppe/Parametres/NomFic`: the name of the PES file answered for.
    pub file_name: Option<String>,
    /// `EnTetePES/DteStr`.
    pub date: Option<Date>,
    /// `EnTetePES/IdColl`: the authority's SIRET.
    pub id_coll: Option<String>,
    /// `EnTetePES/IdPost`: the treasury post.
    pub id_post: Option<String>,
    /// Every element, in order.
    pub elements: Vec<AckElement>,
}

impl Acquit {
    /// Whether every element was accepted.
    pub fn is_accepted(&self) -> bool {
        self.elements.iter().all(|e| e.accepted)
    }

    /// The refused elements.
    pub fn refused(&self) -> impl Iterator<Item = &AckElement> {
        self.elements.iter().filter(|e| !e.accepted)
    }
}

/// The `V` attribute of the child `name`, trimmed.
fn value(node: Node<'_, '_>, name: &str) -> Option<String> {
    child(node, "", name)
        .and_then(|c| c.attribute("V"))
        .map(|v| v.trim().to_owned())
}

fn errors_of(node: Node<'_, '_>, piece: Option<&str>, line: Option<&str>) -> Vec<AckError> {
    children(node, "", "Erreur")
        .map(|e| AckError {
            code: value(e, "NumAnoAck"),
            label: value(e, "LibelleAnoAck"),
            piece: piece.map(str::to_owned),
            line: line.map(str::to_owned),
        })
        .collect()
}

fn parse_element(node: Node<'_, '_>) -> Result<AckElement> {
    let domain_code = value(node, "DomaineAck")
        .ok_or_else(|| Error::Format("ElementACQUIT sans DomaineAck".into()))?;
    let domain = AckDomain::from_code(&domain_code)
        .ok_or_else(|| Error::Format(format!("DomaineAck « {domain_code} » inconnu")))?;
    let accepted = match value(node, "EtatAck").as_deref() {
        Some("1" | "true") => true,
        Some("0" | "false") => false,
        other => {
            return Err(Error::Format(format!(
                "EtatAck « {} » : 0 ou 1 attendu",
                other.unwrap_or("")
            )));
        }
    };
    let subject = if let Some(id) = value(node, "IdUnique") {
        AckSubject::PieceJustificative(id)
    } else if let Some(id) = value(node, "IdMarche") {
        AckSubject::Marche(id)
    } else {
        let bord = value(node, "NumBord");
        let year = value(node, "ExerciceBord");
        if bord.is_none() && year.is_none() {
            AckSubject::File
        } else {
            AckSubject::Bordereau {
                number: bord.map(|b| parse_number(&b, "NumBord")).transpose()?,
                year: year.map(|y| parse_number(&y, "ExerciceBord")).transpose()?,
            }
        }
    };
    let mut errors = errors_of(node, None, None);
    for piece in children(node, "", "DetailPiece") {
        let num = value(piece, "NumPiece");
        errors.extend(errors_of(piece, num.as_deref(), None));
        for line in children(piece, "", "DetailLigne") {
            let num_line = value(line, "NumLigne");
            errors.extend(errors_of(line, num.as_deref(), num_line.as_deref()));
        }
    }
    Ok(AckElement {
        domain,
        accepted,
        subject,
        errors,
    })
}

fn parse_number<T: std::str::FromStr>(text: &str, name: &str) -> Result<T> {
    text.parse()
        .map_err(|_| Error::Format(format!("{name} « {text} » non numérique")))
}

/// Parses a `PES_ACQUIT` (UTF-8 or ISO-8859-1; DTDs refused).
pub fn parse_acquit(bytes: &[u8]) -> Result<Acquit> {
    let text = xml::decode(bytes)?;
    let doc = xml::parse(&text)?;
    let root = doc.root_element();
    if !xml::is(root, PES_ACQUIT_NS, "PES_ACQUIT") {
        return Err(Error::Format(format!(
            "racine <{}> ({}), PES_ACQUIT de {PES_ACQUIT_NS} attendu",
            root.tag_name().name(),
            root.tag_name().namespace().unwrap_or("sans espace de noms")
        )));
    }
    let acquit =
        child(root, "", "ACQUIT").ok_or_else(|| Error::Format("<ACQUIT> absent".into()))?;
    let elements = children(acquit, "", "ElementACQUIT")
        .map(parse_element)
        .collect::<Result<Vec<_>>>()?;
    if elements.is_empty() {
        return Err(Error::Format("aucun ElementACQUIT".into()));
    }
    let header = child(root, "", "EnTetePES");
    let file_name = child(root, "", "Enveloppe")
        .and_then(|e| child(e, "", "Parametres"))
        .and_then(|p| value(p, "NomFic"));
    Ok(Acquit {
        file_name,
        date: header
            .and_then(|h| value(h, "DteStr"))
            .map(|d| parse_date(&d))
            .transpose()?,
        id_coll: header.and_then(|h| value(h, "IdColl")),
        id_post: header.and_then(|h| value(h, "IdPost")),
        elements,
    })
}
