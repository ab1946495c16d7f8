//! Notification mail over TLS against real `aiosmtpd` servers with the test PKI's `tls-server`
//! certificate: STARTTLS required by the server is done (the same server refuses a mail sent
//! in clear, so a delivered one went over TLS), TLS from the first byte (SMTPS) works, a
//! server without STARTTLS gets nothing when TLS is required, and an untrusted server
//! certificate is refused; each refusal says why in French.

mod common;

use std::ffi::OsStr;

use common::smtp::Smtp;
use lettre::Message;
use seing_certs_test::pki::TestPki;
use seing_connectors::Error;
use seing_connectors::notification::{NotificationSettings, mail};
use serde_json::json;

fn settings(smtp: &Smtp, security: &str, ca: &std::path::Path) -> NotificationSettings {
    serde_json::from_value(json!({
        "smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_security": security,
        "smtp_ca": ca, "from": "Commune de Démo <marches@mairie-demo.fr>",
        "public_url": "https://parapheur.mairie-demo.fr", "tsa_url": "http://tsa.invalid/"
    }))
    .unwrap()
}

fn message(subject: &str) -> Message {
    Message::builder()
        .from("Commune de Démo <marches@mairie-demo.fr>".parse().unwrap())
        .to("offres@entreprise-dupont.fr".parse().unwrap())
        .subject(subject)
        .body("Notification d'attribution".to_owned())
        .unwrap()
}

fn transport_error(result: seing_connectors::Result<()>) -> String {
    match result {
        Err(Error::Transport(message)) => message,
        other => panic!("a transport error expected: {other:?}"),
    }
}

#[tokio::test]
async fn mail_goes_over_starttls_or_smtps_and_never_in_clear_when_tls_is_required() {
    let pki = TestPki::shared();
    let (cert, key) = (pki.fullchain("tls-server"), pki.key("tls-server"));
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let starttls = [
        OsStr::new("--tlscert"),
        cert.as_os_str(),
        OsStr::new("--tlskey"),
        key.as_os_str(),
    ];
    let Some(requiring) = Smtp::start(dirs[0].path(), &starttls) else {
        return;
    };
    let smtps = [
        OsStr::new("--smtpscert"),
        cert.as_os_str(),
        OsStr::new("--smtpskey"),
        key.as_os_str(),
    ];
    let implicit = Smtp::start(dirs[1].path(), &smtps).unwrap();
    let clear_only = Smtp::start(dirs[2].path(), &[]).unwrap();

    // The server requires STARTTLS: in clear it refuses the mail, with STARTTLS it takes it.
    let clear = transport_error(
        mail(
            &settings(&requiring, "plain", &pki.root_ca),
            message("clair"),
        )
        .await,
    );
    assert!(clear.contains("STARTTLS"), "{clear}");
    assert!(requiring.messages().is_empty());
    mail(
        &settings(&requiring, "starttls", &pki.root_ca),
        message("Marche 2026-014"),
    )
    .await
    .unwrap();
    let received = requiring.messages();
    assert_eq!(received.len(), 1);
    assert!(
        received[0].contains("Subject: Marche 2026-014"),
        "{}",
        received[0]
    );

    // TLS from the first byte.
    mail(&settings(&implicit, "tls", &pki.root_ca), message("SMTPS"))
        .await
        .unwrap();
    assert_eq!(implicit.messages().len(), 1);

    // TLS required of a server that does not offer STARTTLS: nothing goes out.
    let refused = transport_error(
        mail(
            &settings(&clear_only, "starttls", &pki.root_ca),
            message("x"),
        )
        .await,
    );
    assert!(
        refused.contains("le serveur ne propose pas STARTTLS alors que TLS est exigé"),
        "{refused}"
    );
    assert!(clear_only.messages().is_empty());

    // A server whose certificate the configured CA did not sign.
    let untrusted = transport_error(
        mail(
            &settings(&requiring, "starttls", &pki.personnes_ca),
            message("y"),
        )
        .await,
    );
    assert!(
        untrusted.contains("échec TLS") && untrusted.contains("smtp_ca"),
        "{untrusted}"
    );
    assert_eq!(requiring.messages().len(), 1);
}
