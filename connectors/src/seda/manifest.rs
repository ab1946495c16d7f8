//! The `ArchiveTransfer` manifest of a finished dossier and the folder it describes.
//!
//! The package is a folder: `manifest.xml` and `content/` with one file per `BinaryDataObject`
//! (referenced by a relative `Uri`). It is assembled in a temporary folder next to the target and
//! renamed into place only when complete, so a failure leaves nothing half-written.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use quick_xml::events::{BytesEnd, BytesStart, Event};
use serde::Deserialize;
use sha2::{Digest, Sha512};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{FileFormat, SEDA21_NS};
use crate::dates::{format_date, parse_date};
use crate::paths::file_name;
use crate::xml::{self, XmlWriter, text_element, write_error};
use crate::{Error, Problem, Result};

/// What the archive service does at the end of the appraisal period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum FinalAction {
    /// Keep for ever.
    Keep,
    /// Destroy.
    Destroy,
}

/// The appraisal rule (durée d'utilité administrative) from the tenant's settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppraisalRule {
    /// Rule identifier in the archive service's repository, e.g. `APP-00001`.
    pub rule: String,
    /// Start of the period, `YYYY-MM-DD` (default: the dossier's end date).
    #[serde(default)]
    pub start_date: Option<String>,
    /// What happens at the end.
    pub final_action: FinalAction,
}

/// The access rule (communicability) from the tenant's settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessRule {
    /// Rule identifier, e.g. `ACC-00001`.
    pub rule: String,
    /// Start of the period, `YYYY-MM-DD` (default: the dossier's end date).
    #[serde(default)]
    pub start_date: Option<String>,
}

/// Descriptive and management metadata of a transfer.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SedaMetadata {
    /// Identifier of the archive service.
    pub archival_agency: String,
    /// Identifier of the transferring service.
    pub transferring_agency: String,
    /// Identifier of the service that produced the records.
    pub originating_agency: String,
    /// Title of the dossier.
    pub title: String,
    /// Agreement between the transferring and archival agencies.
    #[serde(default)]
    pub archival_agreement: Option<String>,
    /// Description of the dossier.
    #[serde(default)]
    pub description: Option<String>,
    /// First date of the dossier, `YYYY-MM-DD`.
    #[serde(default)]
    pub start_date: Option<String>,
    /// Last date of the dossier, `YYYY-MM-DD`.
    #[serde(default)]
    pub end_date: Option<String>,
    /// Keywords from the dossier's metadata.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Identifier of the message (default: `seing-` and a random UUID).
    #[serde(default)]
    pub message_identifier: Option<String>,
    /// Appraisal rule.
    #[serde(default)]
    pub appraisal_rule: Option<AppraisalRule>,
    /// Access rule.
    #[serde(default)]
    pub access_rule: Option<AccessRule>,
}

/// What a file is in the dossier; it names the archive unit that describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectRole {
    /// A document as submitted.
    Document,
    /// The signed version of a document (PAdES, XAdES enveloped…).
    Signed,
    /// A detached signature file.
    Signature,
    /// The dossier's journal (its audit trail).
    Journal,
}

impl ObjectRole {
    fn label(self) -> &'static str {
        match self {
            Self::Document => "Document",
            Self::Signed => "Document signé",
            Self::Signature => "Signature détachée",
            Self::Journal => "Journal du dossier",
        }
    }

    /// The role a file gets when none is given: `.p7s` files are signatures, others documents.
    pub fn guess(file_name: &str) -> Self {
        if file_name.to_ascii_lowercase().ends_with(".p7s") {
            Self::Signature
        } else {
            Self::Document
        }
    }
}

/// One file to archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SedaFile {
    /// Where it is.
    pub path: PathBuf,
    /// What it is.
    pub role: ObjectRole,
}

/// One `BinaryDataObject` as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenObject {
    /// Its `id` in the manifest.
    pub id: String,
    /// The file's own name (`FileInfo/Filename`).
    pub file_name: String,
    /// Its path relative to the package folder.
    pub uri: String,
    /// SHA-512, hexadecimal.
    pub sha512: String,
    /// Size in bytes.
    pub size: u64,
    /// Its format.
    pub format: FileFormat,
}

/// A written package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SedaPackage {
    /// The manifest (`<out>/manifest.xml`).
    pub manifest: PathBuf,
    /// `MessageIdentifier`.
    pub message_identifier: String,
    /// The objects, in order.
    pub objects: Vec<WrittenObject>,
}

const CONTENT: &str = "content";
const MANIFEST: &str = "manifest.xml";

