//! The test PKI: an RGS**-shaped hierarchy written as PEM, PKCS#8 and PKCS#12 files.
//!
//! Root CA → "personnes" CA (élus, expired, revoked, no-signing) and "cachets" CA (server seal,
//! TSA, and the TLS pair of the S²LOW tests: `tls-server` for `localhost`/`127.0.0.1`,
//! `tls-client` for the authority's client certificate). CA keys are RSA 2048 with SHA-256 signatures; leaves are RSA 2048/3072 or ECDSA P-256.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5280::{ID_KP_CLIENT_AUTH, ID_KP_SERVER_AUTH, ID_KP_TIME_STAMPING};
use der::asn1::{Ia5String, OctetString, Uint};
use der::pem::LineEnding;
use der::referenced::OwnedToRef;
use der::{Decode, DecodePem, Encode, EncodePem};
use pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use rsa::pkcs1v15::SigningKey as RsaSigningKey;
use sha2::Sha256;
use signature::Signer;
use spki::{
    DynSignatureAlgorithmIdentifier, SignatureBitStringEncoding, SubjectPublicKeyInfoOwned,
};
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::certificate::{Certificate, TbsCertificate, Version};
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::certpolicy::PolicyInformation;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, CertificatePolicies, CrlNumber, ExtendedKeyUsage,
    KeyUsage, KeyUsages, SubjectAltName, SubjectKeyIdentifier,
};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

use crate::Error;
use crate::command;
use crate::files::{create_dir, read, write_atomic};

/// Password of every `.p12` file of the test PKI.
pub const P12_PASSWORD: &str = "seing-test";

/// Certificate policy of the élu certificates. TEST OID under the placeholder arc
/// 1.2.250.1.999 (not assigned to anyone): it only marks "test PKI", never a real RGS policy.
pub const ELU_POLICY_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.250.1.999.1.2.3");

/// Certificate policy of the server seal certificate (TEST OID, same placeholder arc).
pub const CACHET_POLICY_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.250.1.999.1.2.4");

/// Every end entity of the PKI, by file-name stem.
pub const END_ENTITIES: [&str; 10] = [
    "elu-rsa2048",
    "elu-rsa3072",
    "elu-p256",
    "expired",
    "revoked",
    "no-signing",
    "cachet",
    "tsa",
    "tls-server",
    "tls-client",
];

const DAY: Duration = Duration::from_secs(86_400);
const YEAR: Duration = Duration::from_secs(365 * 86_400);

/// Validity length of end-entity certificates (three years, starting yesterday).
pub const LEAF_VALIDITY: Duration = Duration::from_secs(3 * 365 * 86_400);

/// The intermediate CAs that issue end-entity certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ca {
    /// "Seing Test AC Personnes": natural persons (élus, agents).
    Personnes,
    /// "Seing Test AC Cachets": server seals and the TSA.
    Cachets,
}

impl Ca {
    /// File-name stem of the CA (`personnes`, `cachets`).
    pub fn stem(self) -> &'static str {
        match self {
            Self::Personnes => "personnes",
            Self::Cachets => "cachets",
        }
    }
}

/// The usage profile of an end-entity certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// Qualified-like signature of a person: critical keyUsage nonRepudiation, élu policy.
    Elu,
    /// Server seal: critical keyUsage digitalSignature + nonRepudiation, seal policy.
    Cachet,
    /// Timestamping unit: keyUsage digitalSignature, critical extendedKeyUsage timeStamping.
    Tsa,
    /// Encryption only: keyUsage keyEncipherment, so signature checks must refuse it.
    NoSigning,
    /// TLS server for `localhost` and `127.0.0.1`: keyUsage digitalSignature, extendedKeyUsage
    /// serverAuth, subjectAltName with that name and address.
    TlsServer,
    /// TLS client authentication: keyUsage digitalSignature, extendedKeyUsage clientAuth.
    TlsClient,
}

/// Key algorithm of an end entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// RSA, 2048-bit modulus.
    Rsa2048,
    /// RSA, 3072-bit modulus.
    Rsa3072,
    /// ECDSA on NIST P-256.
    P256,
}

