//! Every circuit template end to end at the engine level, on SQLite and on PostgreSQL:
//! rejection and recycle, undo, delegation in and out of its dates, `any`/`all` steps, metadata
//! conditions, deadlines, connector steps through the outbox, tenant isolation.

mod common;

use std::sync::Mutex;

use common::{Harness, doc, meta, signed, world};
use seing_engine::EngineError;
use seing_engine::bureau::BureauTab;
use seing_engine::circuit::Channel;
use seing_engine::clock::Clock;
use seing_engine::ids::WebhookId;
use seing_engine::journal;
use seing_engine::metadata::{MetaValue, Metadata};
use seing_engine::model::{ActionInput, Actor, DocumentRole, InboxReason, NewTenant, Visibility};
use seing_engine::outbox::{DeliveryError, Job, JobKind, JobStatus, RetryPolicy};
use seing_engine::ports::{Archiver, Dispatcher, Notifier, Receipt, Transmitter, WebhookSender};
use seing_engine::webhooks::{NewWebhook, WebhookEvent};
use seing_engine::workflow::{ConnectorEvent, DossierState, Refuser, RejectionOrigin};

fn input() -> ActionInput {
    ActionInput::default()
}

/// Records what the ports received; stands for the outside systems of the connectors.
#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<String>>);

impl Recorder {
    fn push(&self, what: String) {
        self.0.lock().unwrap().push(what);
    }
    fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

impl Transmitter for &Recorder {
    async fn transmit(&self, job: &Job, channel: Channel) -> Result<Receipt, DeliveryError> {
        self.push(format!(
            "transmit {channel:?} {} docs",
            job.payload["documents"].as_array().map_or(0, Vec::len)
        ));
        Ok(Receipt {
            reference: "TR-1".into(),
        })
    }
}
impl Notifier for &Recorder {
    async fn notify(&self, _job: &Job) -> Result<Receipt, DeliveryError> {
        self.push("notify".into());
        Ok(Receipt {
            reference: "AR-1".into(),
        })
    }
}
impl Archiver for &Recorder {
    async fn archive(&self, _job: &Job) -> Result<Receipt, DeliveryError> {
        self.push("archive".into());
        Ok(Receipt {
            reference: "SEDA-1".into(),
        })
    }
}
impl WebhookSender for &Recorder {
    async fn deliver(&self, job: &Job) -> Result<(), DeliveryError> {
        self.push(format!(
            "webhook {}",
            job.payload["body"]["event"].as_str().unwrap_or("?")
        ));
        Ok(())
    }
}

/// Subscribes the tenant of `admin` to `events` (empty: every event).
async fn subscribe(h: &Harness, admin: Actor, events: &[WebhookEvent]) -> WebhookId {
    h.engine
        .create_webhook(
            admin,
            NewWebhook {
                url: "https://erp.example/hooks".into(),
                events: events.to_vec(),
                secret: "un-secret-assez-long".into(),
                active: true,
            },
        )
        .await
        .unwrap()
        .id
}

async fn run_outbox(h: &Harness, recorder: &Recorder) {
    let dispatcher = Dispatcher {
        engine: h.engine.clone(),
        transmitter: recorder,
        notifier: recorder,
        archiver: recorder,
        webhooks: recorder,
    };
    let run = h
        .engine
        .run_outbox_once(&dispatcher, &RetryPolicy::default(), 100)
        .await
        .unwrap();
    assert_eq!(run.failed + run.retried, 0, "{run:?}");
}

async fn assert_journal_intact(h: &Harness) {
    for report in journal::verify(h.engine.database(), None).await.unwrap() {
        assert!(report.is_intact(), "{report:?}");
    }
}

async fn pes_bordereaux(h: &Harness) {
    let e = &h.engine;
    let w = world(e, "732829320").await;
    subscribe(h, w.admin, &[]).await;
    let id = w
        .submitted(e, "pes-bordereaux", "finances", "fin", Metadata::new())
        .await;
    // The mayor cannot act at the finance step: the refusal says why.
    let refused = e.visa(w.users["maire"], id, input()).await.unwrap_err();
    assert!(
        matches!(refused, EngineError::Forbidden { .. }),
        "{refused:?}"
    );
    // A signature is refused at a visa step.
    let wrong = e
        .sign(w.users["fin"], id, input(), signed(b"x"))
        .await
        .unwrap_err();
    assert!(matches!(wrong, EngineError::Conflict { .. }), "{wrong:?}");
    let d = e.visa(w.users["fin"], id, input()).await.unwrap();
    assert_eq!((d.state, d.current_step), (DossierState::Pending, 1));
    // A signature without the signed bytes is invalid.
    let empty = e
        .sign(w.users["maire"], id, input(), Default::default())
        .await
        .unwrap_err();
    assert!(matches!(empty, EngineError::Invalid { .. }), "{empty:?}");
    let d = e
        .sign(w.users["maire"], id, input(), signed(b"<PES signed/>"))
        .await
        .unwrap();
    assert_eq!((d.state, d.current_step), (DossierState::Finished, 2));
    let docs = e.documents(w.users["maire"], id).await.unwrap();
    let signed_doc = docs
        .iter()
        .find(|d| d.role == DocumentRole::Signed)
        .unwrap();
    assert_eq!(signed_doc.step, Some(1));
    assert_eq!(
        e.document_bytes(w.users["fin"], id, &signed_doc.id)
            .await
            .unwrap(),
        b"<PES signed/>"
    );
    // Once a connector step started, the signature can no longer be taken back.
    assert!(matches!(
        e.undo(w.users["maire"], id).await,
        Err(EngineError::Conflict { .. })
    ));
    let jobs = e.dossier_jobs(w.admin.tenant, id).await.unwrap();
    let transmission = jobs
        .iter()
        .find(|j| j.kind == JobKind::Transmission)
        .unwrap();
    assert_eq!(transmission.payload["channel"], "helios");
    let recorder = Recorder::default();
    run_outbox(h, &recorder).await;
    assert!(
        recorder
            .all()
            .contains(&"transmit Helios 3 docs".to_owned()),
        "{:?}",
        recorder.all()
    );
    let d = e.dossier(w.users["fin"], id).await.unwrap();
    assert_eq!(d.state, DossierState::Transmitted);
    // Hélios acknowledges later; then the archive job runs.
    e.connector_report(w.admin.tenant, id, ConnectorEvent::Acknowledged, "ACK-1")
        .await
        .unwrap();
    run_outbox(h, &recorder).await;
    let d = e.dossier(w.users["fin"], id).await.unwrap();
    assert_eq!(d.state, DossierState::Archived);
    assert!(recorder.all().contains(&"archive".to_owned()));
    // The archive report enqueued its webhook: the next pass delivers it.
    run_outbox(h, &recorder).await;
    assert!(
        recorder
            .all()
            .contains(&"webhook dossier.archived".to_owned())
    );
    let jobs = e.dossier_jobs(w.admin.tenant, id).await.unwrap();
    assert!(jobs.iter().all(|j| j.status == JobStatus::Done), "{jobs:?}");
    let actions: Vec<String> = e
        .dossier_journal(w.users["fin"], id)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.action)
        .collect();
    assert_eq!(
        actions,
        [
            "create",
            "submit",
            "visa",
            "sign",
            "transmitted",
            "acknowledged",
            "archived"
        ]
    );
    assert_journal_intact(h).await;
}

