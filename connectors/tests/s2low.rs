//! The S²LOW client against the S²LOW test double over HTTPS with client certificates (the test
//! PKI's `tls-client` and `tls-server`): Actes and Hélios transactions from posting to
//! acknowledgement or refusal, duplicates recognized (numéro interne, PES hash) and found again
//! (a number held by a transaction in error or cancelled is taken for good),
//! cancellation, login, every injected fault reported as the right kind of error, and a missing
//! or foreign client certificate or an untrusted server refused with a message saying which.

use std::path::{Path, PathBuf};
use std::time::Duration;

use seing_connectors::Error;
use seing_connectors::actes::{
    ActeDocument, ActesMetadata, ActesReturn, SizeLimits, ValidActe, validate,
};
use seing_connectors::s2low::{
    ActesTransaction, ClientIdentity, Credentials, ListedActes, S2low, S2lowConfig, S2lowStatus,
    TransmissionState,
};
use seing_s2low_double::{Fault, Options, Outcome, S2lowDouble, TestPki, Tls};
use time::macros::date;

fn client(double: &S2lowDouble) -> S2low {
    S2low::new(&config(double)).unwrap()
}

/// The double over HTTPS, requiring client certificates.
fn tls() -> Options {
    Options {
        tls: Some(Tls::test_pki()),
        ..Options::default()
    }
}

/// The client's settings for `double`, as an administrator writes them.
fn config(double: &S2lowDouble) -> S2lowConfig {
    let mut transport = double.transport();
    transport["timeout_seconds"] = 5.into();
    transport.as_object_mut().unwrap().remove("kind");
    serde_json::from_value(transport).unwrap()
}

/// The third answer of `query` (the double moves one step per status query).
fn third<T>(mut query: impl FnMut() -> T) -> T {
    query();
    query();
    query()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn acte(dir: &Path, number: &str) -> ValidActe {
    let meta: ActesMetadata = serde_json::from_value(serde_json::json!({
        "siren": "213500002",
        "departement": "035",
        "arrondissement": 1,
        "trigramme": "SIC",
        "nature": "DE",
        "classification": "7.1",
        "numero_interne": number,
        "date_decision": "2026-11-20",
        "objet": "Tarifs de l'eau & de l'assainissement",
        "type_pj": {"annexe.pdf": "99_AU"},
        "nature_collectivite": "32",
        "email_retour": "actes@mairie-exemple.fr",
    }))
    .unwrap();
    let act = write(dir, "deliberation.pdf", b"%PDF-1.4 act\n%%EOF\n");
    let annex = write(dir, "annexe.pdf", b"%PDF-1.4 annex\n%%EOF\n");
    validate(
        &meta,
        &ActeDocument {
            path: act,
            signature: None,
        },
        &[ActeDocument {
            path: annex,
            signature: None,
        }],
        None,
        &SizeLimits::default(),
        date!(2026 - 11 - 29),
    )
    .unwrap()
}

#[test]
fn actes_go_from_posted_to_acknowledged_with_the_arrete() {
    let double = S2lowDouble::start(tls());
    let s2low = client(&double);
    let dir = tempfile::tempdir().unwrap();
    let id = s2low
        .create_actes(&acte(dir.path(), "DEL_2026_001"))
        .unwrap();

    let posted = &double.actes()[0];
    assert_eq!(posted.field("api"), Some("1"));
    assert_eq!(posted.field("nature_code"), Some("1"));
    assert_eq!(posted.field("classif1"), Some("7"));
    assert_eq!(posted.field("classif2"), Some("1"));
    assert_eq!(posted.field("number"), Some("DEL_2026_001"));
    assert_eq!(posted.field("decision_date"), Some("2026-11-20"));
    assert_eq!(posted.field("type_acte"), Some("99_DE"));
    assert_eq!(posted.field("type_pj[]"), Some("99_AU"));
    assert_eq!(
        posted.field("subject"),
        Some("Tarifs de l'eau & de l'assainissement")
    );
    let files: Vec<(&str, &str)> = posted
        .files
        .iter()
        .map(|(f, n, _)| (f.as_str(), n.as_str()))
        .collect();
    assert_eq!(
        files,
        [
            ("acte_pdf_file", "deliberation.pdf"),
            ("acte_attachments[]", "annexe.pdf")
        ]
    );

    let states: Vec<S2lowStatus> = (0..3)
        .map(|_| s2low.actes_status(id).unwrap().status)
        .collect();
    assert_eq!(
        states,
        [
            S2lowStatus::WaitingTransmission,
            S2lowStatus::Transmitted,
            S2lowStatus::Acknowledged
        ]
    );
    let report = s2low.actes_status(id).unwrap();
    assert_eq!(report.status.state(), TransmissionState::Acknowledged);
    let Some(ActesReturn::Acknowledged(ar)) = report.r#return else {
        panic!("ARActe expected: {report:?}")
    };
    assert_eq!(ar.acte.numero_interne, "DEL_2026_001");
    assert_eq!(ar.id_acte, "035-213500002-20261120-DEL_2026_001-DE");
    assert_eq!(ar.acte.annexes.len(), 1);
    assert!(report.return_bytes.is_some());

    let cancellation = s2low.cancel_actes(id).unwrap();
    assert_ne!(cancellation, id);
    assert_eq!(
        s2low.actes_status(id).unwrap().status,
        S2lowStatus::Cancelled
    );
}

