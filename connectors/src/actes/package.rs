//! Building the transmission archive: names, `Acte` message, `EnveloppeCLMISILL` envelope, and
//! the `.tar.gz` itself, written to a temporary file and moved into place only when complete.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use quick_xml::events::{BytesEnd, BytesStart, Event};
use time::Date;

use super::metadata::ValidDocument;
use super::{ACTES_NS, INSEE_NS, Siren, TypePj, ValidActe};
use crate::dates::{compact_date, format_date, parse_date};
use crate::xml::{self, XmlWriter, text_element, write_error};
use crate::{Error, Result};

const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// The name of a transmission archive: `<TRIGRAMME>-EACT--<SIREN>--<YYYYMMDD>-<n>.tar.gz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveName {
    /// The platform code.
    pub trigramme: String,
    /// The authority's SIREN.
    pub siren: String,
    /// The transmission date.
    pub date: Date,
    /// The transmission's number on that day (from 1).
    pub sequence: u32,
}

impl ArchiveName {
    /// The archive's file name.
    pub fn file_name(&self) -> String {
        format!("{}-{}.tar.gz", self.trigramme, self.envelope_stem())
    }

    /// The envelope's file name: the archive name without the platform code.
    pub fn envelope_name(&self) -> String {
        format!("{}.xml", self.envelope_stem())
    }

    fn envelope_stem(&self) -> String {
        format!(
            "EACT--{}--{}-{}",
            self.siren,
            compact_date(self.date),
            self.sequence
        )
    }

    /// Reads an archive file name; `None` if it does not follow the convention.
    pub fn parse(name: &str) -> Option<Self> {
        let stem = name.strip_suffix(".tar.gz")?;
        let (trigramme, rest) = stem.split_once("-EACT--")?;
        let (siren, rest) = rest.split_once("--")?;
        let (date, sequence) = rest.split_once('-')?;
        let ok = trigramme.len() == 3
            && trigramme.bytes().all(|b| b.is_ascii_alphanumeric())
            && siren.len() == 9
            && siren.bytes().all(|b| b.is_ascii_digit())
            && date.len() == 8
            && !sequence.is_empty()
            && sequence.bytes().all(|b| b.is_ascii_digit());
        if !ok {
            return None;
        }
        let date = parse_date(&format!("{}-{}-{}", &date[..4], &date[4..6], &date[6..])).ok()?;
        Some(Self {
            trigramme: trigramme.to_owned(),
            siren: siren.to_owned(),
            date,
            sequence: sequence.parse().ok()?,
        })
    }
}

/// A written archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// Where the archive is.
    pub path: PathBuf,
    /// Its name, decomposed.
    pub name: ArchiveName,
    /// The members, in archive order: envelope, message, act, annexes.
    pub members: Vec<String>,
}

/// One file to pack under its @ctes name.
struct Member {
    name: String,
    source: PathBuf,
    size: u64,
}

/// Writes the transmission archive of a validated act into `out_dir`.
///
/// `sequence` is the transmission's number on that day; `None` takes the first number whose
/// archive does not exist in `out_dir` yet. An existing archive is never overwritten, and a
/// failure leaves nothing behind.
pub fn write_package(acte: &ValidActe, out_dir: &Path, sequence: Option<u32>) -> Result<Package> {
    let name_for = |sequence| ArchiveName {
        trigramme: acte.trigramme.as_str().to_owned(),
        siren: acte.siren.as_str().to_owned(),
        date: acte.transmission_date,
        sequence,
    };
    let name = match sequence {
        Some(n) => name_for(n),
        None => (1..=u32::MAX)
            .map(name_for)
            .find(|n| !out_dir.join(n.file_name()).exists())
            .ok_or_else(|| Error::Exists(out_dir.to_path_buf()))?,
    };
    let path = out_dir.join(name.file_name());
    if path.exists() {
        return Err(Error::Exists(path));
    }

    let stem = message_stem(acte);
    let message_name = format!("{stem}_0.xml");
    let files = members(acte, &stem);
    let document = files[0].name.clone();
    let annexes: Vec<String> = files[1..].iter().map(|m| m.name.clone()).collect();
    let message = acte_xml(acte, &document, &annexes)?;
    let envelope = envelope_xml(acte, &acte.siren, &message_name)?;

    let mut temp =
        crate::paths::staging_file(".seing-actes-", out_dir).map_err(|e| Error::io(out_dir, e))?;
    let temp_name = temp.path().to_path_buf();
    let io = |e| Error::io(&temp_name, e);
    {
        let gz = GzEncoder::new(BufWriter::new(temp.as_file_mut()), Compression::default());
        let mut tar = tar::Builder::new(gz);
        let mtime = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        append(
            &mut tar,
            &name.envelope_name(),
            &envelope[..],
            envelope.len() as u64,
            mtime,
        )?;
        append(
            &mut tar,
            &message_name,
            &message[..],
            message.len() as u64,
            mtime,
        )?;
        for member in &files {
            let file = File::open(&member.source).map_err(|e| Error::io(&member.source, e))?;
            append(&mut tar, &member.name, file, member.size, mtime).map_err(|e| match e {
                Error::Format(m) => Error::Format(format!("{} : {m}", member.source.display())),
                other => other,
            })?;
        }
        let gz = tar.into_inner().map_err(io)?;
        let mut buffered = gz.finish().map_err(io)?;
        buffered.flush().map_err(io)?;
    }
    temp.as_file().sync_all().map_err(io)?;
    temp.persist_noclobber(&path).map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            Error::Exists(path.clone())
        } else {
            Error::io(&path, e.error)
        }
    })?;

    let mut member_names = vec![name.envelope_name(), message_name];
    member_names.extend(files.into_iter().map(|m| m.name));
    Ok(Package {
        path,
        name,
        members: member_names,
    })
}

