//! The audit journal: every action as an append-only entry, chained per tenant by SHA-256 over
//! a canonical serialization, so that an altered, removed or reordered entry is detected.

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Row};

use crate::error::{EngineError, EngineResult};
use crate::ids::{DeskId, DossierId, EntryId, TenantId, UserId};
use crate::storage::Database;

/// Hash that precedes the first entry of every tenant's chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One journal entry as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JournalEntry {
    /// The tenant whose chain holds the entry.
    pub tenant: TenantId,
    /// Position in the tenant's chain, from 1.
    pub seq: i64,
    /// Identifier of the entry.
    pub id: EntryId,
    /// When (stored time text).
    pub at: String,
    /// Who acted (none for connectors and the system).
    pub user: Option<UserId>,
    /// The desk the user acted from.
    pub desk: Option<DeskId>,
    /// The desk acted for, when acting through a delegation (*pour le compte de*).
    pub on_behalf_of: Option<DeskId>,
    /// The dossier concerned.
    pub dossier: Option<DossierId>,
    /// The action (`visa`, `sign`, `reject`, …).
    pub action: String,
    /// Details as a JSON object (step, reason, document hashes, annotation).
    pub detail: String,
    /// Hash of the previous entry ([`GENESIS`] for the first).
    pub prev_hash: String,
    /// SHA-256 of this entry's canonical serialization.
    pub hash: String,
}

/// What an action writes into the journal; the chain fields are filled in by [`append`].
#[derive(Debug, Clone)]
pub struct NewEntry {
    /// The tenant.
    pub tenant: TenantId,
    /// When (stored time text).
    pub at: String,
    /// Who acted.
    pub user: Option<UserId>,
    /// From which desk.
    pub desk: Option<DeskId>,
    /// For which desk, through a delegation.
    pub on_behalf_of: Option<DeskId>,
    /// The dossier.
    pub dossier: Option<DossierId>,
    /// The action.
    pub action: &'static str,
    /// Details (a JSON object).
    pub detail: serde_json::Value,
}

fn opt<T: ToString>(value: &Option<T>) -> String {
    value.as_ref().map(ToString::to_string).unwrap_or_default()
}

impl JournalEntry {
    /// The canonical serialization that is hashed: a JSON array of strings in a fixed order
    /// (a version tag, every field but `hash`), which has exactly one encoding.
    pub fn canonical(&self) -> String {
        let fields = [
            "seing-journal-v1".to_owned(),
            self.tenant.to_string(),
            self.seq.to_string(),
            self.id.to_string(),
            self.at.clone(),
            opt(&self.user),
            opt(&self.desk),
            opt(&self.on_behalf_of),
            opt(&self.dossier),
            self.action.clone(),
            self.detail.clone(),
            self.prev_hash.clone(),
        ];
        serde_json::to_string(&fields).unwrap_or_default()
    }

    /// Recomputes the hash of this entry.
    pub fn compute_hash(&self) -> String {
        hex::encode(Sha256::digest(self.canonical().as_bytes()))
    }
}

