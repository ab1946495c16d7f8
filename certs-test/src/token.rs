//! Isolated SoftHSM2 tokens whose keys are generated on the token, with certificates from the
//! test PKI stored next to them (same CKA_ID and CKA_LABEL).
//!
//! SoftHSM2 reads `SOFTHSM2_CONF` from the environment once, at `C_Initialize`, and the loaded
//! module is a per-process singleton. So:
//! - provisioning never touches this process's environment: every step runs `softhsm2-util` or
//!   `pkcs11-tool` as a child process with `SOFTHSM2_CONF` in the child's environment only, and
//!   the private keys are generated inside the token by `C_GenerateKeyPair` (they never leave it);
//!   tests of any crate can therefore create tokens in parallel, one folder each;
//! - a process that loads the module itself (cryptoki) must have `SOFTHSM2_CONF` pointing at the
//!   token's [`TestToken::conf`] before it loads the module, and can then use only that one
//!   token configuration for its whole life (e.g. keep the [`TestToken`] in a `OnceLock`, or run
//!   the code under test as a subprocess with the variable in its environment).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use der::pem::LineEnding;
use der::{Decode, Encode, EncodePem};
use serde::Serialize;
use spki::SubjectPublicKeyInfoOwned;

use crate::Error;
use crate::command::run;
use crate::files::{create_dir, write_atomic};
use crate::pki::{self, Ca, Issuer, TestPki, Usage};

/// The SoftHSM2 PKCS#11 module on Debian.
pub const MODULE_PATH: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// Security Officer PIN of every test token (only used to initialise it).
pub const SO_PIN: &str = "12345678";

/// A key pair the token gets: label, CKA_ID (hex), pkcs11-tool key type, CA, usage, subject.
struct TokenObject {
    label: &'static str,
    id: &'static str,
    key_type: &'static str,
    ca: Ca,
    usage: Usage,
    common_name: &'static str,
    serial: &'static str,
}

const OBJECTS: [TokenObject; 3] = [
    TokenObject {
        label: "elu-rsa2048",
        id: "01",
        key_type: "rsa:2048",
        ca: Ca::Personnes,
        usage: Usage::Elu,
        common_name: "Jeanne Martin",
        serial: "ELU-TOKEN-0001",
    },
    TokenObject {
        label: "elu-p256",
        id: "02",
        key_type: "EC:prime256v1",
        ca: Ca::Personnes,
        usage: Usage::Elu,
        common_name: "Camille Bernard",
        serial: "ELU-TOKEN-0003",
    },
    TokenObject {
        label: "cachet",
        id: "03",
        key_type: "rsa:2048",
        ca: Ca::Cachets,
        usage: Usage::Cachet,
        common_name: "Cachet serveur Commune de Démo",
        serial: "CACHET-TOKEN-0001",
    },
];

/// Labels of the key pairs (and certificates) on every test token.
pub const OBJECT_LABELS: [&str; 3] = ["elu-rsa2048", "elu-p256", "cachet"];

/// A provisioned SoftHSM2 token in its own folder.
#[derive(Debug, Clone, Serialize)]
pub struct TestToken {
    /// The folder holding the configuration, the token store and the certificates.
    pub dir: PathBuf,
    /// `dir/softhsm2.conf`: put it in `SOFTHSM2_CONF` of whatever loads the module.
    pub conf: PathBuf,
    /// The PKCS#11 module ([`MODULE_PATH`]).
    pub module: PathBuf,
    /// The token label.
    pub label: String,
    /// The user PIN.
    pub pin: String,
}

/// One object of `token.json`.
#[derive(Serialize)]
struct ObjectInfo {
    id: String,
    label: String,
    uri: String,
    certificate: PathBuf,
}

/// The content of `token.json`.
#[derive(Serialize)]
struct TokenInfo<'a> {
    module: &'a Path,
    conf: &'a Path,
    label: &'a str,
    objects: Vec<ObjectInfo>,
}

impl TestToken {
    /// RFC 7512 URI of `object` with the module path and the PIN, e.g.
    /// `pkcs11:token=Mairie;object=elu-rsa2048?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=1234`.
    pub fn uri(&self, object: &str) -> String {
        format!(
            "pkcs11:token={};object={}?module-path={}&pin-value={}",
            pct_encode(&self.label, PATH_EXTRA),
            pct_encode(object, PATH_EXTRA),
            pct_encode(&self.module.to_string_lossy(), QUERY_EXTRA),
            pct_encode(&self.pin, QUERY_EXTRA),
        )
    }

    /// `dir/<object>.cert.pem`, the certificate stored on the token for `object`.
    pub fn cert(&self, object: &str) -> PathBuf {
        self.dir.join(format!("{object}.cert.pem"))
    }

    /// `dir/token.json`.
    pub fn json_path(&self) -> PathBuf {
        self.dir.join("token.json")
    }

    /// The `token.json` document.
    pub fn to_json(&self) -> Result<String, Error> {
        let info = TokenInfo {
            module: &self.module,
            conf: &self.conf,
            label: &self.label,
            objects: OBJECTS
                .iter()
                .map(|o| ObjectInfo {
                    id: o.id.to_owned(),
                    label: o.label.to_owned(),
                    uri: self.uri(o.label),
                    certificate: self.cert(o.label),
                })
                .collect(),
        };
        serde_json::to_string_pretty(&info).map_err(|e| Error::Invalid(format!("token.json: {e}")))
    }
}

