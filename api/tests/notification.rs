//! Notification of a procurement award (`marches-notification`) through the API, against a real
//! SMTP server (Python `aiosmtpd`, started by the test) and the test TSA: the mail carries a
//! unique link; its first opening returns the signed document and records an RFC 3161
//! timestamped receipt in the journal (`acknowledged`); later openings change nothing; unknown
//! links are not found; a link past its deadline is refused and reported as expired: the dossier
//! goes back to its emitter, and once resubmitted a new mail carries a new link.

#[path = "../../connectors/tests/common/smtp.rs"]
mod smtp;
#[path = "common/tenant.rs"]
mod tenant;

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use seing_api::http::{ApiSettings, ApiState};
use seing_api::server::{AppState, router};
use seing_certs_test::pki::TestPki;
use seing_certs_test::tsa::TestTsa;
use seing_connectors::ports::Connectors;
use seing_connectors::settings::store_settings;
use seing_engine::Engine;
use seing_engine::circuit::Template;
use seing_engine::clock::SystemClock;
use seing_engine::docstore::DocumentStore;
use seing_engine::metadata::MetaValue;
use seing_engine::model::{ActionInput, NewDocument, NewDossier, SignedOutput};
use seing_engine::outbox::{DeliveryError, Job, RetryPolicy};
use seing_engine::ports::{Dispatcher, Receipt, Transmitter, WebhookSender};
use seing_engine::storage::Database;
use seing_engine::workflow::{DossierState, RejectionOrigin};
use serde_json::json;
use smtp::Smtp;
use tenant::TestTenant;
use tower::ServiceExt;

struct Elsewhere;

impl WebhookSender for Elsewhere {
    async fn deliver(&self, _job: &Job) -> Result<(), DeliveryError> {
        Ok(())
    }
}

impl Transmitter for Elsewhere {
    async fn transmit(
        &self,
        _job: &Job,
        _channel: seing_engine::circuit::Channel,
    ) -> Result<Receipt, DeliveryError> {
        Err(DeliveryError::permanent("hors du test"))
    }
}

