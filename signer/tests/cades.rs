//! CAdES B-B with software keys: our verifier, `openssl cms -verify` and the oracle agree; bad
//! inputs fail the way ETSI EN 319 102-1 says.

mod common;

use std::path::Path;

use common::*;
use seing_signer::cades::{self, Cades, CadesRequest, CadesState, Packaging};
use seing_signer::digest::DigestAlgorithm;
use seing_signer::error::Error;
use seing_signer::key::{
    KeySource, Secret, SignatureValue, software::SoftwareKey, verify_digest_signature,
};
use seing_signer::model::{
    BatchStatus, CertificateChain, Document, Prepared, SignatureFormat, ToSign, sign_all,
    sign_batch, sign_local,
};
use seing_signer::verify::{Indication, SubIndication, VerificationReport};

fn sign_file(key: &dyn KeySource, data: &Path, packaging: Packaging) -> Vec<u8> {
    let request = CadesRequest {
        packaging,
        ..Default::default()
    };
    sign_local(&Cades, &Document::File(data.to_path_buf()), &request, key).unwrap()
}

fn verify(sig: &[u8], data: Option<&Path>) -> VerificationReport {
    let mut options = trust_root();
    options.detached_data = data.map(Path::to_path_buf);
    cades::verify(sig, &options).unwrap()
}

fn assert_passed(report: &VerificationReport) {
    assert_eq!(
        report.indication,
        Indication::TotalPassed,
        "{:#?}",
        report.signatures
    );
}

#[test]
fn software_keys_load_from_p12_and_pem_and_match_their_certificates() {
    for entity in ["elu-rsa2048", "elu-rsa3072", "elu-p256"] {
        assert!(key_works(&p12_key(entity)), "{entity} p12");
        assert!(key_works(&pem_key(entity)), "{entity} pem");
    }
    let err =
        SoftwareKey::from_pkcs12_file(&pki().p12("elu-rsa2048"), &Secret::new("wrong"), vec![])
            .unwrap_err();
    assert!(matches!(err, Error::Key(_)), "{err}");
    assert!(err.to_string().contains("wrong password"), "{err}");
    // A key that does not match the certificate is refused.
    let err = SoftwareKey::from_pem_files(&pki().key("elu-p256"), &pki().cert("cachet"), vec![])
        .unwrap_err();
    assert!(
        err.to_string().contains("does not match") || matches!(err, Error::Key(_)),
        "{err}"
    );
}

#[test]
fn software_keys_sign_a_batch_of_digests_in_order() {
    let algorithms = [
        DigestAlgorithm::Sha256,
        DigestAlgorithm::Sha384,
        DigestAlgorithm::Sha512,
    ];
    for entity in ["elu-rsa2048", "elu-rsa3072", "elu-p256"] {
        let key = pem_key(entity);
        let mut items: Vec<ToSign> = (0..15)
            .map(|i| {
                let digest_algorithm = algorithms[i % 3];
                ToSign {
                    label: format!("B{i}"),
                    digest_algorithm,
                    digest: digest_algorithm.digest(format!("bordereau {i}").as_bytes()),
                }
            })
            .collect();
        // A digest of the wrong length fails alone.
        items[7].digest.pop();
        let values = key.sign_digests(&items);
        assert_eq!(values.len(), items.len(), "{entity}");
        for (i, (item, value)) in items.iter().zip(&values).enumerate() {
            if i == 7 {
                assert!(value.is_err(), "{entity}: short digest signed");
                continue;
            }
            let value = value.as_ref().unwrap();
            let verifies = |other: &ToSign| {
                verify_digest_signature(
                    key.certificate(),
                    other.digest_algorithm,
                    &other.digest,
                    value,
                )
                .unwrap()
            };
            assert!(verifies(item), "{entity}: value {i} does not verify");
            assert!(
                !verifies(&items[(i + 3) % 15]),
                "{entity}: value {i} out of place"
            );
        }
    }
}