/// Characters left as they are in URI path attribute values besides RFC 3986 unreserved ones.
const PATH_EXTRA: &str = "";
/// Characters left as they are in URI query attribute values besides unreserved ones.
const QUERY_EXTRA: &str = "/:";

/// Percent-encodes every byte of `s` outside RFC 3986 unreserved characters and `extra`
/// (encoding more than RFC 7512 requires is always allowed).
fn pct_encode(s: &str, extra: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || extra.as_bytes().contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Creates a token labelled `label` with user PIN `pin` in `dir` (which must not already hold
/// one), generates its three key pairs on the token, and stores their certificates issued by
/// `pki`'s CAs. Needs `softhsm2-util` and `pkcs11-tool` (opensc).
pub fn create(dir: &Path, label: &str, pin: &str, pki: &TestPki) -> Result<TestToken, Error> {
    if label.is_empty() || label.len() > 32 {
        return Err(Error::Invalid("a token label has 1 to 32 bytes".into()));
    }
    if pin.len() < 4 {
        return Err(Error::Invalid(
            "SoftHSM2 needs a PIN of 4 characters or more".into(),
        ));
    }
    let tokens = dir.join("tokens");
    if tokens.exists() {
        return Err(Error::Invalid(format!(
            "{} already holds a token store",
            dir.display()
        )));
    }
    let dir_existed = dir.exists();
    create_dir(&tokens)?;
    let token = TestToken {
        dir: dir.to_path_buf(),
        conf: dir.join("softhsm2.conf"),
        module: PathBuf::from(MODULE_PATH),
        label: label.to_owned(),
        pin: pin.to_owned(),
    };
    match provision(&token, &tokens, pki) {
        Ok(()) => Ok(token),
        Err(e) => {
            // Leave the folder as it was: no half-made token.
            if !dir_existed {
                let _ = std::fs::remove_dir_all(dir);
                return Err(e);
            }
            let _ = std::fs::remove_dir_all(&tokens);
            for f in
                [token.conf.clone(), token.json_path()]
                    .into_iter()
                    .chain(OBJECTS.iter().flat_map(|o| {
                        [
                            token.cert(o.label),
                            scratch(dir, o.label, "pub.der"),
                            scratch(dir, o.label, "cert.der"),
                        ]
                    }))
            {
                let _ = std::fs::remove_file(f);
            }
            Err(e)
        }
    }
}

/// Initialises the token and fills it (see [`create`]).
fn provision(token: &TestToken, tokens: &Path, pki: &TestPki) -> Result<(), Error> {
    let (dir, label, pin) = (
        token.dir.as_path(),
        token.label.as_str(),
        token.pin.as_str(),
    );
    let conf = format!(
        "# SoftHSM2 configuration of a seing test token (seing-certs-test).\n\
         directories.tokendir = {}\n\
         objectstore.backend = file\n\
         log.level = ERROR\n\
         slots.removable = false\n",
        tokens.display()
    );
    write_atomic(&token.conf, conf.as_bytes())?;
    let conf = Some(token.conf.as_path());
    run(
        "softhsm2-util",
        [
            "--init-token",
            "--free",
            "--label",
            label,
            "--pin",
            pin,
            "--so-pin",
            SO_PIN,
        ],
        conf,
    )?;

    for o in &OBJECTS {
        let issuer = Issuer::load(pki, o.ca)?;
        pkcs11_tool(
            token,
            &[
                "--login",
                "--pin",
                pin,
                "--keypairgen",
                "--key-type",
                o.key_type,
                "--usage-sign",
                "--id",
                o.id,
                "--label",
                o.label,
            ],
        )?;
        let pub_path = scratch(dir, o.label, "pub.der");
        pkcs11_tool(
            token,
            &[
                "--read-object",
                "--type",
                "pubkey",
                "--id",
                o.id,
                "--output-file",
                &pub_path.to_string_lossy(),
            ],
        )?;
        let spki = SubjectPublicKeyInfoOwned::from_der(&crate::files::read(&pub_path)?)?;
        let _ = std::fs::remove_file(&pub_path);
        let cert = issuer.issue(
            o.usage,
            pki::subject(o.common_name, o.serial)?,
            spki,
            pki::validity_from_yesterday(pki::LEAF_VALIDITY)?,
        )?;
        let der_path = scratch(dir, o.label, "cert.der");
        write_atomic(&der_path, &cert.to_der()?)?;
        pkcs11_tool(
            token,
            &[
                "--login",
                "--pin",
                pin,
                "--write-object",
                &der_path.to_string_lossy(),
                "--type",
                "cert",
                "--id",
                o.id,
                "--label",
                o.label,
            ],
        )?;
        let _ = std::fs::remove_file(&der_path);
        write_atomic(
            &token.cert(o.label),
            cert.to_pem(LineEnding::LF)?.as_bytes(),
        )?;
    }
    write_atomic(&token.json_path(), token.to_json()?.as_bytes())
}

/// A file passed to or from pkcs11-tool during provisioning, removed afterwards.
fn scratch(dir: &Path, label: &str, ext: &str) -> PathBuf {
    dir.join(format!("{label}.{ext}"))
}

/// Runs pkcs11-tool on `token`'s module and token, with its configuration in the child's env.
fn pkcs11_tool(token: &TestToken, args: &[&str]) -> Result<Vec<u8>, Error> {
    let module = token.module.to_string_lossy();
    let mut all = vec!["--module", &*module, "--token-label", &token.label];
    all.extend_from_slice(args);
    run("pkcs11-tool", all, Some(&token.conf))
}
