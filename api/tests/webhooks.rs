//! Webhooks end to end, on SQLite and on PostgreSQL: subscriptions made through the API, a
//! dossier driven through the API, the service's outbox worker delivering to a local HTTP
//! receiver that checks each HMAC signature and timestamp; a receiver answering 500 gets the
//! event again and then never more; a deleted subscription gets nothing. The service and the API
//! calls are `common/service.rs`.

// Each test binary uses a part of the shared helpers.
#[allow(dead_code)]
#[path = "common/database.rs"]
mod database;
#[allow(dead_code)]
#[path = "common/multipart.rs"]
mod multipart;
#[allow(dead_code)]
#[path = "common/service.rs"]
mod service;
#[allow(dead_code)]
#[path = "common/signing_keys.rs"]
mod signing_keys;
#[path = "common/tenant.rs"]
mod tenant;
#[allow(dead_code)]
#[path = "common/webhook_receiver.rs"]
mod webhook_receiver;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use database::Kind;
use seing_engine::ids::{CircuitId, DossierId};
use seing_engine::model::{ActionInput, NewDocument, SignedOutput};
use seing_engine::outbox::JobStatus;
use serde_json::json;
use service::Service;
use webhook_receiver::Worker;

const SECRET: &str = "secret-du-recepteur-erp";

/// Creates a dossier on `circuit` through the API, as the finance desk's software (sent into its
/// circuit at once).
async fn submitted(service: &Service, circuit: CircuitId, title: &str) -> DossierId {
    let fields = json!({"title": title, "circuit": circuit, "emitter_desk": service.desks["Finances"], "metadata": {}});
    let pdf = seing_api::demo::demo_pdf(title);
    let id = service.create(fields, ("d.pdf", &pdf)).await;
    id.parse().unwrap()
}

