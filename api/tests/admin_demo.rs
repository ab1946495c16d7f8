//! The operator's side, with the real binary: `seing admin` prepares a tenant that
//! `seing serve` then serves, and manages its trust store and server keys; `seing serve --demo`
//! seeds once and prints how to log in; the demo PDF passes qpdf and poppler.

#[path = "common/process.rs"]
mod process;

use process::{Server, free_port};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const SIREN: &str = "217500008";

/// One HTTP/1.1 request; returns the status and the body.
fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    write!(stream, "{head}\r\n{body}")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

fn seing(args: &[&str], envs: &[(&str, &str)]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_seing"))
        .args(args)
        .envs(envs.iter().copied())
        .output()
        .unwrap()
}

/// `seing admin --data-dir data ARGS…`, with `envs`.
fn admin(data: &str, args: &[&str], envs: &[(&str, &str)]) -> std::process::Output {
    let mut all = vec!["admin", "--data-dir", data];
    all.extend_from_slice(args);
    seing(&all, envs)
}

/// The admin password `create-tenant` gives the tenant's administrator.
const ADMIN_PASSWORD: (&str, &str) = ("SEING_ADMIN_PASSWORD", "admin-password-1");

/// `seing admin create-tenant` of SIREN named `name`.
fn create_tenant(data: &str, name: &str) -> std::process::Output {
    let args = [
        "create-tenant",
        "--name",
        name,
        "--siren",
        SIREN,
        "--departement",
        "35",
    ];
    admin(data, &args, &[ADMIN_PASSWORD])
}

