//! Signer certificate validation: path to a trust anchor, key usage, validity, revocation.

use std::time::SystemTime;

use time::OffsetDateTime;
use x509_cert::Certificate;

use super::{Indication, SignatureReport, SubIndication, VerifyOptions};
use crate::x509;

/// The result of [`validate_signer`]: the chain found (signer first, anchor last).
#[derive(Debug, Clone, Default)]
pub struct ChainOutcome {
    /// The certificates from the signer to the trust anchor, when a path was found.
    pub path: Vec<Certificate>,
}

/// Validates `signer` for a signature made at `signing_time`, recording failures in `report`.
///
/// `proven` says whether `signing_time` is proven by a timestamp (then an expired or revoked
/// certificate after that time is fine, and one revoked before it is TOTAL_FAILED). `embedded`
/// are the certificates found in the signature.
pub fn validate_signer(
    signer: &Certificate,
    embedded: &[Certificate],
    signing_time: OffsetDateTime,
    proven: bool,
    options: &VerifyOptions,
    report: &mut SignatureReport,
) -> ChainOutcome {
    report.signer = Some(x509::subject(signer));
    let at = SystemTime::from(signing_time);
    let pool: Vec<&Certificate> = embedded.iter().chain(options.certificates.iter()).collect();

    let path = build_path(signer, &pool, &options.trust_anchors);
    let Some(path) = path else {
        report.fail(
            Indication::Indeterminate,
            SubIndication::NoCertificateChainFound,
            "no chain from the signer certificate to a trust anchor",
        );
        return ChainOutcome::default();
    };
    report.chain = path.iter().map(x509::subject).collect();

    if !x509::allows_document_signing(signer) {
        report.fail(
            Indication::Indeterminate,
            SubIndication::ChainConstraintsFailure,
            "the signer certificate's key usage allows neither digitalSignature nor nonRepudiation",
        );
    }

    for (i, cert) in path.iter().enumerate() {
        if !x509::is_valid_at(cert, at) {
            let who = if i == 0 { "signer" } else { "CA" };
            let (indication, sub) = if proven {
                (Indication::TotalFailed, SubIndication::ExpiredNoPoe)
            } else {
                (Indication::Indeterminate, SubIndication::OutOfBoundsNoPoe)
            };
            report.fail(
                indication,
                sub,
                format!(
                    "{who} certificate {} is not valid at the signing time {signing_time}",
                    x509::subject(cert)
                ),
            );
        }
    }

    // Revocation: every certificate of the path but the anchor, against any CRL its issuer signed.
    for pair in path.windows(2) {
        let (cert, issuer) = (&pair[0], &pair[1]);
        for crl in options
            .crls
            .iter()
            .filter(|c| x509::crl_is_signed_by(c, issuer))
        {
            if let Some(revoked_at) = x509::revocation_time(crl, cert) {
                let revoked_at = OffsetDateTime::from(revoked_at);
                if proven && revoked_at > signing_time {
                    report.messages.push(format!(
                        "{} revoked at {revoked_at}, after the proven signing time",
                        x509::subject(cert)
                    ));
                } else if proven {
                    report.fail(
                        Indication::TotalFailed,
                        SubIndication::Revoked,
                        format!("{} was revoked at {revoked_at}", x509::subject(cert)),
                    );
                } else {
                    report.fail(
                        Indication::Indeterminate,
                        SubIndication::RevokedNoPoe,
                        format!(
                            "{} was revoked at {revoked_at} and no timestamp proves an earlier signature",
                            x509::subject(cert)
                        ),
                    );
                }
            }
        }
    }
    ChainOutcome { path }
}

/// A path signer → … → trust anchor, each certificate signed by the next.
fn build_path(
    signer: &Certificate,
    pool: &[&Certificate],
    anchors: &[Certificate],
) -> Option<Vec<Certificate>> {
    let mut path = vec![signer.clone()];
    // Bounded depth: a real chain is 2–4 long; the bound also stops loops in crafted pools.
    for _ in 0..8 {
        let last = path.last()?;
        if anchors.contains(last) {
            return Some(path);
        }
        if let Some(anchor) = anchors.iter().find(|a| x509::is_issued_by(last, a)) {
            path.push(anchor.clone());
            return Some(path);
        }
        let next = pool
            .iter()
            .find(|c| !path.contains(c) && x509::is_issued_by(last, c))?;
        path.push((*next).clone());
    }
    None
}
