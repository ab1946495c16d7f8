//! The metadata of an act to transmit, and its validation: every problem is reported at once,
//! before anything is written.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};
use time::Date;

use super::{NatureActe, TenantClassification};
use crate::dates::{format_date, parse_date};
use crate::paths::file_name;
use crate::{Error, Problem, Result, xml};

/// The act's metadata as a dossier (or an operator's `META.json`) gives it: plain values,
/// checked by [`validate`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActesMetadata {
    /// SIREN of the authority (9 digits).
    #[serde(deserialize_with = "text")]
    pub siren: String,
    /// Département (`006`, `06`, `02A`, `974`).
    #[serde(deserialize_with = "text")]
    pub departement: String,
    /// Arrondissement (one digit).
    #[serde(deserialize_with = "text")]
    pub arrondissement: String,
    /// The transmitting platform's three-character code that starts the archive name.
    pub trigramme: String,
    /// Nature of the act: code `1`…`6` or abbreviation `DE`, `AR`, `AI`, `CC`, `BF`, `AU`.
    #[serde(deserialize_with = "text")]
    pub nature: String,
    /// Subject classification, dotted: `7.1` or `1.1.2`.
    #[serde(deserialize_with = "text")]
    pub classification: String,
    /// The authority's own number for the act (1 to 15 of `A-Z a-z 0-9 _`).
    #[serde(deserialize_with = "text")]
    pub numero_interne: String,
    /// Date of the decision, `YYYY-MM-DD`.
    pub date_decision: String,
    /// Subject of the act (at most 500 characters).
    pub objet: String,
    /// Document type code per file name, e.g. `{"budget.xml": "99_BU"}`; the act and annexes
    /// not named get their nature's generic type.
    #[serde(default)]
    pub type_pj: BTreeMap<String, String>,
    /// Version date of the classification used; defaults to the tenant classification's date.
    #[serde(default)]
    pub classification_date: Option<String>,
    /// Two-digit nature code of the authority (`IDCL/@Nature`).
    #[serde(default, deserialize_with = "optional_text")]
    pub nature_collectivite: Option<String>,
    /// Address(es) where the prefecture sends its returns (`AdressesRetour`).
    #[serde(default, deserialize_with = "one_or_many")]
    pub email_retour: Vec<String>,
    /// The person to contact at the authority.
    #[serde(default)]
    pub referent: Option<Referent>,
}

/// The contact person written in the envelope (`Referent`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Referent {
    /// Name.
    #[serde(default)]
    pub nom: Option<String>,
    /// Phone number.
    #[serde(default)]
    pub telephone: Option<String>,
    /// E-mail address.
    #[serde(default)]
    pub email: Option<String>,
}

/// One file of the act: the act itself or an annex, with its detached CAdES signature if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActeDocument {
    /// The file; its name (last component) is the key of [`ActesMetadata::type_pj`].
    pub path: PathBuf,
    /// The detached signature (`.p7s`) of the file, sent as a `99_SE` annex.
    pub signature: Option<PathBuf>,
}

/// Size limits of one transmission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeLimits {
    /// Largest single file, in bytes.
    pub max_file: u64,
    /// Largest sum of all files, in bytes.
    pub max_total: u64,
}

impl Default for SizeLimits {
    /// 150 MiB per file and in total: the @ctes platform's limit for one transaction; a tenant
    /// whose prefecture accepts less sets its own.
    fn default() -> Self {
        Self {
            max_file: 150 * 1024 * 1024,
            max_total: 150 * 1024 * 1024,
        }
    }
}

macro_rules! text_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            /// The value, as written in the messages.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

text_newtype!(
    /// A SIREN: 9 digits with a valid Luhn key.
    Siren
);
text_newtype!(
    /// A département as @ctes writes it: three characters (`006`, `02A`, `974`).
    Departement
);
text_newtype!(
    /// The authority's number for an act: 1 to 15 of `A-Z a-z 0-9 _`.
    NumeroInterne
);
text_newtype!(
    /// The three-character code of the transmitting platform.
    Trigramme
);
text_newtype!(
    /// A document type code (`CodeTypePJ`), e.g. `99_DE`.
    TypePj
);