/// Appends an entry to its tenant's chain inside the caller's transaction. Incrementing the
/// tenant's counter locks the tenant row, which serializes appends of one tenant.
pub async fn append(conn: &mut AnyConnection, entry: NewEntry) -> EngineResult<JournalEntry> {
    let row = sqlx::query(
        "UPDATE tenants SET journal_seq = journal_seq + 1 WHERE id = $1 RETURNING journal_seq, journal_head",
    )
    .bind(entry.tenant.to_string())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(EngineError::NotFound { entity: "tenant" })?;
    let seq: i64 = row.try_get(0)?;
    let prev_hash: String = row.try_get(1)?;
    let mut stored = JournalEntry {
        tenant: entry.tenant,
        seq,
        id: EntryId::new(),
        at: entry.at,
        user: entry.user,
        desk: entry.desk,
        on_behalf_of: entry.on_behalf_of,
        dossier: entry.dossier,
        action: entry.action.to_owned(),
        detail: entry.detail.to_string(),
        prev_hash,
        hash: String::new(),
    };
    stored.hash = stored.compute_hash();
    sqlx::query(
        "INSERT INTO journal (tenant_id, seq, id, at, user_id, desk_id, on_behalf_of, dossier_id, action, detail, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(stored.tenant.to_string())
    .bind(stored.seq)
    .bind(stored.id.to_string())
    .bind(stored.at.clone())
    .bind(stored.user.map(|u| u.to_string()))
    .bind(stored.desk.map(|d| d.to_string()))
    .bind(stored.on_behalf_of.map(|d| d.to_string()))
    .bind(stored.dossier.map(|d| d.to_string()))
    .bind(stored.action.clone())
    .bind(stored.detail.clone())
    .bind(stored.prev_hash.clone())
    .bind(stored.hash.clone())
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE tenants SET journal_head = $1 WHERE id = $2")
        .bind(stored.hash.clone())
        .bind(stored.tenant.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(stored)
}

fn parse_id<T: std::str::FromStr>(text: Option<String>, what: &str) -> EngineResult<Option<T>> {
    text.filter(|t| !t.is_empty())
        .map(|t| {
            t.parse()
                .map_err(|_| EngineError::Corrupted(format!("journal {what} `{t}` is not an id")))
        })
        .transpose()
}

pub(crate) fn entry_from_row(row: &sqlx::any::AnyRow) -> EngineResult<JournalEntry> {
    let tenant: String = row.try_get("tenant_id")?;
    let id: String = row.try_get("id")?;
    Ok(JournalEntry {
        tenant: parse_id(Some(tenant), "tenant")?.unwrap_or_default(),
        seq: row.try_get("seq")?,
        id: parse_id(Some(id), "id")?.unwrap_or_default(),
        at: row.try_get("at")?,
        user: parse_id(row.try_get("user_id")?, "user")?,
        desk: parse_id(row.try_get("desk_id")?, "desk")?,
        on_behalf_of: parse_id(row.try_get("on_behalf_of")?, "desk")?,
        dossier: parse_id(row.try_get("dossier_id")?, "dossier")?,
        action: row.try_get("action")?,
        detail: row.try_get("detail")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

/// The first entry found broken in a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BrokenEntry {
    /// The position where the chain breaks.
    pub seq: i64,
    /// The id of the stored entry at that position, if there is one.
    pub id: Option<String>,
    /// What is wrong.
    pub reason: String,
}

/// The result of verifying one tenant's chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    /// The tenant.
    pub tenant: String,
    /// Entries read.
    pub entries: i64,
    /// The first broken entry, if any.
    pub broken: Option<BrokenEntry>,
}

impl ChainReport {
    /// True when the chain is intact.
    pub fn is_intact(&self) -> bool {
        self.broken.is_none()
    }
}

/// Verifies the chain of `tenant`, or of every tenant, reading entries by pages.
pub async fn verify(db: &Database, tenant: Option<TenantId>) -> EngineResult<Vec<ChainReport>> {
    let tenants = match tenant {
        Some(t) => {
            sqlx::query("SELECT id, journal_seq, journal_head FROM tenants WHERE id = $1")
                .bind(t.to_string())
                .fetch_all(db.pool())
                .await?
        }
        None => {
            sqlx::query("SELECT id, journal_seq, journal_head FROM tenants ORDER BY id")
                .fetch_all(db.pool())
                .await?
        }
    };
    if tenant.is_some() && tenants.is_empty() {
        return Err(EngineError::NotFound { entity: "tenant" });
    }
    let mut reports = Vec::with_capacity(tenants.len());
    for t in tenants {
        let id: String = t.try_get(0)?;
        let count: i64 = t.try_get(1)?;
        let head: String = t.try_get(2)?;
        reports.push(verify_one(db, id, count, head).await?);
    }
    Ok(reports)
}

async fn verify_one(
    db: &Database,
    tenant: String,
    count: i64,
    head: String,
) -> EngineResult<ChainReport> {
    const PAGE: i64 = 1000;
    let mut expected_seq = 1;
    let mut prev = GENESIS.to_owned();
    let mut after = 0_i64;
    let broken = |seq: i64, id: Option<String>, reason: String| BrokenEntry { seq, id, reason };
    loop {
        let rows = sqlx::query(
            "SELECT * FROM journal WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(tenant.clone())
        .bind(after)
        .bind(PAGE)
        .fetch_all(db.pool())
        .await?;
        let last_page = (rows.len() as i64) < PAGE;
        for row in &rows {
            let seq: i64 = row.try_get("seq")?;
            let id: String = row.try_get("id")?;
            let fail = |reason: String| ChainReport {
                tenant: tenant.clone(),
                entries: expected_seq - 1,
                broken: Some(broken(seq, Some(id.clone()), reason)),
            };
            if seq != expected_seq {
                return Ok(ChainReport {
                    broken: Some(broken(
                        expected_seq,
                        None,
                        format!("entry {expected_seq} is missing (next stored entry is {seq})"),
                    )),
                    ..fail(String::new())
                });
            }
            let entry = match entry_from_row(row) {
                Ok(entry) => entry,
                Err(e) => return Ok(fail(format!("unreadable entry: {e}"))),
            };
            if entry.prev_hash != prev {
                return Ok(fail(
                    "its previous-entry hash does not match the entry before it (removed or reordered entry)".into(),
                ));
            }
            let computed = entry.compute_hash();
            if computed != entry.hash {
                return Ok(fail(
                    "its content does not match its hash (altered entry)".into(),
                ));
            }
            prev = entry.hash;
            expected_seq += 1;
            after = seq;
        }
        if last_page {
            break;
        }
    }
    let entries = expected_seq - 1;
    let broken = if entries != count || prev != head {
        Some(broken(
            entries + 1,
            None,
            format!(
                "the chain ends at entry {entries} but the tenant recorded {count} entries (last entries removed or head altered)"
            ),
        ))
    } else {
        None
    };
    Ok(ChainReport {
        tenant,
        entries,
        broken,
    })
}

impl crate::Engine {
    /// The tenant's journal in chain order, by pages of at most `limit` entries after position
    /// `after` (0 for the start); tenant administrators only.
    pub async fn tenant_journal(
        &self,
        actor: crate::model::Actor,
        after: i64,
        limit: u32,
    ) -> EngineResult<crate::model::Page<JournalEntry>> {
        let limit = limit.clamp(1, 500);
        let mut conn = self.db.pool().acquire().await?;
        if !Self::load_user(&mut conn, actor).await?.admin {
            return Err(EngineError::forbidden(
                "réservé aux administrateurs de la collectivité",
            ));
        }
        let rows = sqlx::query(
            "SELECT * FROM journal WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(actor.tenant.to_string())
        .bind(after)
        .bind(i64::from(limit) + 1)
        .fetch_all(&mut *conn)
        .await?;
        let more = rows.len() > limit as usize;
        let items = rows
            .iter()
            .take(limit as usize)
            .map(entry_from_row)
            .collect::<EngineResult<Vec<_>>>()?;
        let next_cursor = if more {
            items.last().map(|e| e.seq.to_string())
        } else {
            None
        };
        Ok(crate::model::Page { items, next_cursor })
    }
}
