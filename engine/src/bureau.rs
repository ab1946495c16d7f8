//! The bureau of a desk as people see it: every dossier the desk deals with — to act on,
//! emitted or acted on and still going elsewhere, done, rejected back to it — in one read.

use serde::Serialize;
use sqlx::Row;
use time::OffsetDateTime;

use crate::circuit::StepAction;
use crate::clock::parse_time;
use crate::dossiers::is_late;
use crate::engine::{Engine, json_col, parse_col};
use crate::error::{EngineError, EngineResult};
use crate::ids::{CircuitId, DeskId, DossierId};
use crate::model::{Actor, InboxReason};
use crate::workflow::{DossierState, StepInstance};

/// Where a dossier stands for a desk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BureauTab {
    /// Waiting for this desk (a step, a draft, a second opinion).
    ToAct,
    /// Emitted or acted on by this desk, now waiting for another one.
    InProgress,
    /// This desk's part is over: the dossier went on, finished or was rejected by it.
    Done,
    /// Rejected back to this desk, its emitter.
    Rejected,
}

/// One dossier of a bureau.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BureauEntry {
    /// Identifier.
    pub id: DossierId,
    /// Title.
    pub title: String,
    /// Circuit.
    pub circuit: CircuitId,
    /// State.
    pub state: DossierState,
    /// Current step index.
    pub current_step: usize,
    /// The action the current step expects, while the dossier is pending.
    pub step_action: Option<StepAction>,
    /// Why it waits for this desk, if it does.
    pub reason: Option<InboxReason>,
    /// The tab it belongs to.
    pub tab: BureauTab,
    /// Deadline.
    pub deadline: Option<OffsetDateTime>,
    /// Past its deadline while still waiting.
    pub late: bool,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

impl Engine {
    /// Every dossier of a desk's bureau, most recently changed first; the actor must hold the
    /// desk, act for it through an active delegation, or administer the tenant.
    pub async fn bureau(&self, actor: Actor, desk: DeskId) -> EngineResult<Vec<BureauEntry>> {
        let now = self.now();
        let mut conn = self.db.pool().acquire().await?;
        self.check_desk_view(&mut conn, actor, desk, now).await?;
        let rows = sqlx::query(
            "SELECT d.id, d.title, d.circuit_id, d.state, d.current_step, d.deadline, \
                    d.created_at, d.updated_at, i.reason, d.steps \
             FROM dossiers d \
             LEFT JOIN inbox i ON i.dossier_id = d.id AND i.tenant_id = $1 AND i.desk_id = $2 \
             WHERE d.tenant_id = $1 AND (d.emitter_desk = $2 OR i.desk_id IS NOT NULL \
                OR d.id IN (SELECT j.dossier_id FROM journal j WHERE j.tenant_id = $1 \
                            AND j.dossier_id IS NOT NULL \
                            AND (j.desk_id = $2 OR j.on_behalf_of = $2))) \
             ORDER BY d.updated_at DESC, d.id",
        )
        .bind(actor.tenant.to_string())
        .bind(desk.to_string())
        .fetch_all(&mut *conn)
        .await?;
        let time = |row: &sqlx::any::AnyRow, i: usize| -> EngineResult<Option<OffsetDateTime>> {
            let text: Option<String> = row.try_get(i)?;
            text.map(|t| parse_time(&t).ok_or(EngineError::Corrupted(format!("time `{t}`"))))
                .transpose()
        };
        rows.iter()
            .map(|row| {
                let state: String = row.try_get(3)?;
                let state = DossierState::parse(&state)
                    .ok_or_else(|| EngineError::Corrupted(state.clone()))?;
                let reason: Option<String> = row.try_get(8)?;
                let reason = reason
                    .map(|r| InboxReason::parse(&r).ok_or(EngineError::Corrupted(r)))
                    .transpose()?;
                let tab = match (reason, state) {
                    (Some(InboxReason::Rejected), _) => BureauTab::Rejected,
                    (Some(_), _) => BureauTab::ToAct,
                    (None, DossierState::Pending | DossierState::Draft) => BureauTab::InProgress,
                    (None, _) => BureauTab::Done,
                };
                let deadline = time(row, 5)?;
                let step: i64 = row.try_get(4)?;
                let current_step = usize::try_from(step).unwrap_or_default();
                let steps: Vec<StepInstance> = json_col(row, 9)?;
                let step_action = (state == DossierState::Pending)
                    .then(|| steps.get(current_step).map(|s| s.action))
                    .flatten();
                Ok(BureauEntry {
                    id: parse_col(row, 0)?,
                    title: row.try_get(1)?,
                    circuit: parse_col(row, 2)?,
                    state,
                    current_step,
                    step_action,
                    reason,
                    tab,
                    deadline,
                    late: is_late(state, deadline, now),
                    created_at: time(row, 6)?.unwrap_or(now),
                    updated_at: time(row, 7)?.unwrap_or(now),
                })
            })
            .collect()
    }
}
