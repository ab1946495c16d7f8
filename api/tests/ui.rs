//! The web UI in a real browser: `seing serve --demo` (the real binary, SQLite in a temporary
//! folder) driven by Playwright and Debian's headless chromium through `tests/ui/ui.test.mjs`:
//! login, bureau, a PES dossier's bordereaux, rejection seen by the emitter, and the security
//! refusals (session fixation, CSRF, another authority's dossier, a desk not held), and 15 PES
//! dossiers signed in one batch with the maire's key on the server's SoftHSM2 token, each
//! signed file checked by the oracle; then 2 more signed through `seing agent` with a second
//! SoftHSM2 token standing for the élu's USB key, on a port of its own that `seing serve
//! --agent-port` tells the pages. The administration forms (webhooks, trust anchors, server
//! keys) are used and refused in the browser, the batch's progress is watched row by row, a
//! desk of 110 dossiers is paged back and forth, and a PES that the S²LOW double holds without the service
//! knowing its transaction number is given that number by the administrator.
//! Screenshots of the main pages are kept in `target/ui-screenshots`.

#[path = "common/process.rs"]
mod process;

use process::{Server, free_port};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use seing_api::config::{ServeArgs, ServeConfig};
use seing_api::http::auth;
use seing_certs_test::{TestPki, TestToken};
use seing_connectors::s2low::{S2low, S2lowConfig};
use seing_connectors::settings::store_settings;
use seing_engine::Engine;
use seing_engine::access::Role;
use seing_engine::model::{ActionInput, Actor, NewDocument, NewDossier, NewTenant, SignedOutput};
use seing_engine::signing::{KeyUsage, NewServerKey};
use seing_s2low_double::{Options, S2lowDouble};

/// PIN of the server's SoftHSM2 token.
const PIN: &str = "4321";
/// PIN of the workstation's SoftHSM2 token, behind `seing agent`.
const AGENT_PIN: &str = "8765";
/// Another authority, with an administrator of its own.
const OTHER_SIREN: &str = "213500010";
const OTHER_PASSWORD: &str = "voisine-admin-2026";

fn required(what: &str) -> bool {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{what} (required when CI=true; scripts/install-test-deps installs it)"
    );
    eprintln!("skipped: {what}");
    false
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn specs() -> Option<PathBuf> {
    let dir = std::env::var_os("SEING_SPECS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/specs"));
    if dir.exists() {
        Some(dir)
    } else {
        required(&format!("SEING_SPECS_DIR not found at {}", dir.display()));
        None
    }
}

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if path.exists() {
        Some(path)
    } else {
        required(&format!("chromium not found at {}", path.display()));
        None
    }
}

fn playwright() -> bool {
    let module = repo().join("tests/ui/node_modules/playwright-core");
    module.exists() || required("playwright-core not installed (npm ci in tests/ui)")
}

/// The real PES sample with its bordereau repeated `count` times under new Ids and numbers.
fn pes_file(specs: &Path, file: usize, count: usize) -> String {
    let text = std::fs::read_to_string(specs.join("pesv2/examples/PESALR1_unsigned.xml")).unwrap();
    let start = text.find("<Bordereau ").unwrap();
    let end = text.find("</Bordereau>").unwrap() + "</Bordereau>".len();
    let copies: String = (0..count)
        .map(|i| {
            text[start..end]
                .replace("ID2020020200727D013536\"", &format!("F{file}B{i}\""))
                .replace(
                    "<IdBord V=\"3536\"/>",
                    &format!("<IdBord V=\"{}\"/>", 100 * file + i),
                )
        })
        .collect();
    format!("{}{}{}", &text[..start], copies, &text[end..])
}

/// The `seing` binary under test: this build's, or `SEING_BIN` (scripts/bench-ui passes the
/// release build to time the batch).
fn seing_bin() -> PathBuf {
    std::env::var_os("SEING_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_seing")))
}

/// What the test prepares in the database before the service starts.
struct Prepared {
    /// The demo finance software's API token.
    finance_token: String,
    /// A PES that S²LOW holds but whose transaction number the service does not know: its
    /// dossier's title and the number S²LOW gave it.
    unnumbered: (String, u64),
}

