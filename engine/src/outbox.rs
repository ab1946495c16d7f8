//! The outbox: side effects (webhooks, transmissions, archives, mails) written as rows in the
//! same transaction as the state change, then taken by a worker with retries and exponential
//! backoff (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so several workers never take the same job).

use std::future::Future;

use serde::Serialize;
use sqlx::{AnyConnection, Row};
use time::{Duration, OffsetDateTime};

use crate::engine::{Engine, db_time, json_col, parse_col, parse_opt_col};
use crate::error::{EngineError, EngineResult};
use crate::ids::{DossierId, JobId, TenantId};
use crate::storage::Backend;
use crate::workflow::Refuser;

/// The kinds of side effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// An HTTP callback to the business software.
    Webhook,
    /// Transmission to Actes or Hélios.
    Transmission,
    /// Notification to an outside recipient (mail with proof of receipt).
    Notification,
    /// SEDA archive package.
    Archive,
}

impl JobKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Transmission => "transmission",
            Self::Notification => "notification",
            Self::Archive => "archive",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [
            Self::Webhook,
            Self::Transmission,
            Self::Notification,
            Self::Archive,
        ]
        .into_iter()
        .find(|k| k.as_str() == text)
    }
}

/// The delivery status of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Waiting for its next attempt.
    Pending,
    /// Taken by a worker (until its lease expires).
    Running,
    /// Delivered.
    Done,
    /// Given up after the last attempt or a permanent error.
    Failed,
}

impl JobStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [Self::Pending, Self::Running, Self::Done, Self::Failed]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// An outbox job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Job {
    /// Identifier.
    pub id: JobId,
    /// Tenant.
    pub tenant: TenantId,
    /// Dossier concerned.
    pub dossier: Option<DossierId>,
    /// Kind.
    pub kind: JobKind,
    /// What to deliver (JSON).
    pub payload: serde_json::Value,
    /// Key the receiver uses to drop duplicates (a job may be delivered again after a crash).
    pub idempotency_key: String,
    /// Status.
    pub status: JobStatus,
    /// Attempts made so far.
    pub attempts: i64,
    /// Last error.
    pub last_error: Option<String>,
}

/// Writes a job in the caller's transaction; a job with the same idempotency key is not repeated.
pub(crate) async fn enqueue(
    conn: &mut AnyConnection,
    tenant: TenantId,
    dossier: Option<DossierId>,
    kind: JobKind,
    payload: &serde_json::Value,
    key: &str,
    now: OffsetDateTime,
) -> EngineResult<()> {
    sqlx::query(
        "INSERT INTO outbox (id, tenant_id, dossier_id, kind, payload, idempotency_key, status, attempts, next_attempt_at, last_error, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, NULL, $7, $7) ON CONFLICT (idempotency_key) DO NOTHING",
    )
    .bind(JobId::new().to_string())
    .bind(tenant.to_string())
    .bind(dossier.map(|d| d.to_string()))
    .bind(kind.as_str())
    .bind(payload.to_string())
    .bind(key.to_owned())
    .bind(db_time(now))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Why a delivery failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DeliveryError {
    /// What happened.
    pub message: String,
    /// True when retrying cannot help (rejected by the receiver).
    pub permanent: bool,
    /// Set when the outside system refused the dossier's documents at sending: the dispatcher
    /// then sends the dossier back to its emitter, with `message` as the reason.
    pub refusal: Option<Refusal>,
}

/// An outside system's refusal of a send (see [`DeliveryError::refused`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Who refused.
    pub by: Refuser,
    /// The outside system's reference for what it refused (its transaction, its message).
    pub reference: String,
}

impl DeliveryError {
    /// A failure worth retrying.
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: false,
            refusal: None,
        }
    }

    /// A failure that retrying cannot fix.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: true,
            refusal: None,
        }
    }

    /// The outside system refused to take the documents, for `reason`: retrying cannot fix it,
    /// and the emitter must change the dossier (the dispatcher sends it back as rejected).
    pub fn refused(by: Refuser, reference: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            message: reason.into(),
            permanent: true,
            refusal: Some(Refusal {
                by,
                reference: reference.into(),
            }),
        }
    }
}

/// Delivers jobs; implemented by the connectors' dispatcher.
pub trait JobHandler: Send + Sync {
    /// Delivers one job.
    fn handle(&self, job: &Job) -> impl Future<Output = Result<(), DeliveryError>> + Send;
}

/// Retries with exponential backoff: `base × 2^(attempt-1)`, capped, up to `max_attempts`.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Delay after the first failure.
    pub base: Duration,
    /// Longest delay.
    pub cap: Duration,
    /// Attempts before giving up.
    pub max_attempts: i64,
    /// How long a taken job stays reserved; a worker that dies releases it when this expires.
    pub lease: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::seconds(10),
            cap: Duration::hours(1),
            max_attempts: 10,
            lease: Duration::minutes(5),
        }
    }
}

impl RetryPolicy {
    /// The delay before the attempt following failed attempt number `attempts` (from 1).
    pub fn delay(&self, attempts: i64) -> Duration {
        let exponent = u32::try_from(attempts.clamp(1, 31) - 1).unwrap_or(0);
        let factor = 2_i32.saturating_pow(exponent);
        let delay = self.base.saturating_mul(factor);
        if delay > self.cap { self.cap } else { delay }
    }
}

