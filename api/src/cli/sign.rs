//! `seing sign` and `seing sign-batch`: sign files with a PKCS#11 token or a software key.
//!
//! Each profile is one arm of [`sign_one`] and [`sign_many`]; a new profile adds a [`Profile`]
//! variant, its options to [`SignOptions`], and those two arms.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use seing_signer::cades::{Cades, CadesRequest, Packaging};
use seing_signer::key::{self, KeySource, KeySpec, Secret};
use seing_signer::model::{self, BatchItemReport, Document, Level, SignatureFormat};
use seing_signer::pades::{Pades, PadesRequest, Stamp};
use seing_signer::pes::{Pes, PesRequest};
use seing_signer::xades::format::{Xades, XadesRequest};

/// The signature profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Profile {
    /// CAdES (CMS), `.p7s` detached or `.p7m` enveloping.
    Cades,
    /// XAdES 1.3.2, enveloped in the XML document or detached (`--detached`).
    Xades,
    /// PES V2 (Hélios): one XAdES-EPES signature per bordereau.
    Pes,
    /// PAdES (PDF), an incremental update of the PDF.
    Pades,
}

/// The baseline level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LevelArg {
    /// Basic signature.
    #[default]
    #[value(name = "B-B")]
    BB,
    /// With a signature timestamp (needs `--tsa`).
    #[value(name = "B-T")]
    BT,
}

impl From<LevelArg> for Level {
    fn from(l: LevelArg) -> Self {
        match l {
            LevelArg::BB => Level::BB,
            LevelArg::BT => Level::BT,
        }
    }
}

/// Where the key comes from (exactly one of `--key`, `--p12`, `--key-pem`).
#[derive(Args, Clone)]
pub struct KeyArgs {
    /// PKCS#11 key as an RFC 7512 URI (`pkcs11:token=…;object=…?module-path=…&pin-source=file:…`).
    #[arg(long, value_name = "PKCS11_URI", conflicts_with_all = ["p12", "key_pem"])]
    pub key: Option<String>,
    /// PKCS#12 file holding the key and certificate.
    #[arg(
        long,
        value_name = "FILE",
        requires = "password",
        conflicts_with = "key_pem"
    )]
    pub p12: Option<PathBuf>,
    /// Password of the PKCS#12 file.
    #[arg(long, value_name = "PW")]
    pub password: Option<String>,
    /// PEM private key (with `--cert-pem`).
    #[arg(long, value_name = "FILE", requires = "cert_pem")]
    pub key_pem: Option<PathBuf>,
    /// PEM certificate (with `--key-pem`; with `--key`, replaces the token's certificate).
    #[arg(long, value_name = "FILE")]
    pub cert_pem: Option<PathBuf>,
    /// PEM file of intermediate CA certificates to embed.
    #[arg(long, value_name = "PEM_FILE")]
    pub chain: Option<PathBuf>,
}

impl fmt::Debug for KeyArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Neither the password nor a pin-value in the URI may reach a log.
        let uri = self
            .key
            .as_deref()
            .map(|u| u.split('?').next().unwrap_or_default().to_string());
        f.debug_struct("KeyArgs")
            .field("key", &uri)
            .field("p12", &self.p12)
            .field("key_pem", &self.key_pem)
            .field("cert_pem", &self.cert_pem)
            .field("chain", &self.chain)
            .finish_non_exhaustive()
    }
}

impl KeyArgs {
    /// Opens the key (for PKCS#11: one session, one login).
    pub fn open(&self) -> anyhow::Result<Box<dyn KeySource>> {
        let chain = match &self.chain {
            Some(p) => seing_signer::x509::read_certificates(p)?,
            None => Vec::new(),
        };
        let spec = if let Some(uri) = &self.key {
            KeySpec::Pkcs11 {
                uri: uri.parse()?,
                certificate: self.cert_pem.clone(),
            }
        } else if let Some(p12) = &self.p12 {
            KeySpec::Pkcs12 {
                path: p12.clone(),
                password: Secret::new(self.password.clone().unwrap_or_default()),
            }
        } else if let (Some(k), Some(c)) = (&self.key_pem, &self.cert_pem) {
            KeySpec::Pem {
                key: k.clone(),
                certificate: c.clone(),
            }
        } else {
            bail!(
                "aucune clé : indiquez --key PKCS11_URI, --p12 FICHIER --password MDP, ou --key-pem FICHIER --cert-pem FICHIER"
            );
        };
        Ok(key::open(&spec, chain)?)
    }
}

/// A visible stamp position: page (from 1) and bottom-left corner in PDF points.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Visible {
    /// Page number, from 1.
    pub page: u32,
    /// X in points from the left.
    pub x: f32,
    /// Y in points from the bottom.
    pub y: f32,
}

