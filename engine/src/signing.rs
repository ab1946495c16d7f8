//! Signing in the workflow: each tenant's trust store, the keys held by the server's PKCS#11
//! module, and signature batches for dossiers waiting at a signature or seal step.
//!
//! A batch is the prepare → sign → finalize model of `seing-signer` across two requests: the
//! engine prepares each dossier's main document for the signer's certificate (checked against
//! the tenant's trust anchors) and keeps the serialized states until an expiry; the signer's
//! values come back once, every value is checked against the certificate before anything is
//! stored, and each dossier whose values all pass is finalized and recorded through the same
//! [`Engine::sign`] / [`Engine::seal`] path as any other signature. One bad dossier never sinks
//! the others. Server-held keys run the same steps in one call, with a PIN used once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use der::{Decode, DecodePem};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use time::OffsetDateTime;
use x509_cert::Certificate;
use x509_cert::crl::CertificateList;

use seing_signer::cades::{Cades, CadesRequest, CadesState, Packaging};
use seing_signer::digest::DigestAlgorithm;
use seing_signer::key::pkcs11::{PinSource, Pkcs11Key, Pkcs11Uri};
use seing_signer::key::{KeyAlgorithm, KeySource, Secret, SignatureValue, verify_digest_signature};
use seing_signer::model::{CertificateChain, DataToSign, Document as SignerDocument, Level};
use seing_signer::model::{SignatureFormat, sign_all};
use seing_signer::pades::{Pades, PadesRequest, PadesState};
use seing_signer::pes::{Pes, PesRequest, PesState};
use seing_signer::verify::{SignatureReport, SubIndication, VerifyOptions, validate_signer};
use seing_signer::xades::format::{Xades, XadesRequest, XadesState};

use crate::circuit::{SignatureLevel, SignatureProfile, StepAction};
use crate::dossiers::SigningTarget;
use crate::engine::{Engine, db_time, json_col, parse_col, parse_opt_col, time_col, to_json};
use crate::error::{EngineError, EngineResult};
use crate::ids::{DeskId, DossierId, ServerKeyId, SignatureBatchId, TrustAnchorId, UserId};
use crate::model::{ActionInput, Actor, Document, DocumentRole, NewDocument, SignedOutput};

/// Settings of signing (from the service configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningSettings {
    /// How long a prepared batch waits for its signature values.
    pub batch_ttl: Duration,
    /// The RFC 3161 time-stamping service for steps at level B-T.
    pub tsa_url: Option<String>,
}

impl Default for SigningSettings {
    fn default() -> Self {
        Self {
            batch_ttl: Duration::from_secs(15 * 60),
            tsa_url: None,
        }
    }
}

/// What an entry of a trust store is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrustKind {
    /// A CA certificate trusted as an anchor.
    Certificate,
    /// A certificate revocation list.
    Crl,
}

impl TrustKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Certificate => "certificate",
            Self::Crl => "crl",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [Self::Certificate, Self::Crl]
            .into_iter()
            .find(|k| k.as_str() == text)
    }
}

/// An entry of a tenant's trust store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrustEntry {
    /// Identifier.
    pub id: TrustAnchorId,
    /// Certificate or CRL.
    pub kind: TrustKind,
    /// The certificate's subject, or the CRL's issuer.
    pub subject: String,
}

/// Who may use a server-held key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyUsage {
    /// The authority's seal: signs seal steps, for whoever acts for the step's desk.
    Seal,
    /// An élu's key: signs the signature steps of its owner only.
    User,
}

impl KeyUsage {
    fn as_str(self) -> &'static str {
        match self {
            Self::Seal => "seal",
            Self::User => "user",
        }
    }

    /// Parses `seal` or `user`.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Seal, Self::User]
            .into_iter()
            .find(|k| k.as_str() == text)
    }
}

/// A key held by the server's PKCS#11 module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerKey {
    /// Identifier.
    pub id: ServerKeyId,
    /// Name shown to users.
    pub label: String,
    /// Seal or a user's key.
    pub usage: KeyUsage,
    /// The user owning a `user` key.
    pub owner: Option<UserId>,
}

/// What a tenant administrator gives to register a server key.
#[derive(Debug, Clone)]
pub struct NewServerKey {
    /// Name shown to users (unique in the tenant).
    pub label: String,
    /// RFC 7512 URI of the key on the server's module, without any PIN.
    pub uri: String,
    /// Seal or a user's key.
    pub usage: KeyUsage,
    /// The owner of a `user` key.
    pub owner: Option<UserId>,
    /// Intermediate CA certificates (PEM) to embed after the token's certificate.
    pub chain_pem: Option<String>,
}

/// The signature format chosen for a dossier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// PES V2 for Hélios: one XAdES-EPES signature per bordereau.
    Pes,
    /// PAdES in the PDF.
    Pades,
    /// Detached CAdES (`.p7s`).
    Cades,
    /// Enveloped XAdES in the XML document.
    Xades,
}

/// A signature batch to create.
#[derive(Debug, Clone)]
pub struct NewBatch {
    /// The dossiers to sign.
    pub dossiers: Vec<DossierId>,
    /// The signer's certificate then its intermediate CAs, DER.
    pub certificate_chain: Vec<Vec<u8>>,
    /// Only dossiers waiting at this desk.
    pub desk: Option<DeskId>,
}