/// An arrondissement number (0–9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Arrondissement(pub u8);

impl Siren {
    /// Parses 9 digits whose Luhn key is right.
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        let s = s.trim();
        if s.len() != 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("« {s} » n'a pas 9 chiffres"));
        }
        let sum: u32 = s
            .bytes()
            .rev()
            .enumerate()
            .map(|(i, b)| {
                let d = u32::from(b - b'0');
                if i % 2 == 1 {
                    if d * 2 > 9 { d * 2 - 9 } else { d * 2 }
                } else {
                    d
                }
            })
            .sum();
        if !sum.is_multiple_of(10) {
            return Err(format!("« {s} » : clé de contrôle (Luhn) invalide"));
        }
        Ok(Self(s.to_owned()))
    }
}

impl Departement {
    /// Parses `06`, `006`, `2A`, `02A`, `974` into the three-character form.
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        let s = s.trim().to_ascii_uppercase();
        let padded = if s.len() == 2 {
            format!("0{s}")
        } else {
            s.clone()
        };
        let b = padded.as_bytes();
        // actesv1_1.xsd: [0|9][0-9][A|B|0-9]
        let ok = b.len() == 3
            && (b[0] == b'0' || b[0] == b'9')
            && b[1].is_ascii_digit()
            && (b[2].is_ascii_digit() || b[2] == b'A' || b[2] == b'B');
        if ok {
            Ok(Self(padded))
        } else {
            Err(format!(
                "« {s} » n'est pas un département (3 caractères : 006, 02A, 974)"
            ))
        }
    }
}

impl NumeroInterne {
    /// Parses 1 to 15 of `A-Z a-z 0-9 _` (the pattern of `IDActe` in `actesv1_1.xsd`).
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        let ok = (1..=15).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!(
                "« {s} » : 1 à 15 caractères parmi A-Z, a-z, 0-9 et _ (ni espace, ni tiret, ni barre)"
            ))
        }
    }
}

impl Trigramme {
    /// Parses three ASCII letters or digits.
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        if s.len() == 3 && s.bytes().all(|b| b.is_ascii_alphanumeric()) {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!("« {s} » : 3 lettres ou chiffres attendus"))
        }
    }
}

impl TypePj {
    /// Parses a code shaped `99_DE`: two, underscore, two (digits or capitals).
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        let b = s.as_bytes();
        let part = |x: &[u8]| {
            x.iter()
                .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
        };
        if b.len() == 5 && b[2] == b'_' && part(&b[..2]) && part(&b[3..]) {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!(
                "« {s} » n'est pas un code de type de pièce (ex. 99_DE)"
            ))
        }
    }

    /// The type of detached signature files (`Fichier de signature électronique`).
    pub fn signature() -> Self {
        Self("99_SE".to_owned())
    }
}

/// A file ready to be packed: checked, typed and measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidDocument {
    /// Where the bytes are.
    pub path: PathBuf,
    /// Lower-case extension, kept in the @ctes file name.
    pub extension: String,
    /// Document type.
    pub type_pj: TypePj,
    /// Size in bytes when validated.
    pub size: u64,
    /// The detached signature file and its size.
    pub signature: Option<(PathBuf, u64)>,
}

/// Metadata and files that passed every check: what [`super::write_package`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidActe {
    /// SIREN of the authority.
    pub siren: Siren,
    /// Département.
    pub departement: Departement,
    /// Arrondissement.
    pub arrondissement: Arrondissement,
    /// Two-digit nature code of the authority.
    pub nature_collectivite: String,
    /// Return addresses (at least one).
    pub emails: Vec<String>,
    /// Contact person.
    pub referent: Option<Referent>,
    /// Platform code for the archive name.
    pub trigramme: Trigramme,
    /// Nature of the act.
    pub nature: NatureActe,
    /// Subject classification, e.g. `[7, 1]`.
    pub classification: Vec<u32>,
    /// Version date of the classification.
    pub classification_date: Date,
    /// The authority's number for the act.
    pub numero_interne: NumeroInterne,
    /// Date of the decision.
    pub date_decision: Date,
    /// Subject of the act.
    pub objet: String,
    /// Date of the transmission (in the file names).
    pub transmission_date: Date,
    /// The act.
    pub act: ValidDocument,
    /// The annexes, in order.
    pub annexes: Vec<ValidDocument>,
}

