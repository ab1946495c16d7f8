//! The format-neutral signing model: prepare → sign → finalize, local signing and batches.
//!
//! Every signature format implements [`SignatureFormat`]:
//!
//! 1. [`SignatureFormat::prepare`] builds everything that will be signed from the document, the
//!    format's request and the signer's [`CertificateChain`], fixes the signing time, and returns
//!    a [`Prepared`]: the [`DataToSign`] (one [`ToSign`] digest per signature — a PES with 15
//!    bordereaux yields 15) and a `State` that is `Serialize + Deserialize`, so a remote signing
//!    round trip can keep it in JSON or a database between the two calls.
//! 2. Someone signs each digest: a [`KeySource`] for local signing, or a remote party (the
//!    élu's workstation agent) that returns [`SignatureValue`]s in the key's native form.
//! 3. [`SignatureFormat::finalize`] first calls [`check_signature_values`] (garbage never gets
//!    embedded), then assembles the signed document (adding timestamps for B-T).
//!
//! A new format plugs in by implementing the trait (its own `Request` and `State` types);
//! [`sign_local`] and [`sign_batch`] then work for it unchanged, and so will the API's remote
//! signing endpoints. Verification lives in [`crate::verify`].

use std::path::PathBuf;

use der::{Decode, Encode};
use serde::{Deserialize, Serialize};
use x509_cert::Certificate;

use crate::digest::DigestAlgorithm;
use crate::error::{Error, Result};
use crate::key::{KeyAlgorithm, KeySource, SignatureValue, verify_digest_signature};

/// Baseline signature level (ETSI EN 319 1x2-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Level {
    /// Basic signature.
    #[default]
    #[serde(rename = "B-B")]
    BB,
    /// Basic signature plus a signature timestamp from an RFC 3161 TSA.
    #[serde(rename = "B-T")]
    BT,
}

impl Level {
    /// The TSA URL this level needs: none at B-B; at B-T the given one, which must be there.
    pub fn tsa_url(self, url: Option<&str>) -> Result<Option<&str>> {
        match self {
            Self::BB => Ok(None),
            Self::BT => url
                .map(Some)
                .ok_or_else(|| Error::Unsupported("level B-T needs a TSA URL".into())),
        }
    }
}

/// A document to sign: in memory, or a file read (or streamed) by the format.
#[derive(Debug, Clone)]
pub enum Document {
    /// The document's bytes.
    Bytes(Vec<u8>),
    /// A file; formats that only need a digest (detached CAdES) stream it.
    File(PathBuf),
}

impl Document {
    /// The whole document in memory.
    pub fn read_all(&self) -> Result<Vec<u8>> {
        match self {
            Self::Bytes(b) => Ok(b.clone()),
            Self::File(p) => std::fs::read(p).map_err(|e| Error::io(p, e)),
        }
    }

    /// Hashes the document without holding it in memory (64 KiB at a time for files).
    pub fn digest(&self, algorithm: DigestAlgorithm) -> Result<Vec<u8>> {
        match self {
            Self::Bytes(b) => Ok(algorithm.digest(b)),
            Self::File(p) => {
                let file = std::fs::File::open(p).map_err(|e| Error::io(p, e))?;
                crate::cms::digest_reader(algorithm, file).map_err(|e| Error::io(p, e))
            }
        }
    }
}

/// One digest to be signed by the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToSign {
    /// What this signature is for (a file name, a bordereau Id), for people and reports.
    pub label: String,
    /// The algorithm that computed `digest`.
    #[serde(with = "digest_algorithm_name")]
    pub digest_algorithm: DigestAlgorithm,
    /// The digest the key signs (of the CMS signed attributes, the XML SignedInfo, …).
    #[serde(with = "base64_bytes")]
    pub digest: Vec<u8>,
}

/// Everything a key must sign for one prepared document: one item per signature.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DataToSign {
    /// The digests, in the order `finalize` expects their values.
    pub items: Vec<ToSign>,
}

