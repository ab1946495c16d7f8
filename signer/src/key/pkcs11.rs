//! PKCS#11 keys (smart cards, USB tokens, HSMs, SoftHSM2), named by RFC 7512 URIs.
//!
//! `pkcs11:token=Mairie;object=signature-elu?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/pin`
//!
//! [`Pkcs11Key::open`] loads the module, finds the token, opens **one** session and logs in
//! **once**; the key then signs any number of digests (a whole batch) in that session. RSA keys
//! sign with `CKM_RSA_PKCS` over a DigestInfo built here, ECDSA keys with `CKM_ECDSA` over the
//! digest (SoftHSM2 has no `CKM_ECDSA_SHA256`), which returns raw `r‖s`.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use x509_cert::Certificate;
use x509_cert::der::Decode;

use super::{
    KeyAlgorithm, KeySource, Secret, SignatureValue, check_digest_length, pkcs1_digest_info_prefix,
};
use crate::digest::DigestAlgorithm;
use crate::error::{Error, Result};

/// The module SoftHSM2 installs on Debian, used when the URI names no `module-path`.
pub const DEFAULT_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// Where the PIN comes from.
#[derive(Clone)]
pub enum PinSource {
    /// `pin-value=` (tests only: it shows in process listings).
    Value(Secret),
    /// `pin-source=file:…`: the first line of a file.
    File(PathBuf),
}

impl fmt::Debug for PinSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Value(_) => f.write_str("Value(***)"),
            Self::File(p) => f.debug_tuple("File").field(p).finish(),
        }
    }
}

impl PinSource {
    fn read(&self) -> Result<Secret> {
        match self {
            Self::Value(s) => Ok(s.clone()),
            Self::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
                Ok(Secret::new(text.lines().next().unwrap_or_default()))
            }
        }
    }
}

/// A parsed RFC 7512 `pkcs11:` URI (the attributes seing uses).
#[derive(Clone, Debug, Default)]
pub struct Pkcs11Uri {
    /// `token=`: the token label.
    pub token: Option<String>,
    /// `serial=`: the token serial number.
    pub serial: Option<String>,
    /// `manufacturer=`: the token manufacturer.
    pub manufacturer: Option<String>,
    /// `model=`: the token model.
    pub model: Option<String>,
    /// `slot-id=`: the slot number.
    pub slot_id: Option<u64>,
    /// `object=`: the key (and certificate) label.
    pub object: Option<String>,
    /// `id=`: the key (and certificate) CKA_ID, percent-decoded bytes.
    pub id: Option<Vec<u8>>,
    /// `module-path=`: the PKCS#11 library.
    pub module_path: Option<PathBuf>,
    /// `pin-value=` or `pin-source=`.
    pub pin: Option<PinSource>,
}