/// One digest for the signer to sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchItem {
    /// Opaque identifier in the batch.
    pub item_id: String,
    /// The dossier it belongs to.
    pub dossier: DossierId,
    /// The signed document's file name.
    pub document: String,
    /// What the signature is for (a bordereau Id, the file).
    pub label: String,
    /// The format of the dossier's signature.
    pub format: Format,
    /// The digest to sign (already hashed).
    pub data_to_sign: Vec<u8>,
    /// The algorithm of the digest.
    pub digest_algorithm: DigestAlgorithm,
    /// The signer's key algorithm (RSA PKCS#1 v1.5 or ECDSA).
    pub key_algorithm: KeyAlgorithm,
}

/// A dossier left out of a batch, and why.
#[derive(Debug)]
pub struct Refusal {
    /// The dossier.
    pub dossier: DossierId,
    /// Why (not found, forbidden, conflict, invalid document).
    pub error: EngineError,
}

/// A prepared batch.
#[derive(Debug)]
pub struct SignatureBatch {
    /// Identifier.
    pub id: SignatureBatchId,
    /// After this time the values are refused.
    pub expires_at: OffsetDateTime,
    /// The signer's subject.
    pub signer: String,
    /// The digests to sign.
    pub items: Vec<BatchItem>,
    /// The dossiers that could not be prepared.
    pub refused: Vec<Refusal>,
}

/// What happened to one dossier of a submitted batch or a server signature.
#[derive(Debug)]
pub struct DossierOutcome {
    /// The dossier.
    pub dossier: DossierId,
    /// The documents added (signed document or signature file), or why nothing changed.
    pub result: EngineResult<Vec<Document>>,
}

/// A key of the server's module opened for one batch (see [`Engine::open_server_key`]).
pub struct OpenedServerKey {
    usage: KeyUsage,
    chain: CertificateChain,
    key: Arc<dyn KeySource>,
}

impl std::fmt::Debug for OpenedServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedServerKey")
            .field("usage", &self.usage)
            .finish_non_exhaustive()
    }
}

/// The dossiers of a server-key batch, in order, each once; refused when empty.
pub fn server_batch(dossiers: Vec<DossierId>) -> EngineResult<Vec<DossierId>> {
    if dossiers.is_empty() {
        return Err(EngineError::invalid(
            "dossier_ids",
            "choisir au moins un dossier",
        ));
    }
    let mut seen = BTreeSet::new();
    Ok(dossiers.into_iter().filter(|d| seen.insert(*d)).collect())
}

/// The serialized state of one prepared dossier.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "format", content = "state", rename_all = "lowercase")]
enum FormatState {
    Pes(PesState),
    Pades(PadesState),
    Cades(CadesState),
    Xades(XadesState),
}

/// One dossier of a stored batch.
#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    dossier: DossierId,
    version: i64,
    step: usize,
    action: StepAction,
    document: String,
    media_type: String,
    data: DataToSign,
    state: FormatState,
}

impl Entry {
    fn item_id(index: usize, item: usize) -> String {
        format!("{index}-{item}")
    }

    fn format(&self) -> Format {
        match self.state {
            FormatState::Pes(_) => Format::Pes,
            FormatState::Pades(_) => Format::Pades,
            FormatState::Cades(_) => Format::Cades,
            FormatState::Xades(_) => Format::Xades,
        }
    }
}

/// A tenant's trust anchors and CRLs, parsed.
#[derive(Debug, Default)]
struct TrustStore {
    anchors: Vec<Certificate>,
    crls: Vec<CertificateList>,
}

/// Splits PEM text into its blocks (label, whole block).
fn pem_blocks(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let Some(label_end) = after.find("-----") else {
            break;
        };
        let label = after[..label_end].to_owned();
        let end_marker = format!("-----END {label}-----");
        let Some(end) = rest[start..].find(&end_marker) else {
            break;
        };
        let block_end = start + end + end_marker.len();
        out.push((label, format!("{}\n", &rest[start..block_end])));
        rest = &rest[block_end..];
    }
    out
}

fn signer_error(field: &str, e: seing_signer::error::Error) -> EngineError {
    EngineError::invalid(field, e.to_string())
}

/// The certificate chain of a request: the signer first, then its intermediates.
fn parse_chain(der: &[Vec<u8>]) -> EngineResult<CertificateChain> {
    let mut certs = der.iter().enumerate().map(|(i, d)| {
        Certificate::from_der(d).map_err(|e| {
            EngineError::invalid(
                "certificate_chain",
                format!("certificat n° {} illisible (DER attendu) : {e}", i + 1),
            )
        })
    });
    let signer = certs.next().ok_or_else(|| {
        EngineError::invalid(
            "certificate_chain",
            "fournir au moins le certificat du signataire",
        )
    })??;
    Ok(CertificateChain {
        signer,
        intermediates: certs.collect::<EngineResult<_>>()?,
    })
}