/// The result of `prepare`: what to sign, and the state `finalize` needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Prepared<S> {
    /// The digests to sign.
    pub data_to_sign: DataToSign,
    /// The format's serializable state.
    pub state: S,
}

/// The signer's certificate and the intermediate CAs to embed after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateChain {
    /// The signer's certificate.
    pub signer: Certificate,
    /// Intermediate (and optionally root) certificates, closest to the signer first.
    pub intermediates: Vec<Certificate>,
}

impl CertificateChain {
    /// The chain a key source knows (its certificate and chain).
    pub fn of_key(key: &dyn KeySource) -> Self {
        Self {
            signer: key.certificate().clone(),
            intermediates: key.chain().to_vec(),
        }
    }

    /// The signer's key algorithm.
    pub fn key_algorithm(&self) -> Result<KeyAlgorithm> {
        KeyAlgorithm::of_certificate(&self.signer)
    }

    /// The signer then the intermediates, without duplicates.
    pub fn all(&self) -> Vec<&Certificate> {
        let mut out: Vec<&Certificate> = vec![&self.signer];
        for c in &self.intermediates {
            if !out.contains(&c) {
                out.push(c);
            }
        }
        out
    }
}

#[derive(Serialize, Deserialize)]
struct ChainDer {
    #[serde(with = "base64_bytes")]
    signer: Vec<u8>,
    #[serde(default)]
    intermediates: Vec<Base64Der>,
}

#[derive(Serialize, Deserialize)]
#[serde(transparent)]
struct Base64Der(#[serde(with = "base64_bytes")] Vec<u8>);

impl Serialize for CertificateChain {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::Error as _;
        let der = |c: &Certificate| c.to_der().map_err(S::Error::custom);
        ChainDer {
            signer: der(&self.signer)?,
            intermediates: self
                .intermediates
                .iter()
                .map(|c| der(c).map(Base64Der))
                .collect::<std::result::Result<_, _>>()?,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for CertificateChain {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let raw = ChainDer::deserialize(d)?;
        let cert = |b: &[u8]| Certificate::from_der(b).map_err(D::Error::custom);
        Ok(Self {
            signer: cert(&raw.signer)?,
            intermediates: raw
                .intermediates
                .iter()
                .map(|b| cert(&b.0))
                .collect::<std::result::Result<_, _>>()?,
        })
    }
}

/// A signature format in the prepare → sign → finalize model.
pub trait SignatureFormat {
    /// The format's options (level, digest algorithm, TSA, packaging, visible stamp, …).
    type Request;
    /// What `finalize` needs, kept between the two calls (possibly in JSON or a database).
    type State: Serialize + for<'de> Deserialize<'de>;

    /// Builds what will be signed and returns the digests with the state.
    fn prepare(
        &self,
        document: &Document,
        request: &Self::Request,
        chain: &CertificateChain,
    ) -> Result<Prepared<Self::State>>;

    /// Checks the values against the signer's key, then assembles the signed document.
    fn finalize(&self, state: Self::State, values: &[SignatureValue]) -> Result<Vec<u8>>;
}

/// Checks that there is one value per item and that each verifies against `signer`'s public key.
///
/// Every `finalize` calls this before embedding anything.
pub fn check_signature_values(
    data: &DataToSign,
    signer: &Certificate,
    values: &[SignatureValue],
) -> Result<()> {
    if data.items.len() != values.len() {
        return Err(Error::SignatureCount {
            expected: data.items.len(),
            got: values.len(),
        });
    }
    for (index, (item, value)) in data.items.iter().zip(values).enumerate() {
        if !verify_digest_signature(signer, item.digest_algorithm, &item.digest, value)? {
            return Err(Error::BadSignatureValue { index });
        }
    }
    Ok(())
}

/// Signs every item of `data` with `key`.
pub fn sign_all(key: &dyn KeySource, data: &DataToSign) -> Result<Vec<SignatureValue>> {
    key.sign_digests(&data.items).into_iter().collect()
}

/// Local signing: prepare with the key's chain, sign with the key, finalize.
pub fn sign_local<F: SignatureFormat + ?Sized>(
    format: &F,
    document: &Document,
    request: &F::Request,
    key: &dyn KeySource,
) -> Result<Vec<u8>> {
    let chain = CertificateChain::of_key(key);
    let prepared = format.prepare(document, request, &chain)?;
    let values = sign_all(key, &prepared.data_to_sign)?;
    format.finalize(prepared.state, &values)
}

/// The outcome of one document of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BatchStatus {
    /// Signed and handed to the sink.
    Signed,
    /// Not signed; see the error.
    Failed,
}

/// The per-document report of [`sign_batch`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchItemReport {
    /// The item's name as given.
    pub input: String,
    /// Where the sink put the result, when it says.
    pub output: Option<String>,
    /// Signed or failed.
    pub status: BatchStatus,
    /// The error, one line, when failed.
    pub error: Option<String>,
}