fn percent_decode(s: &str) -> Result<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| Error::Pkcs11Uri(format!("bad percent-encoding in {s:?}")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn percent_decode_str(s: &str) -> Result<String> {
    String::from_utf8(percent_decode(s)?)
        .map_err(|_| Error::Pkcs11Uri(format!("{s:?} is not UTF-8")))
}

impl std::str::FromStr for Pkcs11Uri {
    type Err = Error;

    fn from_str(uri: &str) -> Result<Self> {
        let rest = uri
            .strip_prefix("pkcs11:")
            .ok_or_else(|| Error::Pkcs11Uri("it must start with \"pkcs11:\"".into()))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut out = Self::default();
        for attr in path.split(';').filter(|a| !a.is_empty()) {
            let (name, value) = attr
                .split_once('=')
                .ok_or_else(|| Error::Pkcs11Uri(format!("attribute {attr:?} has no value")))?;
            match name {
                "token" => out.token = Some(percent_decode_str(value)?),
                "serial" => out.serial = Some(percent_decode_str(value)?),
                "manufacturer" => out.manufacturer = Some(percent_decode_str(value)?),
                "model" => out.model = Some(percent_decode_str(value)?),
                "slot-id" => {
                    out.slot_id = Some(value.parse().map_err(|_| {
                        Error::Pkcs11Uri(format!("slot-id {value:?} is not a number"))
                    })?)
                }
                "object" => out.object = Some(percent_decode_str(value)?),
                "id" => out.id = Some(percent_decode(value)?),
                // Other path attributes (type, library-*) do not change which key we use.
                _ => {}
            }
        }
        for attr in query.split('&').filter(|a| !a.is_empty()) {
            let (name, value) = attr.split_once('=').ok_or_else(|| {
                Error::Pkcs11Uri(format!(
                    "query attribute {name_only:?} has no value",
                    name_only = attr.split('=').next().unwrap_or("")
                ))
            })?;
            match name {
                "module-path" => out.module_path = Some(PathBuf::from(percent_decode_str(value)?)),
                "pin-value" => {
                    out.pin = Some(PinSource::Value(Secret::new(percent_decode_str(value)?)))
                }
                "pin-source" => {
                    let v = percent_decode_str(value)?;
                    let path = v.strip_prefix("file:").unwrap_or(&v);
                    out.pin = Some(PinSource::File(PathBuf::from(path)));
                }
                _ => {}
            }
        }
        if out.object.is_none() && out.id.is_none() {
            return Err(Error::Pkcs11Uri(
                "it names no key: add object=… or id=…".into(),
            ));
        }
        Ok(out)
    }
}

impl Pkcs11Uri {
    /// The URI without any PIN, for messages and logs.
    pub fn display_safe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(t) = &self.token {
            parts.push(format!("token={t}"));
        }
        if let Some(s) = &self.serial {
            parts.push(format!("serial={s}"));
        }
        if let Some(o) = &self.object {
            parts.push(format!("object={o}"));
        }
        if let Some(id) = &self.id {
            let hex: String = id.iter().map(|b| format!("%{b:02x}")).collect();
            parts.push(format!("id={hex}"));
        }
        format!("pkcs11:{}", parts.join(";"))
    }

    fn object_template(&self, class: ObjectClass) -> Vec<Attribute> {
        let mut t = vec![Attribute::Class(class)];
        if let Some(label) = &self.object {
            t.push(Attribute::Label(label.as_bytes().to_vec()));
        }
        if let Some(id) = &self.id {
            t.push(Attribute::Id(id.clone()));
        }
        t
    }
}

/// Loaded modules, kept for the life of the process: `C_Finalize` on one handle would break
/// every other key opened on the same module.
fn module(path: &Path) -> Result<Pkcs11> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let mut modules = MODULES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(m) = modules.get(path) {
        return Ok(m.clone());
    }
    let fail = |reason: String| Error::Pkcs11Module {
        module: path.display().to_string(),
        reason,
    };
    let ctx = Pkcs11::new(path).map_err(|e| fail(e.to_string()))?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(fail(e.to_string())),
    }
    modules.insert(path.to_path_buf(), ctx.clone());
    Ok(ctx)
}

fn ck(operation: &'static str) -> impl Fn(CkError) -> Error {
    move |e| Error::Pkcs11 {
        operation,
        reason: e.to_string(),
    }
}

/// A private key on a PKCS#11 token, with an open, logged-in session.
pub struct Pkcs11Key {
    // cryptoki's Session is Send but not Sync.
    session: Mutex<Session>,
    key: ObjectHandle,
    certificate: Certificate,
    chain: Vec<Certificate>,
    label: String,
}

impl fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Key")
            .field("key", &self.label)
            .finish_non_exhaustive()
    }
}