/// Paths of a generated test PKI (see the crate README for the file list).
#[derive(Debug, Clone)]
pub struct TestPki {
    /// The folder holding every file.
    pub dir: PathBuf,
    /// `root-ca.pem`, the only trust anchor.
    pub root_ca: PathBuf,
    /// `personnes-ca.pem`.
    pub personnes_ca: PathBuf,
    /// `cachets-ca.pem`.
    pub cachets_ca: PathBuf,
    /// `chain-personnes.pem`: the personnes CA then the root.
    pub chain_personnes: PathBuf,
    /// `chain-cachets.pem`: the cachets CA then the root.
    pub chain_cachets: PathBuf,
    /// `personnes.crl.pem`, which lists `revoked`.
    pub personnes_crl_pem: PathBuf,
    /// `personnes.crl.der`, the same CRL in DER.
    pub personnes_crl_der: PathBuf,
    /// `cachets.crl.pem`, an empty CRL.
    pub cachets_crl_pem: PathBuf,
}

impl TestPki {
    /// Password of every `.p12` file.
    pub const P12_PASSWORD: &'static str = P12_PASSWORD;

    /// The paths of a PKI in `dir`, without checking that the files exist.
    pub fn at(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            root_ca: dir.join("root-ca.pem"),
            personnes_ca: dir.join("personnes-ca.pem"),
            cachets_ca: dir.join("cachets-ca.pem"),
            chain_personnes: dir.join("chain-personnes.pem"),
            chain_cachets: dir.join("chain-cachets.pem"),
            personnes_crl_pem: dir.join("personnes.crl.pem"),
            personnes_crl_der: dir.join("personnes.crl.der"),
            cachets_crl_pem: dir.join("cachets.crl.pem"),
        }
    }

    /// A PKI previously generated in `dir`; fails if its CA files are missing.
    pub fn open(dir: &Path) -> Result<Self, Error> {
        let pki = Self::at(dir);
        for p in [&pki.root_ca, &pki.personnes_ca, &pki.cachets_ca] {
            if !p.is_file() {
                return Err(Error::Invalid(format!(
                    "{} is not a test PKI folder ({} is missing)",
                    dir.display(),
                    p.display()
                )));
            }
        }
        Ok(pki)
    }

    /// `E.cert.pem` of end entity `name`.
    pub fn cert(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.cert.pem"))
    }

    /// `E.key.pem` (unencrypted PKCS#8) of end entity `name`.
    pub fn key(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.key.pem"))
    }

    /// `E.fullchain.pem` of end entity `name`: its certificate then its issuing CA's, what a
    /// TLS peer presents.
    pub fn fullchain(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.fullchain.pem"))
    }

    /// `E.p12` of end entity `name` (password [`P12_PASSWORD`]).
    pub fn p12(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.p12"))
    }

    /// Certificate of an intermediate CA.
    pub fn ca_cert(&self, ca: Ca) -> PathBuf {
        match ca {
            Ca::Personnes => self.personnes_ca.clone(),
            Ca::Cachets => self.cachets_ca.clone(),
        }
    }

    /// Chain file (intermediate then root) of an intermediate CA.
    pub fn chain(&self, ca: Ca) -> PathBuf {
        match ca {
            Ca::Personnes => self.chain_personnes.clone(),
            Ca::Cachets => self.chain_cachets.clone(),
        }
    }

    /// Private key (PKCS#8 PEM) of an intermediate CA.
    pub fn ca_key(&self, ca: Ca) -> PathBuf {
        self.dir.join(format!("{}-ca.key.pem", ca.stem()))
    }

    /// One PKI per process, generated on first use into a fresh temporary folder that is kept.
    ///
    /// For tests of any crate. Panics with the cause if generation fails, since no test can run
    /// without it.
    pub fn shared() -> &'static TestPki {
        static SHARED: OnceLock<TestPki> = OnceLock::new();
        SHARED.get_or_init(|| {
            let dir = tempfile::Builder::new()
                .prefix("seing-pki-")
                .tempdir()
                .unwrap_or_else(|e| {
                    panic!("cannot create a temporary folder for the test PKI: {e}")
                })
                .keep();
            generate(&dir).unwrap_or_else(|e| panic!("test PKI generation failed: {e}"))
        })
    }
}

