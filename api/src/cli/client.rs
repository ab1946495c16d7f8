//! `seing client`: the signer's side of the REST API from a terminal.
//!
//! `seing client batch-sign` lists the dossiers waiting for the caller's signature, opens the
//! PKCS#11 key once (one PIN, one login), prepares a two-phase batch with the token's
//! certificate chain, signs every digest on the token and submits the values, with a progress
//! bar on stderr and one result line per dossier on stdout.

use std::fmt;
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use clap::{Args, Subcommand};
use der::Encode as _;
use seing_signer::digest::DigestAlgorithm;
use seing_signer::key::pkcs11::{PinSource, Pkcs11Uri};
use seing_signer::key::{self, KeySpec, Secret};
use seing_signer::model::CertificateChain;
use serde_json::{Value, json};

/// `seing client`.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ClientCommand,
}

/// The subcommands of `seing client`.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Sign the dossiers waiting at your desk with a PKCS#11 token, one PIN for all.
    BatchSign(BatchSignArgs),
}

/// `seing client batch-sign`.
#[derive(Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["all", "dossier"])))]
pub struct BatchSignArgs {
    /// The seing service, e.g. `https://parapheur.example.fr`.
    #[arg(long, value_name = "URL")]
    pub server: String,
    /// API token of the signer (or `SEING_TOKEN`).
    #[arg(long, value_name = "T", env = "SEING_TOKEN", hide_env_values = true)]
    pub token: String,
    /// The key as an RFC 7512 URI (`pkcs11:token=…;object=…?module-path=…`).
    #[arg(long, value_name = "PKCS11_URI")]
    pub key: String,
    /// PEM file of intermediate CA certificates sent after the token's certificate.
    #[arg(long, value_name = "PEM_FILE")]
    pub chain: Option<PathBuf>,
    /// The desk (id or name) whose dossiers are signed; default: every desk you hold.
    #[arg(long, value_name = "D")]
    pub desk: Option<String>,
    /// Every dossier waiting for your signature.
    #[arg(long)]
    pub all: bool,
    /// These dossiers (repeatable).
    #[arg(long, value_name = "ID")]
    pub dossier: Vec<String>,
    /// File whose first line is the PIN (else `SEING_PIN`, else a prompt).
    #[arg(long, value_name = "FILE")]
    pub pin_file: Option<PathBuf>,
}

impl fmt::Debug for BatchSignArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Neither the token nor a pin-value in the URI may reach a log.
        f.debug_struct("BatchSignArgs")
            .field("server", &self.server)
            .field("key", &self.key.split('?').next().unwrap_or_default())
            .field("desk", &self.desk)
            .field("all", &self.all)
            .field("dossier", &self.dossier)
            .finish_non_exhaustive()
    }
}

/// Runs `seing client`.
pub fn run(args: ClientArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        ClientCommand::BatchSign(a) => batch_sign(a),
    }
}

/// A blocking JSON client of the REST API.
struct Api {
    agent: ureq::Agent,
    base: String,
    token: String,
}

impl Api {
    fn new(server: &str, token: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        Self {
            agent,
            base: format!("{}/api/v1", server.trim_end_matches('/')),
            token: token.to_owned(),
        }
    }

    fn answer(
        what: &str,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> anyhow::Result<Value> {
        let mut response = response.with_context(|| format!("{what} : serveur injoignable"))?;
        let status = response.status();
        let text = response
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_string()
            .with_context(|| format!("{what} : réponse illisible"))?;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if !status.is_success() {
            let detail = body["detail"].as_str().unwrap_or("(sans détail)");
            bail!("{what} : {} — {detail}", status.as_u16());
        }
        Ok(body)
    }

    fn get(&self, path: &str) -> anyhow::Result<Value> {
        let response = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .call();
        Self::answer(&format!("GET {path}"), response)
    }

    fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let response = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Content-Type", "application/json")
            .send(body.to_string());
        Self::answer(&format!("POST {path}"), response)
    }
}

