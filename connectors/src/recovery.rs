//! PES files that S²LOW took without seing learning their transaction number.
//!
//! When the worker dies, or the answer is lost, between S²LOW taking a PES and seing recording
//! the transaction number, the retry is refused as a duplicate (S²LOW knows the file's SHA-1)
//! and S²LOW's Hélios API cannot tell the number from the hash. The send is then recorded
//! under `sha1:<hash>` and cannot be followed. An administrator finds the transaction in the
//! S²LOW console and gives its number here; seing checks it by downloading the file S²LOW holds
//! for that transaction and comparing its SHA-1 with the file sent, then follows the send as
//! usual (status, then `PES_Acquit`).

use seing_engine::Engine;
use seing_engine::ids::{DossierId, TenantId, UserId};
use serde::Serialize;
use serde_json::{Value, json};
use sha1::{Digest, Sha1};
use sqlx::Row;

use crate::s2low::{HeliosTransaction, S2low};
use crate::settings::{Transport, settings};
use crate::{Error, Result};

/// The reference of a send whose transaction number is unknown: `sha1:` then the file's hash.
const UNNUMBERED: &str = "sha1:";

/// A PES that S²LOW holds under a transaction number seing does not know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnnumberedPes {
    /// The dossier.
    pub dossier: DossierId,
    /// Its title.
    pub title: String,
    /// The transmission step (index in the circuit).
    pub step: i64,
    /// The PES file name sent.
    pub file: String,
    /// The SHA-1 of the file sent (hex), as S²LOW shows it.
    pub sha1: String,
    /// When the send was recorded (RFC 3339).
    pub sent_at: String,
}

fn storage(error: impl std::fmt::Display) -> Error {
    Error::Storage(error.to_string())
}

/// The PES of `tenant` sent to S²LOW whose transaction number is unknown, oldest first.
pub async fn unnumbered_pes(engine: &Engine, tenant: TenantId) -> Result<Vec<UnnumberedPes>> {
    let rows = sqlx::query(
        "SELECT t.dossier_id, d.title, t.step, t.detail, t.reference, t.created_at \
         FROM connector_transmissions t JOIN dossiers d ON d.id = t.dossier_id \
         WHERE t.tenant_id = $1 AND t.kind = 'helios' AND t.transport = 's2low' \
           AND t.state = 'sent' AND t.reference LIKE 'sha1:%' ORDER BY t.created_at",
    )
    .bind(tenant.to_string())
    .fetch_all(engine.database().pool())
    .await
    .map_err(storage)?;
    rows.iter()
        .map(|row| {
            let text = |i: usize| row.try_get::<String, _>(i).map_err(storage);
            let detail: Value = serde_json::from_str(&text(3)?).unwrap_or(Value::Null);
            Ok(UnnumberedPes {
                dossier: text(0)?.parse().map_err(|_| storage("dossier_id"))?,
                title: text(1)?,
                step: row.try_get(2).map_err(storage)?,
                file: detail["file"].as_str().unwrap_or_default().to_owned(),
                sha1: text(4)?.trim_start_matches(UNNUMBERED).to_owned(),
                sent_at: text(5)?,
            })
        })
        .collect()
}

/// Whether `bytes` is a PES file (an XML document whose root is `PES_Aller`).
fn is_pes(bytes: &[u8]) -> bool {
    crate::xml::decode(bytes)
        .ok()
        .and_then(|text| {
            crate::xml::parse(&text)
                .ok()
                .map(|doc| doc.root_element().tag_name().name() == "PES_Aller")
        })
        .unwrap_or(false)
}