impl Pkcs11Key {
    /// Loads the module, finds the token and key, logs in once, and reads the certificate from
    /// the token unless `certificate` is given.
    pub fn open(
        uri: &Pkcs11Uri,
        certificate: Option<Certificate>,
        chain: Vec<Certificate>,
    ) -> Result<Self> {
        let module_path = uri
            .module_path
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_MODULE));
        let ctx = module(&module_path)?;
        let safe = uri.display_safe();
        let slots = ctx.get_slots_with_token().map_err(ck("listing slots"))?;
        let mut found = None;
        for slot in slots {
            if uri.slot_id.is_some_and(|id| id != slot.id()) {
                continue;
            }
            let info = ctx.get_token_info(slot).map_err(ck("reading token info"))?;
            let matches = |want: &Option<String>, have: &str| {
                want.as_deref().is_none_or(|w| w == have.trim_end())
            };
            if matches(&uri.token, info.label())
                && matches(&uri.serial, info.serial_number())
                && matches(&uri.manufacturer, info.manufacturer_id())
                && matches(&uri.model, info.model())
            {
                found = Some((slot, info));
                break;
            }
        }
        let (slot, info) = found.ok_or_else(|| Error::TokenNotFound(safe.clone()))?;
        let token_label = info.label().trim_end().to_string();
        if info.user_pin_locked() {
            return Err(Error::PinLocked(token_label));
        }
        let session = ctx.open_ro_session(slot).map_err(ck("opening a session"))?;
        if info.login_required() {
            let pin = uri
                .pin
                .as_ref()
                .ok_or_else(|| {
                    Error::Pkcs11Uri(format!(
                        "token {token_label} needs a PIN: add pin-source=file:… or pin-value=…"
                    ))
                })?
                .read()?;
            let auth = AuthPin::from(pin.expose());
            match session.login(UserType::User, Some(&auth)) {
                Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
                Err(CkError::Pkcs11(RvError::PinIncorrect | RvError::PinLenRange, _)) => {
                    return Err(Error::WrongPin(token_label));
                }
                Err(CkError::Pkcs11(RvError::PinLocked, _)) => {
                    return Err(Error::PinLocked(token_label));
                }
                Err(e) => return Err(ck("login")(e)),
            }
        }
        let key = session
            .find_objects(&uri.object_template(ObjectClass::PRIVATE_KEY))
            .map_err(ck("searching the key"))?
            .into_iter()
            .next()
            .ok_or_else(|| Error::ObjectNotFound {
                kind: "private key",
                uri: safe.clone(),
            })?;
        let certificate = match certificate {
            Some(c) => c,
            None => read_certificate(&session, uri, &safe)?,
        };
        Ok(Self {
            session: Mutex::new(session),
            key,
            certificate,
            chain,
            label: safe,
        })
    }
}

fn read_certificate(session: &Session, uri: &Pkcs11Uri, safe: &str) -> Result<Certificate> {
    let handle = session
        .find_objects(&uri.object_template(ObjectClass::CERTIFICATE))
        .map_err(ck("searching the certificate"))?
        .into_iter()
        .next()
        .ok_or_else(|| Error::ObjectNotFound {
            kind: "certificate",
            uri: safe.to_string(),
        })?;
    let attrs = session
        .get_attributes(handle, &[AttributeType::Value])
        .map_err(ck("reading the certificate"))?;
    let der = attrs
        .into_iter()
        .find_map(|a| match a {
            Attribute::Value(v) => Some(v),
            _ => None,
        })
        .ok_or_else(|| Error::Certificate(format!("{safe}: certificate has no value")))?;
    Ok(Certificate::from_der(&der)?)
}

/// A certificate found on a token of a module.
#[derive(Debug, Clone)]
pub struct TokenCertificate {
    /// The token's label.
    pub token: String,
    /// The object's `CKA_LABEL`.
    pub label: String,
    /// The object's `CKA_ID` (the key pair shares it).
    pub id: Vec<u8>,
    /// The certificate.
    pub certificate: Certificate,
}

impl TokenCertificate {
    /// The URI of the key beside this certificate on `module` (without PIN).
    pub fn key_uri(&self, module: &Path) -> Pkcs11Uri {
        Pkcs11Uri {
            token: Some(self.token.clone()),
            id: Some(self.id.clone()),
            module_path: Some(module.to_path_buf()),
            ..Pkcs11Uri::default()
        }
    }
}

