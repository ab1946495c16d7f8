//! The document store: content-addressed (SHA-256) files, written before the database commit
//! (temp file, fsync, rename, fsync of the folder), so a row never points at a missing file.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Hex SHA-256 of `bytes`, the address of a document.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A content-addressed folder: `<root>/ab/cdef…` holds the bytes whose SHA-256 is `abcdef…`.
#[derive(Debug, Clone)]
pub struct DocumentStore {
    root: PathBuf,
}

impl DocumentStore {
    /// A store rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_of(&self, hash: &str) -> Option<PathBuf> {
        let valid = hash.len() == 64
            && hash
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
        valid.then(|| self.root.join(&hash[..2]).join(&hash[2..]))
    }

    /// Stores `bytes` durably and returns their address; storing the same bytes twice is a no-op.
    pub async fn put(&self, bytes: Vec<u8>) -> std::io::Result<String> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.put_blocking(&bytes))
            .await
            .map_err(std::io::Error::other)?
    }

    fn put_blocking(&self, bytes: &[u8]) -> std::io::Result<String> {
        let hash = sha256_hex(bytes);
        let path = self
            .path_of(&hash)
            .ok_or_else(|| std::io::Error::other("bad hash"))?;
        if path.exists() {
            return Ok(hash);
        }
        let dir = path
            .parent()
            .ok_or_else(|| std::io::Error::other("no parent"))?;
        std::fs::create_dir_all(dir)?;
        let mut temp = tempfile::NamedTempFile::new_in(dir)?;
        temp.write_all(bytes)?;
        temp.as_file().sync_all()?;
        temp.persist(&path).map_err(|e| e.error)?;
        // The rename is durable only once the folder entry is on disk.
        std::fs::File::open(dir)?.sync_all()?;
        Ok(hash)
    }

    /// Reads the bytes at `hash`, checking that they still match it.
    pub async fn get(&self, hash: &str) -> std::io::Result<Vec<u8>> {
        let path = self.path_of(hash).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a SHA-256 address")
        })?;
        let bytes = tokio::fs::read(&path).await?;
        if sha256_hex(&bytes) != hash {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("document {hash} is corrupted on disk"),
            ));
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stores_by_content_and_detects_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let store = DocumentStore::new(dir.path());
        let hash = store.put(b"hello".to_vec()).await.unwrap();
        assert_eq!(
            hash,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(store.put(b"hello".to_vec()).await.unwrap(), hash);
        assert_eq!(store.get(&hash).await.unwrap(), b"hello");
        std::fs::write(dir.path().join(&hash[..2]).join(&hash[2..]), b"evil").unwrap();
        assert_eq!(
            store.get(&hash).await.unwrap_err().kind(),
            std::io::ErrorKind::InvalidData
        );
        assert_eq!(
            store.get("../etc").await.unwrap_err().kind(),
            std::io::ErrorKind::InvalidInput
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join(&hash[..2]))
            .unwrap()
            .collect();
        assert_eq!(leftovers.len(), 1, "no temp file left behind");
    }
}
