//! An SMTP server for tests: Python `aiosmtpd` (installed by `scripts/install-test-deps`)
//! writing every message into a Maildir, on a free port of 127.0.0.1; stopped on drop. A test
//! whose aiosmtpd is missing skips, unless `CI=true`, where it fails.

use std::ffi::OsStr;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `aiosmtpd`.
pub struct Smtp {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    maildir: PathBuf,
}

impl Smtp {
    /// Starts aiosmtpd with its Maildir in `dir` and `options` (`--tlscert`/`--tlskey` for
    /// STARTTLS, then required; `--smtpscert`/`--smtpskey` for TLS from the first byte).
    pub fn start(dir: &Path, options: &[&OsStr]) -> Option<Self> {
        let available = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .status()
            .is_ok_and(|s| s.success());
        if !available {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "python3 aiosmtpd is missing and CI=true (scripts/install-test-deps installs it)"
            );
            eprintln!("SKIP: python3 aiosmtpd is missing");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let maildir = dir.join("maildir");
        let smtp = Self {
            child: Command::new("python3")
                .args(["-m", "aiosmtpd", "-n", "-l"])
                .arg(format!("127.0.0.1:{port}"))
                .args(options)
                .args(["-c", "aiosmtpd.handlers.Mailbox"])
                .arg(&maildir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
            port,
            maildir,
        };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(smtp);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(smtp);
        panic!("aiosmtpd did not start on port {port}");
    }

    /// The messages received, as text.
    pub fn messages(&self) -> Vec<String> {
        let mut messages = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(entries) = std::fs::read_dir(self.maildir.join(sub)) {
                for entry in entries {
                    messages.push(std::fs::read_to_string(entry.unwrap().path()).unwrap());
                }
            }
        }
        messages
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