#[test]
fn detached_and_enveloping_pass_openssl_the_oracle_and_our_verifier() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("deliberation.txt");
    std::fs::write(&data, "Délibération n° 2026-42 du conseil municipal\n").unwrap();
    for (entity, key) in [
        ("elu-rsa2048", p12_key("elu-rsa2048")),
        ("elu-p256", pem_key("elu-p256")),
    ] {
        // Detached.
        let sig = sign_file(&key, &data, Packaging::Detached);
        let sig_path = dir.path().join(format!("{entity}.p7s"));
        std::fs::write(&sig_path, &sig).unwrap();
        let report = verify(&sig, Some(&data));
        assert_passed(&report);
        let s = &report.signatures[0];
        assert!(s.signer.as_deref().unwrap().contains("CN="), "{s:?}");
        assert!(s.claimed_signing_time.is_some());
        assert_eq!(s.chain.len(), 3, "{:?}", s.chain);
        assert!(
            openssl_cms_verify(&sig_path, Some(&data)),
            "{entity} detached"
        );
        oracle_passes(&[
            "cades",
            sig_path.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--trust",
            pki().root_ca.to_str().unwrap(),
            "--certs",
            pki().chain_personnes.to_str().unwrap(),
        ]);
        // Without the data, a detached signature is INDETERMINATE.
        let report = verify(&sig, None);
        assert_eq!(report.indication, Indication::Indeterminate);
        assert_eq!(
            report.signatures[0].sub_indication,
            Some(SubIndication::SignedDataNotFound)
        );

        // Enveloping.
        let sig = sign_file(&key, &data, Packaging::Enveloping);
        let env_path = dir.path().join(format!("{entity}-env.p7m"));
        std::fs::write(&env_path, &sig).unwrap();
        assert_passed(&verify(&sig, None));
        assert!(openssl_cms_verify(&env_path, None), "{entity} enveloping");
        oracle_passes(&[
            "cades",
            env_path.to_str().unwrap(),
            "--trust",
            pki().root_ca.to_str().unwrap(),
            "--certs",
            pki().chain_personnes.to_str().unwrap(),
        ]);
    }
}

#[test]
fn sha384_and_sha512_are_selectable() {
    let key = p12_key("elu-rsa3072");
    for algorithm in [DigestAlgorithm::Sha384, DigestAlgorithm::Sha512] {
        let request = CadesRequest {
            digest_algorithm: Some(algorithm),
            ..Default::default()
        };
        let doc = Document::Bytes(b"arrete".to_vec());
        let sig = sign_local(&Cades, &doc, &request, &key).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("d");
        std::fs::write(&data, b"arrete").unwrap();
        assert_passed(&verify(&sig, Some(&data)));
        let sig_path = dir.path().join("s.p7s");
        std::fs::write(&sig_path, &sig).unwrap();
        assert!(openssl_cms_verify(&sig_path, Some(&data)));
    }
}

#[test]
fn the_state_survives_json_and_finalize_refuses_garbage() {
    let key = p12_key("elu-p256");
    let chain = CertificateChain::of_key(&key);
    let doc = Document::Bytes(b"remote signing".to_vec());
    let prepared: Prepared<CadesState> = Cades
        .prepare(&doc, &CadesRequest::default(), &chain)
        .unwrap();
    let json = serde_json::to_string(&prepared).unwrap();
    let back: Prepared<CadesState> = serde_json::from_str(&json).unwrap();
    assert_eq!(back.data_to_sign, prepared.data_to_sign);

    // Garbage, a signature of something else, and the wrong count are refused.
    let garbage = SignatureValue(vec![0x42; 64]);
    let err = Cades.finalize(back.state.clone(), &[garbage]).unwrap_err();
    assert!(
        matches!(err, Error::BadSignatureValue { index: 0 }),
        "{err}"
    );
    let other = key
        .sign_digest(
            DigestAlgorithm::Sha256,
            &DigestAlgorithm::Sha256.digest(b"other"),
        )
        .unwrap();
    assert!(matches!(
        Cades.finalize(back.state.clone(), &[other]),
        Err(Error::BadSignatureValue { .. })
    ));
    assert!(matches!(
        Cades.finalize(back.state.clone(), &[]),
        Err(Error::SignatureCount {
            expected: 1,
            got: 0
        })
    ));

    // The real value, computed remotely from the JSON data to sign, is accepted.
    let values = sign_all(&key, &back.data_to_sign).unwrap();
    let sig = Cades.finalize(back.state, &values).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    std::fs::write(&data, b"remote signing").unwrap();
    assert_passed(&verify(&sig, Some(&data)));
}

#[test]
fn tampered_data_is_a_hash_failure() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    std::fs::write(&data, b"montant: 1500 EUR").unwrap();
    let sig = sign_file(&p12_key("elu-rsa2048"), &data, Packaging::Detached);
    std::fs::write(&data, b"montant: 9500 EUR").unwrap();
    let report = verify(&sig, Some(&data));
    assert_eq!(report.indication, Indication::TotalFailed);
    assert_eq!(
        report.signatures[0].sub_indication,
        Some(SubIndication::HashFailure)
    );
    // A flipped bit in the signature value is a crypto failure.
    let mut sig2 = sign_file(&p12_key("elu-rsa2048"), &data, Packaging::Detached);
    let at = sig2.len() - 10;
    sig2[at] ^= 1;
    let report = verify(&sig2, Some(&data));
    assert_eq!(report.indication, Indication::TotalFailed, "{report:#?}");
}

