//! CMS building blocks shared by CAdES and PAdES: ESS signing-certificate-v2, signed attribute
//! helpers, streaming digests.

pub mod ess;

use std::io::Read;

use crate::digest::DigestAlgorithm;

/// Hashes everything `reader` yields, 64 KiB at a time (constant memory).
pub fn digest_reader(algorithm: DigestAlgorithm, reader: impl Read) -> std::io::Result<Vec<u8>> {
    match algorithm {
        DigestAlgorithm::Sha256 => stream::<sha2::Sha256>(reader),
        DigestAlgorithm::Sha384 => stream::<sha2::Sha384>(reader),
        DigestAlgorithm::Sha512 => stream::<sha2::Sha512>(reader),
    }
}

fn stream<D: sha2::Digest>(mut reader: impl Read) -> std::io::Result<Vec<u8>> {
    let mut hasher = D::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_digest_matches_one_shot() {
        let data = vec![7u8; 200_000];
        for a in [
            DigestAlgorithm::Sha256,
            DigestAlgorithm::Sha384,
            DigestAlgorithm::Sha512,
        ] {
            assert_eq!(digest_reader(a, &data[..]).unwrap(), a.digest(&data));
        }
    }
}