/// Gives the PES of `dossier`, sent to S²LOW without its transaction number, the number
/// `transaction` that `user` (a tenant administrator) found on S²LOW.
///
/// The number is taken only if the file S²LOW holds for that transaction is the file sent
/// (same SHA-1) and no other send of the tenant has it. The journal records who gave it; the
/// send is then followed at the next polling pass.
pub async fn number_pes(
    engine: &Engine,
    tenant: TenantId,
    user: UserId,
    dossier: DossierId,
    transaction: u64,
) -> Result<HeliosTransaction> {
    let Some(Transport::S2low(config)) = settings(engine, tenant)
        .await?
        .and_then(|s| s.helios)
        .map(|h| h.transport)
    else {
        return Err(Error::Conflict(
            "les PES de cette collectivité ne passent pas par S²LOW".into(),
        ));
    };
    let pool = engine.database().pool();
    let row = sqlx::query(
        "SELECT step, reference, state, detail FROM connector_transmissions \
         WHERE tenant_id = $1 AND dossier_id = $2 AND kind = 'helios' AND transport = 's2low'",
    )
    .bind(tenant.to_string())
    .bind(dossier.to_string())
    .fetch_optional(pool)
    .await
    .map_err(storage)?
    .ok_or(Error::NotFound("envoi Hélios du dossier"))?;
    let text = |i: usize| row.try_get::<String, _>(i).map_err(storage);
    let (step, reference): (i64, String) = (row.try_get(0).map_err(storage)?, text(1)?);
    let Some(sent_sha1) = reference.strip_prefix(UNNUMBERED).map(str::to_owned) else {
        return Err(Error::Conflict(format!(
            "ce PES a déjà son numéro de transaction S²LOW : {reference}"
        )));
    };
    if text(2)? != "sent" {
        return Err(Error::Conflict(
            "ce PES n'attend plus de réponse de S²LOW".into(),
        ));
    }
    let mut detail = serde_json::from_str::<Value>(&text(3)?)
        .ok()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    let number = transaction.to_string();
    let id = HeliosTransaction(transaction);
    let held = tokio::task::spawn_blocking(move || S2low::new(&config)?.download_pes(id))
        .await
        .map_err(|e| Error::Transport(format!("tâche interrompue : {e}")))??;
    let held_sha1 = hex::encode(Sha1::digest(&held));
    if held_sha1 != sent_sha1 {
        return Err(Error::Refused(if is_pes(&held) {
            format!(
                "la transaction S²LOW {transaction} porte un autre PES (SHA-1 {held_sha1}) que \
                 celui envoyé pour ce dossier (SHA-1 {sent_sha1})"
            )
        } else {
            format!(
                "S²LOW ne donne pas de PES pour la transaction {transaction} (numéro inconnu, \
                 ou transaction d'une autre collectivité)"
            )
        }));
    }

    let mut tx = engine.database().begin_write().await.map_err(storage)?;
    let taken = sqlx::query(
        "SELECT dossier_id FROM connector_transmissions \
         WHERE tenant_id = $1 AND kind = 'helios' AND transport = 's2low' AND reference = $2",
    )
    .bind(tenant.to_string())
    .bind(number.clone())
    .fetch_optional(&mut *tx)
    .await
    .map_err(storage)?;
    if let Some(other) = taken {
        let other: String = other.try_get(0).map_err(storage)?;
        return Err(Error::Conflict(format!(
            "la transaction S²LOW {transaction} est déjà celle du dossier {other}"
        )));
    }
    detail["numbered_by"] = json!(user);
    let updated = sqlx::query(
        "UPDATE connector_transmissions SET reference = $1, detail = $2 \
         WHERE dossier_id = $3 AND step = $4 AND reference = $5",
    )
    .bind(number)
    .bind(detail.to_string())
    .bind(dossier.to_string())
    .bind(step)
    .bind(reference)
    .execute(&mut *tx)
    .await
    .map_err(storage)?;
    if updated.rows_affected() != 1 {
        return Err(Error::Conflict(
            "ce PES vient de recevoir un numéro de transaction".into(),
        ));
    }
    engine
        .connector_note(
            &mut tx,
            tenant,
            dossier,
            Some(user),
            "transmission.numbered",
            json!({"step": step, "reference": format!("s2low:{transaction}"), "sha1": sent_sha1}),
        )
        .await
        .map_err(storage)?;
    tx.commit().await.map_err(storage)?;
    Ok(id)
}