#[track_caller]
fn ok(output: std::process::Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Starts `seing serve` with stdout in `log`, and waits for `/healthz`.
fn serve(data: &Path, log: &Path, extra: &[&str]) -> (Server, u16) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec![
        "serve",
        "--listen",
        &listen,
        "--data-dir",
        data.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let child = Command::new(env!("CARGO_BIN_EXE_seing"))
        .args(&args)
        .stdout(Stdio::from(std::fs::File::create(log).unwrap()))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    while http(port, "GET", "/healthz", &[], "").is_err() {
        if let Some(status) = server.0.try_wait().unwrap() {
            panic!("seing serve exited with {status}");
        }
        assert!(Instant::now() < deadline, "server did not answer in 60 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    (server, port)
}

#[test]
fn admin_commands_prepare_a_tenant_that_serve_serves() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let out = ok(create_tenant(d, "Commune de Test"));
    assert!(out.contains("created"), "{out}");
    // The same SIREN twice: one readable line, exit 3, nothing else created.
    let again = create_tenant(d, "Autre");
    assert_eq!(again.status.code(), Some(3));
    let stderr = String::from_utf8(again.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("seing: "), "{stderr}");

    ok(admin(
        d,
        &[
            "create-user",
            "--tenant",
            SIREN,
            "--login",
            "fin",
            "--name",
            "Finances",
        ],
        &[("SEING_USER_PASSWORD", "fin-password-12")],
    ));
    ok(admin(
        d,
        &[
            "create-user",
            "--tenant",
            SIREN,
            "--login",
            "rh",
            "--name",
            "RH",
        ],
        &[],
    ));
    ok(admin(
        d,
        &[
            "create-desk",
            "--tenant",
            SIREN,
            "--name",
            "Finances",
            "--holder",
            "fin",
        ],
        &[],
    ));
    ok(admin(
        d,
        &[
            "create-desk",
            "--tenant",
            SIREN,
            "--name",
            "DRH",
            "--holder",
            "rh",
        ],
        &[],
    ));
    let unknown = admin(
        d,
        &[
            "create-desk",
            "--tenant",
            SIREN,
            "--name",
            "X",
            "--parent",
            "Nulle part",
        ],
        &[],
    );
    assert_eq!(unknown.status.code(), Some(3));
    let out = ok(admin(
        d,
        &[
            "import-circuits",
            "--tenant",
            SIREN,
            "--role",
            "drh=DRH",
            "--template",
            "conges",
        ],
        &[],
    ));
    assert!(out.contains("1 circuit(s) imported"), "{out}");
    let out = ok(admin(
        d,
        &[
            "create-token",
            "--tenant",
            SIREN,
            "--login",
            "fin",
            "--label",
            "logiciel",
        ],
        &[],
    ));
    let token = out.lines().last().unwrap().trim().to_owned();
    assert!(token.starts_with("seing_"), "{out}");
    let out = ok(admin(
        d,
        &["create-token", "--operator", "--label", "exploitation"],
        &[],
    ));
    let operator = out.lines().last().unwrap().trim().to_owned();

    let (_server, port) = serve(&data, &dir.path().join("serve.log"), &[]);
    let bearer = format!("Bearer {token}");
    let (status, body) = http(
        port,
        "GET",
        "/api/v1/circuits",
        &[("Authorization", &bearer)],
        "",
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let circuits: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(circuits[0]["name"], "Demande de congés");
    assert_eq!(circuits[0]["template"], "conges");
    let login = json!({"tenant": SIREN, "login": "fin", "password": "fin-password-12"}).to_string();
    let (status, body) = http(
        port,
        "POST",
        "/api/v1/session",
        &[("Content-Type", "application/json")],
        &login,
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    // rh has no password: it cannot log in.
    let login = json!({"tenant": SIREN, "login": "rh", "password": ""}).to_string();
    let (status, _) = http(
        port,
        "POST",
        "/api/v1/session",
        &[("Content-Type", "application/json")],
        &login,
    )
    .unwrap();
    assert_eq!(status, 401);
    // The operator token lists tenants; the tenant token may not.
    let (status, body) = http(
        port,
        "GET",
        "/api/v1/tenants",
        &[("Authorization", &format!("Bearer {operator}"))],
        "",
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(SIREN), "{body}");
    let (status, _) = http(
        port,
        "GET",
        "/api/v1/tenants",
        &[("Authorization", &bearer)],
        "",
    )
    .unwrap();
    assert_eq!(status, 403);
}

/// The id `list-signing` shows on the line of `what`.
fn listed_id(listing: &str, what: &str) -> String {
    let line = listing
        .lines()
        .find(|l| l.contains(what))
        .unwrap_or_else(|| panic!("{what} not listed: {listing}"));
    line.split('\t').nth(1).unwrap().to_owned()
}

#[test]
fn trust_store_and_server_keys_are_managed_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("data");
    let d = d.to_str().unwrap();
    let admin = |args: &[&str]| admin(d, args, &[]);
    ok(create_tenant(d, "Commune de Test"));
    let pki = seing_certs_test::TestPki::shared();
    let out = ok(admin(&[
        "add-trust-anchor",
        "--tenant",
        SIREN,
        pki.root_ca.to_str().unwrap(),
    ]));
    assert!(out.contains("Seing Test AC Racine"), "{out}");
    ok(admin(&[
        "add-server-key",
        "--tenant",
        SIREN,
        "--label",
        "Cachet",
        "--usage",
        "seal",
        "--uri",
        "pkcs11:token=Mairie;object=cachet?module-path=/usr/lib/softhsm/libsofthsm2.so",
    ]));
    let listing = ok(admin(&["list-signing", "--tenant", SIREN]));
    let anchor = listed_id(&listing, "Seing Test AC Racine");
    let key = listed_id(&listing, "Cachet");

    let out = ok(admin(&["remove-trust-anchor", "--tenant", SIREN, &anchor]));
    assert!(out.contains("removed"), "{out}");
    let out = ok(admin(&["remove-server-key", "--tenant", SIREN, &key]));
    assert!(out.contains("removed"), "{out}");
    assert_eq!(ok(admin(&["list-signing", "--tenant", SIREN])), "");
    // Removed already, or not an id: a readable refusal, exit 3.
    for (command, id) in [
        ("remove-trust-anchor", &anchor),
        ("remove-server-key", &key),
    ] {
        let again = admin(&[command, "--tenant", SIREN, id]);
        assert_eq!(again.status.code(), Some(3), "{again:?}");
        let stderr = String::from_utf8_lossy(&again.stderr);
        assert!(stderr.contains("not found"), "{stderr}");
        let bad = admin(&[command, "--tenant", SIREN, "pas-un-id"]);
        assert_eq!(bad.status.code(), Some(3), "{bad:?}");
        assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid value 'pas-un-id'"));
    }
}

#[test]
fn serve_demo_seeds_once_and_its_logins_work() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first_log = dir.path().join("first.log");
    let token = {
        let (_server, port) = serve(&data, &first_log, &["--demo"]);
        let log = std::fs::read_to_string(&first_log).unwrap();
        assert!(log.contains("Commune de Démo"), "{log}");
        assert!(log.contains("demo-maire-2026"), "{log}");
        let login =
            json!({"tenant": "213500002", "login": "finances", "password": "demo-finances-2026"})
                .to_string();
        let (status, body) = http(
            port,
            "POST",
            "/api/v1/session",
            &[("Content-Type", "application/json")],
            &login,
        )
        .unwrap();
        assert_eq!(status, 200, "{body}");
        log.lines()
            .find(|l| l.contains("Jeton d'API"))
            .and_then(|l| l.split_whitespace().last())
            .unwrap()
            .to_owned()
    };
    let second_log = dir.path().join("second.log");
    let (_server, port) = serve(&data, &second_log, &["--demo"]);
    let log = std::fs::read_to_string(&second_log).unwrap();
    assert!(log.contains("demo-maire-2026"), "{log}");
    assert!(!log.contains("Jeton d'API"), "seeded twice: {log}");
    let bearer = format!("Bearer {token}");
    let (status, body) = http(
        port,
        "GET",
        "/api/v1/desks",
        &[("Authorization", &bearer)],
        "",
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let desks: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(desks.as_array().unwrap().len(), 5, "{body}");
    let finances = desks
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "Finances")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = http(
        port,
        "GET",
        &format!("/api/v1/dossiers?desk={finances}"),
        &[("Authorization", &bearer)],
        "",
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let page: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(page["items"][0]["state"], "pending");
}

/// Runs an external checker, or says why it cannot (and fails under CI=true).
fn tool(name: &str) -> Option<Command> {
    if Command::new(name).arg("--version").output().is_ok() {
        return Some(Command::new(name));
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{name} is missing and CI=true"
    );
    eprintln!("skipped: {name} is not installed");
    None
}

#[test]
fn demo_pdf_passes_qpdf_and_pdfinfo() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo.pdf");
    std::fs::write(&path, seing_api::demo::demo_pdf("Arrete (test) de voirie")).unwrap();
    if let Some(mut qpdf) = tool("qpdf") {
        let out = qpdf.arg("--check").arg(&path).output().unwrap();
        // qpdf exits 0 only when there is neither error nor warning.
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    if let Some(mut pdfinfo) = tool("pdfinfo") {
        let out = pdfinfo.arg(&path).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let info = String::from_utf8(out.stdout).unwrap();
        assert!(
            info.lines()
                .any(|l| l.starts_with("Pages:") && l.ends_with(" 1")),
            "{info}"
        );
    }
    if let Some(mut pdftotext) = tool("pdftotext") {
        let out = pdftotext.arg(&path).arg("-").output().unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("Arrete"), "{text}");
    }
}
