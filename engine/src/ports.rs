//! Ports: what the engine needs from the outside world, implemented by `seing-connectors`
//! (S²LOW-compatible Actes/Hélios, SEDA archives, mail, webhooks), and the dispatcher that routes
//! outbox jobs to them and reports back to the engine.

use std::future::Future;

use crate::circuit::Channel;
use crate::engine::Engine;
use crate::error::{EngineError, EngineResult};
use crate::ids::{DossierId, TenantId, UserId};
use crate::journal::{self, JournalEntry, NewEntry, entry_from_row};
use crate::outbox::{DeliveryError, Job, JobHandler, JobKind};
use crate::workflow::ConnectorEvent;

/// Proof that an outside system took a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The outside system's reference (transmission id, archive id, message id).
    pub reference: String,
}

/// Sends a dossier to the prefecture (Actes) or the public accountant (Hélios).
pub trait Transmitter: Send + Sync {
    /// Sends the dossier of `job` on `channel`.
    fn transmit(
        &self,
        job: &Job,
        channel: Channel,
    ) -> impl Future<Output = Result<Receipt, DeliveryError>> + Send;
}

/// Notifies an outside recipient (a company awarded a contract) with proof of sending.
pub trait Notifier: Send + Sync {
    /// Sends the notification of `job`.
    fn notify(&self, job: &Job) -> impl Future<Output = Result<Receipt, DeliveryError>> + Send;
}

/// Builds and deposits an archive package.
pub trait Archiver: Send + Sync {
    /// Archives the dossier of `job`.
    fn archive(&self, job: &Job) -> impl Future<Output = Result<Receipt, DeliveryError>> + Send;
}

/// Delivers webhook events to the business software.
pub trait WebhookSender: Send + Sync {
    /// Delivers the event of `job`.
    fn deliver(&self, job: &Job) -> impl Future<Output = Result<(), DeliveryError>> + Send;
}

/// Routes outbox jobs to the ports and tells the engine when a connector step is done.
#[derive(Debug)]
pub struct Dispatcher<T, N, A, W> {
    /// The engine to report to.
    pub engine: Engine,
    /// Actes / Hélios.
    pub transmitter: T,
    /// Notifications.
    pub notifier: N,
    /// Archives.
    pub archiver: A,
    /// Webhooks.
    pub webhooks: W,
}

impl<T: Transmitter, N: Notifier, A: Archiver, W: WebhookSender> Dispatcher<T, N, A, W> {
    async fn report(
        &self,
        job: &Job,
        event: ConnectorEvent,
        receipt: Receipt,
    ) -> Result<(), DeliveryError> {
        let dossier = job
            .dossier
            .ok_or_else(|| DeliveryError::permanent("job without a dossier"))?;
        match self
            .engine
            .connector_report(job.tenant, dossier, event, &receipt.reference)
            .await
        {
            // Already reported by an earlier delivery of the same job: nothing left to do.
            Ok(_) | Err(EngineError::Conflict { .. }) => Ok(()),
            Err(e) => Err(DeliveryError::transient(e.to_string())),
        }
    }

    /// The receipt of a send; a send the outside system refused first sends the dossier back
    /// to its emitter with the refusal's reason, then fails the job with it.
    async fn sent(
        &self,
        job: &Job,
        outcome: Result<Receipt, DeliveryError>,
    ) -> Result<Receipt, DeliveryError> {
        let error = match outcome {
            Ok(receipt) => return Ok(receipt),
            Err(error) => error,
        };
        if let Some(refusal) = &error.refusal {
            let event = ConnectorEvent::Refused {
                by: refusal.by,
                reason: error.message.clone(),
            };
            let reference = Receipt {
                reference: refusal.reference.clone(),
            };
            self.report(job, event, reference).await?;
        }
        Err(error)
    }
}

impl<T: Transmitter, N: Notifier, A: Archiver, W: WebhookSender> JobHandler
    for Dispatcher<T, N, A, W>
{
    async fn handle(&self, job: &Job) -> Result<(), DeliveryError> {
        match job.kind {
            JobKind::Webhook => self.webhooks.deliver(job).await,
            JobKind::Transmission => {
                let channel = serde_json::from_value::<Channel>(job.payload["channel"].clone())
                    .map_err(|_| DeliveryError::permanent("transmission job without a channel"))?;
                let receipt = self
                    .sent(job, self.transmitter.transmit(job, channel).await)
                    .await?;
                self.report(job, ConnectorEvent::Transmitted, receipt).await
            }
            JobKind::Notification => {
                let receipt = self.sent(job, self.notifier.notify(job).await).await?;
                self.report(job, ConnectorEvent::Transmitted, receipt).await
            }
            JobKind::Archive => {
                let receipt = self.sent(job, self.archiver.archive(job).await).await?;
                self.report(job, ConnectorEvent::Archived, receipt).await
            }
        }
    }
}

impl Engine {
    /// The journal entries of a dossier, oldest first, for a connector that archives it (the
    /// worker acts for the system, not for a user).
    pub async fn connector_journal(
        &self,
        tenant: TenantId,
        dossier: DossierId,
    ) -> EngineResult<Vec<JournalEntry>> {
        let rows = sqlx::query(
            "SELECT * FROM journal WHERE tenant_id = $1 AND dossier_id = $2 ORDER BY seq",
        )
        .bind(tenant.to_string())
        .bind(dossier.to_string())
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(entry_from_row).collect()
    }

    /// Journals what happened to a connector's send without changing the dossier's state (an
    /// administrator, `user`, giving a PES its S²LOW transaction number; the prefecture
    /// acknowledging an act's cancellation), inside the connector's own transaction `conn`, so
    /// that its record and the entry are kept together.
    pub async fn connector_note(
        &self,
        conn: &mut sqlx::AnyConnection,
        tenant: TenantId,
        dossier: DossierId,
        user: Option<UserId>,
        action: &'static str,
        detail: serde_json::Value,
    ) -> EngineResult<JournalEntry> {
        journal::append(
            conn,
            NewEntry {
                tenant,
                at: crate::engine::db_time(self.now()),
                user,
                desk: None,
                on_behalf_of: None,
                dossier: Some(dossier),
                action,
                detail,
            },
        )
        .await
    }
}