struct Checked {
    start_date: Option<time::Date>,
    end_date: Option<time::Date>,
    appraisal_start: Option<time::Date>,
    access_start: Option<time::Date>,
}

fn check(meta: &SedaMetadata, files: &[SedaFile], out_dir: &Path) -> Result<Checked> {
    let mut problems = Vec::new();
    let mut required = |field: &str, value: &str| {
        if value.trim().is_empty() {
            problems.push(Problem::new(field, "vide"));
        } else if !xml::is_xml_text(value) {
            problems.push(Problem::new(field, "contient des caractères de contrôle"));
        }
    };
    required("archival_agency", &meta.archival_agency);
    required("transferring_agency", &meta.transferring_agency);
    required("originating_agency", &meta.originating_agency);
    required("title", &meta.title);
    let optional = [
        ("archival_agreement", &meta.archival_agreement),
        ("description", &meta.description),
        ("message_identifier", &meta.message_identifier),
    ];
    for (field, value) in optional {
        if let Some(v) = value {
            required(field, v);
        }
    }
    for (i, k) in meta.keywords.iter().enumerate() {
        required(&format!("keywords[{i}]"), k);
    }
    if let Some(r) = &meta.appraisal_rule {
        required("appraisal_rule.rule", &r.rule);
    }
    if let Some(r) = &meta.access_rule {
        required("access_rule.rule", &r.rule);
    }
    let mut date = |field: &str, value: &Option<String>| {
        value.as_ref().and_then(|v| match parse_date(v) {
            Ok(d) => Some(d),
            Err(_) => {
                problems.push(Problem::new(
                    field,
                    format!("« {} » : date AAAA-MM-JJ attendue", v.trim()),
                ));
                None
            }
        })
    };
    let start_date = date("start_date", &meta.start_date);
    let end_date = date("end_date", &meta.end_date);
    let appraisal_start = date(
        "appraisal_rule.start_date",
        &meta
            .appraisal_rule
            .as_ref()
            .and_then(|r| r.start_date.clone()),
    );
    let access_start = date(
        "access_rule.start_date",
        &meta.access_rule.as_ref().and_then(|r| r.start_date.clone()),
    );
    if let (Some(s), Some(e)) = (start_date, end_date)
        && s > e
    {
        problems.push(Problem::new(
            "end_date",
            format!("{} précède start_date {}", format_date(e), format_date(s)),
        ));
    }
    if files.is_empty() {
        problems.push(Problem::new("fichiers", "aucun fichier à archiver"));
    }
    let mut names = BTreeSet::new();
    for f in files {
        let name = file_name(&f.path);
        if !names.insert(name.clone()) {
            problems.push(Problem::new(&name, "deux fichiers portent ce nom"));
        }
        match std::fs::metadata(&f.path) {
            Err(e) => problems.push(Problem::new(
                &name,
                format!("fichier illisible ({}) : {e}", f.path.display()),
            )),
            Ok(m) if !m.is_file() => problems.push(Problem::new(&name, "n'est pas un fichier")),
            Ok(_) => {}
        }
        if !xml::is_xml_text(&name) {
            problems.push(Problem::new(
                &name,
                "nom de fichier avec caractères de contrôle",
            ));
        }
    }
    match std::fs::read_dir(out_dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                problems.push(Problem::new(
                    "out",
                    format!("{} n'est pas vide", out_dir.display()),
                ));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => problems.push(Problem::new("out", format!("{} : {e}", out_dir.display()))),
    }
    if problems.is_empty() {
        Ok(Checked {
            start_date,
            end_date,
            appraisal_start,
            access_start,
        })
    } else {
        Err(Error::Invalid(problems))
    }
}

/// Checks metadata, files and output folder without writing anything; every problem is listed
/// in [`Error::Invalid`].
pub fn validate(meta: &SedaMetadata, files: &[SedaFile], out_dir: &Path) -> Result<()> {
    check(meta, files, out_dir).map(|_| ())
}

