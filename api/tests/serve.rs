//! `seing serve` as a user starts it: the real binary, a fresh data folder, `GET /healthz`.

#[path = "common/process.rs"]
mod process;

use process::{Server, free_port};
use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn get(port: u16, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

fn start(args: &[&str], envs: &[(&str, &str)]) -> Server {
    let child = Command::new(env!("CARGO_BIN_EXE_seing"))
        .args(args)
        .envs(envs.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    Server(child)
}

fn wait_for_health(server: &mut Server, port: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(response) = get(port, "/healthz") {
            return response;
        }
        if let Some(status) = server.0.try_wait().unwrap() {
            let mut stderr = String::new();
            BufReader::new(server.0.stderr.take().unwrap())
                .read_to_string(&mut stderr)
                .unwrap();
            panic!("seing serve exited with {status}: {stderr}");
        }
        assert!(Instant::now() < deadline, "server did not answer in 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn serve_creates_its_data_folder_and_answers_healthz() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut server = start(
        &[
            "serve",
            "--listen",
            &listen,
            "--data-dir",
            data.to_str().unwrap(),
        ],
        &[],
    );
    let response = wait_for_health(&mut server, port);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let body = response.split("\r\n\r\n").nth(1).unwrap();
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(json["status"], "ok");
    assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(json["database"]["backend"], "sqlite");
    assert_eq!(json["database"]["status"], "up");
    assert!(data.join("seing.db").is_file());
    assert!(data.join("documents").is_dir());
}

#[test]
fn serve_reads_listen_address_from_the_environment_and_a_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("seing.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\n",
            dir.path().join("from-file").display()
        ),
    )
    .unwrap();
    let listen = format!("127.0.0.1:{port}");
    let mut server = start(
        &["serve"],
        &[
            ("SEING_LISTEN", listen.as_str()),
            ("SEING_CONFIG", config.to_str().unwrap()),
        ],
    );
    let response = wait_for_health(&mut server, port);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(dir.path().join("from-file/seing.db").is_file());
}

#[test]
fn serve_reports_an_unreadable_config_file_in_one_line() {
    let output = Command::new(env!("CARGO_BIN_EXE_seing"))
        .args(["serve", "--config", "/nonexistent/seing.toml"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.starts_with("seing: cannot read configuration file /nonexistent/seing.toml"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn serve_answers_healthz_on_postgresql() {
    let url = std::env::var("SEING_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    if TcpStream::connect(("127.0.0.1", 5432)).is_err() && url.contains("127.0.0.1:5432") {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "PostgreSQL is not reachable at {url}, and CI=true requires it"
        );
        eprintln!("skipped: PostgreSQL is not reachable at {url}");
        return;
    }
    // A schema of its own: the database may hold other tests' schemas and migrations.
    let schema = format!("serve_{}", uuid::Uuid::new_v4().simple());
    let admin = |sql: String| {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let db = seing_engine::storage::Database::connect(&url)
                .await
                .unwrap();
            sqlx::Executor::execute(db.pool(), sqlx::AssertSqlSafe(sql))
                .await
                .unwrap();
            db.close().await;
        });
    };
    admin(format!("CREATE SCHEMA {schema}"));
    let separator = if url.contains('?') { '&' } else { '?' };
    let schema_url = format!("{url}{separator}options[search_path]={schema}");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut server = start(
        &[
            "serve",
            "--listen",
            &listen,
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--database-url",
            &schema_url,
        ],
        &[],
    );
    let response = wait_for_health(&mut server, port);
    drop(server);
    admin(format!("DROP SCHEMA {schema} CASCADE"));
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"backend\":\"postgres\""), "{response}");
    assert!(!dir.path().join("seing.db").exists());
}

/// Runs `seing ARGS` in `cwd` and returns its standard output; fails with its standard error.
fn seing_in(cwd: &std::path::Path, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_seing"))
        .current_dir(cwd)
        .args(args)
        .env("SEING_ADMIN_PASSWORD", "mot-de-passe-solide")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "seing {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn the_circuit_templates_are_built_in_and_serve_runs_from_any_directory() {
    let cwd = tempfile::tempdir().unwrap();
    seing_in(
        cwd.path(),
        &[
            "admin",
            "create-tenant",
            "--name",
            "Commune",
            "--siren",
            "213500002",
            "--departement",
            "35",
        ],
    );
    seing_in(
        cwd.path(),
        &[
            "admin",
            "create-desk",
            "--tenant",
            "213500002",
            "--name",
            "Maire",
        ],
    );
    let imported = seing_in(
        cwd.path(),
        &[
            "admin",
            "import-circuits",
            "--tenant",
            "213500002",
            "--role",
            "viseur=Maire",
            "--role",
            "signataire=Maire",
            "--template",
            "visa-signature",
        ],
    );
    assert!(imported.contains("1 circuit(s) imported"), "{imported}");
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_seing"))
        .current_dir(cwd.path())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut server = Server(child);
    let response = wait_for_health(&mut server, port);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(cwd.path().join("seing-data/seing.db").is_file());
}

