//! TLS of the HTTP transports (S²LOW, the archive system): the client certificate seing
//! presents, the CAs it trusts for the server, and what a failed handshake means in words an
//! operator can act on.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

use crate::{Error, Result};

/// The client certificate and its private key, as PEM files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientIdentity {
    /// PEM file with the certificate, then its chain.
    pub certificate: PathBuf,
    /// PEM file with the unencrypted private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

fn read_pem(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

fn certificates(path: &Path) -> Result<Vec<Certificate<'static>>> {
    let pem = read_pem(path)?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => {
                return Err(Error::Format(format!(
                    "{} : PEM illisible ({e})",
                    path.display()
                )));
            }
        }
    }
    if certs.is_empty() {
        return Err(Error::Format(format!(
            "{} : aucun certificat",
            path.display()
        )));
    }
    Ok(certs)
}

/// An HTTP agent presenting `identity` and trusting `server_ca` (the public web roots when
/// absent), with a time limit per call; answers of any status are returned, not errors. Reads
/// the files now, so a bad file is reported here.
pub(crate) fn agent(
    identity: Option<&ClientIdentity>,
    server_ca: Option<&Path>,
    timeout: Duration,
) -> Result<ureq::Agent> {
    let mut tls = TlsConfig::builder();
    if let Some(identity) = identity {
        let chain = certificates(&identity.certificate)?;
        let key_pem = read_pem(&identity.key)?;
        let key = PrivateKey::from_pem(&key_pem).map_err(|e| {
            Error::Format(format!(
                "{} : clé privée illisible ({e})",
                identity.key.display()
            ))
        })?;
        tls = tls.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
    }
    if let Some(ca) = server_ca {
        tls = tls.root_certs(RootCerts::new_with_certs(&certificates(ca)?));
    }
    Ok(ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .tls_config(tls.build())
            .timeout_global(Some(timeout.max(Duration::from_secs(1))))
            .http_status_as_error(false)
            .build(),
    ))
}

/// What a failed TLS exchange with `peer` (« S²LOW », « le service d'archives ») means, when
/// the error says: the peer refused the client certificate (or got none), or its own
/// certificate is not trusted. `None` for any other error.
pub(crate) fn problem(
    error: &ureq::Error,
    peer: &str,
    has_identity: bool,
    https: bool,
) -> Option<String> {
    use rustls::AlertDescription as Alert;
    let tls = match error {
        ureq::Error::Rustls(e) => Some(e),
        ureq::Error::Io(e) => e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()),
        _ => None,
    };
    let refused = |what: &str| {
        if has_identity {
            format!(
                "connexion TLS refusée par {peer} ({what}) : le certificat client configuré (« identity ») n'est pas accepté"
            )
        } else {
            format!(
                "connexion TLS refusée par {peer} ({what}) : aucun certificat client n'est configuré (« identity ») et {peer} en exige un"
            )
        }
    };
    match tls {
        Some(rustls::Error::AlertReceived(
            alert @ (Alert::CertificateRequired
            | Alert::BadCertificate
            | Alert::UnsupportedCertificate
            | Alert::CertificateRevoked
            | Alert::CertificateExpired
            | Alert::CertificateUnknown
            | Alert::UnknownCA
            | Alert::AccessDenied
            | Alert::HandshakeFailure),
        )) => Some(refused(&format!("alerte TLS {alert:?}"))),
        Some(rustls::Error::InvalidCertificate(reason)) => Some(format!(
            "certificat du serveur de {peer} refusé ({reason:?}) : vérifier « server_ca » (les AC qui signent le certificat du serveur) et l'adresse"
        )),
        Some(_) => None,
        // The peer may close the connection before its alert can be read.
        None => match error {
            ureq::Error::Io(e)
                if https
                    && !has_identity
                    && matches!(
                        e.kind(),
                        std::io::ErrorKind::ConnectionReset
                            | std::io::ErrorKind::UnexpectedEof
                            | std::io::ErrorKind::BrokenPipe
                    ) =>
            {
                Some(refused(&format!("connexion coupée : {e}")))
            }
            _ => None,
        },
    }
}

/// The rustls error somewhere in `error`'s chain, looking inside I/O errors too (their
/// `source` skips the error they wrap).
pub(crate) fn rustls_error<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    let mut current = Some(error);
    while let Some(e) = current {
        let inner = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|inner| inner as &(dyn std::error::Error + 'static));
        if let Some(tls) = [Some(e), inner]
            .into_iter()
            .flatten()
            .find_map(|e| e.downcast_ref::<rustls::Error>())
        {
            return Some(tls);
        }
        current = e.source();
    }
    None
}