#[test]
fn wrong_trust_anchor_expired_revoked_and_no_signing_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    std::fs::write(&data, b"x").unwrap();

    // Trusting only the seal CA: no chain.
    let sig = sign_file(&p12_key("elu-rsa2048"), &data, Packaging::Detached);
    let mut options = trust_root();
    options.trust_anchors = vec![seing_signer::x509::read_certificate(&pki().cachets_ca).unwrap()];
    options.certificates.clear();
    options.detached_data = Some(data.clone());
    let report = cades::verify(&sig, &options).unwrap();
    assert_eq!(report.indication, Indication::Indeterminate);
    assert_eq!(
        report.signatures[0].sub_indication,
        Some(SubIndication::NoCertificateChainFound)
    );

    let expired = sign_file(&p12_key("expired"), &data, Packaging::Detached);
    let report = verify(&expired, Some(&data));
    assert_eq!(report.indication, Indication::Indeterminate);
    assert_eq!(
        report.signatures[0].sub_indication,
        Some(SubIndication::OutOfBoundsNoPoe)
    );

    let revoked = sign_file(&p12_key("revoked"), &data, Packaging::Detached);
    assert_passed(&verify(&revoked, Some(&data)));
    let mut options = trust_root();
    options.detached_data = Some(data.clone());
    options.crls = vec![seing_signer::x509::read_crl(&pki().personnes_crl_der).unwrap()];
    let report = cades::verify(&revoked, &options).unwrap();
    assert_eq!(report.indication, Indication::Indeterminate);
    assert_eq!(
        report.signatures[0].sub_indication,
        Some(SubIndication::RevokedNoPoe)
    );
    // The same CRL does not affect a good signer.
    let good = sign_file(&p12_key("elu-p256"), &data, Packaging::Detached);
    assert_passed(&cades::verify(&good, &options).unwrap());

    let no_signing = sign_file(&p12_key("no-signing"), &data, Packaging::Detached);
    let report = verify(&no_signing, Some(&data));
    assert_eq!(report.indication, Indication::Indeterminate);
    assert_eq!(
        report.signatures[0].sub_indication,
        Some(SubIndication::ChainConstraintsFailure)
    );
}

#[test]
fn a_batch_reports_each_item_and_a_failure_does_not_stop_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let mut docs = Vec::new();
    for i in 0..3 {
        let p = dir.path().join(format!("doc{i}.txt"));
        std::fs::write(&p, format!("document {i}")).unwrap();
        docs.push((format!("doc{i}.txt"), Document::File(p)));
    }
    docs.insert(
        1,
        (
            "missing.txt".into(),
            Document::File(dir.path().join("missing.txt")),
        ),
    );
    let key = p12_key("elu-rsa2048");
    let mut outputs = Vec::new();
    let reports = sign_batch(&Cades, docs, &CadesRequest::default(), &key, |name, sig| {
        outputs.push((name.to_string(), sig));
        Ok(Some(format!("{name}.p7s")))
    });
    let statuses: Vec<_> = reports.iter().map(|r| r.status.clone()).collect();
    assert_eq!(
        statuses,
        [
            BatchStatus::Signed,
            BatchStatus::Failed,
            BatchStatus::Signed,
            BatchStatus::Signed
        ]
    );
    assert!(reports[1].error.as_deref().unwrap().contains("missing.txt"));
    assert_eq!(outputs.len(), 3);
    for (name, sig) in outputs {
        assert_passed(&verify(&sig, Some(&dir.path().join(name))));
    }
}

#[test]
fn b_t_carries_a_verifiable_signature_timestamp() {
    let tsa = seing_certs_test::TestTsa::start(pki()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("pes.xml");
    std::fs::write(&data, b"<PES_Aller/>").unwrap();
    for key in [p12_key("elu-rsa2048"), p12_key("elu-p256")] {
        let request = CadesRequest {
            level: seing_signer::model::Level::BT,
            tsa_url: Some(tsa.url()),
            ..Default::default()
        };
        let sig = sign_local(&Cades, &Document::File(data.clone()), &request, &key).unwrap();
        let report = verify(&sig, Some(&data));
        assert_passed(&report);
        let s = &report.signatures[0];
        assert_eq!(s.level.as_deref(), Some("B-T"));
        assert!(s.timestamp_time.is_some());
        let sig_path = dir.path().join("bt.p7s");
        std::fs::write(&sig_path, &sig).unwrap();
        assert!(openssl_cms_verify(&sig_path, Some(&data)));
        // The oracle runs openssl ts -verify on the embedded token.
        oracle_passes(&[
            "cades",
            sig_path.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--trust",
            pki().root_ca.to_str().unwrap(),
            "--certs",
            pki().chain_personnes.to_str().unwrap(),
            "--level",
            "B-T",
            // The test TSA's token holds its own certificate only: give its CA with the root.
            "--tsa-trust",
            pki().chain_cachets.to_str().unwrap(),
        ]);
    }
    // B-T without a TSA is refused at prepare time.
    let err = sign_local(
        &Cades,
        &Document::Bytes(b"x".to_vec()),
        &CadesRequest {
            level: seing_signer::model::Level::BT,
            ..Default::default()
        },
        &p12_key("elu-rsa2048"),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)), "{err}");
}