/// Description of one end entity of the generated PKI.
struct EndEntity {
    name: &'static str,
    ca: Ca,
    usage: Usage,
    algorithm: KeyAlgorithm,
    common_name: &'static str,
    serial: &'static str,
}

const ENTITIES: [EndEntity; 10] = [
    EndEntity {
        name: "elu-rsa2048",
        ca: Ca::Personnes,
        usage: Usage::Elu,
        algorithm: KeyAlgorithm::Rsa2048,
        common_name: "Jeanne Martin",
        serial: "ELU-0001",
    },
    EndEntity {
        name: "elu-rsa3072",
        ca: Ca::Personnes,
        usage: Usage::Elu,
        algorithm: KeyAlgorithm::Rsa3072,
        common_name: "Paul Durand",
        serial: "ELU-0002",
    },
    EndEntity {
        name: "elu-p256",
        ca: Ca::Personnes,
        usage: Usage::Elu,
        algorithm: KeyAlgorithm::P256,
        common_name: "Camille Bernard",
        serial: "ELU-0003",
    },
    EndEntity {
        name: "expired",
        ca: Ca::Personnes,
        usage: Usage::Elu,
        algorithm: KeyAlgorithm::Rsa2048,
        common_name: "Louis Petit",
        serial: "ELU-0004",
    },
    EndEntity {
        name: "revoked",
        ca: Ca::Personnes,
        usage: Usage::Elu,
        algorithm: KeyAlgorithm::Rsa2048,
        common_name: "Marie Robert",
        serial: "ELU-0005",
    },
    EndEntity {
        name: "no-signing",
        ca: Ca::Personnes,
        usage: Usage::NoSigning,
        algorithm: KeyAlgorithm::Rsa2048,
        common_name: "Hugo Richard",
        serial: "ELU-0006",
    },
    EndEntity {
        name: "cachet",
        ca: Ca::Cachets,
        usage: Usage::Cachet,
        algorithm: KeyAlgorithm::Rsa2048,
        common_name: "Cachet serveur Commune de Démo",
        serial: "CACHET-0001",
    },
    EndEntity {
        name: "tsa",
        ca: Ca::Cachets,
        usage: Usage::Tsa,
        algorithm: KeyAlgorithm::Rsa2048,
        common_name: "Seing Test Horodatage",
        serial: "TSA-0001",
    },
    EndEntity {
        name: "tls-server",
        ca: Ca::Cachets,
        usage: Usage::TlsServer,
        algorithm: KeyAlgorithm::P256,
        common_name: "localhost",
        serial: "TLS-0001",
    },
    EndEntity {
        name: "tls-client",
        ca: Ca::Cachets,
        usage: Usage::TlsClient,
        algorithm: KeyAlgorithm::P256,
        common_name: "Commune de Démo (S²LOW)",
        serial: "TLS-0002",
    },
];

/// The subject of a test end entity: CN, serialNumber, O "Commune de Démo", C FR.
pub fn subject(common_name: &str, serial_number: &str) -> Result<Name, Error> {
    for v in [common_name, serial_number] {
        if v.is_empty() || v.contains([',', '+', '=', '"', '\\', '<', '>', ';']) {
            return Err(Error::Invalid(format!(
                "« {v} » cannot be used in a distinguished name"
            )));
        }
    }
    Ok(Name::from_str(&format!(
        "CN={common_name},serialNumber={serial_number},O=Commune de Démo,C=FR"
    ))?)
}

/// A private key generated in software.
pub enum SoftwareKey {
    /// An RSA key.
    Rsa(rsa::PrivateKey),
    /// An ECDSA P-256 key.
    P256(p256::ecdsa::SigningKey),
}