/// File extensions @ctes accepts for acts and annexes.
const DOCUMENT_EXTENSIONS: [&str; 5] = ["pdf", "xml", "jpg", "jpeg", "png"];
/// Largest `Objet`, in characters (`actesv1_1.xsd`).
const MAX_OBJET: usize = 500;

/// Checks everything about an act before anything is built, and reports every problem.
///
/// `classification` is the tenant's classification when it has one: subjects and document types
/// are then checked against it, and its date is the default `classification_date`. Without it
/// and without `classification_date`, the decision date stands for the version of the
/// classification (the one in force when the act was decided).
pub fn validate(
    meta: &ActesMetadata,
    act: &ActeDocument,
    annexes: &[ActeDocument],
    classification: Option<&TenantClassification>,
    limits: &SizeLimits,
    transmission_date: Date,
) -> Result<ValidActe> {
    let mut problems = Vec::new();
    let mut c = Collector(&mut problems);
    let siren = c.check("siren", Siren::parse(&meta.siren));
    let departement = c.check("departement", Departement::parse(&meta.departement));
    let arrondissement = c.check("arrondissement", parse_arrondissement(&meta.arrondissement));
    let trigramme = c.check("trigramme", Trigramme::parse(&meta.trigramme));
    let nature = c.check("nature", meta.nature.parse::<NatureActe>());
    let numero_interne = c.check("numero_interne", NumeroInterne::parse(&meta.numero_interne));
    let date_decision = c.check("date_decision", parse_user_date(&meta.date_decision));
    let objet = c.check("objet", check_objet(&meta.objet));
    let subjects = c.check("classification", parse_classification(&meta.classification));
    let nature_collectivite = c.check(
        "nature_collectivite",
        parse_nature_collectivite(meta.nature_collectivite.as_deref()),
    );
    let emails = c.check("email_retour", check_emails(&meta.email_retour));
    let referent = c.check("referent", check_referent(meta.referent.as_ref()));
    let explicit_classification_date = match &meta.classification_date {
        Some(d) => c.check("classification_date", parse_user_date(d)),
        None => None,
    };
    if let Some(d) = date_decision
        && d > transmission_date
    {
        c.check(
            "date_decision",
            Err::<(), _>(format!(
                "{} est postérieure à la date de transmission {}",
                format_date(d),
                format_date(transmission_date)
            )),
        );
    }
    if let (Some(path), Some(tenant)) = (&subjects, classification)
        && !tenant.knows_subject(path)
    {
        c.check(
            "classification",
            Err::<(), _>(format!(
                "matière {} absente de la classification du {}",
                meta.classification.trim(),
                format_date(tenant.date)
            )),
        );
    }
    let classification_date = explicit_classification_date
        .or(classification.map(|c| c.date))
        .or(date_decision);

    let documents = check_documents(meta, act, annexes, nature, classification, limits);
    problems.extend(documents.problems);

    match (
        siren,
        departement,
        arrondissement,
        trigramme,
        nature,
        numero_interne,
        date_decision,
        objet,
        subjects,
        nature_collectivite,
        emails,
        referent,
        classification_date,
        documents.valid,
    ) {
        (
            Some(siren),
            Some(departement),
            Some(arrondissement),
            Some(trigramme),
            Some(nature),
            Some(numero_interne),
            Some(date_decision),
            Some(objet),
            Some(classification),
            Some(nature_collectivite),
            Some(emails),
            Some(referent),
            Some(classification_date),
            Some((act, annexes)),
        ) if problems.is_empty() => Ok(ValidActe {
            siren,
            departement,
            arrondissement,
            nature_collectivite,
            emails,
            referent,
            trigramme,
            nature,
            classification,
            classification_date,
            numero_interne,
            date_decision,
            objet,
            transmission_date,
            act,
            annexes,
        }),
        _ => Err(Error::Invalid(problems)),
    }
}