#[test]
fn a_second_act_with_the_same_number_is_a_duplicate_and_is_found_again() {
    let double = S2lowDouble::start(tls());
    let s2low = client(&double);
    let dir = tempfile::tempdir().unwrap();
    let acte = acte(dir.path(), "DEL_2026_002");
    let first = s2low.create_actes(&acte).unwrap();
    s2low.actes_status(first).unwrap();
    assert!(matches!(
        s2low.create_actes(&acte),
        Err(Error::Duplicate(_))
    ));
    assert_eq!(double.actes().len(), 1);
    assert_eq!(
        s2low.find_actes("DEL_2026_002").unwrap(),
        Some(ListedActes {
            transaction: first,
            status: S2lowStatus::WaitingTransmission
        })
    );
    assert_eq!(s2low.find_actes("DEL_2026_999").unwrap(), None);
    // The transaction is alive: it is the one to follow.
    assert_eq!(s2low.existing_actes("DEL_2026_002").unwrap(), first);
    assert!(matches!(
        s2low.existing_actes("DEL_2026_999"),
        Err(Error::Transport(m)) if m.contains("ne le retrouve pas")
    ));
}

#[test]
fn a_number_held_by_a_transaction_in_error_or_cancelled_is_taken_for_good() {
    let double = S2lowDouble::start(tls());
    let s2low = client(&double);
    let dir = tempfile::tempdir().unwrap();
    // In error, with the prefecture's reason.
    let reason = "Acte refusé : classification 7.1 inconnue à la date de la décision";
    double.next_outcome(Outcome::Refused(reason.into()));
    let refused = acte(dir.path(), "DEL_2026_010");
    let id = s2low.create_actes(&refused).unwrap();
    third(|| s2low.actes_status(id).unwrap());
    assert!(matches!(
        s2low.create_actes(&refused),
        Err(Error::Duplicate(_))
    ));
    assert_eq!(
        s2low.find_actes("DEL_2026_010").unwrap(),
        Some(ListedActes {
            transaction: id,
            status: S2lowStatus::Error
        })
    );
    let error = s2low.existing_actes("DEL_2026_010").unwrap_err();
    assert!(
        matches!(&error, Error::NumberTaken { transaction, status: S2lowStatus::Error, .. } if *transaction == id),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "S²LOW a déjà le numéro interne DEL_2026_010 (transaction {id}, en erreur : « {reason} ») : \
             donnez un nouveau numéro interne à l'acte puis renvoyez-le"
        )
    );

    // Acknowledged, then cancelled.
    let cancelled = acte(dir.path(), "DEL_2026_011");
    let id = s2low.create_actes(&cancelled).unwrap();
    third(|| s2low.actes_status(id).unwrap());
    s2low.cancel_actes(id).unwrap();
    assert_eq!(
        s2low
            .existing_actes("DEL_2026_011")
            .unwrap_err()
            .to_string(),
        format!(
            "S²LOW a déjà le numéro interne DEL_2026_011 (transaction {id}, annulée) : \
             donnez un nouveau numéro interne à l'acte puis renvoyez-le"
        )
    );
    assert_eq!(double.actes().len(), 2);
}