async fn actes_deliberation_reject_and_recycle(h: &Harness) {
    let e = &h.engine;
    let w = world(e, "732829320").await;
    let id = w
        .submitted(e, "actes-deliberation", "finances", "fin", Metadata::new())
        .await;
    let no_reason = e
        .reject(w.users["dgs"], id, "  ", input())
        .await
        .unwrap_err();
    assert!(matches!(no_reason, EngineError::Invalid { ref field, .. } if field == "reason"));
    let d = e
        .reject(w.users["dgs"], id, "Montant erroné", input())
        .await
        .unwrap();
    assert_eq!(d.state, DossierState::Rejected);
    let inbox = e
        .desk_dossiers(w.users["fin"], w.desks["finances"], None, 10)
        .await
        .unwrap();
    assert_eq!(inbox.items.len(), 1);
    assert_eq!(inbox.items[0].reason, InboxReason::Rejected);
    assert!(
        e.desk_dossiers(w.users["dgs"], w.desks["dgs"], None, 10)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let notes = e.annotations(w.users["fin"], id).await.unwrap();
    assert_eq!(notes[0].body, "Montant erroné");
    // Only the emitter recycles.
    assert!(matches!(
        e.recycle(w.users["dgs"], id, None).await,
        Err(EngineError::Forbidden { .. })
    ));
    let d = e.recycle(w.users["fin"], id, None).await.unwrap();
    assert_eq!(d.state, DossierState::Draft);
    let d = e.submit(w.users["fin"], id, Some(d.version)).await.unwrap();
    assert_eq!((d.state, d.current_step), (DossierState::Pending, 0));
    e.visa(w.users["dgs"], id, input()).await.unwrap();
    // The act number is required to sign.
    let missing = e
        .sign(w.users["maire"], id, input(), signed(b"pdf"))
        .await
        .unwrap_err();
    assert!(
        matches!(missing, EngineError::Invalid { ref field, .. } if field == "metadata.numero_acte"),
        "{missing:?}"
    );
    let with_number = ActionInput {
        metadata: meta(&[("numero_acte", MetaValue::Text("2026-042".into()))]),
        ..input()
    };
    let d = e
        .sign(w.users["maire"], id, with_number, signed(b"pdf signed"))
        .await
        .unwrap();
    assert_eq!(d.state, DossierState::Finished);
    assert_eq!(
        d.metadata["numero_acte"],
        MetaValue::Text("2026-042".into())
    );
    let jobs = e.dossier_jobs(w.admin.tenant, id).await.unwrap();
    assert!(
        jobs.iter()
            .any(|j| j.kind == JobKind::Transmission && j.payload["channel"] == "actes")
    );
    assert_journal_intact(h).await;
}

async fn marches_notification(h: &Harness) {
    let e = &h.engine;
    let w = world(e, "732829320").await;
    // The signer is chosen at creation: submitting without one is refused.
    let d = e
        .create_dossier(
            w.users["marches"],
            w.new_dossier("marches-notification", "marches"),
        )
        .await
        .unwrap();
    let missing = e.submit(w.users["marches"], d.id, None).await.unwrap_err();
    assert!(
        matches!(missing, EngineError::Invalid { ref field, .. } if field == "chosen_desks.signataire"),
        "{missing:?}"
    );
    e.delete_draft(w.users["marches"], d.id).await.unwrap();
    assert!(matches!(
        e.dossier(w.users["marches"], d.id).await,
        Err(EngineError::NotFound { .. })
    ));
    let mut new = w.new_dossier("marches-notification", "marches");
    new.chosen_desks
        .insert("signataire".into(), w.desks["adjoint"]);
    let d = e.create_dossier(w.users["marches"], new).await.unwrap();
    let id = d.id;
    e.submit(w.users["marches"], id, None).await.unwrap();
    // Rejecting at the visa needs a reason code in the metadata.
    let r = e
        .reject(w.users["marches"], id, "incomplet", input())
        .await
        .unwrap_err();
    assert!(matches!(r, EngineError::Invalid { ref field, .. } if field == "metadata.motif"));
    e.visa(w.users["marches"], id, input()).await.unwrap();
    assert!(matches!(
        e.sign(w.users["maire"], id, input(), signed(b"s")).await,
        Err(EngineError::Forbidden { .. })
    ));
    let d = e
        .sign(w.users["adjoint"], id, input(), signed(b"s"))
        .await
        .unwrap();
    assert_eq!((d.state, d.current_step), (DossierState::Finished, 2));
    let recorder = Recorder::default();
    run_outbox(h, &recorder).await;
    assert!(recorder.all().contains(&"notify".to_owned()));
    assert_eq!(
        e.dossier(w.users["marches"], id).await.unwrap().state,
        DossierState::Transmitted
    );
    // An archive report at the notification step is out of order.
    let wrong = e
        .connector_report(w.admin.tenant, id, ConnectorEvent::Archived, "x")
        .await
        .unwrap_err();
    assert!(matches!(wrong, EngineError::Conflict { .. }));
    e.connector_report(w.admin.tenant, id, ConnectorEvent::Acknowledged, "AR-recu")
        .await
        .unwrap();
    run_outbox(h, &recorder).await;
    assert_eq!(
        e.dossier(w.users["marches"], id).await.unwrap().state,
        DossierState::Archived
    );
    assert_journal_intact(h).await;
}

async fn conges_parent_desk_and_undo(h: &Harness) {
    let e = &h.engine;
    let w = world(e, "732829320").await;
    // A desk without a parent cannot use an N+1 circuit.
    let d = e
        .create_dossier(w.users["orphan"], w.new_dossier("conges", "orphan"))
        .await
        .unwrap();
    let err = e.submit(w.users["orphan"], d.id, None).await.unwrap_err();
    assert!(
        matches!(err, EngineError::Invalid { ref field, .. } if field == "emitter_desk"),
        "{err:?}"
    );
    let id = w
        .submitted(e, "conges", "agent", "agent", Metadata::new())
        .await;
    let d = e.dossier(w.users["agent"], id).await.unwrap();
    assert_eq!(d.steps[0].desks, vec![w.desks["chef"]]);
    e.visa(w.users["chef"], id, input()).await.unwrap();
    // Only the last actor may take it back.
    assert!(matches!(
        e.undo(w.users["drh"], id).await,
        Err(EngineError::Forbidden { .. })
    ));
    let d = e.undo(w.users["chef"], id).await.unwrap();
    assert_eq!((d.state, d.current_step), (DossierState::Pending, 0));
    assert!(d.steps[0].done_by.is_empty());
    let listed = e
        .desk_dossiers(w.users["chef"], w.desks["chef"], None, 10)
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    e.visa(w.users["chef"], id, input()).await.unwrap();
    let d = e.visa(w.users["drh"], id, input()).await.unwrap();
    assert_eq!(d.state, DossierState::Finished);
    // The next step acted: the earlier visa is final.
    assert!(matches!(
        e.undo(w.users["chef"], id).await,
        Err(EngineError::Forbidden { .. } | EngineError::Conflict { .. })
    ));
    let d = e.undo(w.users["drh"], id).await.unwrap();
    assert_eq!((d.state, d.current_step), (DossierState::Pending, 1));
    assert_journal_intact(h).await;
}

async fn frais_deplacement_condition(h: &Harness) {
    let e = &h.engine;
    let w = world(e, "732829320").await;
    for (amount, expected_desks) in [
        (800.0, vec!["chef", "comptable"]),
        (2400.5, vec!["chef", "dgs", "comptable"]),
    ] {
        let id = w
            .submitted(
                e,
                "frais-deplacement",
                "agent",
                "agent",
                meta(&[("amount", MetaValue::Number(amount))]),
            )
            .await;
        let d = e.dossier(w.users["agent"], id).await.unwrap();
        let desks: Vec<_> = d.steps.iter().map(|s| s.desks[0]).collect();
        let expected: Vec<_> = expected_desks.iter().map(|n| w.desks[n]).collect();
        assert_eq!(desks, expected, "amount {amount}");
        for login in expected_desks.iter().map(|n| match *n {
            "comptable" => "compta",
            other => other,
        }) {
            e.visa(w.users[login], id, input()).await.unwrap();
        }
        assert_eq!(
            e.dossier(w.users["agent"], id).await.unwrap().state,
            DossierState::Finished
        );
    }
    // The amount is required to validate the first visa.
    let id = w
        .submitted(e, "frais-deplacement", "agent", "agent", Metadata::new())
        .await;
    let err = e.visa(w.users["chef"], id, input()).await.unwrap_err();
    assert!(matches!(err, EngineError::Invalid { ref field, .. } if field == "metadata.amount"));
    assert_journal_intact(h).await;
}

async fn visa_signature_delegation(h: &Harness) {
    let e = &h.engine;
    let w = world(e, "732829320").await;
    let start = h.clock.now();
    let id = w
        .submitted(e, "visa-signature", "finances", "fin", Metadata::new())
        .await;
    e.visa(w.users["fin"], id, input()).await.unwrap();
    // The mayor is away from day 1 to day 3, replaced by the deputy, for this circuit only.
    e.create_delegation(
        w.users["maire"],
        w.desks["maire"],
        w.desks["adjoint"],
        start + time::Duration::days(1),
        start + time::Duration::days(3),
        vec![w.circuits["visa-signature"]],
    )
    .await
    .unwrap();
    // A deputy may not create a delegation for a desk they do not hold.
    let refused = e
        .create_delegation(
            w.users["adjoint"],
            w.desks["maire"],
            w.desks["adjoint"],
            start,
            start + time::Duration::days(1),
            vec![],
        )
        .await
        .unwrap_err();
    assert!(matches!(refused, EngineError::Forbidden { .. }));
    let before = e
        .sign(w.users["adjoint"], id, input(), signed(b"s"))
        .await
        .unwrap_err();
    assert!(
        matches!(before, EngineError::Forbidden { ref reason } if reason.contains("pas active")),
        "{before:?}"
    );
    h.clock.advance(time::Duration::days(4));
    let after = e
        .sign(w.users["adjoint"], id, input(), signed(b"s"))
        .await
        .unwrap_err();
    assert!(
        matches!(after, EngineError::Forbidden { ref reason } if reason.contains("pas active"))
    );
    h.clock.set(start + time::Duration::days(2));
    // Another circuit is not covered.
    let other = w
        .submitted(e, "pes-bordereaux", "finances", "fin", Metadata::new())
        .await;
    e.visa(w.users["fin"], other, input()).await.unwrap();
    let uncovered = e
        .sign(w.users["adjoint"], other, input(), signed(b"s"))
        .await
        .unwrap_err();
    assert!(
        matches!(uncovered, EngineError::Forbidden { ref reason } if reason.contains("circuit")),
        "{uncovered:?}"
    );
    // The directory lists what the tenant has.
    assert_eq!(e.delegations(w.admin).await.unwrap().len(), 1);
    assert_eq!(e.circuits(w.admin).await.unwrap().len(), 9);
    assert!(
        e.tenant_users(w.admin.tenant)
            .await
            .unwrap()
            .iter()
            .any(|u| u.login == "adjoint")
    );
    assert!(
        e.desks(w.admin)
            .await
            .unwrap()
            .iter()
            .any(|d| d.name == "agent" && d.parent == Some(w.desks["chef"]))
    );
    // The deputy sees the mayor's list and signs for the mayor.
    let listed = e
        .desk_dossiers(w.users["adjoint"], w.desks["maire"], None, 10)
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 2);
    let d = e
        .sign(w.users["adjoint"], id, input(), signed(b"s"))
        .await
        .unwrap();
    assert_eq!(d.state, DossierState::Finished);
    let entry = e
        .dossier_journal(w.users["fin"], id)
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(entry.action, "sign");
    assert_eq!(entry.desk, Some(w.desks["adjoint"]));
    assert_eq!(entry.on_behalf_of, Some(w.desks["maire"]));
    assert_eq!(entry.user, Some(w.users["adjoint"].user));
    // Ended early by the mayor: the deputy can no longer act for the mayor.
    let delegation = e.delegations(w.admin).await.unwrap().remove(0);
    assert!(matches!(
        e.end_delegation(w.users["adjoint"], delegation.id).await,
        Err(EngineError::Forbidden { .. })
    ));
    e.end_delegation(w.users["maire"], delegation.id)
        .await
        .unwrap();
    let late = e
        .sign(w.users["adjoint"], other, input(), signed(b"s"))
        .await
        .unwrap_err();
    assert!(matches!(late, EngineError::Forbidden { .. }));
    assert!(matches!(
        e.end_delegation(w.users["maire"], delegation.id).await,
        Err(EngineError::Conflict { .. })
    ));
    assert_journal_intact(h).await;
}