/// The PIN: the URI's own, else `--pin-file`, else `SEING_PIN`, else asked on the terminal.
fn pin(args: &BatchSignArgs, uri: &Pkcs11Uri) -> anyhow::Result<Option<Secret>> {
    if uri.pin.is_some() {
        return Ok(None);
    }
    if let Some(path) = &args.pin_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("lecture du code PIN dans {}", path.display()))?;
        return Ok(Some(Secret::new(text.lines().next().unwrap_or_default())));
    }
    if let Ok(value) = std::env::var("SEING_PIN") {
        return Ok(Some(Secret::new(value)));
    }
    if !std::io::stdin().is_terminal() {
        bail!("code PIN requis : --pin-file FICHIER, SEING_PIN, ou un terminal pour le saisir");
    }
    let typed = rpassword::prompt_password(format!("Code PIN de {} : ", uri.display_safe()))
        .context("saisie du code PIN")?;
    Ok(Some(Secret::new(typed)))
}

/// One dossier to sign, as listed.
struct Waiting {
    id: String,
    title: String,
}

fn step_is_signature(dossier: &Value) -> bool {
    let step = dossier["current_step"].as_u64().unwrap_or(u64::MAX) as usize;
    dossier["state"] == "pending"
        && dossier["steps"]
            .get(step)
            .is_some_and(|s| s["action"] == "signature" || s["action"] == "seal")
}