/// Records the problem of a failed check and keeps the value of a passed one.
struct Collector<'a>(&'a mut Vec<Problem>);

impl Collector<'_> {
    fn check<T>(&mut self, field: &str, result: std::result::Result<T, String>) -> Option<T> {
        result.map_err(|m| self.0.push(Problem::new(field, m))).ok()
    }
}

struct DocumentCheck {
    problems: Vec<Problem>,
    valid: Option<(ValidDocument, Vec<ValidDocument>)>,
}

fn check_documents(
    meta: &ActesMetadata,
    act: &ActeDocument,
    annexes: &[ActeDocument],
    nature: Option<NatureActe>,
    classification: Option<&TenantClassification>,
    limits: &SizeLimits,
) -> DocumentCheck {
    let mut problems = Vec::new();
    let mut names = BTreeSet::new();
    let mut total = 0u64;
    let mut valid = Vec::new();
    for doc in std::iter::once(act).chain(annexes) {
        let name = file_name(&doc.path);
        if !names.insert(name.clone()) {
            problems.push(Problem::new(&name, "fichier donné deux fois"));
            continue;
        }
        let extension = extension(&doc.path);
        if !DOCUMENT_EXTENSIONS.contains(&extension.as_str()) {
            problems.push(Problem::new(
                &name,
                format!(
                    "extension « {extension} » refusée (acceptées : {})",
                    DOCUMENT_EXTENSIONS.join(", ")
                ),
            ));
        }
        let size = measure(&doc.path, &name, limits, &mut problems);
        let signature = doc.signature.as_ref().and_then(|sig| {
            let sig_name = file_name(sig);
            if extension_of(&sig_name) != "p7s" {
                problems.push(Problem::new(
                    &sig_name,
                    "une signature détachée doit être un fichier .p7s (CAdES)",
                ));
            }
            if !names.insert(sig_name.clone()) {
                problems.push(Problem::new(&sig_name, "fichier donné deux fois"));
            }
            let size = measure(sig, &sig_name, limits, &mut problems)?;
            match read_head(sig) {
                Ok(head) if is_cms_signed_data(&head) => Some((sig.clone(), size)),
                Ok(_) => {
                    problems.push(Problem::new(
                        &sig_name,
                        "n'est pas une signature CMS (SignedData en DER)",
                    ));
                    None
                }
                Err(e) => {
                    problems.push(Problem::new(&sig_name, format!("illisible : {e}")));
                    None
                }
            }
        });
        total += size.unwrap_or(0) + signature.as_ref().map_or(0, |s| s.1);
        let type_pj = match meta.type_pj.get(&name) {
            Some(code) => match TypePj::parse(code) {
                Ok(t) => Some(t),
                Err(message) => {
                    problems.push(Problem::new(format!("type_pj[{name}]"), message));
                    None
                }
            },
            None => nature.map(|n| TypePj(n.generic_type_pj().to_owned())),
        };
        if let (Some(t), Some(n), Some(tenant)) = (&type_pj, nature, classification)
            && tenant.accepts_type_pj(n, t.as_str()) == Some(false)
        {
            problems.push(Problem::new(
                format!("type_pj[{name}]"),
                format!(
                    "type {t} non prévu pour la nature {n} dans la classification du {}",
                    format_date(tenant.date)
                ),
            ));
        }
        if let (Some(size), Some(type_pj)) = (size, type_pj) {
            valid.push(ValidDocument {
                path: doc.path.clone(),
                extension,
                type_pj,
                size,
                signature,
            });
        }
    }
    for key in meta.type_pj.keys() {
        if !names.contains(key) {
            problems.push(Problem::new(
                format!("type_pj[{key}]"),
                "ne désigne aucun des fichiers donnés",
            ));
        }
    }
    if total > limits.max_total {
        problems.push(Problem::new(
            "fichiers",
            format!(
                "{total} octets au total, au-delà de la limite de {} octets",
                limits.max_total
            ),
        ));
    }
    let expected = 1 + annexes.len();
    let valid = if problems.is_empty() && valid.len() == expected {
        let mut iter = valid.into_iter();
        iter.next().map(|act| (act, iter.collect()))
    } else {
        None
    };
    DocumentCheck { problems, valid }
}