impl SoftwareKey {
    /// Generates a fresh key with the operating system's random generator.
    pub fn generate(algorithm: KeyAlgorithm) -> Result<Self, Error> {
        let mut rng = rand::rng();
        let rsa = |bits| {
            rsa::PrivateKey::new(&mut rand::rng(), bits)
                .map(Self::Rsa)
                .map_err(|e| Error::Key(format!("RSA {bits} generation: {e}")))
        };
        match algorithm {
            KeyAlgorithm::Rsa2048 => rsa(2048),
            KeyAlgorithm::Rsa3072 => rsa(3072),
            KeyAlgorithm::P256 => {
                use p256::elliptic_curve::Generate as _;
                Ok(Self::P256(p256::ecdsa::SigningKey::generate_from_rng(
                    &mut rng,
                )))
            }
        }
    }

    /// The public key as a SubjectPublicKeyInfo.
    pub fn public_key_info(&self) -> Result<SubjectPublicKeyInfoOwned, Error> {
        let der = match self {
            Self::Rsa(k) => k.to_public_key().to_public_key_der(),
            Self::P256(k) => k.verifying_key().to_public_key_der(),
        }
        .map_err(|e| Error::Key(format!("public key encoding: {e}")))?;
        Ok(SubjectPublicKeyInfoOwned::from_der(der.as_bytes())?)
    }

    /// The private key as unencrypted PKCS#8 PEM.
    pub fn to_pkcs8_pem(&self) -> Result<String, Error> {
        let pem = match self {
            Self::Rsa(k) => k.to_pkcs8_pem(LineEnding::LF),
            Self::P256(k) => k.to_pkcs8_pem(LineEnding::LF),
        }
        .map_err(|e| Error::Key(format!("PKCS#8 encoding: {e}")))?;
        Ok(pem.to_string())
    }
}

/// A CA able to issue certificates and CRLs: its certificate and RSA key.
pub struct Issuer {
    /// The CA certificate.
    pub certificate: Certificate,
    key: RsaSigningKey<Sha256>,
}

impl Issuer {
    /// Loads an intermediate CA of `pki` from its certificate and PKCS#8 key files.
    pub fn load(pki: &TestPki, ca: Ca) -> Result<Self, Error> {
        let certificate = Certificate::from_pem(read(&pki.ca_cert(ca))?)?;
        let pem = String::from_utf8(read(&pki.ca_key(ca))?)
            .map_err(|_| Error::Key("CA key file is not PEM text".into()))?;
        let key = RsaSigningKey::<Sha256>::from_pkcs8_pem(&pem)
            .map_err(|e| Error::Key(format!("CA key: {e}")))?;
        Ok(Self { certificate, key })
    }

    fn subject_key_id(&self) -> Result<OctetString, Error> {
        Ok(key_id(self.certificate.tbs_certificate().subject_public_key_info())?.0)
    }

    /// Issues an end-entity certificate for `spki` with the extensions of `usage`.
    pub fn issue(
        &self,
        usage: Usage,
        subject: Name,
        spki: SubjectPublicKeyInfoOwned,
        validity: Validity,
    ) -> Result<Certificate, Error> {
        let ku = match usage {
            Usage::Elu => KeyUsages::NonRepudiation.into(),
            Usage::Cachet => KeyUsages::DigitalSignature | KeyUsages::NonRepudiation,
            Usage::Tsa | Usage::TlsServer | Usage::TlsClient => KeyUsages::DigitalSignature.into(),
            Usage::NoSigning => KeyUsages::KeyEncipherment.into(),
        };
        let mut extensions = vec![
            ext(
                true,
                &BasicConstraints {
                    ca: false,
                    path_len_constraint: None,
                },
            )?,
            ext(true, &KeyUsage(ku))?,
            ext(false, &key_id(&spki)?)?,
            ext(false, &self.authority_key_id()?)?,
        ];
        let policy = match usage {
            Usage::Elu | Usage::NoSigning => Some(ELU_POLICY_OID),
            Usage::Cachet => Some(CACHET_POLICY_OID),
            Usage::Tsa | Usage::TlsServer | Usage::TlsClient => None,
        };
        if let Some(oid) = policy {
            extensions.push(ext(
                false,
                &CertificatePolicies(vec![PolicyInformation {
                    policy_identifier: oid,
                    policy_qualifiers: None,
                }]),
            )?);
        }
        match usage {
            Usage::Tsa => extensions.push(ext(true, &ExtendedKeyUsage(vec![ID_KP_TIME_STAMPING]))?),
            Usage::TlsServer => {
                extensions.push(ext(false, &ExtendedKeyUsage(vec![ID_KP_SERVER_AUTH]))?);
                extensions.push(ext(
                    false,
                    &SubjectAltName(vec![
                        GeneralName::DnsName(Ia5String::new("localhost")?),
                        GeneralName::IpAddress(OctetString::new([127, 0, 0, 1])?),
                    ]),
                )?);
            }
            Usage::TlsClient => {
                extensions.push(ext(false, &ExtendedKeyUsage(vec![ID_KP_CLIENT_AUTH]))?);
            }
            Usage::Elu | Usage::Cachet | Usage::NoSigning => {}
        }
        self.sign_certificate(subject, spki, validity, extensions)
    }