impl std::str::FromStr for Visible {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        let [page, x, y] = parts[..] else {
            return Err("attendu PAGE,X,Y (par exemple 1,50,50)".into());
        };
        let page: u32 = page
            .parse()
            .map_err(|_| format!("page {page:?} invalide"))?;
        if page == 0 {
            return Err("les pages sont numérotées à partir de 1".into());
        }
        Ok(Self {
            page,
            x: x.parse().map_err(|_| format!("X {x:?} invalide"))?,
            y: y.parse().map_err(|_| format!("Y {y:?} invalide"))?,
        })
    }
}

/// Options common to `sign` and `sign-batch`.
#[derive(Debug, Args, Clone)]
pub struct SignOptions {
    /// Signature profile.
    #[arg(long, value_enum)]
    pub profile: Profile,
    /// Baseline level.
    #[arg(long, value_enum, default_value = "B-B")]
    pub level: LevelArg,
    /// RFC 3161 timestamp authority URL (required for B-T).
    #[arg(long, value_name = "URL")]
    pub tsa: Option<String>,
    /// CAdES: detached signature (`.p7s`) instead of enveloping.
    #[arg(long)]
    pub detached: bool,
    /// PAdES: a visible stamp at PAGE,X,Y (points from the bottom-left corner).
    #[arg(long, value_name = "PAGE,X,Y")]
    pub visible: Option<Visible>,
    /// XAdES and PES options.
    #[command(flatten)]
    pub xml: super::pes::XmlSignArgs,
}

impl SignOptions {
    fn check(&self) -> anyhow::Result<()> {
        if self.level == LevelArg::BT && self.tsa.is_none() {
            bail!("le niveau B-T demande une autorité d'horodatage : --tsa URL");
        }
        if self.visible.is_some() && self.profile != Profile::Pades {
            bail!("--visible ne concerne que le profil pades");
        }
        if self.detached && !matches!(self.profile, Profile::Cades | Profile::Xades) {
            bail!("--detached ne concerne que le profil cades");
        }
        Ok(())
    }

    fn xades(&self) -> seing_signer::error::Result<XadesRequest> {
        self.xml
            .xades_request(self.detached, self.level.into(), self.tsa.clone())
            .map_err(|e| seing_signer::error::Error::Unsupported(format!("{e:#}")))
    }

    fn pes(&self) -> seing_signer::error::Result<PesRequest> {
        if self.level == LevelArg::BT {
            return Err(seing_signer::error::Error::Unsupported(
                "le profil pes produit des signatures B-B (XAdES 1.1.1)".into(),
            ));
        }
        self.xml
            .pes_request()
            .map_err(|e| seing_signer::error::Error::Unsupported(format!("{e:#}")))
    }

    fn cades(&self) -> CadesRequest {
        CadesRequest {
            level: self.level.into(),
            packaging: if self.detached {
                Packaging::Detached
            } else {
                Packaging::Enveloping
            },
            tsa_url: self.tsa.clone(),
            ..Default::default()
        }
    }

    fn pades(&self) -> PadesRequest {
        PadesRequest {
            level: self.level.into(),
            tsa_url: self.tsa.clone(),
            stamp: self.visible.map(|v| Stamp {
                page: v.page,
                x: v.x,
                y: v.y,
            }),
            ..Default::default()
        }
    }

    /// The output file name for `input` in a batch.
    fn output_name(&self, input: &Path) -> anyhow::Result<String> {
        let name = input
            .file_name()
            .with_context(|| format!("{} n'est pas un fichier", input.display()))?
            .to_string_lossy()
            .into_owned();
        Ok(match self.profile {
            Profile::Cades if self.detached => format!("{name}.p7s"),
            Profile::Cades => format!("{name}.p7m"),
            Profile::Xades if self.detached => format!("{name}.xades.xml"),
            Profile::Xades | Profile::Pes => name,
            Profile::Pades => name,
        })
    }
}

/// `seing sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// Profile and level options.
    #[command(flatten)]
    pub options: SignOptions,
    /// The key.
    #[command(flatten)]
    pub key: KeyArgs,
    /// Output file.
    #[arg(long, value_name = "OUT")]
    pub out: PathBuf,
    /// The document to sign.
    pub input: PathBuf,
}

/// `seing sign-batch`.
#[derive(Debug, Args)]
pub struct SignBatchArgs {
    /// Profile and level options.
    #[command(flatten)]
    pub options: SignOptions,
    /// The key (one login for the whole batch).
    #[command(flatten)]
    pub key: KeyArgs,
    /// Output folder (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out_dir: PathBuf,
    /// The documents to sign.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
}