/// Checks the signer's certificate for signing now: key usage, validity, a path to one of the
/// tenant's anchors, not revoked by a CRL of the store. The reasons are for the signer (French).
fn check_certificate(
    chain: &CertificateChain,
    store: &TrustStore,
    now: OffsetDateTime,
) -> EngineResult<()> {
    let refuse = |reason: String| EngineError::invalid("certificate_chain", reason);
    KeyAlgorithm::of_certificate(&chain.signer)
        .map_err(|e| refuse(format!("clé du certificat non prise en charge : {e}")))?;
    let who = seing_signer::x509::subject(&chain.signer);
    if store.anchors.is_empty() {
        return Err(refuse(
            "aucune autorité de confiance n'est enregistrée pour votre collectivité : \
             un administrateur doit en ajouter une"
                .into(),
        ));
    }
    let options = VerifyOptions {
        trust_anchors: store.anchors.clone(),
        certificates: chain.intermediates.clone(),
        crls: store.crls.clone(),
        ..VerifyOptions::default()
    };
    let mut report = SignatureReport::new("certificat", "X.509");
    validate_signer(
        &chain.signer,
        &chain.intermediates,
        now,
        false,
        &options,
        &mut report,
    );
    let Some(sub) = report.sub_indication else {
        return Ok(());
    };
    Err(refuse(match sub {
        SubIndication::NoCertificateChainFound => format!(
            "le certificat « {who} » n'est pas émis par une autorité de confiance de votre collectivité"
        ),
        SubIndication::ChainConstraintsFailure => format!(
            "le certificat « {who} » ne permet pas de signer (usage de clé sans signature numérique ni non-répudiation)"
        ),
        SubIndication::OutOfBoundsNoPoe | SubIndication::ExpiredNoPoe => format!(
            "le certificat « {who} » ou celui de son autorité n'est pas valide à cette date (expiré ou pas encore valide)"
        ),
        SubIndication::RevokedNoPoe | SubIndication::Revoked => {
            format!("le certificat « {who} » est révoqué")
        }
        _ => format!(
            "le certificat « {who} » est refusé : {}",
            report.messages.join(" ; ")
        ),
    }))
}

fn is_pdf(bytes: &[u8]) -> bool {
    bytes.starts_with(b"%PDF-")
}

fn is_pes(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(4096)];
    head.windows(10).any(|w| w == b"<PES_Aller")
}

fn is_xml(bytes: &[u8]) -> bool {
    let trimmed = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace() && *b != 0xEF && *b != 0xBB && *b != 0xBF);
    trimmed.is_some_and(|i| bytes[i] == b'<')
}

/// The format of a dossier: the circuit step's profile when it names one, else from the main
/// document (PES → PES V2, PDF → PAdES, anything else → detached CAdES).
fn choose_format(profile: Option<SignatureProfile>, bytes: &[u8]) -> Format {
    match profile {
        Some(SignatureProfile::Pes) => Format::Pes,
        Some(SignatureProfile::Pades) => Format::Pades,
        Some(SignatureProfile::Cades) => Format::Cades,
        Some(SignatureProfile::Xades) => Format::Xades,
        None if is_pes(bytes) => Format::Pes,
        None if is_pdf(bytes) => Format::Pades,
        None => Format::Cades,
    }
}

/// Prepares one document (CPU work: run it off the async threads).
fn prepare(
    format: Format,
    level: Level,
    tsa_url: Option<String>,
    bytes: Vec<u8>,
    chain: &CertificateChain,
) -> seing_signer::error::Result<(DataToSign, FormatState)> {
    let document = SignerDocument::Bytes(bytes);
    Ok(match format {
        Format::Pes => {
            if level == Level::BT {
                return Err(seing_signer::error::Error::Unsupported(
                    "le profil PES d'Hélios se signe au niveau B-B".into(),
                ));
            }
            let p = Pes.prepare(&document, &PesRequest::default(), chain)?;
            if let Some((label, reason)) = p.state.not_prepared.first() {
                return Err(seing_signer::error::Error::Document(format!(
                    "{label} : {reason}"
                )));
            }
            (p.data_to_sign, FormatState::Pes(p.state))
        }
        Format::Pades => {
            let request = PadesRequest {
                level,
                tsa_url,
                ..PadesRequest::default()
            };
            let p = Pades.prepare(&document, &request, chain)?;
            (p.data_to_sign, FormatState::Pades(p.state))
        }
        Format::Cades => {
            let request = CadesRequest {
                level,
                tsa_url,
                packaging: Packaging::Detached,
                ..CadesRequest::default()
            };
            let p = Cades.prepare(&document, &request, chain)?;
            (p.data_to_sign, FormatState::Cades(p.state))
        }
        Format::Xades => {
            let request = XadesRequest {
                packaging: seing_signer::xades::format::Packaging::Enveloped,
                level,
                tsa_url,
                role: None,
                place: None,
                policy: None,
            };
            let p = Xades.prepare(&document, &request, chain)?;
            (p.data_to_sign, FormatState::Xades(p.state))
        }
    })
}

/// Assembles the signed output of one dossier from its checked values.
fn finalize(
    state: FormatState,
    values: &[SignatureValue],
    document: &str,
    media_type: &str,
) -> seing_signer::error::Result<SignedOutput> {
    let signed = |bytes| SignedOutput {
        documents: vec![NewDocument {
            name: document.to_owned(),
            media_type: media_type.to_owned(),
            bytes,
        }],
        signatures: Vec::new(),
    };
    Ok(match state {
        FormatState::Pes(s) => signed(Pes.finalize(s, values)?),
        FormatState::Pades(s) => signed(Pades.finalize(s, values)?),
        FormatState::Xades(s) => signed(Xades.finalize(s, values)?),
        FormatState::Cades(s) => SignedOutput {
            documents: Vec::new(),
            signatures: vec![NewDocument {
                name: format!("{document}.p7s"),
                media_type: "application/pkcs7-signature".into(),
                bytes: Cades.finalize(s, values)?,
            }],
        },
    })
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> EngineResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| EngineError::Corrupted(format!("signing task failed: {e}")))
}

