//! Signing over HTTP: two-phase signature batches (the signer's key stays with the signer),
//! signatures by keys of the server's PKCS#11 module (PIN in the request, used once), the
//! tenant's trust store and server keys, and the verification of an uploaded signed file.
//! Thin handlers over `seing_engine::signing`.

use std::fmt;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use seing_engine::EngineError;
use seing_engine::ids::{DeskId, DossierId, ServerKeyId, SignatureBatchId, TrustAnchorId, UserId};
use seing_engine::model::Document;
use seing_engine::signing::{
    BatchItem, DossierOutcome, Format, KeyUsage, NewBatch, NewServerKey, ServerKey, TrustEntry,
    TrustKind,
};
use seing_signer::digest::DigestAlgorithm;
use seing_signer::key::{KeyAlgorithm, Secret};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

use super::auth::Caller;
use super::problem::{ApiError, ApiResult, Problem};
use super::{ApiJson, ApiPath, ApiState};

/// A signature batch to prepare.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBatch {
    /// The dossiers to sign (at a signature or seal step of one of your desks).
    #[schema(value_type = Vec<String>)]
    pub dossier_ids: Vec<DossierId>,
    /// The signer's certificate then its intermediate CAs, base64 DER.
    pub certificate_chain: Vec<String>,
    /// Only dossiers waiting at this desk.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub desk_id: Option<DeskId>,
}

/// One digest to sign.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchItemView {
    /// Identifier to give back with the value.
    pub item_id: String,
    /// The dossier.
    #[schema(value_type = String, format = Uuid)]
    pub dossier_id: DossierId,
    /// The signed document's file name.
    pub document: String,
    /// What this signature is for (bordereau Id, file).
    pub label: String,
    /// pes, pades, cades or xades.
    #[schema(value_type = String)]
    pub format: Format,
    /// Base64 of the digest to sign (already hashed: sign it as a pre-hashed value).
    pub data_to_sign: String,
    /// sha256, sha384 or sha512.
    pub digest_algorithm: String,
    /// rsa-pkcs1v15-sha256, ecdsa-sha256, …
    pub signature_algorithm: String,
}

fn digest_name(d: DigestAlgorithm) -> &'static str {
    match d {
        DigestAlgorithm::Sha256 => "sha256",
        DigestAlgorithm::Sha384 => "sha384",
        DigestAlgorithm::Sha512 => "sha512",
    }
}

impl From<BatchItem> for BatchItemView {
    fn from(i: BatchItem) -> Self {
        let digest = digest_name(i.digest_algorithm);
        let key = match i.key_algorithm {
            KeyAlgorithm::Rsa => "rsa-pkcs1v15",
            KeyAlgorithm::EcdsaP256 => "ecdsa",
        };
        Self {
            item_id: i.item_id,
            dossier_id: i.dossier,
            document: i.document,
            label: i.label,
            format: i.format,
            data_to_sign: STANDARD.encode(&i.data_to_sign),
            digest_algorithm: digest.to_owned(),
            signature_algorithm: format!("{key}-{digest}"),
        }
    }
}

/// A dossier left out of a batch.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefusedView {
    /// The dossier.
    #[schema(value_type = String, format = Uuid)]
    pub dossier_id: DossierId,
    /// The HTTP status this refusal would have alone (404, 403, 409, 422).
    pub status: u16,
    /// Why (French).
    pub reason: String,
}

fn status_and_reason(error: EngineError) -> (StatusCode, String) {
    let (status, detail, _) = ApiError::Engine(error).status_and_detail();
    (status, detail)
}

/// A prepared batch.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchView {
    /// Identifier.
    #[schema(value_type = String, format = Uuid)]
    pub batch_id: SignatureBatchId,
    /// The values are refused after this time (RFC 3339).
    pub expires_at: String,
    /// The signer's subject.
    pub signer: String,
    /// The digests to sign.
    pub items: Vec<BatchItemView>,
    /// The dossiers that could not be prepared.
    pub refused: Vec<RefusedView>,
}

/// One signature value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemValue {
    /// The item's identifier.
    pub item_id: String,
    /// Base64: RSA PKCS#1 v1.5 signature, or ECDSA r‖s (64 bytes) or DER.
    pub signature_value: String,
}