/// A PES whose S²LOW answer was lost. Hélios goes through the S²LOW double; a PES dossier is
/// visaed and signed (its signed file recorded), and S²LOW already holds that file, as an
/// interrupted send leaves it: the service's own send is then refused as a duplicate and the
/// PES waits in the administration page for its transaction number.
async fn lost_pes(
    engine: &Engine,
    admin: Actor,
    users: &[Actor; 2],
    double: &S2lowDouble,
) -> (String, u64) {
    let [finances, maire] = *users;
    let settings = serde_json::json!({"helios": {"transport": double.transport()}});
    store_settings(
        engine,
        admin.tenant,
        &settings.to_string(),
        time::OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    let circuit = engine
        .circuits(admin)
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.template == "pes-bordereaux")
        .unwrap();
    let desk = engine
        .desks(admin)
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.name == "Finances")
        .unwrap();
    let title = "Bordereaux de titres n° 77".to_owned();
    let document = |bytes: Vec<u8>| NewDocument {
        name: "PES_titres_77.xml".into(),
        media_type: "text/xml".into(),
        bytes,
    };
    let dossier = engine
        .create_dossier(
            finances,
            NewDossier {
                circuit: circuit.id,
                emitter_desk: desk.id,
                title: title.clone(),
                main: document(seing_api::demo::demo_pes()),
                annexes: vec![],
                metadata: Default::default(),
                chosen_desks: Default::default(),
                deadline: None,
            },
        )
        .await
        .unwrap();
    engine.submit(finances, dossier.id, None).await.unwrap();
    engine
        .visa(finances, dossier.id, ActionInput::default())
        .await
        .unwrap();
    let mut signed = seing_api::demo::demo_pes();
    signed.extend_from_slice(b"<!-- PES signe avant la coupure -->\n");
    let mut transport = double.transport();
    transport.as_object_mut().unwrap().remove("kind");
    let config: S2lowConfig = serde_json::from_value(transport).unwrap();
    let transaction = S2low::new(&config)
        .unwrap()
        .import_pes("PES_titres_77.xml", &signed)
        .unwrap();
    engine
        .sign(
            maire,
            dossier.id,
            ActionInput::default(),
            SignedOutput {
                documents: vec![document(signed)],
                signatures: vec![],
            },
        )
        .await
        .unwrap();
    (title, transaction.0)
}

/// Seeds the demo authority, trusts the test PKI, registers the maire's key on the server's
/// SoftHSM2 token, gives the finance software a token, and creates a second authority.
fn prepare(data: &Path, token: &TestToken, pki: &TestPki, double: &S2lowDouble) -> Prepared {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let config = ServeConfig::resolve(ServeArgs {
            data_dir: Some(data.to_owned()),
            ..ServeArgs::default()
        })
        .unwrap();
        let engine = seing_api::server::open_engine(&config).await.unwrap();
        seing_api::demo::seed(&engine, config.listen).await.unwrap();
        let tenant = engine
            .tenant_by_siren(seing_api::demo::DEMO_SIREN)
            .await
            .unwrap()
            .unwrap();
        let users = engine.tenant_users(tenant.id).await.unwrap();
        let actor = |login: &str| Actor {
            tenant: tenant.id,
            user: users.iter().find(|u| u.login == login).unwrap().id,
        };
        let admin = actor("admin");
        let root = std::fs::read_to_string(&pki.root_ca).unwrap();
        engine.add_trust_entries(admin, &root).await.unwrap();
        engine
            .add_server_key(
                admin,
                NewServerKey {
                    label: "Clé du maire".into(),
                    uri: format!(
                        "pkcs11:token={};object=elu-rsa2048?module-path={}",
                        token.label,
                        token.module.display()
                    ),
                    usage: KeyUsage::User,
                    owner: Some(actor("maire").user),
                    chain_pem: Some(std::fs::read_to_string(&pki.personnes_ca).unwrap()),
                },
            )
            .await
            .unwrap();
        let secret = auth::new_token_secret().unwrap();
        engine
            .create_api_token(
                Some(actor("finances")),
                Role::User,
                "Logiciel de finances (test)",
                &auth::secret_hash(&secret),
            )
            .await
            .unwrap();
        let (other, other_admin) = engine
            .create_tenant(NewTenant {
                name: "Commune Voisine".into(),
                siren: OTHER_SIREN.into(),
                departement: "35".into(),
                admin_login: "admin".into(),
                admin_name: "Administrateur voisin".into(),
            })
            .await
            .unwrap();
        let hash = auth::hash_password(OTHER_PASSWORD).unwrap();
        engine
            .set_password_hash(other.id, other_admin.id, &hash)
            .await
            .unwrap();
        let unnumbered =
            lost_pes(&engine, admin, &[actor("finances"), actor("maire")], double).await;
        engine.database().close().await;
        Prepared {
            finance_token: secret,
            unnumbered,
        }
    })
}