/// Writes the package of a finished dossier into `out_dir` (which must not exist or be empty):
/// the files under `content/`, each with its SHA-512, size and format, and `manifest.xml`.
///
/// Every problem in the metadata and files is reported at once, before anything is written.
pub fn write_package(
    meta: &SedaMetadata,
    files: &[SedaFile],
    out_dir: &Path,
    now: OffsetDateTime,
) -> Result<SedaPackage> {
    let checked = check(meta, files, out_dir)?;
    let parent = match out_dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
    let staging = tempfile::Builder::new()
        .prefix(".seing-seda-")
        .tempdir_in(&parent)
        .map_err(|e| Error::io(&parent, e))?;
    let content = staging.path().join(CONTENT);
    std::fs::create_dir(&content).map_err(|e| Error::io(&content, e))?;

    let mut objects = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let name = file_name(&f.path);
        let (sha512, size, head) = copy_hashing(&f.path, &content.join(&name))?;
        objects.push(WrittenObject {
            id: format!("BDO{}", i + 1),
            file_name: name.clone(),
            uri: format!("{CONTENT}/{}", percent_encode(&name)),
            sha512,
            size,
            format: FileFormat::identify(&name, &head),
        });
    }
    let message_identifier = meta
        .message_identifier
        .clone()
        .unwrap_or_else(|| format!("seing-{}", uuid::Uuid::new_v4()));
    let date = now
        .format(&Rfc3339)
        .map_err(|e| Error::Format(format!("date du message : {e}")))?;
    let manifest = manifest_xml(meta, files, &objects, &checked, &message_identifier, &date)?;
    let staged_manifest = staging.path().join(MANIFEST);
    write_synced(&staged_manifest, &manifest)?;

    // Replaces out_dir only if it is absent or empty (checked above; rename(2) refuses a
    // non-empty directory, so a folder filled meanwhile is not clobbered either).
    let staged = staging.keep();
    if let Err(e) = std::fs::rename(&staged, out_dir) {
        let _ = std::fs::remove_dir_all(&staged);
        return Err(Error::io(out_dir, e));
    }
    Ok(SedaPackage {
        manifest: out_dir.join(MANIFEST),
        message_identifier,
        objects,
    })
}