#[test]
fn a_refused_act_ends_in_error_with_the_reason() {
    let double = S2lowDouble::start(tls());
    let s2low = client(&double);
    let dir = tempfile::tempdir().unwrap();
    double.next_outcome(Outcome::Refused(
        "Anomalie : classification inconnue".into(),
    ));
    let id = s2low
        .create_actes(&acte(dir.path(), "DEL_2026_003"))
        .unwrap();
    let report = third(|| s2low.actes_status(id).unwrap());
    assert_eq!(report.status, S2lowStatus::Error);
    assert_eq!(report.status.state(), TransmissionState::Refused);
    assert_eq!(
        report.message.as_deref(),
        Some("Anomalie : classification inconnue")
    );
    assert!(matches!(
        s2low.actes_status(ActesTransaction(999)),
        Err(Error::Refused(_))
    ));
}

const PES: &[u8] = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><PES_Aller/>";

#[test]
fn pes_goes_from_posted_to_acquitted_and_a_resent_file_is_a_duplicate() {
    let double = S2lowDouble::start(tls());
    let s2low = client(&double);
    let id = s2low.import_pes("PES bordereaux/2026.xml", PES).unwrap();
    assert_eq!(double.helios()[0].file_name, "PES bordereaux_2026.xml");
    let statuses: Vec<S2lowStatus> = (0..3)
        .map(|_| s2low.helios_status(id).unwrap().status)
        .collect();
    assert_eq!(statuses.last(), Some(&S2lowStatus::Acknowledged));
    let (bytes, acquit) = s2low.download_acquit(id).unwrap();
    assert!(acquit.is_accepted());
    assert!(!bytes.is_empty());

    assert!(matches!(
        s2low.import_pes("other-name.xml", PES),
        Err(Error::Duplicate(m)) if m.contains("doublon")
    ));
    assert_eq!(double.helios().len(), 1);
}

#[test]
fn refused_pes_has_a_refusing_acquit() {
    let double = S2lowDouble::start(tls());
    let s2low = client(&double);
    double.next_outcome(Outcome::Refused("Signature invalide".into()));
    let id = s2low.import_pes("pes.xml", PES).unwrap();
    let status = third(|| s2low.helios_status(id).unwrap());
    assert_eq!(status.status, S2lowStatus::Refused);
    let (_, acquit) = s2low.download_acquit(id).unwrap();
    assert!(!acquit.is_accepted());
    let reasons: Vec<_> = acquit
        .refused()
        .flat_map(|e| e.errors.iter().filter_map(|r| r.label.clone()))
        .collect();
    assert_eq!(reasons, ["Signature invalide"]);
}