    fn authority_key_id(&self) -> Result<AuthorityKeyIdentifier, Error> {
        Ok(AuthorityKeyIdentifier {
            key_identifier: Some(self.subject_key_id()?),
            authority_cert_issuer: None,
            authority_cert_serial_number: None,
        })
    }

    fn sign_certificate(
        &self,
        subject: Name,
        spki: SubjectPublicKeyInfoOwned,
        validity: Validity,
        extensions: Vec<Extension>,
    ) -> Result<Certificate, Error> {
        let profile = FixedProfile {
            issuer: self.certificate.tbs_certificate().subject().clone(),
            subject,
            extensions,
        };
        let builder = CertificateBuilder::new(profile, random_serial()?, validity, spki)?;
        Ok(builder.build::<_, rsa::pkcs1v15::Signature>(&self.key)?)
    }

    /// A CRL signed by this CA listing `revoked` serial numbers, valid from an hour ago for
    /// 30 days.
    pub fn crl(&self, revoked: &[SerialNumber], crl_number: u32) -> Result<CertificateList, Error> {
        let now = SystemTime::now();
        let revocation_date = time(now - Duration::from_secs(3600))?;
        let mut extensions = vec![ext(false, &self.authority_key_id()?)?];
        extensions.push(ext(
            false,
            &CrlNumber(Uint::new(&crl_number.to_be_bytes())?),
        )?);
        let tbs = TbsCertList {
            version: Version::V2,
            signature: self
                .key
                .signature_algorithm_identifier()
                .map_err(|e| Error::Key(format!("CRL signature algorithm: {e}")))?,
            issuer: self.certificate.tbs_certificate().subject().clone(),
            this_update: revocation_date,
            next_update: Some(time(now + 30 * DAY)?),
            revoked_certificates: (!revoked.is_empty()).then(|| {
                revoked
                    .iter()
                    .map(|s| RevokedCert {
                        serial_number: s.clone(),
                        revocation_date,
                        crl_entry_extensions: None,
                    })
                    .collect()
            }),
            crl_extensions: Some(extensions),
        };
        let signature = self
            .key
            .try_sign(&tbs.to_der()?)
            .map_err(|e| Error::Key(format!("CRL signature: {e}")))?
            .to_bitstring()?;
        Ok(CertificateList {
            signature_algorithm: tbs.signature.clone(),
            tbs_cert_list: tbs,
            signature,
        })
    }
}

/// A builder profile that adds exactly the extensions it is given.
struct FixedProfile {
    issuer: Name,
    subject: Name,
    extensions: Vec<Extension>,
}

impl BuilderProfile for FixedProfile {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        _spk: spki::SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: spki::SubjectPublicKeyInfoRef<'_>,
        _tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        Ok(self.extensions.clone())
    }
}

fn ext<T: const_oid::AssociatedOid + Encode>(
    critical: bool,
    value: &T,
) -> Result<Extension, Error> {
    Ok(Extension {
        extn_id: T::OID,
        critical,
        extn_value: OctetString::new(value.to_der()?)?,
    })
}

