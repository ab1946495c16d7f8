//! The web UI in a real browser: `seing serve --demo` (the real binary, SQLite in a temporary
//! folder) driven by Playwright and Debian's headless chromium through `tests/ui/ui.test.mjs`:
//! login, bureau, a PES dossier's bordereaux, rejection seen by the emitter, and the security
//! refusals (session fixation, CSRF, another authority's dossier, a desk not held).
//! Screenshots of the main pages are kept in `target/ui-screenshots`.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn seing(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_seing"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "seing {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Starts `seing serve --demo` and returns it with the finance software's API token.
fn serve_demo(data: &Path, port: u16) -> (Server, String) {
    let listen = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_seing"))
        .args(["serve", "--demo", "--listen", &listen, "--data-dir"])
        .arg(data)
        .env("SEING_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut token = None;
    let stdout = child.stdout.take().unwrap();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some((_, t)) = line.split_once("(affiché une seule fois) : ") {
            token = Some(t.trim().to_owned());
        }
        if line.starts_with("Documentation de l'API") {
            break;
        }
    }
    let mut server = Server(child);
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
    (server, token.expect("the demo prints the finance token"))
}

#[test]
fn web_ui_in_chromium() {
    let (Some(specs), Some(chromium)) = (specs(), chromium()) else {
        return;
    };
    if !playwright() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_arg = data.to_str().unwrap();
    // Another authority, created before the service starts, with a user of its own.
    seing(&[
        "admin",
        "--data-dir",
        data_arg,
        "create-tenant",
        "--name",
        "Commune Voisine",
        "--siren",
        "213500010",
        "--departement",
        "35",
        "--admin-password",
        "voisine-admin-2026",
    ]);
    let port = free_port();
    let (_server, token) = serve_demo(&data, port);
    // 16 PES files of 2 bordereaux: 15 to sign, 1 to reject.
    let pes = dir.path().join("pes");
    std::fs::create_dir_all(&pes).unwrap();
    for i in 1..=16 {
        std::fs::write(pes.join(format!("PES_{i:02}.xml")), pes_file(&specs, i, 2)).unwrap();
    }
    let shots = repo().join("target/ui-screenshots");
    let output = Command::new("node")
        .arg(repo().join("tests/ui/ui.test.mjs"))
        .current_dir(repo().join("tests/ui"))
        .env("SEING_URL", format!("http://127.0.0.1:{port}"))
        .env("SEING_SIREN", seing_api::demo::DEMO_SIREN)
        .env("SEING_FINANCE_TOKEN", &token)
        .env("SEING_PES_DIR", &pes)
        .env("SEING_OTHER_TENANT", "213500010 admin voisine-admin-2026")
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
}
