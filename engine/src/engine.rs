//! The engine service: one value holding the database, the document store, the clock and the
//! circuit templates; its methods (here and in `directory`, `dossiers`, `outbox`) are the API.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;

use crate::circuit::Template;
use crate::clock::{Clock, SystemClock, format_time, parse_time};
use crate::docstore::DocumentStore;
use crate::error::{EngineError, EngineResult};
use crate::ids::{CircuitId, DeskId, TenantId, UserId};
use crate::model::Actor;
use crate::storage::Database;

/// The circuit templates of the source tree's `workflows/`, compiled in so that the binary works
/// from any directory.
const SHIPPED_TEMPLATES: [(&str, &str); 6] = [
    (
        "actes-deliberation",
        include_str!("../../workflows/actes-deliberation.toml"),
    ),
    ("conges", include_str!("../../workflows/conges.toml")),
    (
        "frais-deplacement",
        include_str!("../../workflows/frais-deplacement.toml"),
    ),
    (
        "marches-notification",
        include_str!("../../workflows/marches-notification.toml"),
    ),
    (
        "pes-bordereaux",
        include_str!("../../workflows/pes-bordereaux.toml"),
    ),
    (
        "visa-signature",
        include_str!("../../workflows/visa-signature.toml"),
    ),
];

/// The circuit templates compiled into the binary (the source tree's `workflows/`), by name.
pub fn shipped_templates() -> EngineResult<BTreeMap<String, Template>> {
    SHIPPED_TEMPLATES
        .iter()
        .map(|(name, text)| {
            let file = format!("workflows/{name}.toml");
            Ok(((*name).to_owned(), Template::parse(&file, name, text)?))
        })
        .collect()
}

/// The parapheur engine.
#[derive(Debug, Clone)]
pub struct Engine {
    pub(crate) db: Database,
    pub(crate) docs: DocumentStore,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) templates: Arc<BTreeMap<String, Template>>,
    pub(crate) signing: Arc<crate::signing::SigningSettings>,
}

/// The authenticated user, loaded inside a transaction.
#[derive(Debug, Clone)]
pub(crate) struct UserCtx {
    pub id: UserId,
    pub admin: bool,
    pub desks: Vec<DeskId>,
}

/// How a user acts on a step: for which desk, from which desk, through a delegation or not.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ActingAs {
    /// The desk of the step acted for.
    pub desk: DeskId,
    /// The desk the user holds.
    pub from: DeskId,
    /// Set when acting through a delegation (*pour le compte de* `desk`).
    pub on_behalf_of: Option<DeskId>,
}

impl Engine {
    /// Assembles an engine from its parts (the database must be migrated).
    pub fn new(
        db: Database,
        docs: DocumentStore,
        clock: Arc<dyn Clock>,
        templates: BTreeMap<String, Template>,
    ) -> Self {
        Self {
            db,
            docs,
            clock,
            templates: Arc::new(templates),
            signing: Arc::default(),
        }
    }

    /// Connects to `database_url`, applies the migrations, loads the templates of
    /// `workflows_dir` (a broken one is an error naming its file and field; none: the shipped
    /// templates) and uses `documents_dir` as the document store.
    pub async fn open(
        database_url: &str,
        documents_dir: &Path,
        workflows_dir: Option<&Path>,
    ) -> EngineResult<Self> {
        let templates = match workflows_dir {
            Some(dir) => Template::load_dir(dir)?,
            None => shipped_templates()?,
        };
        let db = Database::connect(database_url).await?;
        db.migrate().await?;
        Ok(Self::new(
            db,
            DocumentStore::new(documents_dir),
            Arc::new(SystemClock),
            templates,
        ))
    }

    /// The database.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// The document store.
    pub fn documents_store(&self) -> &DocumentStore {
        &self.docs
    }

    /// The circuit templates, by name.
    pub fn templates(&self) -> &BTreeMap<String, Template> {
        &self.templates
    }