#[test]
fn faults_are_transport_errors_and_nothing_is_created_twice() {
    let double = S2lowDouble::start(tls());
    let mut config = config(&double);
    config.timeout_seconds = 1;
    let s2low = S2low::new(&config).unwrap();

    double.inject("helios_importer_fichier", Fault::Status(503));
    assert!(matches!(
        s2low.import_pes("a.xml", PES),
        Err(Error::Transport(_))
    ));
    double.inject("helios_importer_fichier", Fault::Malformed);
    assert!(matches!(
        s2low.import_pes("a.xml", PES),
        Err(Error::Transport(_))
    ));
    assert!(double.helios().is_empty());

    // The answer is lost after the platform took the file: the retry is a duplicate.
    double.inject(
        "helios_importer_fichier",
        Fault::Delay(Duration::from_secs(3)),
    );
    assert!(matches!(
        s2low.import_pes("a.xml", PES),
        Err(Error::Transport(_))
    ));
    assert_eq!(double.helios().len(), 1);
    assert!(matches!(
        s2low.import_pes("a.xml", PES),
        Err(Error::Duplicate(_))
    ));

    double.inject("actes_transac_get_status", Fault::Status(500));
    assert!(matches!(
        s2low.actes_status(ActesTransaction(1)),
        Err(Error::Transport(_))
    ));
}

#[test]
fn login_and_password_are_sent_when_required() {
    let double = S2lowDouble::start(Options {
        credentials: Some(("mairie".into(), "s3cret".into())),
        ..tls()
    });
    assert!(matches!(
        client(&double).import_pes("a.xml", PES),
        Err(Error::Refused(m)) if m.contains("401")
    ));
    let mut config = config(&double);
    config.credentials = Some(Credentials {
        login: "mairie".into(),
        password: "s3cret".into(),
    });
    S2low::new(&config)
        .unwrap()
        .import_pes("a.xml", PES)
        .unwrap();
}

#[test]
fn tls_needs_an_accepted_client_certificate_and_a_trusted_server() {
    let double = S2lowDouble::start(tls());
    let pki = TestPki::shared();
    let refused = |config: &S2lowConfig| match S2low::new(config).unwrap().import_pes("a.xml", PES)
    {
        Err(Error::Transport(message)) => message,
        other => panic!("a transport error expected: {other:?}"),
    };

    let mut anonymous = config(&double);
    anonymous.identity = None;
    let message = refused(&anonymous);
    assert!(
        message.contains("aucun certificat client n'est configuré"),
        "{message}"
    );
    // An élu's certificate, of a CA the platform does not take for client authentication.
    let mut foreign = config(&double);
    foreign.identity = Some(ClientIdentity {
        certificate: pki.fullchain("elu-p256"),
        key: pki.key("elu-p256"),
    });
    let message = refused(&foreign);
    assert!(
        message.contains("le certificat client configuré (« identity ») n'est pas accepté"),
        "{message}"
    );
    // The double records a refused handshake on its own thread, possibly after the client has
    // already seen the failure: wait for it (5 s at most) before counting.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while double.tls_refusals().len() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        double.tls_refusals().len(),
        2,
        "{:?}",
        double.tls_refusals()
    );
    assert!(double.requests().is_empty());

    // The client refuses a server whose certificate its CA did not sign, or the public roots.
    for server_ca in [Some(pki.personnes_ca.clone()), None] {
        let mut untrusting = config(&double);
        untrusting.server_ca = server_ca;
        let message = refused(&untrusting);
        assert!(
            message.contains("certificat du serveur de S²LOW refusé")
                && message.contains("server_ca"),
            "{message}"
        );
    }
    assert!(double.helios().is_empty());

    client(&double).import_pes("a.xml", PES).unwrap();
    assert_eq!(double.helios().len(), 1);
}

#[test]
fn bad_configuration_is_reported_before_any_call() {
    let mut config = S2lowConfig {
        url: "ftp://s2low.example".into(),
        identity: None,
        server_ca: None,
        credentials: None,
        timeout_seconds: 5,
    };
    assert!(matches!(S2low::new(&config), Err(Error::Format(_))));
    config.url = "https://s2low.example".into();
    config.server_ca = Some("/nonexistent/ca.pem".into());
    assert!(matches!(S2low::new(&config), Err(Error::Io { .. })));
}