/// Waits until no webhook job of `dossiers` is left to deliver.
async fn settled(service: &Service, dossiers: &[DossierId]) {
    for _ in 0..600 {
        let mut busy = false;
        for id in dossiers {
            let jobs = service
                .engine
                .dossier_jobs(service.admin.tenant, *id)
                .await
                .unwrap();
            busy |= jobs
                .iter()
                .any(|j| matches!(j.status, JobStatus::Pending | JobStatus::Running));
        }
        if !busy {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("webhook jobs still pending after 30 s");
}

async fn webhooks_are_signed_retried_and_dropped_when_deleted(kind: Kind) {
    // Finances → visa, Maire → signature; the finance desk's software drives the dossiers.
    let Some(service) =
        Service::start(kind, &[("Finances", "fin"), ("Maire", "maire")], "fin").await
    else {
        return;
    };
    let circuit = service
        .circuit(
            "visa-signature",
            &[("viseur", "Finances"), ("signataire", "Maire")],
        )
        .await;
    let (receiver, base) = (&service.receiver, &service.receiver_url);
    let (admin, software) = (&service.admin_token, &service.software);
    // Subscriptions through the API: tenant administrators only, unknown events refused.
    let (status, _) = service
        .json(
            Method::POST,
            "/api/v1/webhooks",
            software,
            json!({"url": format!("{base}/x")}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, problem) = service
        .json(
            Method::POST,
            "/api/v1/webhooks",
            admin,
            json!({"url": format!("{base}/x"), "events": ["dossier.eaten"]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("dossier.eaten")
    );
    let (status, every) = service
        .json(
            Method::POST,
            "/api/v1/webhooks",
            admin,
            json!({"url": format!("{base}/every"), "secret": SECRET}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{every}");
    assert_eq!(every["secret"], SECRET);
    let (status, flaky) = service
        .json(
            Method::POST,
            "/api/v1/webhooks",
            admin,
            json!({"url": format!("{base}/flaky"), "events": ["dossier.created"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{flaky}");
    let flaky_secret = flaky["secret"].as_str().unwrap().to_owned();
    assert!(flaky_secret.len() >= 40, "{flaky_secret}");
    assert_eq!(flaky["events"], json!(["dossier.created"]));
    let (_, deleted) = service
        .json(
            Method::POST,
            "/api/v1/webhooks",
            admin,
            json!({"url": format!("{base}/deleted")}),
        )
        .await;
    let (status, listed) = service.empty(Method::GET, "/api/v1/webhooks", admin).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed.as_array().unwrap().len(), 3);
    assert!(listed.to_string().contains("/flaky"));
    assert!(
        !listed.to_string().contains(SECRET),
        "secrets are never listed"
    );

    // A dossier signed, one rejected; their events are written with each change.
    let signed = submitted(&service, circuit, "Budget primitif").await;
    let (status, body) = service
        .json(
            Method::POST,
            &format!("/api/v1/dossiers/{signed}/visa"),
            software,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    service
        .engine
        .sign(
            service.actors["maire"],
            signed,
            ActionInput::default(),
            SignedOutput {
                documents: vec![NewDocument {
                    name: "budget-signe.pdf".into(),
                    media_type: "application/pdf".into(),
                    bytes: seing_api::demo::demo_pdf("signé"),
                }],
                signatures: Vec::new(),
            },
        )
        .await
        .unwrap();
    let rejected = submitted(&service, circuit, "Subvention").await;
    let (status, body) = service
        .json(
            Method::POST,
            &format!("/api/v1/dossiers/{rejected}/reject"),
            software,
            json!({"reason": "montant à revoir"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Deleted before the worker runs: its queued deliveries are dropped.
    let deleted_id = deleted["id"].as_str().unwrap();
    let (status, _) = service
        .empty(
            Method::DELETE,
            &format!("/api/v1/webhooks/{deleted_id}"),
            admin,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let worker = Worker::start(&service.engine);
    settled(&service, &[signed, rejected]).await;

    let every = receiver.at("/every");
    for delivery in &every {
        delivery.verify(SECRET).unwrap();
        let body = delivery.json();
        assert_eq!(body["event"], delivery.event);
        assert_eq!(body["id"], delivery.delivery);
        assert_eq!(body["tenant"], service.admin.tenant.to_string());
    }
    let events_of = |id: DossierId| -> Vec<String> {
        every
            .iter()
            .filter(|d| d.json()["dossier"]["id"] == id.to_string())
            .map(|d| d.event.clone())
            .collect()
    };
    assert_eq!(
        events_of(signed),
        [
            "dossier.created",
            "dossier.submitted",
            "step.completed",
            "step.completed",
            "dossier.signed",
            "dossier.finished"
        ]
    );
    assert_eq!(
        events_of(rejected),
        ["dossier.created", "dossier.submitted", "dossier.rejected"]
    );
    let rejection = every
        .iter()
        .find(|d| d.event == "dossier.rejected")
        .unwrap()
        .json();
    assert_eq!(rejection["reason"], "montant à revoir");
    assert_eq!(rejection["dossier"]["state"], "rejected");
    let signature = every
        .iter()
        .find(|d| d.event == "dossier.signed")
        .unwrap()
        .json();
    assert_eq!(signature["step"]["action"], "signature");
    assert_eq!(signature["documents"][0]["name"], "budget-signe.pdf");
    // Every delivery id is unique: nothing was delivered twice to the healthy receiver.
    let mut ids: Vec<&str> = every.iter().map(|d| d.delivery.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), every.len());

    // The flaky receiver got each dossier.created twice (500, then 204), same delivery id,
    // signed with its own secret; then nothing more.
    receiver.wait_for("/flaky", "dossier.created", 3).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let flaky = receiver.at("/flaky");
    assert_eq!(flaky.len(), 3, "{flaky:?}");
    let first = &flaky[0];
    assert!(flaky.iter().all(|d| d.event == "dossier.created"));
    assert_eq!(
        flaky
            .iter()
            .filter(|d| d.delivery == first.delivery)
            .count(),
        2,
        "the failed delivery came again with the same id"
    );
    for delivery in &flaky {
        delivery.verify(&flaky_secret).unwrap();
        assert!(delivery.verify(SECRET).is_err());
    }
    assert!(receiver.at("/deleted").is_empty());
    let mut jobs = Vec::new();
    for id in [signed, rejected] {
        jobs.extend(
            service
                .engine
                .dossier_jobs(service.admin.tenant, id)
                .await
                .unwrap(),
        );
    }
    let dropped: Vec<_> = jobs
        .iter()
        .filter(|j| j.payload["subscription"] == deleted["id"])
        .collect();
    assert!(!dropped.is_empty());
    for job in dropped {
        assert_eq!(job.status, JobStatus::Failed);
        assert!(
            job.last_error.as_deref().unwrap().contains("supprimé"),
            "{job:?}"
        );
    }
    let retried = jobs
        .iter()
        .find(|j| j.id.to_string() == first.delivery)
        .unwrap();
    assert_eq!((retried.status, retried.attempts), (JobStatus::Done, 2));

    worker.stop().await;
    service.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_webhooks_are_signed_retried_and_dropped_when_deleted() {
    webhooks_are_signed_retried_and_dropped_when_deleted(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_webhooks_are_signed_retried_and_dropped_when_deleted() {
    webhooks_are_signed_retried_and_dropped_when_deleted(Kind::Postgres).await;
}