    pub(crate) fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    pub(crate) async fn load_user(conn: &mut AnyConnection, actor: Actor) -> EngineResult<UserCtx> {
        let row = sqlx::query("SELECT admin FROM users WHERE id = $1 AND tenant_id = $2")
            .bind(actor.user.to_string())
            .bind(actor.tenant.to_string())
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| EngineError::forbidden("utilisateur inconnu dans cette collectivité"))?;
        let admin: i64 = row.try_get(0)?;
        let desks =
            sqlx::query("SELECT desk_id FROM desk_holders WHERE user_id = $1 ORDER BY desk_id")
                .bind(actor.user.to_string())
                .fetch_all(&mut *conn)
                .await?
                .iter()
                .map(|r| parse_col(r, 0))
                .collect::<EngineResult<Vec<DeskId>>>()?;
        Ok(UserCtx {
            id: actor.user,
            admin: admin != 0,
            desks,
        })
    }

    /// Decides how `user` may act for one of `candidates` in `circuit` now: a desk the user
    /// holds first, else an active delegation to one of the user's desks; otherwise says why not.
    pub(crate) async fn acting_as(
        &self,
        conn: &mut AnyConnection,
        tenant: TenantId,
        user: &UserCtx,
        candidates: &[DeskId],
        circuit: Option<CircuitId>,
        now: OffsetDateTime,
    ) -> EngineResult<ActingAs> {
        if let Some(desk) = candidates.iter().find(|d| user.desks.contains(d)) {
            return Ok(ActingAs {
                desk: *desk,
                from: *desk,
                on_behalf_of: None,
            });
        }
        let rows = sqlx::query(
            "SELECT from_desk, to_desk, starts_at, ends_at, circuits FROM delegations WHERE tenant_id = $1",
        )
        .bind(tenant.to_string())
        .fetch_all(&mut *conn)
        .await?;
        let mut why = None;
        for row in &rows {
            let from: DeskId = parse_col(row, 0)?;
            let to: DeskId = parse_col(row, 1)?;
            if !candidates.contains(&from) || !user.desks.contains(&to) {
                continue;
            }
            let starts = time_col(row, 2)?;
            let ends = time_col(row, 3)?;
            let circuits: Vec<CircuitId> = json_col(row, 4)?;
            if now < starts || now >= ends {
                why = Some("votre délégation pour ce bureau n'est pas active à cette date");
                continue;
            }
            if let Some(c) = circuit
                && !circuits.is_empty()
                && !circuits.contains(&c)
            {
                why = Some("votre délégation pour ce bureau ne couvre pas ce circuit");
                continue;
            }
            return Ok(ActingAs {
                desk: from,
                from: to,
                on_behalf_of: Some(from),
            });
        }
        Err(EngineError::forbidden(why.unwrap_or(
            "vous ne détenez aucun des bureaux attendus et n'avez aucune délégation pour eux",
        )))
    }

    /// Checks that `desk` belongs to `tenant` (a foreign desk is not found).
    pub(crate) async fn desk_exists(
        conn: &mut AnyConnection,
        tenant: TenantId,
        desk: DeskId,
    ) -> EngineResult<()> {
        sqlx::query("SELECT id FROM desks WHERE id = $1 AND tenant_id = $2")
            .bind(desk.to_string())
            .bind(tenant.to_string())
            .fetch_optional(&mut *conn)
            .await?
            .map(|_| ())
            .ok_or(EngineError::NotFound { entity: "desk" })
    }
}

/// Reads a column holding an id or another `FromStr` value.
pub(crate) fn parse_col<T: std::str::FromStr>(
    row: &sqlx::any::AnyRow,
    index: usize,
) -> EngineResult<T> {
    let text: String = row.try_get(index)?;
    text.parse()
        .map_err(|_| EngineError::Corrupted(format!("column {index}: `{text}`")))
}

/// Reads an optional id column.
pub(crate) fn parse_opt_col<T: std::str::FromStr>(
    row: &sqlx::any::AnyRow,
    index: usize,
) -> EngineResult<Option<T>> {
    let text: Option<String> = row.try_get(index)?;
    text.map(|t| {
        t.parse()
            .map_err(|_| EngineError::Corrupted(format!("column {index}: `{t}`")))
    })
    .transpose()
}

/// Reads a stored time column.
pub(crate) fn time_col(row: &sqlx::any::AnyRow, index: usize) -> EngineResult<OffsetDateTime> {
    let text: String = row.try_get(index)?;
    parse_time(&text).ok_or_else(|| EngineError::Corrupted(format!("time `{text}`")))
}

/// Reads a JSON column.
pub(crate) fn json_col<T: serde::de::DeserializeOwned>(
    row: &sqlx::any::AnyRow,
    index: usize,
) -> EngineResult<T> {
    let text: String = row.try_get(index)?;
    serde_json::from_str(&text)
        .map_err(|e| EngineError::Corrupted(format!("JSON column {index}: {e}")))
}

/// Serializes to JSON text for storage.
pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> EngineResult<String> {
    serde_json::to_string(value).map_err(|e| EngineError::Corrupted(e.to_string()))
}

/// Formats a time for storage (re-exported for the modules of the service).
pub(crate) fn db_time(at: OffsetDateTime) -> String {
    format_time(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compiled_in_templates_are_those_of_the_workflows_folder() {
        let folder =
            Template::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../workflows"))
                .unwrap();
        assert_eq!(
            shipped_templates().unwrap(),
            folder,
            "a template added to workflows/ must be added to SHIPPED_TEMPLATES"
        );
    }
}