/// The signature values of a batch.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitBatch {
    /// One value per item.
    pub items: Vec<ItemValue>,
}

/// Signed or failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OutcomeStatus {
    /// Signed; the dossier moved on.
    Signed,
    /// Not signed; the dossier is unchanged.
    Failed,
}

/// What happened to one dossier.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutcomeView {
    /// The dossier.
    #[schema(value_type = String, format = Uuid)]
    pub dossier_id: DossierId,
    /// signed or failed.
    pub status: OutcomeStatus,
    /// Why it failed (French).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The documents added (signed document, signature file).
    pub documents: Vec<String>,
}

impl From<DossierOutcome> for OutcomeView {
    fn from(o: DossierOutcome) -> Self {
        match o.result {
            Ok(docs) => Self {
                dossier_id: o.dossier,
                status: OutcomeStatus::Signed,
                error: None,
                documents: docs.into_iter().map(|d: Document| d.id).collect(),
            },
            Err(e) => Self {
                dossier_id: o.dossier,
                status: OutcomeStatus::Failed,
                error: Some(status_and_reason(e).1),
                documents: Vec::new(),
            },
        }
    }
}

/// The per-dossier results of a signature.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResultsView {
    /// The batch, for two-phase signatures.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub batch_id: Option<SignatureBatchId>,
    /// One result per dossier.
    pub results: Vec<OutcomeView>,
}

/// Prepares a two-phase signature batch: the certificate is checked against the tenant's trust
/// store, each dossier's main document prepared, and the digests to sign returned.
#[utoipa::path(post, path = "/signature-batches", tag = "signing", request_body = CreateBatch,
    responses((status = 201, body = BatchView), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_batch(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateBatch>,
) -> ApiResult<(StatusCode, Json<BatchView>)> {
    let actor = caller.actor()?;
    let chain = body
        .certificate_chain
        .iter()
        .enumerate()
        .map(|(i, c)| {
            STANDARD.decode(c.trim()).map_err(|_| {
                ApiError::invalid(format!("certificate_chain[{i}]"), "base64 invalide")
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let batch = state
        .engine
        .create_signature_batch(
            actor,
            NewBatch {
                dossiers: body.dossier_ids,
                certificate_chain: chain,
                desk: body.desk_id,
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(BatchView {
            batch_id: batch.id,
            expires_at: batch.expires_at.format(&Rfc3339).unwrap_or_default(),
            signer: batch.signer,
            items: batch.items.into_iter().map(Into::into).collect(),
            refused: batch
                .refused
                .into_iter()
                .map(|r| {
                    let (status, reason) = status_and_reason(r.error);
                    RefusedView {
                        dossier_id: r.dossier,
                        status: status.as_u16(),
                        reason,
                    }
                })
                .collect(),
        }),
    ))
}

/// Submits the signature values of a batch (once): each value is checked against the
/// certificate before anything is stored; dossiers whose values all pass are signed.
#[utoipa::path(post, path = "/signature-batches/{id}/signatures", tag = "signing",
    request_body = SubmitBatch, params(("id" = String, Path, description = "Lot de signature")),
    responses((status = 200, body = ResultsView), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "Lot déjà utilisé ou expiré"),
        (status = 422, body = Problem)))]
pub async fn submit_batch(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    ApiPath(id): ApiPath<SignatureBatchId>,
    ApiJson(body): ApiJson<SubmitBatch>,
) -> ApiResult<Json<ResultsView>> {
    let actor = caller.actor()?;
    let values = body
        .items
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            STANDARD
                .decode(v.signature_value.trim())
                .map(|bytes| (v.item_id, bytes))
                .map_err(|_| {
                    ApiError::invalid(format!("items[{i}].signature_value"), "base64 invalide")
                })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let outcomes = state
        .engine
        .submit_signature_batch(actor, id, values)
        .await?;
    Ok(Json(ResultsView {
        batch_id: Some(id),
        results: outcomes.into_iter().map(Into::into).collect(),
    }))
}

/// A signature by a key of the server's module.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerSign {
    /// The dossiers to sign.
    #[schema(value_type = Vec<String>)]
    pub dossier_ids: Vec<DossierId>,
    /// The server key.
    #[schema(value_type = String, format = Uuid)]
    pub key_id: ServerKeyId,
    /// The key's PIN, used for this request only (never stored nor logged).
    pub pin: String,
    /// Only dossiers waiting at this desk.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub desk_id: Option<DeskId>,
}

impl fmt::Debug for ServerSign {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerSign")
            .field("dossier_ids", &self.dossier_ids)
            .field("key_id", &self.key_id)
            .field("desk_id", &self.desk_id)
            .finish_non_exhaustive()
    }
}