/// The link of a mail, unfolded from its quoted-printable lines.
fn link(message: &str) -> String {
    let unfolded = message.replace("=\r\n", "").replace("=\n", "");
    let start = unfolded.find("/api/v1/notifications/").expect("a link");
    unfolded[start..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn award_is_notified_and_its_opening_is_a_timestamped_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let Some(smtp) = Smtp::start(dir.path(), &[]) else {
        return;
    };
    let tsa = TestTsa::start(TestPki::shared()).unwrap();

    let db = Database::connect(&format!("sqlite:{}", dir.path().join("seing.db").display()))
        .await
        .unwrap();
    db.migrate().await.unwrap();
    let engine = Engine::new(
        db.clone(),
        DocumentStore::new(dir.path().join("documents")),
        Arc::new(SystemClock),
        Template::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../workflows")).unwrap(),
    );
    let app = router(
        Arc::new(AppState { database: db }),
        Arc::new(ApiState {
            engine: engine.clone(),
            settings: ApiSettings::default(),
        }),
    );
    let TestTenant {
        admin,
        actors,
        desks,
    } = TestTenant::create(
        &engine,
        "Commune de Démo",
        "213500002",
        &[("marches", "marches"), ("maire", "maire")],
    )
    .await;
    let circuit = engine
        .create_circuit(
            admin,
            "marches-notification",
            "marches-notification",
            &[("marches".to_owned(), desks["marches"])]
                .into_iter()
                .collect(),
        )
        .await
        .unwrap();
    store_settings(
        &engine,
        admin.tenant,
        &json!({
            "notification": {"smtp_host": "127.0.0.1", "smtp_port": smtp.port,
                "from": "Commune de Démo <marches@mairie-demo.fr>",
                "public_url": "https://parapheur.mairie-demo.fr", "link_days": 15,
                "tsa_url": tsa.url()},
            "archive": {"drop_folder": {"outbox": dir.path().join("sae/sortie"),
                                        "inbox": dir.path().join("sae/entree")},
                        "archival_agency": "AD35", "transferring_agency": "MAIRIE"}
        })
        .to_string(),
        time::OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();

    let connectors = Connectors::new(engine.clone());
    let dispatcher = Dispatcher {
        engine: engine.clone(),
        transmitter: Elsewhere,
        notifier: connectors.clone(),
        archiver: connectors.clone(),
        webhooks: Elsewhere,
    };
    let deliver = || async {
        let policy = RetryPolicy::default();
        loop {
            let run = engine
                .run_outbox_once(&dispatcher, &policy, 20)
                .await
                .unwrap();
            assert_eq!(run.failed + run.retried, 0);
            if run.done == 0 {
                break;
            }
        }
    };

    let award = |title: &str| NewDossier {
        circuit: circuit.id,
        emitter_desk: desks["marches"],
        title: title.into(),
        main: NewDocument {
            name: "notification-attribution.pdf".into(),
            media_type: "application/pdf".into(),
            bytes: b"%PDF-1.7 attribution\n%%EOF\n".to_vec(),
        },
        annexes: vec![],
        metadata: [(
            "destinataire_email".to_owned(),
            MetaValue::Text("offres@entreprise-dupont.fr".into()),
        )]
        .into_iter()
        .collect(),
        chosen_desks: [("signataire".to_owned(), desks["maire"])]
            .into_iter()
            .collect(),
        deadline: None,
    };
    let signed = b"%PDF-1.7 attribution signee\n%%EOF\n";
    let mut ids = Vec::new();
    for title in ["Marché 2026-014 voirie", "Marché 2026-015 éclairage"] {
        let d = engine
            .create_dossier(actors["marches"], award(title))
            .await
            .unwrap();
        engine.submit(actors["marches"], d.id, None).await.unwrap();
        engine
            .visa(actors["marches"], d.id, ActionInput::default())
            .await
            .unwrap();
        engine
            .sign(
                actors["maire"],
                d.id,
                ActionInput::default(),
                SignedOutput {
                    documents: vec![NewDocument {
                        name: "notification-attribution.pdf".into(),
                        media_type: "application/pdf".into(),
                        bytes: signed.to_vec(),
                    }],
                    signatures: vec![],
                },
            )
            .await
            .unwrap();
        ids.push(d.id);
    }
    deliver().await;
    let state = |id| {
        let engine = engine.clone();
        let maire = actors["maire"];
        async move { engine.dossier(maire, id).await.unwrap().state }
    };
    assert_eq!(state(ids[0]).await, DossierState::Transmitted);

    let messages = smtp.messages();
    assert_eq!(messages.len(), 2, "{messages:?}");
    let first = messages
        .iter()
        .find(|m| m.contains("2026-014"))
        .expect("the first award's mail");
    assert!(first.contains("offres@entreprise-dupont.fr"), "{first}");
    let links: Vec<String> = messages.iter().map(|m| link(m)).collect();
    assert_ne!(links[0], links[1]);
    let first_link = link(first);

    let get = |uri: String| {
        let app = app.clone();
        async move {
            let response = app
                .oneshot(Request::get(uri).body(Body::empty()).unwrap())
                .await
                .unwrap();
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            (status, body.to_vec())
        }
    };
    assert_eq!(
        get("/api/v1/notifications/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into())
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (status, body) = get(first_link.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, signed);
    assert_eq!(state(ids[0]).await, DossierState::Acknowledged);
    let journal = engine
        .connector_journal(admin.tenant, ids[0])
        .await
        .unwrap();
    let receipt = journal.iter().find(|e| e.action == "acknowledged").unwrap();
    assert!(
        receipt.detail.contains("offres@entreprise-dupont.fr"),
        "{}",
        receipt.detail
    );
    assert!(receipt.detail.contains("horodaté"), "{}", receipt.detail);
    let token_sha = receipt
        .detail
        .split("jeton ")
        .nth(1)
        .unwrap()
        .get(..64)
        .unwrap()
        .to_owned();
    let token = engine.documents_store().get(&token_sha).await.unwrap();
    let parsed = seing_signer::tsp::parse_token(&token).unwrap();
    assert!(parsed.tsa_certificate.is_some());
    let age = time::OffsetDateTime::now_utc() - parsed.gen_time;
    assert!(age < time::Duration::minutes(5), "{age}");

    // A second opening serves the document again and records nothing more.
    let (status, _) = get(first_link).await;
    assert_eq!(status, StatusCode::OK);
    let again = engine
        .connector_journal(admin.tenant, ids[0])
        .await
        .unwrap();
    assert_eq!(
        again.iter().filter(|e| e.action == "acknowledged").count(),
        1
    );
    deliver().await;
    assert_eq!(state(ids[0]).await, DossierState::Archived);

    // The second link passes its deadline unopened: refused, and reported as expired; the
    // dossier goes back to its emitter saying so.
    let pool = engine.database().pool();
    let detail: String =
        sqlx::query_scalar("SELECT detail FROM connector_transmissions WHERE dossier_id = $1")
            .bind(ids[1].to_string())
            .fetch_one(pool)
            .await
            .unwrap();
    let mut detail: serde_json::Value = serde_json::from_str(&detail).unwrap();
    detail["expires_at"] = json!("2020-01-01T00:00:00Z");
    sqlx::query("UPDATE connector_transmissions SET detail = $1 WHERE dossier_id = $2")
        .bind(detail.to_string())
        .bind(ids[1].to_string())
        .execute(pool)
        .await
        .unwrap();
    let second_link = links.iter().find(|l| **l != link(first)).unwrap().clone();
    assert_eq!(get(second_link.clone()).await.0, StatusCode::FORBIDDEN);
    assert_eq!(connectors.poll().await.unwrap().expired, 1);
    assert_eq!(get(second_link.clone()).await.0, StatusCode::FORBIDDEN);
    let back = engine.dossier(actors["marches"], ids[1]).await.unwrap();
    assert_eq!(back.state, DossierState::Rejected);
    let rejection = back.rejection.unwrap();
    assert_eq!(rejection.reason, "lien expiré sans ouverture");
    assert_eq!(rejection.origin, RejectionOrigin::Recipient);
    let journal = engine
        .connector_journal(admin.tenant, ids[1])
        .await
        .unwrap();
    let expired = journal.last().unwrap();
    assert_eq!(expired.action, "expired");
    assert!(
        expired.detail.contains("offres@entreprise-dupont.fr"),
        "{}",
        expired.detail
    );
    assert_eq!(connectors.poll().await.unwrap().expired, 0);

    // The emitter resubmits it: once signed again, a new mail goes out with a new link.
    engine
        .recycle(actors["marches"], ids[1], None)
        .await
        .unwrap();
    engine
        .submit(actors["marches"], ids[1], None)
        .await
        .unwrap();
    engine
        .visa(actors["marches"], ids[1], ActionInput::default())
        .await
        .unwrap();
    engine
        .sign(
            actors["maire"],
            ids[1],
            ActionInput::default(),
            SignedOutput {
                documents: vec![NewDocument {
                    name: "notification-attribution.pdf".into(),
                    media_type: "application/pdf".into(),
                    bytes: signed.to_vec(),
                }],
                signatures: vec![],
            },
        )
        .await
        .unwrap();
    deliver().await;
    assert_eq!(state(ids[1]).await, DossierState::Transmitted);
    let messages = smtp.messages();
    assert_eq!(messages.len(), 3, "{messages:?}");
    let third_link = messages
        .iter()
        .map(|m| link(m))
        .find(|l| !links.contains(l))
        .expect("a mail with a new link");
    assert_eq!(get(second_link).await.0, StatusCode::NOT_FOUND);
    assert_eq!(get(third_link).await.0, StatusCode::OK);
    assert_eq!(state(ids[1]).await, DossierState::Acknowledged);
}