fn key_id(spki: &SubjectPublicKeyInfoOwned) -> Result<SubjectKeyIdentifier, Error> {
    Ok(SubjectKeyIdentifier::try_from(spki.owned_to_ref())?)
}

/// A random positive 16-byte serial number (the top bit cleared, the next one set so that the
/// DER integer keeps exactly 16 bytes).
fn random_serial() -> Result<SerialNumber, Error> {
    let mut bytes = [0u8; 16];
    rand::fill(&mut bytes);
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::new(&bytes)?)
}

fn time(t: SystemTime) -> Result<Time, Error> {
    Ok(Time::try_from(t)?)
}

/// Validity from one day ago for `length`.
pub fn validity_from_yesterday(length: Duration) -> Result<Validity, Error> {
    let now = SystemTime::now();
    Ok(Validity::new(time(now - DAY)?, time(now + length)?))
}

fn ca_extensions(
    spki: &SubjectPublicKeyInfoOwned,
    issuer_key_id: Option<OctetString>,
    path_len: Option<u8>,
) -> Result<Vec<Extension>, Error> {
    let mut v = vec![
        ext(
            true,
            &BasicConstraints {
                ca: true,
                path_len_constraint: path_len,
            },
        )?,
        ext(true, &KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign))?,
        ext(false, &key_id(spki)?)?,
    ];
    if let Some(id) = issuer_key_id {
        v.push(ext(
            false,
            &AuthorityKeyIdentifier {
                key_identifier: Some(id),
                authority_cert_issuer: None,
                authority_cert_serial_number: None,
            },
        )?);
    }
    Ok(v)
}

fn cert_pem(cert: &Certificate) -> Result<String, Error> {
    Ok(cert.to_pem(LineEnding::LF)?)
}

/// Generates the whole test PKI into `out` (created if needed) and returns its paths.
///
/// Needs the `openssl` command for the PKCS#12 files (PBES2 AES-256-CBC, HMAC-SHA256 MAC).
///
/// Files are first written to a hidden staging folder inside `out`, then moved into place, so a
/// failure leaves `out` as it was.
pub fn generate(out: &Path) -> Result<TestPki, Error> {
    create_dir(out)?;
    let staging = tempfile::Builder::new()
        .prefix(".seing-pki-")
        .tempdir_in(out)
        .map_err(|e| Error::io(format!("creating a staging folder in {}", out.display()), e))?;
    generate_into(&TestPki::at(staging.path()))?;
    let entries = std::fs::read_dir(staging.path())
        .map_err(|e| Error::io(format!("listing {}", staging.path().display()), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("listing the staging folder", e))?;
        let target = out.join(entry.file_name());
        std::fs::rename(entry.path(), &target)
            .map_err(|e| Error::io(format!("moving into {}", target.display()), e))?;
    }
    Ok(TestPki::at(out))
}