/// `<DEP>-<SIREN>-<YYYYMMDD>-<NumeroInterne>-<NatureAbbrev>-1-1`: the stem of every name but
/// the envelope's. The date is the transmission's, as in the archive name.
fn message_stem(acte: &ValidActe) -> String {
    format!(
        "{}-{}-{}-{}-{}-1-1",
        acte.departement,
        acte.siren,
        compact_date(acte.transmission_date),
        acte.numero_interne,
        acte.nature.abbreviation()
    )
}

/// The act then the annexes, each followed by its detached signature, numbered from 1
/// (`_0` is the message): `<CodeTypePJ>-<stem>_<k>.<ext>`.
fn members(acte: &ValidActe, stem: &str) -> Vec<Member> {
    let mut out = Vec::new();
    let mut push = |type_pj: &TypePj, extension: &str, source: &Path, size: u64| {
        let k = out.len() + 1;
        out.push(Member {
            name: format!("{type_pj}-{stem}_{k}.{extension}"),
            source: source.to_path_buf(),
            size,
        });
    };
    for doc in std::iter::once(&acte.act).chain(&acte.annexes) {
        let ValidDocument {
            path,
            extension,
            type_pj,
            size,
            signature,
        } = doc;
        push(type_pj, extension, path, *size);
        if let Some((sig, sig_size)) = signature {
            push(&TypePj::signature(), "p7s", sig, *sig_size);
        }
    }
    out
}

fn append<R: Read>(
    tar: &mut tar::Builder<impl Write>,
    name: &str,
    data: R,
    size: u64,
    mtime: u64,
) -> Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(mtime);
    header.set_entry_type(tar::EntryType::Regular);
    // The tar crate pads to the announced size without checking it: count what was read, so a
    // file that changed since it was measured fails instead of corrupting the archive.
    let mut counted = Counted {
        inner: data.take(size),
        count: 0,
    };
    tar.append_data(&mut header, name, &mut counted)
        .map_err(|e| Error::io(name, e))?;
    if counted.count != size {
        return Err(Error::Format(format!(
            "{} octets lus au lieu de {size} : le fichier a changé pendant l'écriture",
            counted.count
        )));
    }
    Ok(())
}

struct Counted<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

fn start<'a>(name: &'a str, attributes: &[(&'a str, &'a str)]) -> BytesStart<'a> {
    BytesStart::new(name).with_attributes(attributes.iter().copied())
}

fn acte_xml(acte: &ValidActe, document: &str, annexes: &[String]) -> Result<Vec<u8>> {
    let mut w = xml::writer()?;
    write_acte(&mut w, acte, document, annexes).map_err(write_error)?;
    Ok(xml::finish(w))
}