/// The size of a regular file, or a problem: missing, not a file, empty, too large.
fn measure(
    path: &Path,
    name: &str,
    limits: &SizeLimits,
    problems: &mut Vec<Problem>,
) -> Option<u64> {
    match std::fs::metadata(path) {
        Err(e) => {
            problems.push(Problem::new(
                name,
                format!("fichier illisible ({}) : {e}", path.display()),
            ));
            None
        }
        Ok(m) if !m.is_file() => {
            problems.push(Problem::new(name, "n'est pas un fichier"));
            None
        }
        Ok(m) if m.len() == 0 => {
            problems.push(Problem::new(name, "fichier vide"));
            None
        }
        Ok(m) if m.len() > limits.max_file => {
            problems.push(Problem::new(
                name,
                format!(
                    "{} octets, au-delà de la limite de {} octets par fichier",
                    m.len(),
                    limits.max_file
                ),
            ));
            None
        }
        Ok(m) => Some(m.len()),
    }
}

/// The first bytes of a file, enough to recognise a CMS structure.
fn read_head(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(32);
    std::fs::File::open(path)?.take(32).read_to_end(&mut head)?;
    Ok(head)
}

/// Whether the bytes start a CMS `ContentInfo` whose content type is `signed-data`
/// (1.2.840.113549.1.7.2): a SEQUENCE with a definite (DER) or indefinite (BER) length, then
/// that OID. Catches a PEM file, a PDF or anything else given as a `.p7s`.
fn is_cms_signed_data(head: &[u8]) -> bool {
    const SIGNED_DATA_OID: [u8; 11] = [
        0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x02,
    ];
    let Some((&0x30, rest)) = head.split_first() else {
        return false;
    };
    let length_bytes = match rest.first() {
        Some(&b) if b <= 0x80 => 1,
        Some(&b) if (0x81..=0x84).contains(&b) => 1 + usize::from(b & 0x7F),
        _ => return false,
    };
    rest.get(length_bytes..)
        .is_some_and(|r| r.starts_with(&SIGNED_DATA_OID))
}

fn extension(path: &Path) -> String {
    extension_of(&file_name(path))
}

fn extension_of(name: &str) -> String {
    name.rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default()
}

fn parse_arrondissement(s: &str) -> std::result::Result<Arrondissement, String> {
    let s = s.trim();
    match s.as_bytes() {
        [d] if d.is_ascii_digit() => Ok(Arrondissement(d - b'0')),
        _ => Err(format!("« {s} » : un chiffre attendu")),
    }
}

fn parse_user_date(s: &str) -> std::result::Result<Date, String> {
    parse_date(s).map_err(|_| format!("« {} » : date AAAA-MM-JJ attendue", s.trim()))
}

fn check_objet(s: &str) -> std::result::Result<String, String> {
    let s = s.trim();
    let count = s.chars().count();
    if s.is_empty() {
        Err("vide".into())
    } else if count > MAX_OBJET {
        Err(format!("{count} caractères, {MAX_OBJET} au plus"))
    } else if !xml::is_xml_text(s) {
        Err("contient des caractères de contrôle".into())
    } else {
        Ok(s.to_owned())
    }
}