/// Signs dossiers with a key held by the server's PKCS#11 module (a seal for seal steps, or
/// the caller's own key for signature steps).
#[utoipa::path(post, path = "/server-signatures", tag = "signing", request_body = ServerSign,
    responses((status = 200, body = ResultsView), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem, description = "PIN incorrect, certificat refusé…")))]
pub async fn server_sign(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    ApiJson(body): ApiJson<ServerSign>,
) -> ApiResult<Json<ResultsView>> {
    let actor = caller.actor()?;
    let outcomes = state
        .engine
        .server_sign(
            actor,
            body.key_id,
            Secret::new(body.pin),
            body.dossier_ids,
            body.desk_id,
        )
        .await?;
    Ok(Json(ResultsView {
        batch_id: None,
        results: outcomes.into_iter().map(Into::into).collect(),
    }))
}

/// A server key as listed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServerKeyView {
    /// Identifier.
    #[schema(value_type = String, format = Uuid)]
    pub id: ServerKeyId,
    /// Label.
    pub label: String,
    /// seal or user.
    #[schema(value_type = String)]
    pub usage: KeyUsage,
    /// The owner of a user key.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub owner: Option<UserId>,
}

impl From<ServerKey> for ServerKeyView {
    fn from(k: ServerKey) -> Self {
        Self {
            id: k.id,
            label: k.label,
            usage: k.usage,
            owner: k.owner,
        }
    }
}

/// A server key to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateServerKey {
    /// Label (unique in the tenant).
    pub label: String,
    /// RFC 7512 URI of the key on the server's module, without PIN.
    pub uri: String,
    /// seal or user.
    #[schema(value_type = String)]
    pub usage: KeyUsage,
    /// The owner of a user key.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub owner: Option<UserId>,
    /// Intermediate CA certificates (PEM) to embed.
    #[serde(default)]
    pub chain_pem: Option<String>,
}

/// Lists the server keys the caller may use.
#[utoipa::path(get, path = "/server-keys", tag = "signing",
    responses((status = 200, body = Vec<ServerKeyView>), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn server_keys(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
) -> ApiResult<Json<Vec<ServerKeyView>>> {
    let keys = state.engine.server_keys(caller.actor()?).await?;
    Ok(Json(keys.into_iter().map(Into::into).collect()))
}

/// Registers a key of the server's PKCS#11 module (tenant administrators).
#[utoipa::path(post, path = "/server-keys", tag = "signing", request_body = CreateServerKey,
    responses((status = 201, body = ServerKeyView), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
pub async fn add_server_key(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateServerKey>,
) -> ApiResult<(StatusCode, Json<ServerKeyView>)> {
    let actor = caller.tenant_admin()?;
    let key = state
        .engine
        .add_server_key(
            actor,
            NewServerKey {
                label: body.label,
                uri: body.uri,
                usage: body.usage,
                owner: body.owner,
                chain_pem: body.chain_pem,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(key.into())))
}

/// Forgets a server key (tenant administrators); the key stays on the module.
#[utoipa::path(delete, path = "/server-keys/{id}", tag = "signing",
    params(("id" = String, Path, description = "Clé du serveur")),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)))]