fn generate_into(pki: &TestPki) -> Result<(), Error> {
    let out = pki.dir.as_path();

    let root_key = RsaSigningKey::<Sha256>::new(
        rsa::PrivateKey::new(&mut rand::rng(), 2048)
            .map_err(|e| Error::Key(format!("RSA generation: {e}")))?,
    );
    let root_name = Name::from_str("CN=Seing Test AC Racine,O=Seing Test,C=FR")?;
    let root_spki = SubjectPublicKeyInfoOwned::from_key(root_key.as_ref().as_public_key())
        .map_err(|e| Error::Key(format!("root public key: {e}")))?;
    let root_profile = FixedProfile {
        issuer: root_name.clone(),
        subject: root_name,
        extensions: ca_extensions(&root_spki, None, None)?,
    };
    let root_cert = CertificateBuilder::new(
        root_profile,
        random_serial()?,
        validity_from_yesterday(10 * YEAR)?,
        root_spki,
    )?
    .build::<_, rsa::pkcs1v15::Signature>(&root_key)?;
    let root = Issuer {
        certificate: root_cert,
        key: root_key,
    };
    write_atomic(&pki.root_ca, cert_pem(&root.certificate)?.as_bytes())?;
    write_atomic(
        &out.join("root-ca.key.pem"),
        root.key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| Error::Key(format!("PKCS#8 encoding: {e}")))?
            .as_bytes(),
    )?;

    for (ca, cn) in [
        (Ca::Personnes, "Seing Test AC Personnes"),
        (Ca::Cachets, "Seing Test AC Cachets"),
    ] {
        let key = SoftwareKey::generate(KeyAlgorithm::Rsa2048)?;
        let spki = key.public_key_info()?;
        let extensions = ca_extensions(&spki, Some(root.subject_key_id()?), Some(0))?;
        let cert = root.sign_certificate(
            Name::from_str(&format!("CN={cn},O=Seing Test,C=FR"))?,
            spki,
            validity_from_yesterday(9 * YEAR)?,
            extensions,
        )?;
        let pem = cert_pem(&cert)?;
        write_atomic(&pki.ca_cert(ca), pem.as_bytes())?;
        write_atomic(&pki.ca_key(ca), key.to_pkcs8_pem()?.as_bytes())?;
        write_atomic(
            &pki.chain(ca),
            format!("{pem}{}", cert_pem(&root.certificate)?).as_bytes(),
        )?;
    }

    let personnes = Issuer::load(pki, Ca::Personnes)?;
    let cachets = Issuer::load(pki, Ca::Cachets)?;
    let mut revoked = Vec::new();
    for e in &ENTITIES {
        let issuer = match e.ca {
            Ca::Personnes => &personnes,
            Ca::Cachets => &cachets,
        };
        let key = SoftwareKey::generate(e.algorithm)?;
        let validity = if e.name == "expired" {
            let now = SystemTime::now();
            Validity::new(time(now - 2 * YEAR)?, time(now - DAY)?)
        } else {
            validity_from_yesterday(LEAF_VALIDITY)?
        };
        let cert = issuer.issue(
            e.usage,
            subject(e.common_name, e.serial)?,
            key.public_key_info()?,
            validity,
        )?;
        if e.name == "revoked" {
            revoked.push(cert.tbs_certificate().serial_number().clone());
        }
        let pem = cert_pem(&cert)?;
        write_atomic(&pki.cert(e.name), pem.as_bytes())?;
        write_atomic(
            &pki.fullchain(e.name),
            format!("{pem}{}", cert_pem(&issuer.certificate)?).as_bytes(),
        )?;
        write_atomic(&pki.key(e.name), key.to_pkcs8_pem()?.as_bytes())?;
        write_p12(pki, e.name, e.ca)?;
    }

    let crl = personnes.crl(&revoked, 1)?;
    write_atomic(&pki.personnes_crl_der, &crl.to_der()?)?;
    write_atomic(
        &pki.personnes_crl_pem,
        crl.to_pem(LineEnding::LF)?.as_bytes(),
    )?;
    let empty = cachets.crl(&[], 1)?;
    write_atomic(
        &pki.cachets_crl_pem,
        empty.to_pem(LineEnding::LF)?.as_bytes(),
    )?;
    Ok(())
}

/// Bundles key, certificate and CA chain of `name` into `name.p12` with `openssl pkcs12`.
fn write_p12(pki: &TestPki, name: &str, ca: Ca) -> Result<(), Error> {
    let target = pki.p12(name);
    let mut tmp = target.as_os_str().to_owned();
    tmp.push(".part");
    let pass = format!("pass:{P12_PASSWORD}");
    let mut args: Vec<std::ffi::OsString> = ["pkcs12", "-export", "-inkey"]
        .iter()
        .map(Into::into)
        .collect();
    args.push(pki.key(name).into());
    args.extend(["-in".into(), pki.cert(name).into()]);
    args.extend(["-certfile".into(), pki.chain(ca).into()]);
    for a in [
        "-name",
        name,
        "-keypbe",
        "AES-256-CBC",
        "-certpbe",
        "AES-256-CBC",
        "-macalg",
        "sha256",
        "-passout",
        &pass,
        "-out",
    ] {
        args.push(a.into());
    }
    args.push(tmp.clone());
    let result = command::run("openssl", args, None);
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, &target)
        .map_err(|e| Error::io(format!("renaming into {}", target.display()), e))
}