fn write_acte(
    w: &mut XmlWriter,
    acte: &ValidActe,
    document: &str,
    annexes: &[String],
) -> std::io::Result<()> {
    let date = format_date(acte.date_decision);
    let code = acte.nature.code().to_string();
    w.write_event(Event::Start(start(
        "actes:Acte",
        &[
            ("xmlns:actes", ACTES_NS),
            ("xmlns:insee", INSEE_NS),
            ("xmlns:xsi", XSI_NS),
            ("actes:Date", &date),
            ("actes:NumeroInterne", acte.numero_interne.as_str()),
            ("actes:CodeNatureActe", &code),
        ],
    )))?;
    for (i, code) in acte.classification.iter().enumerate() {
        let code = code.to_string();
        w.create_element(format!("actes:CodeMatiere{}", i + 1))
            .with_attribute(("actes:CodeMatiere", code.as_str()))
            .write_empty()?;
    }
    text_element(w, "actes:Objet", &acte.objet)?;
    text_element(
        w,
        "actes:ClassificationDateVersion",
        &format_date(acte.classification_date),
    )?;
    w.create_element("actes:Document")
        .write_inner_content(|w| text_element(w, "actes:NomFichier", document))?;
    let count = annexes.len().to_string();
    let element = w
        .create_element("actes:Annexes")
        .with_attribute(("actes:Nombre", count.as_str()));
    if annexes.is_empty() {
        element.write_empty()?;
    } else {
        element.write_inner_content(|w| {
            for annexe in annexes {
                w.create_element("actes:Annexe")
                    .write_inner_content(|w| text_element(w, "actes:NomFichier", annexe))?;
            }
            Ok(())
        })?;
    }
    // No paper document is sent by mail: nil, as in the real transmissions.
    w.create_element("actes:DocumentPapier")
        .with_attribute(("xsi:nil", "true"))
        .write_empty()?;
    w.write_event(Event::End(BytesEnd::new("actes:Acte")))
}

fn envelope_xml(acte: &ValidActe, siren: &Siren, message_name: &str) -> Result<Vec<u8>> {
    let mut w = xml::writer()?;
    write_envelope(&mut w, acte, siren, message_name).map_err(write_error)?;
    Ok(xml::finish(w))
}

fn write_envelope(
    w: &mut XmlWriter,
    acte: &ValidActe,
    siren: &Siren,
    message_name: &str,
) -> std::io::Result<()> {
    w.write_event(Event::Start(start(
        "actes:EnveloppeCLMISILL",
        &[("xmlns:actes", ACTES_NS), ("xmlns:insee", INSEE_NS)],
    )))?;
    let arrondissement = acte.arrondissement.0.to_string();
    w.create_element("actes:Emetteur")
        .write_inner_content(|w| {
            w.create_element("actes:IDCL")
                .with_attributes([
                    ("insee:SIREN", siren.as_str()),
                    ("actes:Departement", acte.departement.as_str()),
                    ("actes:Arrondissement", arrondissement.as_str()),
                    ("actes:Nature", acte.nature_collectivite.as_str()),
                ])
                .write_empty()?;
            if let Some(r) = &acte.referent {
                w.create_element("actes:Referent")
                    .write_inner_content(|w| {
                        let fields = [
                            ("actes:Nom", &r.nom),
                            ("actes:Telephone", &r.telephone),
                            ("actes:Email", &r.email),
                        ];
                        for (name, value) in fields {
                            if let Some(v) = value {
                                text_element(w, name, v.trim())?;
                            }
                        }
                        Ok(())
                    })?;
            }
            Ok(())
        })?;
    w.create_element("actes:AdressesRetour")
        .write_inner_content(|w| {
            for email in &acte.emails {
                text_element(w, "actes:Email", email)?;
            }
            Ok(())
        })?;
    w.create_element("actes:FormulairesEnvoyes")
        .write_inner_content(|w| {
            w.create_element("actes:Formulaire")
                .write_inner_content(|w| text_element(w, "actes:NomFichier", message_name))?;
            Ok(())
        })?;
    w.write_event(Event::End(BytesEnd::new("actes:EnveloppeCLMISILL")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_name_round_trips() {
        let name = ArchiveName::parse("SIC-EACT--210600730--20180115-1.tar.gz").unwrap();
        assert_eq!(name.trigramme, "SIC");
        assert_eq!(name.siren, "210600730");
        assert_eq!(format_date(name.date), "2018-01-15");
        assert_eq!(name.sequence, 1);
        assert_eq!(name.file_name(), "SIC-EACT--210600730--20180115-1.tar.gz");
        assert_eq!(name.envelope_name(), "EACT--210600730--20180115-1.xml");
        assert!(ArchiveName::parse("SIC-EACT--21060073--20180115-1.tar.gz").is_none());
        assert!(ArchiveName::parse("SIC-EACT--210600730--20181315-1.tar.gz").is_none());
    }
}