/// Lists the certificates on every token of a module (public objects: no login, no PIN).
pub fn list_certificates(module_path: &Path) -> Result<Vec<TokenCertificate>> {
    let ctx = module(module_path)?;
    let mut out = Vec::new();
    for slot in ctx.get_slots_with_token().map_err(ck("listing slots"))? {
        let info = ctx.get_token_info(slot).map_err(ck("reading token info"))?;
        // SoftHSM2 and some readers show an empty, uninitialized token in a spare slot.
        if !info.token_initialized() {
            continue;
        }
        let session = ctx.open_ro_session(slot).map_err(ck("opening a session"))?;
        let handles = session
            .find_objects(&[Attribute::Class(ObjectClass::CERTIFICATE)])
            .map_err(ck("searching certificates"))?;
        for handle in handles {
            let attrs = session
                .get_attributes(
                    handle,
                    &[
                        AttributeType::Label,
                        AttributeType::Id,
                        AttributeType::Value,
                    ],
                )
                .map_err(ck("reading a certificate"))?;
            let (mut label, mut id, mut value) = (String::new(), Vec::new(), None);
            for attr in attrs {
                match attr {
                    Attribute::Label(l) => label = String::from_utf8_lossy(&l).into_owned(),
                    Attribute::Id(i) => id = i,
                    Attribute::Value(v) => value = Some(v),
                    _ => {}
                }
            }
            // Objects that are not X.509 certificates are not signing certificates: skip them.
            if let Some(certificate) = value.and_then(|v| Certificate::from_der(&v).ok()) {
                out.push(TokenCertificate {
                    token: info.label().trim_end().to_string(),
                    label,
                    id,
                    certificate,
                });
            }
        }
    }
    Ok(out)
}

impl KeySource for Pkcs11Key {
    fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    fn chain(&self) -> &[Certificate] {
        &self.chain
    }

    fn sign_digest(&self, algorithm: DigestAlgorithm, digest: &[u8]) -> Result<SignatureValue> {
        check_digest_length(algorithm, digest)?;
        let session = self.session.lock().unwrap_or_else(|e| e.into_inner());
        let value = match self.algorithm()? {
            KeyAlgorithm::Rsa => {
                let mut info = pkcs1_digest_info_prefix(algorithm).into_vec();
                info.extend_from_slice(digest);
                session
                    .sign(&Mechanism::RsaPkcs, self.key, &info)
                    .map_err(ck("RSA signing"))?
            }
            KeyAlgorithm::EcdsaP256 => session
                .sign(&Mechanism::Ecdsa, self.key, digest)
                .map_err(ck("ECDSA signing"))?,
        };
        Ok(SignatureValue(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc7512_uris_and_hides_the_pin() {
        let uri: Pkcs11Uri = "pkcs11:token=Mairie%20X;id=%01?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=1234"
            .parse()
            .unwrap();
        assert_eq!(uri.token.as_deref(), Some("Mairie X"));
        assert_eq!(uri.id.as_deref(), Some(&[1u8][..]));
        assert_eq!(
            uri.module_path.as_deref(),
            Some(Path::new("/usr/lib/softhsm/libsofthsm2.so"))
        );
        assert!(!format!("{uri:?}").contains("1234"));
        assert!(!uri.display_safe().contains("1234"));
        let file: Pkcs11Uri = "pkcs11:object=elu?pin-source=file:/run/pin"
            .parse()
            .unwrap();
        assert!(matches!(file.pin, Some(PinSource::File(p)) if p == Path::new("/run/pin")));
    }

    #[test]
    fn rejects_uris_without_a_key() {
        assert!("pkcs11:token=x".parse::<Pkcs11Uri>().is_err());
        assert!("file:foo".parse::<Pkcs11Uri>().is_err());
        assert!("pkcs11:id=%zz".parse::<Pkcs11Uri>().is_err());
    }

    #[test]
    fn a_module_that_does_not_load_is_a_clear_error() {
        let uri: Pkcs11Uri = "pkcs11:object=x?module-path=/nonexistent/libnothing.so&pin-value=1"
            .parse()
            .unwrap();
        let err = Pkcs11Key::open(&uri, None, vec![]).unwrap_err();
        assert!(matches!(err, Error::Pkcs11Module { .. }), "{err}");
        assert!(err.to_string().contains("/nonexistent/libnothing.so"));
    }
}
