//! Verification reports in the vocabulary of ETSI EN 319 102-1, and the checks common to every
//! format: signer certificate chain to trust anchors, key usage, validity at the signing time,
//! revocation from CRLs.
//!
//! A format's verifier parses its signatures, checks digests and signature values itself, then
//! calls [`validate_signer`] with the signer certificate and the best known signing time, and
//! builds one [`SignatureReport`] per signature.

mod chain;

pub use chain::{ChainOutcome, validate_signer};

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use x509_cert::Certificate;
use x509_cert::crl::CertificateList;

/// The main status of a signature (ETSI EN 319 102-1 § 5.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Indication {
    /// Every check passed.
    TotalPassed,
    /// A check proved the signature invalid.
    TotalFailed,
    /// The available information is not enough to decide.
    Indeterminate,
}

impl Indication {
    /// The `seing verify` exit code: 0 passed, 1 failed, 2 indeterminate.
    pub fn exit_code(self) -> u8 {
        match self {
            Self::TotalPassed => 0,
            Self::TotalFailed => 1,
            Self::Indeterminate => 2,
        }
    }
}

/// Sub-indications (ETSI EN 319 102-1 § 5.1.3, tables 5 and 6) that seing reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SubIndication {
    /// TOTAL_FAILED: the signature structure is malformed.
    FormatFailure,
    /// TOTAL_FAILED: a signed data object's digest does not match.
    HashFailure,
    /// TOTAL_FAILED: the signature value does not verify with the signer's key.
    SigCryptoFailure,
    /// TOTAL_FAILED: the signer certificate was revoked before the signing time (proved by a
    /// timestamp).
    Revoked,
    /// INDETERMINATE: the signer certificate is revoked and no proof of existence predates it.
    RevokedNoPoe,
    /// INDETERMINATE: the signing time is outside the certificate's validity and no proof of
    /// existence helps.
    OutOfBoundsNoPoe,
    /// TOTAL_FAILED: the signing time (proved by a timestamp) is after the certificate expired.
    ExpiredNoPoe,
    /// INDETERMINATE: no chain to a trust anchor.
    NoCertificateChainFound,
    /// INDETERMINATE: the signer certificate cannot be found.
    NoSignerCertificateFound,
    /// INDETERMINATE: the detached signed data is missing.
    SignedDataNotFound,
    /// INDETERMINATE: a constraint on the chain failed (e.g. key usage).
    ChainConstraintsFailure,
    /// TOTAL_FAILED / INDETERMINATE: a signature constraint failed (e.g. a timestamp imprint).
    SigConstraintsFailure,
    /// INDETERMINATE: an algorithm is not supported or too weak.
    CryptoConstraintsFailure,
    /// INDETERMINATE: the revocation status could not be established.
    TryLater,
}

/// The verdict on one signature.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignatureReport {
    /// Which signature of the file (PDF field name, XML Id, or "signer #n").
    pub id: String,
    /// The format ("CAdES", "PAdES", "XAdES", "PES").
    pub format: String,
    /// The baseline level found ("B-B", "B-T").
    pub level: Option<String>,
    /// The main status.
    pub indication: Indication,
    /// Why, when not passed.
    pub sub_indication: Option<SubIndication>,
    /// The signer's subject.
    pub signer: Option<String>,
    /// The claimed signing time (signed attribute, `/M`, SigningTime).
    #[serde(with = "time::serde::rfc3339::option")]
    pub claimed_signing_time: Option<OffsetDateTime>,
    /// The signature timestamp's genTime (level B-T).
    #[serde(with = "time::serde::rfc3339::option")]
    pub timestamp_time: Option<OffsetDateTime>,
    /// Subjects of the certificate chain from the signer to the trust anchor.
    pub chain: Vec<String>,
    /// Human-readable details of what was checked and what failed.
    pub messages: Vec<String>,
}

impl SignatureReport {
    /// A report with the given identity and nothing checked yet (TOTAL_PASSED until a check fails).
    pub fn new(id: impl Into<String>, format: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            format: format.into(),
            level: None,
            indication: Indication::TotalPassed,
            sub_indication: None,
            signer: None,
            claimed_signing_time: None,
            timestamp_time: None,
            chain: Vec::new(),
            messages: Vec::new(),
        }
    }

    /// Records a failure; the first TOTAL_FAILED wins over anything, then the first INDETERMINATE.
    pub fn fail(&mut self, indication: Indication, sub: SubIndication, message: impl Into<String>) {
        self.messages.push(message.into());
        let replace = matches!(
            (self.indication, indication),
            (Indication::TotalPassed, _) | (Indication::Indeterminate, Indication::TotalFailed)
        );
        if replace && indication != Indication::TotalPassed {
            self.indication = indication;
            self.sub_indication = Some(sub);
        }
    }
}

/// All signatures found in a file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerificationReport {
    /// The worst indication of all signatures (INDETERMINATE when there is none).
    pub indication: Indication,
    /// One report per signature, in file order.
    pub signatures: Vec<SignatureReport>,
}

impl VerificationReport {
    /// Builds the report and its overall indication.
    pub fn new(signatures: Vec<SignatureReport>) -> Self {
        let indication = if signatures.is_empty() {
            Indication::Indeterminate
        } else if signatures
            .iter()
            .any(|s| s.indication == Indication::TotalFailed)
        {
            Indication::TotalFailed
        } else if signatures
            .iter()
            .any(|s| s.indication == Indication::Indeterminate)
        {
            Indication::Indeterminate
        } else {
            Indication::TotalPassed
        };
        Self {
            indication,
            signatures,
        }
    }
}

/// What a verifier may use besides the signed file.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Trust anchors (root or intermediate CAs trusted as such).
    pub trust_anchors: Vec<Certificate>,
    /// Further certificates to build chains with.
    pub certificates: Vec<Certificate>,
    /// CRLs for revocation checks.
    pub crls: Vec<CertificateList>,
    /// The signed data of a detached signature.
    pub detached_data: Option<PathBuf>,
    /// Validation time when no timestamp proves an earlier one (default: now).
    pub validation_time: Option<OffsetDateTime>,
}