fn level_of(level: Option<SignatureLevel>) -> Level {
    match level {
        Some(SignatureLevel::BT) => Level::BT,
        Some(SignatureLevel::BB) | None => Level::BB,
    }
}

/// A value as the key algorithm expects it: ECDSA may come DER-encoded from some tokens.
fn native_value(algorithm: KeyAlgorithm, bytes: Vec<u8>) -> SignatureValue {
    match algorithm {
        KeyAlgorithm::EcdsaP256 if bytes.len() != 64 => {
            SignatureValue::from_der_encoding(algorithm, &bytes).unwrap_or(SignatureValue(bytes))
        }
        _ => SignatureValue(bytes),
    }
}

impl Engine {
    /// Sets the signing settings (batch lifetime, TSA).
    pub fn with_signing_settings(mut self, settings: SigningSettings) -> Self {
        self.signing = Arc::new(settings);
        self
    }

    async fn check_admin(&self, actor: Actor) -> EngineResult<()> {
        let mut conn = self.db.pool().acquire().await?;
        let user = Self::load_user(&mut conn, actor).await?;
        if user.admin {
            Ok(())
        } else {
            Err(EngineError::forbidden(
                "réservé aux administrateurs de la collectivité",
            ))
        }
    }

    /// Adds the CA certificates and CRLs of a PEM text to the tenant's trust store
    /// (administrators); nothing is added when one block is unreadable.
    pub async fn add_trust_entries(
        &self,
        actor: Actor,
        pem: &str,
    ) -> EngineResult<Vec<TrustEntry>> {
        self.check_admin(actor).await?;
        let mut parsed = Vec::new();
        for (i, (label, block)) in pem_blocks(pem).into_iter().enumerate() {
            let field = format!("pem[{i}]");
            let (kind, subject) = match label.as_str() {
                "CERTIFICATE" => {
                    let cert = Certificate::from_pem(block.as_bytes()).map_err(|e| {
                        EngineError::invalid(&field, format!("certificat illisible : {e}"))
                    })?;
                    (TrustKind::Certificate, seing_signer::x509::subject(&cert))
                }
                "X509 CRL" => {
                    let crl: CertificateList = CertificateList::from_pem(block.as_bytes())
                        .map_err(|e| {
                            EngineError::invalid(
                                &field,
                                format!("liste de révocation illisible : {e}"),
                            )
                        })?;
                    (TrustKind::Crl, crl.tbs_cert_list.issuer.to_string())
                }
                other => {
                    return Err(EngineError::invalid(
                        field,
                        format!(
                            "bloc PEM « {other} » : seuls CERTIFICATE et X509 CRL sont acceptés"
                        ),
                    ));
                }
            };
            parsed.push((kind, subject, block));
        }
        if parsed.is_empty() {
            return Err(EngineError::invalid(
                "pem",
                "aucun certificat ni liste de révocation PEM",
            ));
        }
        let now = db_time(self.now());
        let mut tx = self.db.begin_write().await?;
        let mut out = Vec::new();
        for (kind, subject, block) in parsed {
            let id = TrustAnchorId::new();
            sqlx::query(
                "INSERT INTO trust_anchors (id, tenant_id, kind, subject, pem, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id.to_string())
            .bind(actor.tenant.to_string())
            .bind(kind.as_str())
            .bind(subject.clone())
            .bind(block)
            .bind(now.clone())
            .execute(&mut *tx)
            .await?;
            out.push(TrustEntry { id, kind, subject });
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Lists the tenant's trust store.
    pub async fn trust_entries(&self, actor: Actor) -> EngineResult<Vec<TrustEntry>> {
        let mut conn = self.db.pool().acquire().await?;
        Self::load_user(&mut conn, actor).await?;
        let rows = sqlx::query(
            "SELECT id, kind, subject FROM trust_anchors WHERE tenant_id = $1 ORDER BY id",
        )
        .bind(actor.tenant.to_string())
        .fetch_all(&mut *conn)
        .await?;
        rows.iter()
            .map(|row| {
                let kind: String = row.try_get(1)?;
                Ok(TrustEntry {
                    id: parse_col(row, 0)?,
                    kind: TrustKind::parse(&kind)
                        .ok_or_else(|| EngineError::Corrupted(format!("trust kind `{kind}`")))?,
                    subject: row.try_get(2)?,
                })
            })
            .collect()
    }

    /// Removes a certificate or CRL from the tenant's trust store (administrators).
    pub async fn remove_trust_entry(&self, actor: Actor, id: TrustAnchorId) -> EngineResult<()> {
        self.check_admin(actor).await?;
        self.delete_tenant_row(
            "DELETE FROM trust_anchors WHERE id = $1 AND tenant_id = $2",
            actor,
            &id.to_string(),
            "autorité de confiance",
        )
        .await
    }

    async fn trust_store(&self, actor: Actor) -> EngineResult<TrustStore> {
        let rows = sqlx::query("SELECT kind, pem FROM trust_anchors WHERE tenant_id = $1")
            .bind(actor.tenant.to_string())
            .fetch_all(self.db.pool())
            .await?;
        let mut store = TrustStore::default();
        for row in &rows {
            let kind: String = row.try_get(0)?;
            let pem: String = row.try_get(1)?;
            let bad = |e: der::Error| EngineError::Corrupted(format!("trust store entry: {e}"));
            match TrustKind::parse(&kind) {
                Some(TrustKind::Certificate) => store
                    .anchors
                    .push(Certificate::from_pem(pem.as_bytes()).map_err(bad)?),
                Some(TrustKind::Crl) => store
                    .crls
                    .push(CertificateList::from_pem(pem.as_bytes()).map_err(bad)?),
                None => return Err(EngineError::Corrupted(format!("trust kind `{kind}`"))),
            }
        }
        Ok(store)
    }

    /// Verification options holding the tenant's trust anchors and CRLs.
    pub async fn verify_options(&self, actor: Actor) -> EngineResult<VerifyOptions> {
        {
            let mut conn = self.db.pool().acquire().await?;
            Self::load_user(&mut conn, actor).await?;
        }
        let store = self.trust_store(actor).await?;
        Ok(VerifyOptions {
            trust_anchors: store.anchors,
            crls: store.crls,
            ..VerifyOptions::default()
        })
    }

    /// Registers a key of the server's PKCS#11 module (administrators). The URI must name the
    /// key and carry no PIN: the PIN comes with each use.
    pub async fn add_server_key(&self, actor: Actor, new: NewServerKey) -> EngineResult<ServerKey> {
        self.check_admin(actor).await?;
        if new.label.trim().is_empty() {
            return Err(EngineError::invalid("label", "libellé vide"));
        }
        let uri: Pkcs11Uri = new.uri.parse().map_err(|e| signer_error("uri", e))?;
        if uri.pin.is_some() {
            return Err(EngineError::invalid(
                "uri",
                "l'URI ne doit contenir aucun code PIN (pin-value, pin-source) : il est demandé à chaque usage",
            ));
        }
        match (new.usage, new.owner) {
            (KeyUsage::User, None) => {
                return Err(EngineError::invalid(
                    "owner",
                    "une clé d'élu doit avoir un propriétaire",
                ));
            }
            (KeyUsage::Seal, Some(_)) => {
                return Err(EngineError::invalid(
                    "owner",
                    "un cachet n'appartient à aucun utilisateur",
                ));
            }
            _ => {}
        }
        if let Some(pem) = &new.chain_pem {
            Certificate::load_pem_chain(pem.as_bytes()).map_err(|e| {
                EngineError::invalid("chain_pem", format!("chaîne illisible : {e}"))
            })?;
        }
        let mut tx = self.db.begin_write().await?;
        if let Some(owner) = new.owner {
            sqlx::query("SELECT id FROM users WHERE id = $1 AND tenant_id = $2")
                .bind(owner.to_string())
                .bind(actor.tenant.to_string())
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(EngineError::NotFound { entity: "user" })?;
        }
        let taken = sqlx::query("SELECT id FROM server_keys WHERE tenant_id = $1 AND label = $2")
            .bind(actor.tenant.to_string())
            .bind(new.label.clone())
            .fetch_optional(&mut *tx)
            .await?;
        if taken.is_some() {
            return Err(EngineError::conflict(format!(
                "une clé « {} » existe déjà",
                new.label
            )));
        }
        let key = ServerKey {
            id: ServerKeyId::new(),
            label: new.label,
            usage: new.usage,
            owner: new.owner,
        };
        sqlx::query(
            "INSERT INTO server_keys (id, tenant_id, label, uri, usage, owner_id, chain_pem, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(key.id.to_string())
        .bind(actor.tenant.to_string())
        .bind(key.label.clone())
        .bind(new.uri)
        .bind(key.usage.as_str())
        .bind(key.owner.map(|o| o.to_string()))
        .bind(new.chain_pem)
        .bind(db_time(self.now()))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(key)
    }

    /// The server keys the actor may use: the seals and the actor's own keys (administrators
    /// see them all).
    pub async fn server_keys(&self, actor: Actor) -> EngineResult<Vec<ServerKey>> {
        let mut conn = self.db.pool().acquire().await?;
        let user = Self::load_user(&mut conn, actor).await?;
        let rows = sqlx::query(
            "SELECT id, label, usage, owner_id FROM server_keys WHERE tenant_id = $1 ORDER BY label",
        )
        .bind(actor.tenant.to_string())
        .fetch_all(&mut *conn)
        .await?;
        let mut keys = Vec::new();
        for row in &rows {
            let usage: String = row.try_get(2)?;
            let key = ServerKey {
                id: parse_col(row, 0)?,
                label: row.try_get(1)?,
                usage: KeyUsage::parse(&usage)
                    .ok_or_else(|| EngineError::Corrupted(format!("key usage `{usage}`")))?,
                owner: parse_opt_col(row, 3)?,
            };
            if user.admin || key.usage == KeyUsage::Seal || key.owner == Some(actor.user) {
                keys.push(key);
            }
        }
        Ok(keys)
    }

    /// Forgets a server key (administrators): it no longer signs; the key itself stays on the
    /// module.
    pub async fn remove_server_key(&self, actor: Actor, id: ServerKeyId) -> EngineResult<()> {
        self.check_admin(actor).await?;
        self.delete_tenant_row(
            "DELETE FROM server_keys WHERE id = $1 AND tenant_id = $2",
            actor,
            &id.to_string(),
            "clé du serveur",
        )
        .await
    }

    /// Runs `delete` (`… WHERE id = $1 AND tenant_id = $2`) for row `id` of the actor's tenant.
    async fn delete_tenant_row(
        &self,
        delete: &'static str,
        actor: Actor,
        id: &str,
        entity: &'static str,
    ) -> EngineResult<()> {
        let mut tx = self.db.begin_write().await?;
        let deleted = sqlx::query(delete)
            .bind(id)
            .bind(actor.tenant.to_string())
            .execute(&mut *tx)
            .await?;
        if deleted.rows_affected() != 1 {
            return Err(EngineError::NotFound { entity });
        }
        tx.commit().await?;
        Ok(())
    }

    /// Prepares one dossier for `chain`: its target, document, format and data to sign.
    async fn prepare_dossier(
        &self,
        actor: Actor,
        dossier: DossierId,
        desk: Option<DeskId>,
        chain: &CertificateChain,
    ) -> EngineResult<Entry> {
        let target: SigningTarget = self.signing_target(actor, dossier, desk).await?;
        let bytes = self.docs.get(&target.main.sha256).await?;
        let format = choose_format(target.profile, &bytes);
        if format == Format::Xades && !is_xml(&bytes) {
            return Err(EngineError::invalid(
                "document",
                "XAdES enveloppé : le document principal doit être un fichier XML",
            ));
        }
        let level = level_of(target.level);
        let tsa = self.signing.tsa_url.clone();
        if level == Level::BT && tsa.is_none() {
            return Err(EngineError::invalid(
                "document",
                "l'étape demande une signature horodatée (B-T) mais aucun service d'horodatage n'est configuré",
            ));
        }
        let chain = chain.clone();
        let (data, state) = blocking(move || prepare(format, level, tsa, bytes, &chain))
            .await?
            .map_err(|e| {
                EngineError::invalid(
                    "document",
                    format!("le document ne peut pas être préparé pour la signature : {e}"),
                )
            })?;
        Ok(Entry {
            dossier,
            version: target.version,
            step: target.step,
            action: target.action,
            document: target.main.name,
            media_type: target.main.media_type,
            data,
            state,
        })
    }

    /// Finalizes a checked entry and records it through the step's sign or seal action.
    async fn complete(
        &self,
        actor: Actor,
        entry: Entry,
        values: Vec<SignatureValue>,
    ) -> EngineResult<Vec<Document>> {
        let Entry {
            dossier,
            version,
            step,
            action,
            document,
            media_type,
            state,
            ..
        } = entry;
        let output = blocking(move || finalize(state, &values, &document, &media_type))
            .await?
            .map_err(|e| {
                EngineError::invalid("signature", format!("assemblage de la signature : {e}"))
            })?;
        let input = ActionInput {
            version: Some(version),
            ..ActionInput::default()
        };
        let signed = match action {
            StepAction::Seal => self.seal(actor, dossier, input, output).await?,
            _ => self.sign(actor, dossier, input, output).await?,
        };
        let docs = self.documents(actor, signed.id).await?;
        Ok(docs
            .into_iter()
            .filter(|d| {
                matches!(d.role, DocumentRole::Signed | DocumentRole::Signature)
                    && d.step == Some(step)
            })
            .collect())
    }

    /// Prepares a signature batch: checks the certificate against the tenant's trust store,
    /// then prepares each dossier's main document. Dossiers that cannot be signed are listed in
    /// `refused`; when none can, the first refusal is the error.
    pub async fn create_signature_batch(
        &self,
        actor: Actor,
        new: NewBatch,
    ) -> EngineResult<SignatureBatch> {
        if new.dossiers.is_empty() {
            return Err(EngineError::invalid(
                "dossier_ids",
                "choisir au moins un dossier",
            ));
        }
        let now = self.now();
        let chain = parse_chain(&new.certificate_chain)?;
        {
            let mut conn = self.db.pool().acquire().await?;
            Self::load_user(&mut conn, actor).await?;
        }
        check_certificate(&chain, &self.trust_store(actor).await?, now)?;
        let key_algorithm = KeyAlgorithm::of_certificate(&chain.signer)
            .map_err(|e| signer_error("certificate_chain", e))?;
        let mut seen = BTreeSet::new();
        let mut entries = Vec::new();
        let mut refused = Vec::new();
        for dossier in new.dossiers {
            if !seen.insert(dossier) {
                continue;
            }
            match self.prepare_dossier(actor, dossier, new.desk, &chain).await {
                Ok(entry) => entries.push(entry),
                Err(error) => refused.push(Refusal { dossier, error }),
            }
        }
        if entries.is_empty() {
            return Err(refused
                .into_iter()
                .next()
                .map(|r| r.error)
                .unwrap_or_else(|| EngineError::invalid("dossier_ids", "aucun dossier")));
        }
        let id = SignatureBatchId::new();
        let ttl =
            time::Duration::try_from(self.signing.batch_ttl).unwrap_or(time::Duration::minutes(15));
        let expires_at = now + ttl;
        let items = entries
            .iter()
            .enumerate()
            .flat_map(|(i, e)| {
                e.data
                    .items
                    .iter()
                    .enumerate()
                    .map(move |(j, item)| BatchItem {
                        item_id: Entry::item_id(i, j),
                        dossier: e.dossier,
                        document: e.document.clone(),
                        label: item.label.clone(),
                        format: e.format(),
                        data_to_sign: item.digest.clone(),
                        digest_algorithm: item.digest_algorithm,
                        key_algorithm,
                    })
            })
            .collect();
        // Batches expired for a day only hold documents nobody will sign: drop them.
        sqlx::query("DELETE FROM signature_batches WHERE expires_at < $1")
            .bind(db_time(now - time::Duration::days(1)))
            .execute(self.db.pool())
            .await?;
        sqlx::query(
            "INSERT INTO signature_batches (id, tenant_id, user_id, chain, entries, used, expires_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, 0, $6, $7)",
        )
        .bind(id.to_string())
        .bind(actor.tenant.to_string())
        .bind(actor.user.to_string())
        .bind(to_json(&chain)?)
        .bind(to_json(&entries)?)
        .bind(db_time(expires_at))
        .bind(db_time(now))
        .execute(self.db.pool())
        .await?;
        Ok(SignatureBatch {
            id,
            expires_at,
            signer: seing_signer::x509::subject(&chain.signer),
            items,
            refused,
        })
    }

    /// Submits the signature values of a batch (used once): every value is checked against the
    /// certificate before anything is stored; each dossier whose values all pass is finalized
    /// and signed, the others are reported and left unchanged.
    pub async fn submit_signature_batch(
        &self,
        actor: Actor,
        batch: SignatureBatchId,
        values: Vec<(String, Vec<u8>)>,
    ) -> EngineResult<Vec<DossierOutcome>> {
        let now = self.now();
        let row = sqlx::query(
            "SELECT chain, entries, used, expires_at FROM signature_batches WHERE id = $1 AND tenant_id = $2 AND user_id = $3",
        )
        .bind(batch.to_string())
        .bind(actor.tenant.to_string())
        .bind(actor.user.to_string())
        .fetch_optional(self.db.pool())
        .await?
        .ok_or(EngineError::NotFound {
            entity: "lot de signature",
        })?;
        let chain: CertificateChain = json_col(&row, 0)?;
        let entries: Vec<Entry> = json_col(&row, 1)?;
        let used: i64 = row.try_get(2)?;
        let expires_at = time_col(&row, 3)?;
        if used != 0 {
            return Err(EngineError::conflict(
                "ce lot de signature a déjà été utilisé : préparez-en un nouveau",
            ));
        }
        if now > expires_at {
            return Err(EngineError::conflict(format!(
                "ce lot de signature a expiré à {} : préparez-en un nouveau",
                db_time(expires_at)
            )));
        }
        let key_algorithm = KeyAlgorithm::of_certificate(&chain.signer)
            .map_err(|e| signer_error("certificate_chain", e))?;
        let mut by_id = BTreeMap::new();
        for (item_id, value) in values {
            let known = item_id
                .split_once('-')
                .and_then(|(i, j)| Some((i.parse::<usize>().ok()?, j.parse::<usize>().ok()?)))
                .is_some_and(|(i, j)| entries.get(i).is_some_and(|e| j < e.data.items.len()));
            if !known {
                return Err(EngineError::invalid(
                    "items",
                    format!("élément « {item_id} » inconnu dans ce lot"),
                ));
            }
            if by_id.insert(item_id.clone(), value).is_some() {
                return Err(EngineError::invalid(
                    "items",
                    format!("élément « {item_id} » donné deux fois"),
                ));
            }
        }
        check_certificate(&chain, &self.trust_store(actor).await?, now)?;
        // The prepared states are not needed any more: only the fact of the use is kept.
        let consumed = sqlx::query(
            "UPDATE signature_batches SET used = 1, entries = '[]' WHERE id = $1 AND used = 0",
        )
        .bind(batch.to_string())
        .execute(self.db.pool())
        .await?;
        if consumed.rows_affected() != 1 {
            return Err(EngineError::conflict(
                "ce lot de signature a déjà été utilisé : préparez-en un nouveau",
            ));
        }
        // Every value is checked before any dossier is finalized or stored.
        let mut checked = Vec::new();
        for (i, entry) in entries.into_iter().enumerate() {
            let mut entry_values = Vec::new();
            let mut problem = None;
            for (j, item) in entry.data.items.iter().enumerate() {
                let Some(bytes) = by_id.remove(&Entry::item_id(i, j)) else {
                    problem = Some(format!("signature manquante pour « {} »", item.label));
                    break;
                };
                let value = native_value(key_algorithm, bytes);
                match verify_digest_signature(
                    &chain.signer,
                    item.digest_algorithm,
                    &item.digest,
                    &value,
                ) {
                    Ok(true) => entry_values.push(value),
                    Ok(false) | Err(_) => {
                        problem = Some(format!(
                            "la valeur de signature de « {} » ne correspond pas au certificat",
                            item.label
                        ));
                        break;
                    }
                }
            }
            checked.push((entry, problem.map_or(Ok(entry_values), Err)));
        }
        let mut outcomes = Vec::new();
        for (entry, values) in checked {
            let dossier = entry.dossier;
            let result = match values {
                Ok(values) => self.complete(actor, entry, values).await,
                Err(reason) => Err(EngineError::invalid("signature_value", reason)),
            };
            outcomes.push(DossierOutcome { dossier, result });
        }
        Ok(outcomes)
    }

    /// Signs dossiers with a key of the server's module, opened with `pin` for this call only
    /// (never stored). A seal key signs seal steps; a user's key its owner's signature steps.
    pub async fn server_sign(
        &self,
        actor: Actor,
        key: ServerKeyId,
        pin: Secret,
        dossiers: Vec<DossierId>,
        desk: Option<DeskId>,
    ) -> EngineResult<Vec<DossierOutcome>> {
        let dossiers = server_batch(dossiers)?;
        let opened = self.open_server_key(actor, key, pin).await?;
        let mut outcomes = Vec::new();
        for dossier in dossiers {
            outcomes.push(
                self.server_sign_dossier(actor, &opened, dossier, desk)
                    .await,
            );
        }
        Ok(outcomes)
    }

    /// Opens a key of the server's module with `pin` (one login, for one batch; the PIN is
    /// never stored) after checking that the actor may use it and that its certificate chains
    /// to the tenant's trust anchors.
    pub async fn open_server_key(
        &self,
        actor: Actor,
        key: ServerKeyId,
        pin: Secret,
    ) -> EngineResult<OpenedServerKey> {
        let row = sqlx::query(
            "SELECT uri, usage, owner_id, chain_pem FROM server_keys WHERE id = $1 AND tenant_id = $2",
        )
        .bind(key.to_string())
        .bind(actor.tenant.to_string())
        .fetch_optional(self.db.pool())
        .await?
        .ok_or(EngineError::NotFound {
            entity: "clé du serveur",
        })?;
        let uri: String = row.try_get(0)?;
        let usage: String = row.try_get(1)?;
        let usage = KeyUsage::parse(&usage)
            .ok_or_else(|| EngineError::Corrupted(format!("key usage `{usage}`")))?;
        let owner: Option<UserId> = parse_opt_col(&row, 2)?;
        let chain_pem: Option<String> = row.try_get(3)?;
        if usage == KeyUsage::User && owner != Some(actor.user) {
            return Err(EngineError::forbidden(
                "cette clé appartient à un autre utilisateur",
            ));
        }
        let mut uri: Pkcs11Uri = uri
            .parse()
            .map_err(|e| EngineError::Corrupted(format!("server key URI: {e}")))?;
        uri.pin = Some(PinSource::Value(pin));
        let intermediates = match chain_pem {
            Some(pem) => Certificate::load_pem_chain(pem.as_bytes())
                .map_err(|e| EngineError::Corrupted(format!("server key chain: {e}")))?,
            None => Vec::new(),
        };
        let opened = blocking(move || Pkcs11Key::open(&uri, None, intermediates))
            .await?
            .map_err(|e| match e {
                seing_signer::error::Error::WrongPin(_) => {
                    EngineError::invalid("pin", "code PIN incorrect")
                }
                seing_signer::error::Error::PinLocked(_) => {
                    EngineError::invalid("pin", "code PIN bloqué sur le module du serveur")
                }
                other => {
                    EngineError::invalid("key_id", format!("clé du serveur inutilisable : {other}"))
                }
            })?;
        let key_source: Arc<dyn KeySource> = Arc::new(opened);
        let chain = CertificateChain::of_key(key_source.as_ref());
        check_certificate(&chain, &self.trust_store(actor).await?, self.now())?;
        Ok(OpenedServerKey {
            usage,
            chain,
            key: key_source,
        })
    }

    /// Signs one dossier with an opened server key: what happened to it, never an error for
    /// the whole batch, so that one bad dossier never sinks the others.
    pub async fn server_sign_dossier(
        &self,
        actor: Actor,
        key: &OpenedServerKey,
        dossier: DossierId,
        desk: Option<DeskId>,
    ) -> DossierOutcome {
        let result = self
            .server_sign_one(actor, dossier, desk, key.usage, &key.chain, key.key.clone())
            .await;
        DossierOutcome { dossier, result }
    }

    async fn server_sign_one(
        &self,
        actor: Actor,
        dossier: DossierId,
        desk: Option<DeskId>,
        usage: KeyUsage,
        chain: &CertificateChain,
        key: Arc<dyn KeySource>,
    ) -> EngineResult<Vec<Document>> {
        let entry = self.prepare_dossier(actor, dossier, desk, chain).await?;
        match (usage, entry.action) {
            (KeyUsage::Seal, StepAction::Seal) | (KeyUsage::User, StepAction::Signature) => {}
            (KeyUsage::Seal, _) => {
                return Err(EngineError::conflict(
                    "un cachet ne signe que les étapes de cachet",
                ));
            }
            (KeyUsage::User, _) => {
                return Err(EngineError::conflict(
                    "une étape de cachet se signe avec un cachet du serveur",
                ));
            }
        }
        let data = entry.data.clone();
        let values = blocking(move || sign_all(key.as_ref(), &data))
            .await?
            .map_err(|e| {
                EngineError::invalid("key_id", format!("signature par la clé du serveur : {e}"))
            })?;
        self.complete(actor, entry, values).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_blocks_split_certificates_and_crls() {
        let text = "junk\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n\
                    -----BEGIN X509 CRL-----\nBBBB\n-----END X509 CRL-----\n";
        let blocks = pem_blocks(text);
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].0, "CERTIFICATE");
        assert_eq!(blocks[1].0, "X509 CRL");
        assert!(blocks[1].1.contains("BBBB"));
    }

    #[test]
    fn format_follows_the_step_then_the_document() {
        assert_eq!(choose_format(None, b"%PDF-1.7"), Format::Pades);
        assert_eq!(
            choose_format(None, b"<?xml version=\"1.0\"?><PES_Aller>"),
            Format::Pes
        );
        assert_eq!(choose_format(None, b"hello"), Format::Cades);
        assert_eq!(
            choose_format(Some(SignatureProfile::Cades), b"%PDF-1.7"),
            Format::Cades
        );
    }
}