pub async fn remove_server_key(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    ApiPath(id): ApiPath<ServerKeyId>,
) -> ApiResult<StatusCode> {
    let actor = caller.tenant_admin()?;
    state.engine.remove_server_key(actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An entry of the trust store.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrustEntryView {
    /// Identifier.
    #[schema(value_type = String, format = Uuid)]
    pub id: String,
    /// certificate or crl.
    #[schema(value_type = String)]
    pub kind: TrustKind,
    /// Subject (certificate) or issuer (CRL).
    pub subject: String,
}

impl From<TrustEntry> for TrustEntryView {
    fn from(t: TrustEntry) -> Self {
        Self {
            id: t.id.to_string(),
            kind: t.kind,
            subject: t.subject,
        }
    }
}

/// PEM certificates and CRLs to trust.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddTrust {
    /// PEM text: CERTIFICATE and X509 CRL blocks.
    pub pem: String,
}

/// Lists the tenant's trust anchors and CRLs.
#[utoipa::path(get, path = "/trust-anchors", tag = "signing",
    responses((status = 200, body = Vec<TrustEntryView>), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn trust_anchors(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
) -> ApiResult<Json<Vec<TrustEntryView>>> {
    let entries = state.engine.trust_entries(caller.actor()?).await?;
    Ok(Json(entries.into_iter().map(Into::into).collect()))
}

/// Adds trust anchors (CA certificates) and CRLs to the tenant's store (tenant administrators).
#[utoipa::path(post, path = "/trust-anchors", tag = "signing", request_body = AddTrust,
    responses((status = 201, body = Vec<TrustEntryView>), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn add_trust_anchors(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    ApiJson(body): ApiJson<AddTrust>,
) -> ApiResult<(StatusCode, Json<Vec<TrustEntryView>>)> {
    let actor = caller.tenant_admin()?;
    let entries = state.engine.add_trust_entries(actor, &body.pem).await?;
    Ok((
        StatusCode::CREATED,
        Json(entries.into_iter().map(Into::into).collect()),
    ))
}

/// Removes a certificate or CRL from the tenant's trust store (tenant administrators).
#[utoipa::path(delete, path = "/trust-anchors/{id}", tag = "signing",
    params(("id" = String, Path, description = "Entrée du magasin de confiance")),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)))]
pub async fn remove_trust_anchor(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    ApiPath(id): ApiPath<TrustAnchorId>,
) -> ApiResult<StatusCode> {
    let actor = caller.tenant_admin()?;
    state.engine.remove_trust_entry(actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The multipart form of a verification (for the OpenAPI document).
#[derive(Debug, ToSchema)]
pub struct VerificationForm {
    /// The signed file (or detached signature).
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
    /// The signed data of a detached signature.
    #[schema(value_type = Option<String>, format = Binary)]
    pub data: Option<Vec<u8>>,
}

/// Verifies an uploaded signed file (CAdES, PAdES, XAdES, PES) against the tenant's trust
/// anchors and CRLs, and returns the ETSI EN 319 102-1 report of `seing verify`.
#[utoipa::path(post, path = "/verifications", tag = "signing",
    request_body(content = VerificationForm, content_type = "multipart/form-data"),
    responses((status = 200, body = Object, description = "Rapport de validation (indication, signatures)"),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 413, body = Problem),
        (status = 422, body = Problem)))]
pub async fn verify(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    form: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    let actor = caller.actor()?;
    let mut form = form?;
    let mut file = None;
    let mut data = None;
    while let Some(field) = form.next_field().await? {
        let name = field.name().unwrap_or_default().to_owned();
        let bytes = field.bytes().await?.to_vec();
        match name.as_str() {
            "file" => file = Some(bytes),
            "data" => data = Some(bytes),
            other => {
                return Err(ApiError::invalid(
                    other,
                    "partie inconnue (attendu : file, data)",
                ));
            }
        }
    }
    let file = file.ok_or_else(|| ApiError::invalid("file", "fichier signé requis"))?;
    let mut options = state.engine.verify_options(actor).await?;
    let report = tokio::task::spawn_blocking(move || {
        // A detached signature's data is read from a file by the verifiers.
        let held = match data {
            Some(bytes) => {
                let tmp = tempfile::NamedTempFile::new()
                    .and_then(|mut t| std::io::Write::write_all(&mut t, &bytes).map(|_| t))
                    .map_err(|e| ApiError::Internal(format!("temporary file: {e}")))?;
                options.detached_data = Some(tmp.path().to_path_buf());
                Some(tmp)
            }
            None => None,
        };
        let report = crate::cli::verify::verify_bytes(&file, &options)
            .map_err(|e| ApiError::invalid("file", format!("vérification impossible : {e}")));
        drop(held);
        report
    })
    .await
    .map_err(|e| ApiError::Internal(format!("verification task: {e}")))??;
    Ok(Json(
        serde_json::to_value(report).map_err(|e| ApiError::Internal(format!("report: {e}")))?,
    ))
}