/// Copies `from` to `to`, returning the SHA-512 (hex), the size and the first bytes.
fn copy_hashing(from: &Path, to: &Path) -> Result<(String, u64, Vec<u8>)> {
    let mut input = File::open(from).map_err(|e| Error::io(from, e))?;
    let mut output = File::create(to).map_err(|e| Error::io(to, e))?;
    let mut hasher = Sha512::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut head = Vec::new();
    let mut size = 0u64;
    loop {
        let n = input.read(&mut buffer).map_err(|e| Error::io(from, e))?;
        if n == 0 {
            break;
        }
        if head.len() < 16 {
            head.extend_from_slice(&buffer[..n.min(16 - head.len())]);
        }
        hasher.update(&buffer[..n]);
        output
            .write_all(&buffer[..n])
            .map_err(|e| Error::io(to, e))?;
        size += n as u64;
    }
    output.sync_all().map_err(|e| Error::io(to, e))?;
    Ok((hex::encode(hasher.finalize()), size, head))
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = File::create(path).map_err(|e| Error::io(path, e))?;
    file.write_all(bytes).map_err(|e| Error::io(path, e))?;
    file.sync_all().map_err(|e| Error::io(path, e))
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so any file name is a valid
/// relative `xsd:anyURI`.
fn percent_encode(name: &str) -> String {
    let mut out = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn manifest_xml(
    meta: &SedaMetadata,
    files: &[SedaFile],
    objects: &[WrittenObject],
    checked: &Checked,
    message_identifier: &str,
    date: &str,
) -> Result<Vec<u8>> {
    let mut w = xml::writer()?;
    write_manifest(
        &mut w,
        meta,
        files,
        objects,
        checked,
        message_identifier,
        date,
    )
    .map_err(write_error)?;
    Ok(xml::finish(w))
}

fn identifier(w: &mut XmlWriter, element: &str, id: &str) -> std::io::Result<()> {
    w.create_element(element)
        .write_inner_content(|w| text_element(w, "Identifier", id.trim()))?;
    Ok(())
}

fn write_manifest(
    w: &mut XmlWriter,
    meta: &SedaMetadata,
    files: &[SedaFile],
    objects: &[WrittenObject],
    checked: &Checked,
    message_identifier: &str,
    date: &str,
) -> std::io::Result<()> {
    w.write_event(Event::Start(
        BytesStart::new("ArchiveTransfer").with_attributes([("xmlns", SEDA21_NS)]),
    ))?;
    text_element(w, "Date", date)?;
    text_element(w, "MessageIdentifier", message_identifier.trim())?;
    if let Some(a) = &meta.archival_agreement {
        text_element(w, "ArchivalAgreement", a.trim())?;
    }
    w.create_element("CodeListVersions").write_empty()?;
    w.create_element("DataObjectPackage")
        .write_inner_content(|w| {
            for object in objects {
                write_object(w, object)?;
            }
            w.create_element("DescriptiveMetadata")
                .write_inner_content(|w| write_units(w, meta, files, objects, checked))?;
            w.create_element("ManagementMetadata")
                .write_inner_content(|w| write_management(w, meta, checked))?;
            Ok(())
        })?;
    identifier(w, "ArchivalAgency", &meta.archival_agency)?;
    identifier(w, "TransferringAgency", &meta.transferring_agency)?;
    w.write_event(Event::End(BytesEnd::new("ArchiveTransfer")))
}

fn write_object(w: &mut XmlWriter, o: &WrittenObject) -> std::io::Result<()> {
    w.create_element("BinaryDataObject")
        .with_attribute(("id", o.id.as_str()))
        .write_inner_content(|w| {
            text_element(w, "DataObjectVersion", "BinaryMaster_1")?;
            text_element(w, "Uri", &o.uri)?;
            w.create_element("MessageDigest")
                .with_attribute(("algorithm", "SHA-512"))
                .write_text_content(quick_xml::events::BytesText::new(&o.sha512))?;
            text_element(w, "Size", &o.size.to_string())?;
            w.create_element("FormatIdentification")
                .write_inner_content(|w| {
                    text_element(w, "FormatLitteral", o.format.label)?;
                    text_element(w, "MimeType", o.format.mime_type)?;
                    if let Some(p) = o.format.pronom {
                        text_element(w, "FormatId", p)?;
                    }
                    Ok(())
                })?;
            w.create_element("FileInfo")
                .write_inner_content(|w| text_element(w, "Filename", &o.file_name))?;
            Ok(())
        })?;
    Ok(())
}

fn write_units(
    w: &mut XmlWriter,
    meta: &SedaMetadata,
    files: &[SedaFile],
    objects: &[WrittenObject],
    checked: &Checked,
) -> std::io::Result<()> {
    w.create_element("ArchiveUnit")
        .with_attribute(("id", "AU0"))
        .write_inner_content(|w| {
            w.create_element("Content").write_inner_content(|w| {
                text_element(w, "DescriptionLevel", "File")?;
                text_element(w, "Title", meta.title.trim())?;
                if let Some(d) = &meta.description {
                    text_element(w, "Description", d.trim())?;
                }
                for k in &meta.keywords {
                    w.create_element("Keyword")
                        .write_inner_content(|w| text_element(w, "KeywordContent", k.trim()))?;
                }
                identifier(w, "OriginatingAgency", &meta.originating_agency)?;
                if let Some(d) = checked.start_date {
                    text_element(w, "StartDate", &format_date(d))?;
                }
                if let Some(d) = checked.end_date {
                    text_element(w, "EndDate", &format_date(d))?;
                }
                Ok(())
            })?;
            for (i, (file, object)) in files.iter().zip(objects).enumerate() {
                let id = format!("AU{}", i + 1);
                let title = format!("{} : {}", file.role.label(), file_name(&file.path));
                w.create_element("ArchiveUnit")
                    .with_attribute(("id", id.as_str()))
                    .write_inner_content(|w| {
                        w.create_element("Content").write_inner_content(|w| {
                            text_element(w, "DescriptionLevel", "Item")?;
                            text_element(w, "Title", &title)?;
                            Ok(())
                        })?;
                        w.create_element("DataObjectReference")
                            .write_inner_content(|w| {
                                text_element(w, "DataObjectReferenceId", &object.id)
                            })?;
                        Ok(())
                    })?;
            }
            Ok(())
        })?;
    Ok(())
}

fn write_management(
    w: &mut XmlWriter,
    meta: &SedaMetadata,
    checked: &Checked,
) -> std::io::Result<()> {
    text_element(
        w,
        "OriginatingAgencyIdentifier",
        meta.originating_agency.trim(),
    )?;
    // A rule's period starts at the given date, else when the dossier closed.
    let start = |own: Option<time::Date>| own.or(checked.end_date).map(format_date);
    if let Some(r) = &meta.appraisal_rule {
        w.create_element("AppraisalRule").write_inner_content(|w| {
            text_element(w, "Rule", r.rule.trim())?;
            if let Some(d) = start(checked.appraisal_start) {
                text_element(w, "StartDate", &d)?;
            }
            let action = match r.final_action {
                FinalAction::Keep => "Keep",
                FinalAction::Destroy => "Destroy",
            };
            text_element(w, "FinalAction", action)
        })?;
    }
    if let Some(r) = &meta.access_rule {
        w.create_element("AccessRule").write_inner_content(|w| {
            text_element(w, "Rule", r.rule.trim())?;
            if let Some(d) = start(checked.access_start) {
                text_element(w, "StartDate", &d)?;
            }
            Ok(())
        })?;
    }
    Ok(())
}
