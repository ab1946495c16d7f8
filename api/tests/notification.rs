//! Notification of a procurement award (`marches-notification`) through the REST API and the
//! service's outbox worker, on SQLite and PostgreSQL, against a real SMTP server (Python
//! `aiosmtpd`, started by the test) and the test TSA: software creates the dossiers, the
//! procurement desk visas them and the mayor signs them through the two-phase API; the worker
//! mails each recipient a unique link. Its first opening returns the signed document and records
//! an RFC 3161 timestamped receipt in the journal (`acknowledged`), then the worker archives the
//! dossier (`archived`), with a webhook for each transition, in order, each HMAC checked; later
//! openings change nothing; unknown links are not found; a link past its deadline is refused and
//! reported as expired: the dossier goes back to its emitter, and once resubmitted a new mail
//! carries a new link. The service and the API calls are `common/service.rs`.

// Each test binary uses a part of the shared helpers.
#[allow(dead_code)]
#[path = "common/database.rs"]
mod database;
#[path = "common/multipart.rs"]
mod multipart;
#[allow(dead_code)]
#[path = "common/service.rs"]
mod service;
#[path = "common/signing_keys.rs"]
mod signing_keys;
#[path = "../../connectors/tests/common/smtp.rs"]
mod smtp;
#[path = "common/tenant.rs"]
mod tenant;
#[allow(dead_code)]
#[path = "common/webhook_receiver.rs"]
mod webhook_receiver;

use axum::http::{Method, StatusCode};
use database::Kind;
use serde_json::{Value, json};
use service::{EVERY_TRANSITION, Service};
use smtp::{Smtp, notification_link};
use webhook_receiver::{Worker, eventually};

const RECIPIENT: &str = "offres@entreprise-dupont.fr";

/// Waits (30 s at most) until the SMTP server holds `count` messages; them (no more).
async fn mails(smtp: &Smtp, count: usize) -> Vec<String> {
    let messages = eventually(async || {
        let messages = smtp.messages();
        if messages.len() >= count {
            Ok(messages)
        } else {
            Err(format!("{} mails of {count}", messages.len()))
        }
    })
    .await;
    assert_eq!(messages.len(), count, "{messages:?}");
    messages
}

