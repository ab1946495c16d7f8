//! Reading a transmission archive back: which envelope, which message, which documents.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use flate2::read::GzDecoder;

use super::message::parse_acte_data;
use super::{ACTES_NS, ActeData, ArchiveName, INSEE_NS};
use crate::xml::{self, child, children};
use crate::{Error, Result};

/// XML members larger than this are not read into memory (an envelope or message is a few KiB).
const MAX_XML_MEMBER: u64 = 8 * 1024 * 1024;

/// One file of the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveMember {
    /// Its name in the archive.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
}

/// The `EnveloppeCLMISILL` of an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeData {
    /// The envelope's file name.
    pub file_name: String,
    /// `IDCL/@insee:SIREN`.
    pub siren: String,
    /// `IDCL/@Departement`.
    pub departement: String,
    /// `IDCL/@Arrondissement`.
    pub arrondissement: String,
    /// `IDCL/@Nature`.
    pub nature_collectivite: String,
    /// `AdressesRetour/Email`.
    pub emails: Vec<String>,
    /// `FormulairesEnvoyes/Formulaire/NomFichier`: the messages sent.
    pub forms: Vec<String>,
}

/// What a transmission archive holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActesArchive {
    /// The archive's name, if it follows the convention.
    pub name: Option<ArchiveName>,
    /// Every member, in archive order.
    pub members: Vec<ArchiveMember>,
    /// The envelope.
    pub envelope: EnvelopeData,
    /// The message's file name (the form the envelope lists).
    pub message_name: String,
    /// The act data of the message.
    pub acte: ActeData,
}

/// Reads a `.tar.gz` transmission archive: every member must be a plain top-level file, the
/// envelope must list one `Acte` message, and every file the message names must be present.
pub fn read_archive(path: &Path) -> Result<ActesArchive> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut archive = tar::Archive::new(GzDecoder::new(file));
    let mut members = Vec::new();
    let mut xml_members = BTreeMap::new();
    let entries = archive.entries().map_err(|e| Error::io(path, e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::io(path, e))?;
        let name = entry
            .path()
            .map_err(|e| Error::io(path, e))?
            .to_string_lossy()
            .into_owned();
        if !entry.header().entry_type().is_file() || name.contains('/') || name.starts_with('.') {
            return Err(Error::Format(format!(
                "membre « {name} » : seuls des fichiers à la racine sont admis"
            )));
        }
        if members.iter().any(|m: &ArchiveMember| m.name == name) {
            return Err(Error::Format(format!("membre « {name} » en double")));
        }
        let size = entry.header().size().map_err(|e| Error::io(path, e))?;
        if name.ends_with(".xml") && size <= MAX_XML_MEMBER {
            let mut bytes = Vec::new();
            entry
                .read_to_end(&mut bytes)
                .map_err(|e| Error::io(path, e))?;
            xml_members.insert(name.clone(), bytes);
        }
        members.push(ArchiveMember { name, size });
    }

    let envelopes: Vec<&String> = xml_members
        .keys()
        .filter(|n| n.starts_with("EACT--"))
        .collect();
    let [envelope_name] = envelopes[..] else {
        return Err(Error::Format(format!(
            "{} enveloppe(s) EACT--….xml dans l'archive, une attendue",
            envelopes.len()
        )));
    };
    let envelope = parse_envelope(envelope_name, &xml_members[envelope_name])?;
    let [message_name] = &envelope.forms[..] else {
        return Err(Error::Format(format!(
            "l'enveloppe liste {} formulaire(s), un attendu",
            envelope.forms.len()
        )));
    };
    let message = xml_members
        .get(message_name)
        .ok_or_else(|| Error::Format(format!("message {message_name} absent de l'archive")))?;
    let text = xml::decode(message)?;
    let doc = xml::parse(&text)?;
    let root = doc.root_element();
    if !xml::is(root, ACTES_NS, "Acte") {
        return Err(Error::Format(format!(
            "{message_name} : racine <{}>, <actes:Acte> attendue",
            root.tag_name().name()
        )));
    }
    let acte = parse_acte_data(root)?;
    for named in std::iter::once(&acte.document).chain(&acte.annexes) {
        if !members.iter().any(|m| &m.name == named) {
            return Err(Error::Format(format!(
                "{named}, nommé dans le message, est absent de l'archive"
            )));
        }
    }
    let name = path
        .file_name()
        .and_then(|n| ArchiveName::parse(&n.to_string_lossy()));
    Ok(ActesArchive {
        name,
        members,
        message_name: message_name.clone(),
        envelope,
        acte,
    })
}

fn parse_envelope(file_name: &str, bytes: &[u8]) -> Result<EnvelopeData> {
    let text = xml::decode(bytes)?;
    let doc = xml::parse(&text)?;
    let root = doc.root_element();
    if !xml::is(root, ACTES_NS, "EnveloppeCLMISILL") {
        return Err(Error::Format(format!(
            "{file_name} : racine <{}>, <actes:EnveloppeCLMISILL> attendue",
            root.tag_name().name()
        )));
    }
    let idcl = child(root, ACTES_NS, "Emetteur")
        .and_then(|e| child(e, ACTES_NS, "IDCL"))
        .ok_or_else(|| Error::Format(format!("{file_name} : Emetteur/IDCL absent")))?;
    let attribute = |ns: &str, name: &str| {
        idcl.attribute((ns, name))
            .map(str::to_owned)
            .ok_or_else(|| Error::Format(format!("{file_name} : IDCL sans {name}")))
    };
    let emails = child(root, ACTES_NS, "AdressesRetour")
        .map(|a| {
            children(a, ACTES_NS, "Email")
                .map(|e| e.text().unwrap_or("").trim().to_owned())
                .collect()
        })
        .unwrap_or_default();
    let forms = child(root, ACTES_NS, "FormulairesEnvoyes")
        .map(|f| {
            children(f, ACTES_NS, "Formulaire")
                .map(|form| xml::required_text(form, ACTES_NS, "NomFichier"))
                .collect::<Result<Vec<_>>>()
        })
        .transpose()?
        .unwrap_or_default();
    Ok(EnvelopeData {
        file_name: file_name.to_owned(),
        siren: attribute(INSEE_NS, "SIREN")?,
        departement: attribute(ACTES_NS, "Departement")?,
        arrondissement: attribute(ACTES_NS, "Arrondissement")?,
        nature_collectivite: attribute(ACTES_NS, "Nature")?,
        emails,
        forms,
    })
}