/// The desks to look at: `--desk` (id or name) or every desk the caller holds.
fn desks(api: &Api, wanted: Option<&str>) -> anyhow::Result<Vec<(String, String)>> {
    let me = api.get("/session")?;
    let user = me["user"]
        .as_str()
        .context("ce jeton n'agit pour aucun utilisateur d'une collectivité")?
        .to_owned();
    let all = api.get("/desks")?;
    let list: Vec<(String, String, bool)> = all
        .as_array()
        .map(|a| {
            a.iter()
                .map(|d| {
                    (
                        d["id"].as_str().unwrap_or_default().to_owned(),
                        d["name"].as_str().unwrap_or_default().to_owned(),
                        d["holders"]
                            .as_array()
                            .is_some_and(|h| h.iter().any(|u| u == &Value::String(user.clone()))),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    match wanted {
        Some(w) => list
            .into_iter()
            .find(|(id, name, _)| id == w || name == w)
            .map(|(id, name, _)| vec![(id, name)])
            .with_context(|| format!("bureau « {w} » introuvable")),
        None => Ok(list
            .into_iter()
            .filter(|(_, _, held)| *held)
            .map(|(id, name, _)| (id, name))
            .collect()),
    }
}

/// The dossiers of `desks` waiting at a signature or seal step.
fn waiting(api: &Api, desks: &[(String, String)]) -> anyhow::Result<Vec<Waiting>> {
    let mut out: Vec<Waiting> = Vec::new();
    for (desk, _) in desks {
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/dossiers?desk={desk}&limit=200");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let page = api.get(&path)?;
            for item in page["items"].as_array().into_iter().flatten() {
                let id = item["id"].as_str().unwrap_or_default().to_owned();
                if item["reason"] != "act" || out.iter().any(|w| w.id == id) {
                    continue;
                }
                let dossier = api.get(&format!("/dossiers/{id}"))?;
                if step_is_signature(&dossier) {
                    out.push(Waiting {
                        id,
                        title: dossier["title"].as_str().unwrap_or_default().to_owned(),
                    });
                }
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
    }
    Ok(out)
}

fn digest_algorithm(name: &str) -> anyhow::Result<DigestAlgorithm> {
    Ok(match name {
        "sha256" => DigestAlgorithm::Sha256,
        "sha384" => DigestAlgorithm::Sha384,
        "sha512" => DigestAlgorithm::Sha512,
        other => bail!("algorithme d'empreinte « {other} » non pris en charge"),
    })
}

fn chain_der(chain: &CertificateChain) -> anyhow::Result<Vec<String>> {
    chain
        .all()
        .into_iter()
        .map(|c| Ok(STANDARD.encode(c.to_der()?)))
        .collect()
}

fn batch_sign(args: BatchSignArgs) -> anyhow::Result<ExitCode> {
    let mut uri: Pkcs11Uri = args.key.parse()?;
    let api = Api::new(&args.server, &args.token);
    let desk_list = desks(&api, args.desk.as_deref())?;
    if desk_list.is_empty() {
        bail!("vous ne tenez aucun bureau");
    }
    let dossiers = if args.all {
        waiting(&api, &desk_list)?
    } else {
        args.dossier
            .iter()
            .map(|id| {
                let d = api.get(&format!("/dossiers/{id}"))?;
                Ok(Waiting {
                    id: id.clone(),
                    title: d["title"].as_str().unwrap_or_default().to_owned(),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?
    };
    if dossiers.is_empty() {
        println!("Aucun dossier n'attend votre signature.");
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("{} dossier(s) à signer.", dossiers.len());
    if let Some(secret) = pin(&args, &uri)? {
        uri.pin = Some(PinSource::Value(secret));
    }
    let extra = match &args.chain {
        Some(p) => seing_signer::x509::read_certificates(p)?,
        None => Vec::new(),
    };
    // One session, one login for the whole selection.
    let key = key::open(
        &KeySpec::Pkcs11 {
            uri,
            certificate: None,
        },
        extra,
    )?;
    let chain = CertificateChain::of_key(key.as_ref());
    let mut request = json!({
        "dossier_ids": dossiers.iter().map(|d| d.id.clone()).collect::<Vec<_>>(),
        "certificate_chain": chain_der(&chain)?,
    });
    if args.desk.is_some()
        && let [(desk, _)] = desk_list.as_slice()
    {
        request["desk_id"] = Value::String(desk.clone());
    }
    let batch = match api.post("/signature-batches", &request) {
        Ok(batch) => batch,
        Err(e) => {
            // Nothing could be prepared (certificate refused, no dossier signable): a failure.
            eprintln!("seing: aucun dossier signé : {e:#}");
            return Ok(ExitCode::from(1));
        }
    };
    let batch_id = batch["batch_id"]
        .as_str()
        .context("réponse sans batch_id")?;
    let items = batch["items"].as_array().cloned().unwrap_or_default();
    let bar = indicatif::ProgressBar::new(items.len() as u64).with_style(
        indicatif::ProgressStyle::with_template("{spinner} signature {pos}/{len} [{bar:30}] {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    let mut values = Vec::with_capacity(items.len());
    for item in &items {
        bar.set_message(format!(
            "{} · {}",
            item["document"].as_str().unwrap_or_default(),
            item["label"].as_str().unwrap_or_default()
        ));
        let digest = STANDARD
            .decode(item["data_to_sign"].as_str().unwrap_or_default())
            .context("data_to_sign n'est pas du base64")?;
        let algorithm = digest_algorithm(item["digest_algorithm"].as_str().unwrap_or_default())?;
        let value = key.sign_digest(algorithm, &digest)?;
        values.push(json!({
            "item_id": item["item_id"],
            "signature_value": STANDARD.encode(value.as_bytes()),
        }));
        bar.inc(1);
    }
    bar.finish_and_clear();
    drop(key);
    let results = api.post(
        &format!("/signature-batches/{batch_id}/signatures"),
        &json!({ "items": values }),
    )?;
    let title = |id: &str| {
        dossiers
            .iter()
            .find(|d| d.id == id)
            .map(|d| d.title.clone())
            .unwrap_or_default()
    };
    let mut failures = 0;
    for refused in batch["refused"].as_array().into_iter().flatten() {
        let id = refused["dossier_id"].as_str().unwrap_or_default();
        failures += 1;
        println!(
            "refusé  {id}  {}  : {}",
            title(id),
            refused["reason"].as_str().unwrap_or_default()
        );
    }
    let mut signed = 0;
    for result in results["results"].as_array().into_iter().flatten() {
        let id = result["dossier_id"].as_str().unwrap_or_default();
        if result["status"] == "signed" {
            signed += 1;
            println!("signé   {id}  {}", title(id));
        } else {
            failures += 1;
            println!(
                "échec   {id}  {}  : {}",
                title(id),
                result["error"].as_str().unwrap_or_default()
            );
        }
    }
    eprintln!("{signed} dossier(s) signé(s), {failures} en échec.");
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