/// Starts `seing serve` on the prepared data folder, with the server's SoftHSM2 token; its pages
/// look for `seing agent` on `agent_port`.
fn serve(data: &Path, port: u16, token: &TestToken, agent_port: u16) -> Server {
    let listen = format!("127.0.0.1:{port}");
    let mut server = Server(
        Command::new(seing_bin())
            .args(["serve", "--listen", &listen, "--data-dir"])
            .arg(data)
            .env("SEING_AGENT_PORT", agent_port.to_string())
            .env("SEING_LOG", "warn")
            .env("SOFTHSM2_CONF", &token.conf)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = server.0.try_wait().unwrap() {
            let mut stderr = String::new();
            let _ = server.0.stderr.take().unwrap().read_to_string(&mut stderr);
            panic!("seing serve exited with {status}: {stderr}");
        }
        assert!(
            Instant::now() < deadline,
            "seing serve did not listen in 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

/// Starts `seing agent` on `listen` (given by its environment variable), for the service's
/// origin, on the workstation's token.
fn agent(origin: &str, listen: &str, token: &TestToken, pki: &TestPki) -> Server {
    let mut agent = Server(
        Command::new(seing_bin())
            .args(["agent", "--origin", origin])
            .env("SEING_AGENT_LISTEN", listen)
            .arg("--chain")
            .arg(&pki.personnes_ca)
            .env("SOFTHSM2_CONF", &token.conf)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(listen).is_err() {
        if let Some(status) = agent.0.try_wait().unwrap() {
            let mut stderr = String::new();
            let _ = agent.0.stderr.take().unwrap().read_to_string(&mut stderr);
            panic!("seing agent exited with {status}: {stderr}");
        }
        assert!(
            Instant::now() < deadline,
            "seing agent did not listen in 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    agent
}

/// The oracle's PES profile on a signed file.
fn oracle_pes(oracle: &Path, file: &Path, specs: &Path, pki: &TestPki) {
    let out = Command::new(oracle)
        .arg("pes")
        .arg(file)
        .arg("--trust")
        .arg(&pki.root_ca)
        .arg("--certs")
        .arg(&pki.personnes_ca)
        .args(["--expect-bordereaux", "2"])
        .arg("--schemas")
        .arg(specs.join("pesv2/schemas_pes.v5.12"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "oracle pes {}: {}{}",
        file.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn oracle() -> Option<PathBuf> {
    let path = std::env::var_os("SEING_ORACLE")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/oracle/verify"));
    if path.exists() {
        Some(path)
    } else {
        required(&format!("SEING_ORACLE not found at {}", path.display()));
        None
    }
}

#[test]
fn web_ui_in_chromium() {
    let (Some(specs), Some(chromium)) = (specs(), chromium()) else {
        return;
    };
    if !playwright() {
        return;
    }
    let Some(oracle) = oracle() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let pki = TestPki::shared();
    let token = seing_certs_test::token::create(&dir.path().join("hsm"), "Serveur", PIN, pki)
        .expect("SoftHSM2 token");
    let double = S2lowDouble::start(Options::default());
    let prepared = prepare(&data, &token, pki, &double);
    let port = free_port();
    // Not the default port: the pages must find the agent where `--agent-port` says.
    let agent_port = loop {
        let candidate = free_port();
        if candidate != port && candidate != seing_api::agent::DEFAULT_PORT {
            break candidate;
        }
    };
    let agent_listen = format!("127.0.0.1:{agent_port}");
    let _server = serve(&data, port, &token, agent_port);
    let workstation =
        seing_certs_test::token::create(&dir.path().join("poste"), "Poste", AGENT_PIN, pki)
            .expect("SoftHSM2 token of the workstation");
    let _agent = agent(
        &format!("http://127.0.0.1:{port}"),
        &agent_listen,
        &workstation,
        pki,
    );
    let signer = seing_signer::x509::read_certificate(&workstation.cert("elu-rsa2048"))
        .ok()
        .and_then(|c| seing_signer::x509::common_name(&c))
        .expect("the workstation's certificate names its holder");
    // 18 PES files of 2 bordereaux: 15 to sign in a batch, 1 to reject, 2 to sign through the
    // agent.
    let pes = dir.path().join("pes");
    std::fs::create_dir_all(&pes).unwrap();
    for i in 1..=18 {
        std::fs::write(pes.join(format!("PES_{i:02}.xml")), pes_file(&specs, i, 2)).unwrap();
    }
    let shots = repo().join("target/ui-screenshots");
    let signed = dir.path().join("signed");
    let output = Command::new("node")
        .arg(repo().join("tests/ui/ui.test.mjs"))
        .current_dir(repo().join("tests/ui"))
        .env("SEING_URL", format!("http://127.0.0.1:{port}"))
        .env("SEING_SIREN", seing_api::demo::DEMO_SIREN)
        .env("SEING_FINANCE_TOKEN", &prepared.finance_token)
        .env("SEING_PES_DIR", &pes)
        .env(
            "SEING_OTHER_TENANT",
            format!("{OTHER_SIREN} admin {OTHER_PASSWORD}"),
        )
        .env("SEING_SIGN_PIN", PIN)
        .env("SEING_AGENT_PIN", AGENT_PIN)
        .env("SEING_AGENT_SIGNER", &signer)
        .env("SEING_AGENT_URL", format!("http://{agent_listen}"))
        .env("SEING_TRUST_CRL", &pki.personnes_crl_pem)
        .env(
            "SEING_SEAL_URI",
            format!(
                "pkcs11:token={};object=cachet?module-path={}",
                token.label,
                token.module.display()
            ),
        )
        .env("SEING_SIGNED_DIR", &signed)
        .env(
            "SEING_UNNUMBERED_PES",
            format!("{} {}", prepared.unnumbered.1, prepared.unnumbered.0),
        )
        .env("SEING_SCREENSHOTS", &shots)
        .env("CHROMIUM", &chromium)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "browser scenarios failed (screenshots in {}):\n{stdout}\n{}",
        shots.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
    let files: Vec<PathBuf> = std::fs::read_dir(&signed)
        .expect("the batch saved the signed files")
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(
        files.len(),
        17,
        "15 PES signed on the server, 2 through the agent"
    );
    for file in &files {
        oracle_pes(&oracle, file, &specs, pki);
    }
}
