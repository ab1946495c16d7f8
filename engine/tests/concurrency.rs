//! Two people acting on the same step at once: exactly one wins, the other gets a conflict, and
//! no update is lost — with real concurrent tasks, on SQLite and on PostgreSQL.

mod common;

use std::sync::Arc;

use common::{Harness, world};
use seing_engine::Engine;
use seing_engine::EngineError;
use seing_engine::ids::DossierId;
use seing_engine::journal;
use seing_engine::metadata::Metadata;
use seing_engine::model::{ActionInput, Actor};
use tokio::sync::Barrier;

/// Starts two visas at the same instant and returns their results.
async fn race(
    engine: &Engine,
    id: DossierId,
    a: (Actor, ActionInput),
    b: (Actor, ActionInput),
) -> Vec<Result<i64, EngineError>> {
    let barrier = Arc::new(Barrier::new(2));
    let mut handles = Vec::new();
    for (actor, input) in [a, b] {
        let engine = engine.clone();
        let barrier = barrier.clone();
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            engine.visa(actor, id, input).await.map(|d| d.version)
        }));
    }
    let mut results = Vec::new();
    for handle in handles {
        results.push(handle.await.unwrap());
    }
    results
}

fn one_winner(results: &[Result<i64, EngineError>]) {
    let wins = results.iter().filter(|r| r.is_ok()).count();
    let conflicts = results
        .iter()
        .filter(|r| matches!(r, Err(EngineError::Conflict { .. })))
        .count();
    assert_eq!((wins, conflicts), (1, 1), "{results:?}");
}

async fn same_desk_two_holders(h: &Harness) {
    let e = &h.engine;
    let w = world(e, "732829320").await;
    for _ in 0..8 {
        let id = w
            .submitted(e, "visa-signature", "finances", "fin", Metadata::new())
            .await;
        let before = e.dossier(w.users["fin"], id).await.unwrap();
        let results = race(
            e,
            id,
            (w.users["fin"], ActionInput::default()),
            (w.users["fin2"], ActionInput::default()),
        )
        .await;
        one_winner(&results);
        let after = e.dossier(w.users["fin"], id).await.unwrap();
        assert_eq!(after.version, before.version + 1, "exactly one update");
        assert_eq!(after.steps[0].done_by, vec![w.desks["finances"]]);
        let visas = e
            .dossier_journal(w.users["fin"], id)
            .await
            .unwrap()
            .into_iter()
            .filter(|j| j.action == "visa")
            .count();
        assert_eq!(visas, 1);
    }
    assert!(
        journal::verify(e.database(), None)
            .await
            .unwrap()
            .iter()
            .all(|r| r.is_intact())
    );
}

async fn any_step_two_desks_same_version(h: &Harness) {
    let e = &h.engine;
    let w = world(e, "732829320").await;
    for _ in 0..8 {
        let id = w
            .submitted(e, "double-any", "finances", "fin", Metadata::new())
            .await;
        let seen = e.dossier(w.users["ua"], id).await.unwrap().version;
        let input = || ActionInput {
            version: Some(seen),
            ..ActionInput::default()
        };
        let results = race(e, id, (w.users["ua"], input()), (w.users["ub"], input())).await;
        one_winner(&results);
        let after = e.dossier(w.users["ua"], id).await.unwrap();
        assert_eq!(after.version, seen + 1);
        assert_eq!(after.current_step, 1);
        assert_eq!(after.steps[0].done_by.len(), 1);
    }
}

async fn parallel_actions_keep_the_journal_chained(h: &Harness) {
    let e = &h.engine;
    let w = world(e, "732829320").await;
    let mut ids = Vec::new();
    for _ in 0..12 {
        ids.push(
            w.submitted(e, "visa-signature", "finances", "fin", Metadata::new())
                .await,
        );
    }
    let mut handles = Vec::new();
    for (i, id) in ids.iter().copied().enumerate() {
        let engine = e.clone();
        let actor = if i % 2 == 0 {
            w.users["fin"]
        } else {
            w.users["fin2"]
        };
        handles.push(tokio::spawn(async move {
            engine.visa(actor, id, ActionInput::default()).await
        }));
    }
    for handle in handles {
        handle.await.unwrap().unwrap();
    }
    let reports = journal::verify(e.database(), Some(w.admin.tenant))
        .await
        .unwrap();
    assert!(reports[0].is_intact(), "{reports:?}");
}

async fn workers_never_take_the_same_job(h: &Harness) {
    let e = &h.engine;
    let w = world(e, "732829320").await;
    // One webhook job per submission.
    e.create_webhook(
        w.admin,
        seing_engine::webhooks::NewWebhook {
            url: "https://erp.example/hooks".into(),
            events: vec![seing_engine::webhooks::WebhookEvent::DossierSubmitted],
            secret: "un-secret-assez-long".into(),
            active: true,
        },
    )
    .await
    .unwrap();
    for _ in 0..10 {
        w.submitted(e, "conges", "agent", "agent", Metadata::new())
            .await;
    }
    let policy = seing_engine::outbox::RetryPolicy::default();
    let barrier = Arc::new(Barrier::new(3));
    let mut handles = Vec::new();
    for _ in 0..3 {
        let engine = e.clone();
        let barrier = barrier.clone();
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            engine.take_jobs(4, &policy).await.unwrap()
        }));
    }
    let mut taken = Vec::new();
    for handle in handles {
        taken.extend(handle.await.unwrap().into_iter().map(|j| j.id));
    }
    assert_eq!(taken.len(), 10, "every due job taken once: {taken:?}");
    taken.sort();
    taken.dedup();
    assert_eq!(taken.len(), 10, "no job taken twice");
    assert!(
        e.take_jobs(10, &policy).await.unwrap().is_empty(),
        "taken jobs are leased"
    );
}

both_backends! {
    same_desk_two_holders_one_wins => super::same_desk_two_holders;
    any_step_two_desks_same_version_one_wins => super::any_step_two_desks_same_version;
    parallel_actions_keep_the_journal_chained => super::parallel_actions_keep_the_journal_chained;
    workers_never_take_the_same_job => super::workers_never_take_the_same_job;
}
