//! schemathesis against the real binary: `seing serve --demo` on a free port, a bearer token of
//! the demo tenant's administrator, and generated requests for every operation of
//! `/api/v1/openapi.json`: no answer may be a 5xx, and every answer must match the document.

#[path = "common/process.rs"]
mod process;

use process::{Server, free_port};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn healthy(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = write!(
        stream,
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    );
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.starts_with("HTTP/1.1 200")
}

#[test]
fn generated_requests_get_no_5xx_and_answers_that_match_the_openapi_document() {
    if Command::new("schemathesis")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "schemathesis is missing and CI=true (scripts/install-test-deps installs it)"
        );
        eprintln!("skipped: schemathesis is missing (scripts/install-test-deps installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let port = free_port();
    let mut server = Server(
        Command::new(env!("CARGO_BIN_EXE_seing"))
            .args(["serve", "--demo", "--data-dir", data])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while !healthy(port) {
        assert!(
            server.0.try_wait().unwrap().is_none(),
            "seing serve --demo exited"
        );
        assert!(
            Instant::now() < deadline,
            "seing serve did not answer in 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let created = Command::new(env!("CARGO_BIN_EXE_seing"))
        .args([
            "admin",
            "--data-dir",
            data,
            "create-token",
            "--tenant",
            "213500002",
        ])
        .args([
            "--login",
            "admin",
            "--tenant-admin",
            "--label",
            "schemathesis",
        ])
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let token = String::from_utf8(created.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_owned();
    let output = Command::new("schemathesis")
        .arg("run")
        .arg(format!("http://127.0.0.1:{port}/api/v1/openapi.json"))
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args([
            "--checks",
            "not_a_server_error,response_schema_conformance,content_type_conformance",
        ])
        // Bounded: a few examples per operation, one worker, a fixed seed (reproducible).
        .args([
            "--max-examples",
            "5",
            "--workers",
            "1",
            "--seed",
            "20261129",
        ])
        .args(["--request-timeout", "10", "--max-time", "120"])
        .args(["--generation-database", "none"])
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{report}"
    );
    drop(server);
}