/// The journal entry of `action` about dossier `id` (the last one).
async fn entry(service: &Service, id: &str, action: &str) -> Value {
    service
        .journal(id)
        .await
        .into_iter()
        .rfind(|e| e["action"] == action)
        .unwrap_or_else(|| panic!("no {action} in the journal of {id}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn award_is_notified_and_its_opening_is_a_timestamped_receipt_on_sqlite() {
    award_is_notified(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn award_is_notified_and_its_opening_is_a_timestamped_receipt_on_postgres() {
    award_is_notified(Kind::Postgres).await;
}

async fn award_is_notified(kind: Kind) {
    let Some(service) = Service::start(
        kind,
        &[
            ("marches", "marches"),
            ("maire", "maire"),
            ("secretariat", "logiciel"),
        ],
        "logiciel",
    )
    .await
    else {
        return;
    };
    service.subscribe().await;
    let Some(smtp) = Smtp::start(&service.root, &[]) else {
        service.close().await;
        return;
    };
    let circuit = service
        .circuit("marches-notification", &[("marches", "marches")])
        .await;
    service
        .connectors(json!({
            "notification": {"smtp_host": "127.0.0.1", "smtp_port": smtp.port,
                "from": "Commune de Démo <marches@mairie-demo.fr>",
                "public_url": "https://parapheur.mairie-demo.fr", "link_days": 15,
                "tsa_url": service.tsa.url()},
            "archive": {"drop_folder": {"outbox": service.root.join("sae/sortie"),
                                        "inbox": service.root.join("sae/entree")},
                        "archival_agency": "AD35", "transferring_agency": "MAIRIE"}
        }))
        .await;
    let worker = Worker::start(&service.engine);

    let mut ids = Vec::new();
    let mut pdfs = Vec::new();
    for title in ["Marché 2026-014 voirie", "Marché 2026-015 éclairage"] {
        let pdf = seing_api::demo::demo_pdf(title);
        let id = service
            .create(
                json!({
                    "title": title,
                    "circuit": circuit,
                    "emitter_desk": service.desks["secretariat"],
                    "metadata": {"destinataire_email": RECIPIENT},
                    "chosen_desks": {"signataire": service.desks["maire"]},
                }),
                ("notification-attribution.pdf", &pdf),
            )
            .await;
        service.visa(&id, "marches", json!({})).await;
        service.sign(&id, "maire").await;
        ids.push(id);
        pdfs.push(pdf);
    }
    for id in &ids {
        service.wait_state(id, "transmitted").await;
    }
    let messages = mails(&smtp, 2).await;
    let first = messages
        .iter()
        .find(|m| m.contains("2026-014"))
        .expect("the first award's mail");
    assert!(first.contains(RECIPIENT), "{first}");
    let links: Vec<String> = messages.iter().map(|m| notification_link(m)).collect();
    assert_ne!(links[0], links[1]);
    let first_link = notification_link(first);

    assert_eq!(
        service
            .open("/api/v1/notifications/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    // The recipient gets the PAdES-signed award.
    let (status, body) = service.open(&first_link).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.starts_with(&pdfs[0]) && body.len() > pdfs[0].len());
    // Acknowledged, then archived by the worker at once.
    let state = service.state(&ids[0]).await;
    assert!(
        ["acknowledged", "archived"].contains(&state.as_str()),
        "{state}"
    );
    let receipt = entry(&service, &ids[0], "acknowledged").await;
    let detail = receipt["detail"].as_str().unwrap();
    assert!(detail.contains(RECIPIENT), "{detail}");
    assert!(detail.contains("horodaté"), "{detail}");
    let token_sha = detail.split("jeton ").nth(1).unwrap().get(..64).unwrap();
    let token = service
        .engine
        .documents_store()
        .get(token_sha)
        .await
        .unwrap();
    let parsed = seing_signer::tsp::parse_token(&token).unwrap();
    assert!(parsed.tsa_certificate.is_some());
    let age = time::OffsetDateTime::now_utc() - parsed.gen_time;
    assert!(age < time::Duration::minutes(5), "{age}");

    // A second opening serves the document again and records nothing more.
    assert_eq!(service.open(&first_link).await.0, StatusCode::OK);
    let acknowledged = service
        .journal(&ids[0])
        .await
        .iter()
        .filter(|e| e["action"] == "acknowledged")
        .count();
    assert_eq!(acknowledged, 1);
    service.wait_state(&ids[0], "archived").await;
    assert_eq!(
        service.wait_webhooks(&ids[0], EVERY_TRANSITION.len()).await,
        EVERY_TRANSITION
    );

    // The second link passes its deadline unopened: refused, and reported as expired by the
    // worker; the dossier goes back to its emitter saying so.
    let pool = service.engine.database().pool();
    let detail: String =
        sqlx::query_scalar("SELECT detail FROM connector_transmissions WHERE dossier_id = $1")
            .bind(ids[1].clone())
            .fetch_one(pool)
            .await
            .unwrap();
    let mut detail: Value = serde_json::from_str(&detail).unwrap();
    detail["expires_at"] = json!("2020-01-01T00:00:00Z");
    sqlx::query("UPDATE connector_transmissions SET detail = $1 WHERE dossier_id = $2")
        .bind(detail.to_string())
        .bind(ids[1].clone())
        .execute(pool)
        .await
        .unwrap();
    let second_link = links.iter().find(|l| **l != first_link).unwrap().clone();
    assert_eq!(service.open(&second_link).await.0, StatusCode::FORBIDDEN);
    service.wait_state(&ids[1], "rejected").await;
    assert_eq!(service.open(&second_link).await.0, StatusCode::FORBIDDEN);
    let back = service.dossier(&ids[1]).await;
    assert_eq!(
        (&back["rejection"]["reason"], &back["rejection"]["origin"]),
        (&json!("lien expiré sans ouverture"), &json!("recipient")),
        "{back}"
    );
    let expired = service.journal(&ids[1]).await.pop().unwrap();
    assert_eq!(expired["action"], "expired", "{expired}");
    assert!(
        expired["detail"].as_str().unwrap().contains(RECIPIENT),
        "{expired}"
    );
    let events = service.wait_webhooks(&ids[1], 9).await;
    assert_eq!(
        events[6..],
        ["dossier.transmitted", "dossier.expired", "dossier.rejected"],
        "{events:?}"
    );

    // The emitter resubmits it: once signed again, a new mail goes out with a new link.
    let (status, body) = service
        .json(
            Method::POST,
            &format!("/api/v1/dossiers/{}/recycle", ids[1]),
            &service.software,
            json!({}),
        )
        .await;
    assert_eq!(
        (status, &body["state"]),
        (StatusCode::OK, &json!("draft")),
        "{body}"
    );
    service.submit(&ids[1]).await;
    service.visa(&ids[1], "marches", json!({})).await;
    service.sign(&ids[1], "maire").await;
    service.wait_state(&ids[1], "transmitted").await;
    let messages = mails(&smtp, 3).await;
    let third_link = messages
        .iter()
        .map(|m| notification_link(m))
        .find(|l| !links.contains(l))
        .expect("a mail with a new link");
    assert_eq!(service.open(&second_link).await.0, StatusCode::NOT_FOUND);
    let (status, body) = service.open(&third_link).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.starts_with(&pdfs[1]) && body.len() > pdfs[1].len());
    service.wait_state(&ids[1], "archived").await;

    // An address the recipient's mail server refuses (« 550 5.1.1 »): nothing is retried, the
    // dossier goes back to its emitter saying why; corrected, it goes out again.
    let refused = "offres@inconnu.invalid";
    let id = service
        .create(
            json!({
                "title": "Marché 2026-016 mobilier",
                "circuit": circuit,
                "emitter_desk": service.desks["secretariat"],
                "metadata": {"destinataire_email": refused},
                "chosen_desks": {"signataire": service.desks["maire"]},
            }),
            ("notification-attribution.pdf", &pdfs[0]),
        )
        .await;
    service.visa(&id, "marches", json!({})).await;
    service.sign(&id, "maire").await;
    service.wait_state(&id, "rejected").await;
    let back = service.dossier(&id).await;
    assert_eq!(back["rejection"]["origin"], "recipient", "{back}");
    let reason = back["rejection"]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!(
            "le destinataire {refused} ne peut pas recevoir la notification"
        )) && reason.contains("550")
            && reason.ends_with("corrigez « destinataire_email » puis renvoyez le dossier"),
        "{reason}"
    );
    let events = service.wait_webhooks(&id, 8).await;
    assert_eq!(
        events[6..],
        ["dossier.refused", "dossier.rejected"],
        "{events:?}"
    );
    assert_eq!(mails(&smtp, 3).await.len(), 3, "nothing reached the server");
    let (status, body) = service
        .json(
            Method::POST,
            &format!("/api/v1/dossiers/{id}/recycle"),
            &service.software,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = service
        .json(
            Method::PATCH,
            &format!("/api/v1/dossiers/{id}"),
            &service.software,
            json!({"metadata": {"destinataire_email": RECIPIENT}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    service.submit(&id).await;
    service.visa(&id, "marches", json!({})).await;
    service.sign(&id, "maire").await;
    service.wait_state(&id, "transmitted").await;
    assert_eq!(mails(&smtp, 4).await.len(), 4);
    worker.stop().await;
    service.close().await;
}