/// Writes `bytes` to `path` through a temporary file in the same folder, renamed at the end,
/// so that a failure never leaves a half-written output.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("{} n'est pas un nom de fichier", path.display()))?;
    let tmp = path.with_file_name(format!(
        ".{}.seing-{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("écriture de {}", path.display()));
    }
    Ok(())
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Signs one document with the profile asked.
fn sign_one(
    options: &SignOptions,
    key: &dyn KeySource,
    input: &Path,
) -> seing_signer::error::Result<Vec<u8>> {
    let document = Document::File(input.to_path_buf());
    match options.profile {
        Profile::Cades => model::sign_local(&Cades, &document, &options.cades(), key),
        Profile::Xades => model::sign_local(&Xades, &document, &options.xades()?, key),
        Profile::Pes => {
            super::pes::sign_file(key, input, &options.pes()?, options.xml.schemas.as_deref())
        }
        Profile::Pades => model::sign_local(&Pades, &document, &options.pades(), key),
    }
}

/// Signs many documents with the profile asked, one item report each.
fn sign_many(
    options: &SignOptions,
    key: &dyn KeySource,
    documents: Vec<(String, Document)>,
    sink: impl FnMut(&str, Vec<u8>) -> seing_signer::error::Result<Option<String>>,
) -> Vec<BatchItemReport> {
    fn run<F: SignatureFormat>(
        format: &F,
        request: &F::Request,
        key: &dyn KeySource,
        documents: Vec<(String, Document)>,
        sink: impl FnMut(&str, Vec<u8>) -> seing_signer::error::Result<Option<String>>,
    ) -> Vec<BatchItemReport> {
        model::sign_batch(format, documents, request, key, sink)
    }
    match options.profile {
        Profile::Cades => run(&Cades, &options.cades(), key, documents, sink),
        Profile::Xades => match options.xades() {
            Ok(request) => run(&Xades, &request, key, documents, sink),
            Err(e) => all_failed(documents, &e),
        },
        Profile::Pes => match options.pes() {
            Ok(request) => run(&Pes, &request, key, documents, sink),
            Err(e) => all_failed(documents, &e),
        },
        Profile::Pades => run(&Pades, &options.pades(), key, documents, sink),
    }
}

/// Runs `seing sign`.
pub fn run_sign(args: SignArgs) -> anyhow::Result<ExitCode> {
    args.options.check()?;
    if !args.input.is_file() {
        bail!("{} : fichier introuvable", args.input.display());
    }
    if same_file(&args.input, &args.out) {
        bail!("--out ne peut pas être le fichier d'entrée");
    }
    let key = args.key.open()?;
    let signed = sign_one(&args.options, key.as_ref(), &args.input)?;
    write_atomically(&args.out, &signed)?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `seing sign-batch`: one JSON line per input on stdout; success iff all were signed.
pub fn run_sign_batch(args: SignBatchArgs) -> anyhow::Result<ExitCode> {
    args.options.check()?;
    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("création de {}", args.out_dir.display()))?;
    let key = args.key.open()?;
    let mut documents = Vec::new();
    let mut targets = std::collections::HashMap::new();
    let mut early = Vec::new();
    for input in &args.inputs {
        let name = input.display().to_string();
        match args.options.output_name(input) {
            Ok(out) => {
                let out = args.out_dir.join(out);
                if same_file(input, &out) {
                    early.push(failed(&name, "la sortie écraserait l'entrée"));
                    continue;
                }
                targets.insert(name.clone(), out);
                documents.push((name, Document::File(input.clone())));
            }
            Err(e) => early.push(failed(&name, &e.to_string())),
        }
    }
    let mut reports = sign_many(&args.options, key.as_ref(), documents, |name, bytes| {
        let out = &targets[name];
        write_atomically(out, &bytes).map_err(|e| {
            seing_signer::error::Error::io(out, std::io::Error::other(format!("{e:#}")))
        })?;
        Ok(Some(out.display().to_string()))
    });
    reports.extend(early);
    // Report in the order the inputs were given.
    let order: Vec<String> = args
        .inputs
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    reports.sort_by_key(|r| order.iter().position(|o| *o == r.input));
    let mut stdout = std::io::stdout().lock();
    let mut all = true;
    for r in &reports {
        all &= r.status == model::BatchStatus::Signed;
        writeln!(stdout, "{}", serde_json::to_string(r)?)?;
    }
    Ok(if all {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn all_failed(
    documents: Vec<(String, Document)>,
    error: &seing_signer::error::Error,
) -> Vec<BatchItemReport> {
    documents
        .into_iter()
        .map(|(name, _)| failed(&name, &error.to_string()))
        .collect()
}

fn failed(input: &str, error: &str) -> BatchItemReport {
    BatchItemReport {
        input: input.to_string(),
        output: None,
        status: model::BatchStatus::Failed,
        error: Some(error.to_string()),
    }
}