#[test]
fn flags_beat_the_environment_which_beats_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let (file_port, env_port, flag_port) = (free_port(), free_port(), free_port());
    let config = dir.path().join("seing.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{file_port}\"\ndata_dir = \"{}\"\nno_worker = true\n",
            dir.path().join("from-file").display()
        ),
    )
    .unwrap();
    let env_listen = format!("127.0.0.1:{env_port}");
    let env_data = dir.path().join("from-env");
    let flag_listen = format!("127.0.0.1:{flag_port}");
    let mut server = start(
        &["serve", "--listen", &flag_listen],
        &[
            ("SEING_CONFIG", config.to_str().unwrap()),
            ("SEING_LISTEN", env_listen.as_str()),
            ("SEING_DATA_DIR", env_data.to_str().unwrap()),
        ],
    );
    let response = wait_for_health(&mut server, flag_port);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(get(env_port, "/healthz").is_err());
    assert!(get(file_port, "/healthz").is_err());
    assert!(env_data.join("seing.db").is_file());
    assert!(!dir.path().join("from-file").exists());
}

#[test]
fn a_zero_worker_setting_is_refused() {
    let output = Command::new(env!("CARGO_BIN_EXE_seing"))
        .args(["worker", "--worker-poll-ms", "0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("worker_poll_ms must be at least 1"),
        "{stderr}"
    );
}

/// Waits until the process's standard error shows `ready`, sends SIGTERM (what service managers
/// send), and returns the exit status and the whole standard error.
fn terminate(mut server: Server, ready: &str) -> (std::process::ExitStatus, String) {
    use std::io::BufRead;
    let mut reader = BufReader::new(server.0.stderr.take().unwrap());
    let mut stderr = String::new();
    while !stderr.contains(ready) {
        if reader.read_line(&mut stderr).unwrap() == 0 {
            panic!("exited before `{ready}`: {stderr}");
        }
    }
    let pid = server.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    reader.read_to_string(&mut stderr).unwrap();
    (server.0.wait().unwrap(), stderr)
}

#[test]
fn serve_runs_the_outbox_worker_and_both_stop_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let data = dir.path().to_str().unwrap();
    let mut server = start(&["serve", "--listen", &listen, "--data-dir", data], &[]);
    wait_for_health(&mut server, port);
    let (status, stderr) = terminate(server, "outbox worker started");
    assert!(status.success(), "{status}: {stderr}");
    assert!(stderr.contains("outbox worker stopped"), "{stderr}");
    // Without the worker, and the worker alone.
    let mut server = start(
        &[
            "serve",
            "--no-worker",
            "--listen",
            &listen,
            "--data-dir",
            data,
        ],
        &[],
    );
    wait_for_health(&mut server, port);
    let (status, stderr) = terminate(server, "seing is serving");
    assert!(status.success(), "{status}: {stderr}");
    assert!(!stderr.contains("outbox worker"), "{stderr}");
    let worker = start(&["worker", "--data-dir", data], &[]);
    let (status, stderr) = terminate(worker, "outbox worker started");
    assert!(status.success(), "{status}: {stderr}");
    assert!(stderr.contains("outbox worker stopped"), "{stderr}");
}

#[test]
fn admin_webhook_commands_create_list_and_delete_subscriptions() {
    let cwd = tempfile::tempdir().unwrap();
    let tenant = ["--tenant", "213500002"];
    seing_in(
        cwd.path(),
        &[
            "admin",
            "create-tenant",
            "--name",
            "Commune",
            "--siren",
            "213500002",
            "--departement",
            "35",
        ],
    );
    let created = seing_in(
        cwd.path(),
        &[
            "admin",
            "webhook",
            "create",
            tenant[0],
            tenant[1],
            "--url",
            "https://erp.example/seing",
            "--event",
            "dossier.signed",
            "--event",
            "dossier.rejected",
        ],
    );
    let lines: Vec<&str> = created.lines().collect();
    assert!(lines[0].starts_with("webhook "), "{created}");
    assert_eq!(lines[1], "its secret, shown once:");
    assert!(lines[2].starts_with("whsec_"), "{created}");
    let id = lines[0].split_whitespace().nth(1).unwrap();
    let listed = seing_in(
        cwd.path(),
        &["admin", "webhook", "list", tenant[0], tenant[1]],
    );
    assert_eq!(
        listed.trim(),
        format!("{id} active https://erp.example/seing [dossier.signed, dossier.rejected]")
    );
    assert!(!listed.contains("whsec_"), "secrets are never listed");
    let output = Command::new(env!("CARGO_BIN_EXE_seing"))
        .current_dir(cwd.path())
        .args(["admin", "webhook", "create", "--tenant", "213500002"])
        .args(["--url", "ftp://x", "--event", "dossier.eaten"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&output.stderr).contains("dossier.eaten"));
    seing_in(
        cwd.path(),
        &["admin", "webhook", "delete", tenant[0], tenant[1], id],
    );
    let listed = seing_in(
        cwd.path(),
        &["admin", "webhook", "list", tenant[0], tenant[1]],
    );
    assert_eq!(listed, "");
}