fn parse_classification(s: &str) -> std::result::Result<Vec<u32>, String> {
    let s = s.trim();
    let parts: Option<Vec<u32>> = s
        .split('.')
        .map(|p| p.parse::<u32>().ok().filter(|n| *n > 0))
        .collect();
    match parts {
        Some(p) if (2..=5).contains(&p.len()) => Ok(p),
        _ => Err(format!(
            "« {s} » : 2 à 5 codes de matière séparés par des points attendus (ex. 7.1)"
        )),
    }
}

fn parse_nature_collectivite(s: Option<&str>) -> std::result::Result<String, String> {
    match s.map(str::trim) {
        None => Err("absente (code à deux chiffres de la collectivité)".into()),
        Some(s) if s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit()) => Ok(s.to_owned()),
        Some(s) => Err(format!("« {s} » : deux chiffres attendus")),
    }
}

fn check_emails(emails: &[String]) -> std::result::Result<Vec<String>, String> {
    if emails.is_empty() {
        return Err("au moins une adresse de retour est requise".into());
    }
    let bad: Vec<&str> = emails
        .iter()
        .map(|e| e.trim())
        .filter(|e| !is_actes_email(e))
        .collect();
    if bad.is_empty() {
        Ok(emails.iter().map(|e| e.trim().to_owned()).collect())
    } else {
        Err(format!("adresse(s) invalide(s) : {}", bad.join(", ")))
    }
}

fn check_referent(r: Option<&Referent>) -> std::result::Result<Option<Referent>, String> {
    let Some(r) = r else { return Ok(None) };
    if let Some(e) = &r.email
        && !is_actes_email(e.trim())
    {
        return Err(format!("adresse invalide : {e}"));
    }
    let texts = [&r.nom, &r.telephone];
    if texts
        .iter()
        .any(|t| t.as_deref().is_some_and(|t| !xml::is_xml_text(t)))
    {
        return Err("contient des caractères de contrôle".into());
    }
    Ok(Some(r.clone()))
}

/// The e-mail pattern of `actesv1_1.xsd`:
/// `[_a-zA-Z0-9\-]+(\.[_a-zA-Z0-9\-]+)*@[a-zA-Z0-9\-]+(\.[a-zA-Z0-9\-]+)*\.[a-zA-Z]{2,6}`.
pub(crate) fn is_actes_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let local_ok = local.split('.').all(|p| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    });
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels[..labels.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        && labels.last().is_some_and(|t| {
            (2..=6).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_alphabetic())
        });
    local_ok && domain_ok
}

/// Accepts a JSON string or number as text (`"arrondissement": 2` as well as `"2"`).
fn text<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        S(String),
        N(json_integer::Number),
    }
    Ok(match Text::deserialize(d)? {
        Text::S(s) => s,
        Text::N(n) => n.0,
    })
}

fn optional_text<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<String>, D::Error> {
    text(d).map(Some)
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

/// An unsigned JSON integer kept as its decimal text.
mod json_integer {
    use serde::{Deserialize, Deserializer};

    pub(super) struct Number(pub String);

    impl<'de> Deserialize<'de> for Number {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            u64::deserialize(d).map(|n| Number(n.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cms_signed_data_is_recognised_by_its_header() {
        let oid = [
            0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x02,
        ];
        let der: Vec<u8> = [0x30, 0x82, 0x05, 0x10]
            .iter()
            .chain(&oid)
            .copied()
            .collect();
        let ber: Vec<u8> = [0x30, 0x80].iter().chain(&oid).copied().collect();
        let short: Vec<u8> = [0x30, 0x40].iter().chain(&oid).copied().collect();
        assert!(is_cms_signed_data(&der));
        assert!(is_cms_signed_data(&ber));
        assert!(is_cms_signed_data(&short));
        // enveloped-data (…7.3) is not a signature
        let mut enveloped = der.clone();
        *enveloped.last_mut().unwrap() = 0x03;
        assert!(!is_cms_signed_data(&enveloped));
        assert!(!is_cms_signed_data(b"-----BEGIN PKCS7-----"));
        assert!(!is_cms_signed_data(b"%PDF-1.7"));
        assert!(!is_cms_signed_data(&[0x30]));
    }
}