async fn any_and_all_steps(h: &Harness) {
    let e = &h.engine;
    let w = world(e, "732829320").await;
    let any = w
        .submitted(e, "double-any", "finances", "fin", Metadata::new())
        .await;
    let d = e.visa(w.users["ub"], any, input()).await.unwrap();
    assert_eq!(d.current_step, 1, "one desk of an `any` step suffices");
    assert!(
        e.desk_dossiers(w.users["ua"], w.desks["a"], None, 10)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let all = w
        .submitted(e, "double-all", "finances", "fin", Metadata::new())
        .await;
    let d = e.visa(w.users["ub"], all, input()).await.unwrap();
    assert_eq!(d.current_step, 0, "an `all` step waits for every desk");
    let again = e.visa(w.users["ub"], all, input()).await.unwrap_err();
    assert!(matches!(again, EngineError::Conflict { .. }), "{again:?}");
    assert!(
        e.desk_dossiers(w.users["ub"], w.desks["b"], None, 10)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let d = e.visa(w.users["ua"], all, input()).await.unwrap();
    assert_eq!(d.current_step, 1);
    let d = e.visa(w.users["uc"], all, input()).await.unwrap();
    assert_eq!(d.state, DossierState::Finished);
    assert_journal_intact(h).await;
}

async fn deadlines(h: &Harness) {
    let e = &h.engine;
    let w = world(e, "732829320").await;
    let mut new = w.new_dossier("visa-signature", "finances");
    new.deadline = Some(h.clock.now() + time::Duration::days(2));
    let d = e.create_dossier(w.users["fin"], new).await.unwrap();
    e.submit(w.users["fin"], d.id, None).await.unwrap();
    assert!(!e.dossier(w.users["fin"], d.id).await.unwrap().late);
    h.clock.advance(time::Duration::days(3));
    assert!(e.dossier(w.users["fin"], d.id).await.unwrap().late);
    let listed = e
        .desk_dossiers(w.users["fin"], w.desks["finances"], None, 10)
        .await
        .unwrap();
    assert!(listed.items[0].late);
    e.visa(w.users["fin"], d.id, input()).await.unwrap();
    let d = e
        .sign(w.users["maire"], d.id, input(), signed(b"s"))
        .await
        .unwrap();
    assert!(!d.late, "a finished dossier is no longer late");
}

async fn transfer_opinion_annotations_bypass(h: &Harness) {
    let e = &h.engine;
    let w = world(e, "732829320").await;
    let id = w
        .submitted(e, "visa-signature", "finances", "fin", Metadata::new())
        .await;
    let opinion = e
        .ask_opinion(w.users["fin"], id, w.desks["dgs"], "Montant correct ?")
        .await
        .unwrap();
    let dgs_list = e
        .desk_dossiers(w.users["dgs"], w.desks["dgs"], None, 10)
        .await
        .unwrap();
    assert_eq!(dgs_list.items[0].reason, InboxReason::Opinion);
    e.answer_opinion(w.users["dgs"], id, opinion.id, "Oui")
        .await
        .unwrap();
    assert!(
        e.desk_dossiers(w.users["dgs"], w.desks["dgs"], None, 10)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    e.annotate(w.users["fin"], id, "note privée", Visibility::Private)
        .await
        .unwrap();
    e.annotate(w.users["fin"], id, "note publique", Visibility::Public)
        .await
        .unwrap();
    let seen_by_fin = e.annotations(w.users["fin"], id).await.unwrap();
    assert_eq!(seen_by_fin.len(), 3);
    let seen_by_mayor: Vec<_> = e
        .annotations(w.users["maire"], id)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.body)
        .collect();
    assert_eq!(seen_by_mayor, ["Oui", "note publique"]);
    // Somebody not involved sees nothing.
    assert!(matches!(
        e.dossier(w.users["drh"], id).await,
        Err(EngineError::Forbidden { .. })
    ));
    let d = e
        .transfer(w.users["fin"], id, w.desks["comptable"], None)
        .await
        .unwrap();
    assert_eq!(d.steps[0].desks, vec![w.desks["comptable"]]);
    assert!(matches!(
        e.visa(w.users["fin"], id, input()).await,
        Err(EngineError::Forbidden { .. })
    ));
    e.visa(w.users["compta"], id, input()).await.unwrap();
    assert!(matches!(
        e.bypass(w.users["fin"], id, "absent").await,
        Err(EngineError::Forbidden { .. })
    ));
    let d = e.bypass(w.admin, id, "maire injoignable").await.unwrap();
    assert_eq!(d.state, DossierState::Finished);
    assert!(d.steps[1].bypassed);
    assert_journal_intact(h).await;
}

async fn tenant_isolation(h: &Harness) {
    let e = &h.engine;
    let w = world(e, "732829320").await;
    let other = world(e, "552100554").await;
    let id = w
        .submitted(e, "visa-signature", "finances", "fin", Metadata::new())
        .await;
    let foreign = e.dossier(other.users["fin"], id).await.unwrap_err();
    let unknown = e
        .dossier(other.users["fin"], seing_engine::ids::DossierId::new())
        .await
        .unwrap_err();
    assert_eq!(foreign.to_string(), unknown.to_string());
    assert!(matches!(foreign, EngineError::NotFound { .. }));
    assert!(matches!(
        e.visa(other.users["fin"], id, input()).await,
        Err(EngineError::NotFound { .. })
    ));
    // A foreign desk is unknown too.
    let mut new = w.new_dossier("visa-signature", "finances");
    new.emitter_desk = other.desks["finances"];
    assert!(matches!(
        e.create_dossier(w.users["fin"], new).await,
        Err(EngineError::NotFound { .. })
    ));
    // A user of one tenant presented as another tenant's is refused.
    let forged = seing_engine::model::Actor {
        tenant: w.admin.tenant,
        user: other.users["fin"].user,
    };
    assert!(matches!(
        e.dossier(forged, id).await,
        Err(EngineError::Forbidden { .. })
    ));
    let dup = e
        .create_tenant(NewTenant {
            name: "x".into(),
            siren: "732829320".into(),
            departement: "35".into(),
            admin_login: "a".into(),
            admin_name: "a".into(),
        })
        .await
        .unwrap_err();
    assert!(matches!(dup, EngineError::Conflict { .. }));
    assert_journal_intact(h).await;
}

async fn pagination(h: &Harness) {
    let e = &h.engine;
    let w = world(e, "732829320").await;
    let mut ids = Vec::new();
    for _ in 0..23 {
        ids.push(
            w.submitted(e, "visa-signature", "finances", "fin", Metadata::new())
                .await,
        );
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = e
            .desk_dossiers(w.users["fin"], w.desks["finances"], cursor.as_deref(), 10)
            .await
            .unwrap();
        pages += 1;
        seen.extend(page.items.iter().map(|s| s.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ids, "every dossier once, oldest first");
    assert!(matches!(
        e.desk_dossiers(w.users["fin"], w.desks["finances"], Some("garbage"), 10)
            .await,
        Err(EngineError::Invalid { .. })
    ));
    assert!(matches!(
        e.desk_dossiers(w.users["maire"], w.desks["finances"], None, 10)
            .await,
        Err(EngineError::Forbidden { .. })
    ));
}

async fn outbox_retries_with_backoff(h: &Harness) {
    struct Flaky(Mutex<u32>);
    impl seing_engine::outbox::JobHandler for Flaky {
        async fn handle(&self, _job: &Job) -> Result<(), DeliveryError> {
            let mut n = self.0.lock().unwrap();
            *n += 1;
            if *n < 3 {
                Err(DeliveryError::transient("HTTP 503"))
            } else {
                Ok(())
            }
        }
    }
    let e = &h.engine;
    let w = world(e, "732829320").await;
    subscribe(h, w.admin, &[WebhookEvent::DossierSubmitted]).await;
    let id = w
        .submitted(e, "conges", "agent", "agent", Metadata::new())
        .await;
    let policy = RetryPolicy {
        base: time::Duration::seconds(10),
        ..RetryPolicy::default()
    };
    let flaky = Flaky(Mutex::new(0));
    let run = e.run_outbox_once(&flaky, &policy, 10).await.unwrap();
    assert_eq!(run.retried, 1);
    // Not due yet: nothing taken.
    assert_eq!(
        e.run_outbox_once(&flaky, &policy, 10)
            .await
            .unwrap()
            .retried,
        0
    );
    h.clock.advance(time::Duration::seconds(10));
    assert_eq!(
        e.run_outbox_once(&flaky, &policy, 10)
            .await
            .unwrap()
            .retried,
        1
    );
    h.clock.advance(time::Duration::seconds(15));
    assert_eq!(
        e.run_outbox_once(&flaky, &policy, 10)
            .await
            .unwrap()
            .retried,
        0,
        "second delay is 20 s"
    );
    h.clock.advance(time::Duration::seconds(5));
    assert_eq!(
        e.run_outbox_once(&flaky, &policy, 10).await.unwrap().done,
        1
    );
    let jobs = e.dossier_jobs(w.admin.tenant, id).await.unwrap();
    assert_eq!(jobs[0].status, JobStatus::Done);
    assert_eq!(jobs[0].attempts, 3);
    assert_eq!(policy.delay(1), time::Duration::seconds(10));
    assert_eq!(policy.delay(4), time::Duration::seconds(80));
    assert_eq!(policy.delay(40), time::Duration::hours(1));
}

async fn bad_input_changes_nothing(h: &Harness) {
    let e = &h.engine;
    let w = world(e, "732829320").await;
    let mut new = w.new_dossier("visa-signature", "finances");
    new.main = doc("vide.pdf", b"");
    assert!(matches!(
        e.create_dossier(w.users["fin"], new).await,
        Err(EngineError::Invalid { .. })
    ));
    assert!(
        e.desk_dossiers(w.users["fin"], w.desks["finances"], None, 10)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let id = w
        .submitted(e, "visa-signature", "finances", "fin", Metadata::new())
        .await;
    let d = e.dossier(w.users["fin"], id).await.unwrap();
    let stale = ActionInput {
        version: Some(d.version - 1),
        ..input()
    };
    assert!(matches!(
        e.visa(w.users["fin"], id, stale).await,
        Err(EngineError::Conflict { .. })
    ));
    assert_eq!(
        e.dossier(w.users["fin"], id).await.unwrap().version,
        d.version
    );
}

async fn seal_then_archive(h: &Harness) {
    let e = &h.engine;
    let w = world(e, "732829320").await;
    let id = w
        .submitted(e, "seal", "finances", "fin", Metadata::new())
        .await;
    let visa = e.visa(w.users["uc"], id, input()).await.unwrap_err();
    assert!(matches!(visa, EngineError::Conflict { .. }), "{visa:?}");
    let mut sealed = signed(b"sealed pdf");
    sealed.signatures.push(doc("cachet.p7s", b"cms"));
    let d = e.seal(w.users["uc"], id, input(), sealed).await.unwrap();
    assert_eq!((d.state, d.current_step), (DossierState::Finished, 1));
    let roles: Vec<DocumentRole> = e
        .documents(w.users["uc"], id)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.role)
        .collect();
    assert_eq!(
        roles,
        [
            DocumentRole::Main,
            DocumentRole::Annex,
            DocumentRole::Signed,
            DocumentRole::Signature
        ]
    );
    let recorder = Recorder::default();
    run_outbox(h, &recorder).await;
    assert_eq!(
        e.dossier(w.users["uc"], id).await.unwrap().state,
        DossierState::Archived
    );
    assert_journal_intact(h).await;
}

async fn outbox_worker_runs_until_shutdown(h: &Harness) {
    let e = &h.engine;
    let w = world(e, "732829320").await;
    subscribe(h, w.admin, &[WebhookEvent::DossierSubmitted]).await;
    let id = w
        .submitted(e, "conges", "agent", "agent", Metadata::new())
        .await;
    let recorder = Recorder::default();
    let dispatcher = Dispatcher {
        engine: e.clone(),
        transmitter: &recorder,
        notifier: &recorder,
        archiver: &recorder,
        webhooks: &recorder,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let policy = RetryPolicy::default();
    let worker = e.run_outbox_worker(
        &dispatcher,
        &policy,
        10,
        std::time::Duration::from_millis(20),
        async {
            let _ = stopped.await;
        },
    );
    let watcher = async {
        for _ in 0..500 {
            let jobs = e.dossier_jobs(w.admin.tenant, id).await.unwrap();
            if jobs.iter().all(|j| j.status == JobStatus::Done) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        stop.send(()).unwrap();
    };
    let (result, ()) = tokio::join!(worker, watcher);
    result.unwrap();
    assert_eq!(recorder.all(), ["webhook dossier.submitted"]);
}

async fn webhook_events_per_subscription(h: &Harness) {
    let e = &h.engine;
    let w = world(e, "732829320").await;
    let other = world(e, "552100554").await;
    let every = subscribe(h, w.admin, &[]).await;
    let signed_only = subscribe(h, w.admin, &[WebhookEvent::DossierSigned]).await;
    let deleted = subscribe(h, w.admin, &[]).await;
    subscribe(h, other.admin, &[]).await;
    // Only tenant administrators manage subscriptions; a foreign id is not found.
    assert!(matches!(
        e.webhooks(w.users["fin"]).await,
        Err(EngineError::Forbidden { .. })
    ));
    assert!(matches!(
        e.delete_webhook(other.admin, every).await,
        Err(EngineError::NotFound { .. })
    ));
    e.delete_webhook(w.admin, deleted).await.unwrap();
    assert_eq!(
        e.webhook_target(w.admin.tenant, deleted).await.unwrap(),
        None
    );
    assert_eq!(
        e.webhooks(w.admin)
            .await
            .unwrap()
            .iter()
            .map(|s| s.id)
            .collect::<Vec<_>>(),
        [every, signed_only]
    );
    let id = w
        .submitted(e, "visa-signature", "finances", "fin", Metadata::new())
        .await;
    e.visa(w.users["fin"], id, input()).await.unwrap();
    e.sign(w.users["maire"], id, input(), signed(b"%PDF signed"))
        .await
        .unwrap();
    let jobs = e.dossier_jobs(w.admin.tenant, id).await.unwrap();
    let deliveries: Vec<(String, String)> = jobs
        .iter()
        .filter(|j| j.kind == JobKind::Webhook)
        .map(|j| {
            let to = j.payload["subscription"].as_str().unwrap().to_owned();
            let event = j.payload["body"]["event"].as_str().unwrap().to_owned();
            (
                if to == every.to_string() {
                    "every"
                } else {
                    "signed"
                }
                .to_owned(),
                event,
            )
        })
        .collect();
    let mut expected: Vec<(String, String)> = [
        ("every", "dossier.created"),
        ("every", "dossier.submitted"),
        ("every", "step.completed"),
        ("every", "step.completed"),
        ("every", "dossier.signed"),
        ("signed", "dossier.signed"),
        ("every", "dossier.finished"),
    ]
    .iter()
    .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
    .collect();
    let mut sorted = deliveries.clone();
    sorted.sort();
    expected.sort();
    assert_eq!(sorted, expected, "{deliveries:?}");
    let signed_event = jobs
        .iter()
        .find(|j| j.payload["body"]["event"] == "dossier.signed")
        .unwrap();
    let body = &signed_event.payload["body"];
    assert_eq!(body["tenant"], w.admin.tenant.to_string());
    assert_eq!(body["dossier"]["id"], id.to_string());
    assert_eq!(body["dossier"]["state"], "finished");
    assert_eq!(body["step"]["index"], 1);
    assert_eq!(body["step"]["action"], "signature");
    assert_eq!(body["step"]["desk"], w.desks["maire"].to_string());
    assert_eq!(body["documents"][0]["role"], "signed");
    assert!(body["occurred_at"].as_str().unwrap().ends_with('Z'));
    // Nothing of this dossier went to the other tenant's subscription.
    assert!(jobs.iter().all(|j| j.tenant == w.admin.tenant));
}

/// The webhook events enqueued for a dossier, in order.
async fn webhook_events(
    h: &Harness,
    w: &common::World,
    id: seing_engine::ids::DossierId,
) -> Vec<serde_json::Value> {
    h.engine
        .dossier_jobs(w.admin.tenant, id)
        .await
        .unwrap()
        .into_iter()
        .filter(|j| j.kind == JobKind::Webhook)
        .map(|j| j.payload["body"].clone())
        .collect()
}

/// Checks that `id` is back at its emitter desk `desk` (held by `login`) for `origin` and
/// `reason`: state, `rejection`, the desk's list and bureau tab, the journal entry `action`,
/// and the two webhooks (`specific`, then `dossier.rejected`) of that change.
#[allow(clippy::too_many_arguments)]
async fn assert_sent_back(
    h: &Harness,
    w: &common::World,
    id: seing_engine::ids::DossierId,
    (login, desk): (&str, &str),
    step: usize,
    (origin, reason): (RejectionOrigin, &str),
    (action, specific): (&str, &str),
) {
    let e = &h.engine;
    let d = e.dossier(w.users[login], id).await.unwrap();
    assert_eq!((d.state, d.current_step), (DossierState::Rejected, step));
    let rejection = d.rejection.expect("a rejected dossier says why");
    assert_eq!(
        (rejection.origin, rejection.reason.as_str(), rejection.step),
        (origin, reason, step)
    );
    let inbox = e
        .desk_dossiers(w.users[login], w.desks[desk], None, 10)
        .await
        .unwrap();
    assert!(
        inbox
            .items
            .iter()
            .any(|i| i.id == id && i.reason == InboxReason::Rejected)
    );
    let bureau = e.bureau(w.users[login], w.desks[desk]).await.unwrap();
    assert_eq!(
        bureau.iter().find(|b| b.id == id).unwrap().tab,
        BureauTab::Rejected
    );
    let last = e
        .dossier_journal(w.users[login], id)
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(
        (last.action.as_str(), last.user, last.desk),
        (action, None, None)
    );
    let detail: serde_json::Value = serde_json::from_str(&last.detail).unwrap();
    assert_eq!(detail["reason"], reason);
    assert_eq!(detail["origin"], serde_json::json!(origin));
    let events = webhook_events(h, w, id).await;
    let tail: Vec<&str> = events[events.len() - 2..]
        .iter()
        .map(|b| b["event"].as_str().unwrap())
        .collect();
    assert_eq!(tail, [specific, "dossier.rejected"]);
    for body in &events[events.len() - 2..] {
        assert_eq!(body["reason"], reason);
        assert_eq!(body["origin"], serde_json::json!(origin));
        assert_eq!(body["step"]["index"], step);
        assert_eq!(body["dossier"]["state"], "rejected");
    }
    assert_journal_intact(h).await;
}

/// Refusals from outside (DGFiP, prefecture, archive) and an expired notification send the
/// dossier back to its emitter like a desk's rejection; a report out of place changes nothing;
/// the emitter recycles and resubmits, and the connector step runs again.
async fn refusals_and_expiry(h: &Harness) {
    let e = &h.engine;
    let w = world(e, "732829320").await;
    subscribe(h, w.admin, &[]).await;
    let recorder = Recorder::default();

    // Hélios: the DGFiP refuses the PES.
    let pes = w
        .submitted(e, "pes-bordereaux", "finances", "fin", Metadata::new())
        .await;
    e.visa(w.users["fin"], pes, input()).await.unwrap();
    e.sign(w.users["maire"], pes, input(), signed(b"<PES signed/>"))
        .await
        .unwrap();
    // The archive has no say on a transmission step, even before the file is sent.
    let early = ConnectorEvent::Refused {
        by: Refuser::Archive,
        reason: "x".into(),
    };
    assert!(matches!(
        e.connector_report(w.admin.tenant, pes, early, "TR-1").await,
        Err(EngineError::Conflict { .. })
    ));
    run_outbox(h, &recorder).await;
    let before = e.dossier(w.users["fin"], pes).await.unwrap();
    assert_eq!(before.state, DossierState::Transmitted);
    // The prefecture has no say on a PES, nor the archive on a transmission step.
    for by in [Refuser::Prefecture, Refuser::Archive] {
        let wrong = ConnectorEvent::Refused {
            by,
            reason: "x".into(),
        };
        assert!(matches!(
            e.connector_report(w.admin.tenant, pes, wrong, "TR-1").await,
            Err(EngineError::Conflict { .. })
        ));
    }
    assert_eq!(
        e.dossier(w.users["fin"], pes).await.unwrap().version,
        before.version
    );
    let reason = "Bordereau 3 : montant total erroné ; Pièce 12 : imputation inconnue";
    let refused = ConnectorEvent::Refused {
        by: Refuser::Dgfip,
        reason: reason.into(),
    };
    e.connector_report(w.admin.tenant, pes, refused.clone(), "helios:42")
        .await
        .unwrap();
    assert_sent_back(
        h,
        &w,
        pes,
        ("fin", "finances"),
        2,
        (RejectionOrigin::Dgfip, reason),
        ("refused", "dossier.refused"),
    )
    .await;
    // The same return read again is a conflict, and the dossier does not move.
    assert!(matches!(
        e.connector_report(w.admin.tenant, pes, refused, "helios:42")
            .await,
        Err(EngineError::Conflict { .. })
    ));
    assert!(matches!(
        e.connector_report(w.admin.tenant, pes, ConnectorEvent::Acknowledged, "late")
            .await,
        Err(EngineError::Conflict { .. })
    ));
    // The emitter corrects and resubmits: the whole circuit runs again, then the transmission.
    let d = e.recycle(w.users["fin"], pes, None).await.unwrap();
    assert_eq!((d.state, d.rejection), (DossierState::Draft, None));
    e.submit(w.users["fin"], pes, None).await.unwrap();
    e.visa(w.users["fin"], pes, input()).await.unwrap();
    e.sign(w.users["maire"], pes, input(), signed(b"<PES corrected/>"))
        .await
        .unwrap();
    let transmissions = e
        .dossier_jobs(w.admin.tenant, pes)
        .await
        .unwrap()
        .into_iter()
        .filter(|j| j.kind == JobKind::Transmission)
        .count();
    assert_eq!(transmissions, 2);
    run_outbox(h, &recorder).await;
    assert_eq!(
        e.dossier(w.users["fin"], pes).await.unwrap().state,
        DossierState::Transmitted
    );

    // @ctes: the prefecture sends an AnomalieActe.
    let acte = w
        .submitted(e, "actes-deliberation", "finances", "fin", Metadata::new())
        .await;
    e.visa(w.users["dgs"], acte, input()).await.unwrap();
    let with_number = ActionInput {
        metadata: common::meta(&[("numero_acte", MetaValue::Text("2026_043".into()))]),
        ..input()
    };
    e.sign(w.users["maire"], acte, with_number, signed(b"pdf signed"))
        .await
        .unwrap();
    run_outbox(h, &recorder).await;
    let step = e.dossier(w.users["fin"], acte).await.unwrap().current_step;
    let reason = "Acte non transmissible : la classification 9.1 est inconnue";
    let anomaly = ConnectorEvent::Refused {
        by: Refuser::Prefecture,
        reason: reason.into(),
    };
    e.connector_report(w.admin.tenant, acte, anomaly, "s2low:7")
        .await
        .unwrap();
    assert_sent_back(
        h,
        &w,
        acte,
        ("fin", "finances"),
        step,
        (RejectionOrigin::Prefecture, reason),
        ("refused", "dossier.refused"),
    )
    .await;

    // Notification: the link expires unopened.
    let mut new = w.new_dossier("marches-notification", "marches");
    new.chosen_desks
        .insert("signataire".into(), w.desks["adjoint"]);
    let notif = e.create_dossier(w.users["marches"], new).await.unwrap().id;
    e.submit(w.users["marches"], notif, None).await.unwrap();
    e.visa(w.users["marches"], notif, input()).await.unwrap();
    e.sign(w.users["adjoint"], notif, input(), signed(b"s"))
        .await
        .unwrap();
    // Not sent yet: an expiry is out of place.
    assert!(matches!(
        e.connector_report(w.admin.tenant, notif, ConnectorEvent::Expired, "mail")
            .await,
        Err(EngineError::Conflict { .. })
    ));
    run_outbox(h, &recorder).await;
    e.connector_report(
        w.admin.tenant,
        notif,
        ConnectorEvent::Expired,
        "mail:societe@example.fr",
    )
    .await
    .unwrap();
    assert_sent_back(
        h,
        &w,
        notif,
        ("marches", "marches"),
        2,
        (RejectionOrigin::Recipient, "lien expiré sans ouverture"),
        ("expired", "dossier.expired"),
    )
    .await;

    // Archive: the archive service rejects the transfer after it was deposited.
    let sealed = w
        .submitted(e, "seal", "finances", "fin", Metadata::new())
        .await;
    e.seal(w.users["uc"], sealed, input(), signed(b"sealed pdf"))
        .await
        .unwrap();
    run_outbox(h, &recorder).await;
    assert_eq!(
        e.dossier(w.users["fin"], sealed).await.unwrap().state,
        DossierState::Archived
    );
    let reason = "transfert rejeté (code 301) : format de fichier non accepté";
    let rejected = ConnectorEvent::Refused {
        by: Refuser::Archive,
        reason: reason.into(),
    };
    e.connector_report(w.admin.tenant, sealed, rejected, "seing-x-1")
        .await
        .unwrap();
    assert_sent_back(
        h,
        &w,
        sealed,
        ("fin", "finances"),
        1,
        (RejectionOrigin::Archive, reason),
        ("refused", "dossier.refused"),
    )
    .await;
}

both_backends! {
    refusals_and_expiry_back_to_emitter => super::refusals_and_expiry;
    webhook_events_per_subscription => super::webhook_events_per_subscription;
    outbox_worker_runs_until_shutdown => super::outbox_worker_runs_until_shutdown;
    seal_then_archive => super::seal_then_archive;
    pes_bordereaux_end_to_end => super::pes_bordereaux;
    actes_deliberation_reject_and_recycle => super::actes_deliberation_reject_and_recycle;
    marches_notification_end_to_end => super::marches_notification;
    conges_parent_desk_and_undo => super::conges_parent_desk_and_undo;
    frais_deplacement_amount_condition => super::frais_deplacement_condition;
    visa_signature_delegation_dates_and_circuits => super::visa_signature_delegation;
    any_and_all_steps => super::any_and_all_steps;
    deadlines_and_late_flag => super::deadlines;
    transfer_opinion_annotations_bypass => super::transfer_opinion_annotations_bypass;
    tenant_isolation => super::tenant_isolation;
    cursor_pagination => super::pagination;
    outbox_retries_with_backoff => super::outbox_retries_with_backoff;
    bad_input_changes_nothing => super::bad_input_changes_nothing;
}

#[tokio::test]
async fn open_migrates_once_and_loads_the_templates() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("seing.db").display());
    let docs = dir.path().join("documents");
    let engine = seing_engine::Engine::open(&url, &docs, Some(&common::workflows_dir()))
        .await
        .unwrap();
    assert_eq!(engine.templates().len(), 6);
    let (tenant, _) = engine
        .create_tenant(NewTenant {
            name: "Commune".into(),
            siren: "213502388".into(),
            departement: "2A".into(),
            admin_login: "admin".into(),
            admin_name: "Admin".into(),
        })
        .await
        .unwrap();
    engine.database().close().await;
    // Opening again keeps the data and applies no migration twice.
    // Without a templates folder, the templates compiled into the binary are used.
    let again = seing_engine::Engine::open(&url, &docs, None).await.unwrap();
    assert_eq!(again.templates().len(), 6);
    assert_eq!(again.tenant(tenant.id).await.unwrap().departement, "2A");
    let bad = seing_engine::Engine::open("mysql://x", &docs, Some(&common::workflows_dir()))
        .await
        .unwrap_err();
    assert!(
        bad.to_string().contains("unsupported database URL"),
        "{bad}"
    );
}
