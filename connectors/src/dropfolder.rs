//! Drop-folder transport, for sites that transmit another way (a platform's own agent, a
//! shared folder watched by another system): packages are written into an outbox folder,
//! returns are read from an inbox folder.
//!
//! A file appears in the outbox complete or not at all: it is written under a hidden temporary
//! name in the same folder, synced, then renamed. Depositing the same bytes again under the
//! same name is a no-op (a retried delivery), different bytes are refused.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::actes::{ActesReturn, parse_return};
use crate::helios::{Acquit, parse_acquit};
use crate::seda::{TransferReply, parse_reply};
use crate::{Error, Result, xml};

/// Where returns that were read are moved, inside the inbox.
const DONE: &str = "traites";

/// An outbox folder to write to and an inbox folder to read returns from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropFolder {
    /// Where packages are deposited.
    pub outbox: PathBuf,
    /// Where returns arrive.
    pub inbox: PathBuf,
}

/// A return read from the inbox.
#[derive(Debug, Clone, PartialEq)]
pub enum Return {
    /// From the prefecture (`ARActe`, `AnomalieActe`, …).
    Actes(ActesReturn),
    /// From the DGFiP (`PES_Acquit`).
    Helios(Acquit),
    /// From the archive service (`ArchiveTransferReply`).
    Seda(TransferReply),
}

/// One file of the inbox and what it says.
#[derive(Debug)]
pub struct InboxFile {
    /// Where it is.
    pub path: PathBuf,
    /// Its bytes (kept as proof).
    pub bytes: Vec<u8>,
    /// What it says, or why it could not be read.
    pub parsed: Result<Return>,
}

/// Reads a return message, whichever of the three kinds it is (by its root element).
pub fn parse_any_return(bytes: &[u8]) -> Result<Return> {
    let root = {
        let text = xml::decode(bytes)?;
        let doc = xml::parse(&text)?;
        doc.root_element().tag_name().name().to_owned()
    };
    match root.as_str() {
        "PES_ACQUIT" | "PES_Acquit" => parse_acquit(bytes).map(Return::Helios),
        "ArchiveTransferReply" => parse_reply(bytes).map(Return::Seda),
        _ => parse_return(bytes).map(Return::Actes),
    }
}

impl DropFolder {
    /// Writes `bytes` as `outbox/name`, atomically; returns the path.
    pub fn deposit(&self, name: &str, bytes: &[u8]) -> Result<PathBuf> {
        if name.is_empty()
            || name.starts_with('.')
            || name.contains(['/', '\\'])
            || name.chars().any(char::is_control)
        {
            return Err(Error::Format(format!("nom de fichier « {name} » refusé")));
        }
        fs::create_dir_all(&self.outbox).map_err(|e| Error::io(&self.outbox, e))?;
        let target = self.outbox.join(name);
        if target.exists() {
            let existing = fs::read(&target).map_err(|e| Error::io(&target, e))?;
            return if existing == bytes {
                Ok(target)
            } else {
                Err(Error::Exists(target))
            };
        }
        let mut temp = crate::paths::staging_file(".seing-", &self.outbox)
            .map_err(|e| Error::io(&self.outbox, e))?;
        temp.write_all(bytes)
            .and_then(|()| temp.as_file().sync_all())
            .map_err(|e| Error::io(temp.path(), e))?;
        temp.persist_noclobber(&target)
            .map_err(|e| Error::io(&target, e.error))?;
        Ok(target)
    }

    /// Copies the file `source` into the outbox under its own name, atomically.
    pub fn deposit_file(&self, source: &Path) -> Result<PathBuf> {
        let bytes = fs::read(source).map_err(|e| Error::io(source, e))?;
        self.deposit(&crate::paths::file_name(source), &bytes)
    }

    /// The returns waiting in the inbox (regular, non-hidden files), oldest name first.
    pub fn returns(&self) -> Result<Vec<InboxFile>> {
        let entries = match fs::read_dir(&self.inbox) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&self.inbox, e)),
        };
        let mut paths = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&self.inbox, e))?;
            let hidden = entry.file_name().to_string_lossy().starts_with('.');
            let file = entry.file_type().is_ok_and(|t| t.is_file());
            if file && !hidden {
                paths.push(entry.path());
            }
        }
        paths.sort();
        paths
            .into_iter()
            .map(|path| {
                let bytes = fs::read(&path).map_err(|e| Error::io(&path, e))?;
                let parsed = parse_any_return(&bytes);
                Ok(InboxFile {
                    path,
                    bytes,
                    parsed,
                })
            })
            .collect()
    }

    /// Moves a handled return to the inbox's `traites/` folder, so it is read only once.
    pub fn done(&self, file: &InboxFile) -> Result<PathBuf> {
        let done = self.inbox.join(DONE);
        fs::create_dir_all(&done).map_err(|e| Error::io(&done, e))?;
        let target = done.join(crate::paths::file_name(&file.path));
        fs::rename(&file.path, &target).map_err(|e| Error::io(&file.path, e))?;
        Ok(target)
    }
}