/// What one pass of the worker did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxRun {
    /// Delivered.
    pub done: usize,
    /// Failed and rescheduled.
    pub retried: usize,
    /// Given up.
    pub failed: usize,
}

fn job_from_row(row: &sqlx::any::AnyRow) -> EngineResult<Job> {
    let kind: String = row.try_get(3)?;
    let status: String = row.try_get(6)?;
    Ok(Job {
        id: parse_col(row, 0)?,
        tenant: parse_col(row, 1)?,
        dossier: parse_opt_col(row, 2)?,
        kind: JobKind::parse(&kind)
            .ok_or_else(|| EngineError::Corrupted(format!("job kind `{kind}`")))?,
        payload: json_col(row, 4)?,
        idempotency_key: row.try_get(5)?,
        status: JobStatus::parse(&status)
            .ok_or_else(|| EngineError::Corrupted(format!("job status `{status}`")))?,
        attempts: row.try_get(7)?,
        last_error: row.try_get(8)?,
    })
}

const JOB_COLUMNS: &str =
    "id, tenant_id, dossier_id, kind, payload, idempotency_key, status, attempts, last_error";

impl Engine {
    /// Takes up to `limit` due jobs and reserves them for `policy.lease`.
    pub async fn take_jobs(&self, limit: u32, policy: &RetryPolicy) -> EngineResult<Vec<Job>> {
        let now = self.now();
        let mut tx = self.db.begin_write().await?;
        let skip_locked = match self.db.kind() {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM outbox WHERE status IN ('pending', 'running') AND next_attempt_at <= $1 \
             ORDER BY next_attempt_at, id LIMIT $2{skip_locked}"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(db_time(now))
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await?;
        let mut jobs = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut job = job_from_row(row)?;
            job.attempts += 1;
            job.status = JobStatus::Running;
            sqlx::query(
                "UPDATE outbox SET status = 'running', attempts = $1, next_attempt_at = $2, updated_at = $3 WHERE id = $4",
            )
            .bind(job.attempts)
            .bind(db_time(now + policy.lease))
            .bind(db_time(now))
            .bind(job.id.to_string())
            .execute(&mut *tx)
            .await?;
            jobs.push(job);
        }
        tx.commit().await?;
        Ok(jobs)
    }

    /// Records the outcome of a taken job: done, rescheduled with backoff, or failed for good.
    pub async fn finish_job(
        &self,
        job: &Job,
        outcome: Result<(), DeliveryError>,
        policy: &RetryPolicy,
    ) -> EngineResult<JobStatus> {
        let now = self.now();
        let (status, next, error) = match outcome {
            Ok(()) => (JobStatus::Done, now, None),
            Err(e) if e.permanent || job.attempts >= policy.max_attempts => {
                (JobStatus::Failed, now, Some(e.message))
            }
            Err(e) => (
                JobStatus::Pending,
                now + policy.delay(job.attempts),
                Some(e.message),
            ),
        };
        sqlx::query(
            "UPDATE outbox SET status = $1, next_attempt_at = $2, last_error = $3, updated_at = $4 WHERE id = $5 AND status = 'running'",
        )
        .bind(status.as_str())
        .bind(db_time(next))
        .bind(error)
        .bind(db_time(now))
        .bind(job.id.to_string())
        .execute(self.db.pool())
        .await?;
        Ok(status)
    }

    /// One pass of the worker: takes due jobs, delivers them through `handler`, records outcomes.
    pub async fn run_outbox_once<H: JobHandler>(
        &self,
        handler: &H,
        policy: &RetryPolicy,
        limit: u32,
    ) -> EngineResult<OutboxRun> {
        let mut run = OutboxRun::default();
        for job in self.take_jobs(limit, policy).await? {
            let outcome = handler.handle(&job).await;
            match self.finish_job(&job, outcome, policy).await? {
                JobStatus::Done => run.done += 1,
                JobStatus::Failed => run.failed += 1,
                _ => run.retried += 1,
            }
        }
        Ok(run)
    }

    /// Runs the worker until `shutdown` completes: passes of up to `batch` jobs back to back
    /// while there is work, a pause of `idle` when there is none. A pass interrupted by the
    /// shutdown leaves its jobs leased; they are taken again once the lease expires.
    pub async fn run_outbox_worker<H: JobHandler>(
        &self,
        handler: &H,
        policy: &RetryPolicy,
        batch: u32,
        idle: std::time::Duration,
        shutdown: impl Future<Output = ()>,
    ) -> EngineResult<()> {
        tokio::pin!(shutdown);
        loop {
            let run = tokio::select! {
                biased;
                () = &mut shutdown => return Ok(()),
                run = self.run_outbox_once(handler, policy, batch) => run?,
            };
            if run == OutboxRun::default() {
                tokio::select! {
                    biased;
                    () = &mut shutdown => return Ok(()),
                    () = tokio::time::sleep(idle) => {}
                }
            }
        }
    }

    /// The jobs of a dossier, oldest first (for status pages and tests).
    pub async fn dossier_jobs(
        &self,
        tenant: TenantId,
        dossier: DossierId,
    ) -> EngineResult<Vec<Job>> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM outbox WHERE tenant_id = $1 AND dossier_id = $2 ORDER BY created_at, id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant.to_string())
            .bind(dossier.to_string())
            .fetch_all(self.db.pool())
            .await?;
        rows.iter().map(job_from_row).collect()
    }
}