/// Signs N documents with one opened key (so one PKCS#11 session and one login), handing each
/// signed document to `sink` (which returns where it went). A failing document is reported and
/// the others go on.
pub fn sign_batch<F, I, S>(
    format: &F,
    documents: I,
    request: &F::Request,
    key: &dyn KeySource,
    mut sink: S,
) -> Vec<BatchItemReport>
where
    F: SignatureFormat + ?Sized,
    I: IntoIterator<Item = (String, Document)>,
    S: FnMut(&str, Vec<u8>) -> Result<Option<String>>,
{
    documents
        .into_iter()
        .map(|(name, document)| {
            match sign_local(format, &document, request, key).and_then(|out| sink(&name, out)) {
                Ok(output) => BatchItemReport {
                    input: name,
                    output,
                    status: BatchStatus::Signed,
                    error: None,
                },
                Err(e) => BatchItemReport {
                    input: name,
                    output: None,
                    status: BatchStatus::Failed,
                    error: Some(e.to_string()),
                },
            }
        })
        .collect()
}

/// Serde helper: bytes as standard base64 strings.
pub mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes bytes as base64.
    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    /// Deserializes base64 into bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        STANDARD.decode(s).map_err(serde::de::Error::custom)
    }
}

/// Serde helper: a [`DigestAlgorithm`] as `"SHA-256"`, `"SHA-384"` or `"SHA-512"`.
pub mod digest_algorithm_name {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::digest::DigestAlgorithm;

    /// The name of `a`.
    pub fn name(a: DigestAlgorithm) -> &'static str {
        match a {
            DigestAlgorithm::Sha256 => "SHA-256",
            DigestAlgorithm::Sha384 => "SHA-384",
            DigestAlgorithm::Sha512 => "SHA-512",
        }
    }

    /// Serializes the name.
    pub fn serialize<S: Serializer>(a: &DigestAlgorithm, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(name(*a))
    }

    /// Parses the name.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DigestAlgorithm, D::Error> {
        let s = String::deserialize(d)?;
        [
            DigestAlgorithm::Sha256,
            DigestAlgorithm::Sha384,
            DigestAlgorithm::Sha512,
        ]
        .into_iter()
        .find(|a| name(*a) == s)
        .ok_or_else(|| serde::de::Error::custom(format!("unknown digest algorithm {s:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_to_sign_survives_json() {
        let data = DataToSign {
            items: vec![ToSign {
                label: "bordereau-1".into(),
                digest_algorithm: DigestAlgorithm::Sha384,
                digest: vec![1, 2, 3],
            }],
        };
        let json = serde_json::to_string(&data).unwrap();
        assert!(json.contains("\"SHA-384\""), "{json}");
        assert_eq!(serde_json::from_str::<DataToSign>(&json).unwrap(), data);
        assert_eq!(serde_json::to_string(&Level::BT).unwrap(), "\"B-T\"");
    }
}
