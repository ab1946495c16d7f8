//! An SMTP server for tests: Python `aiosmtpd` (installed by `scripts/install-test-deps`)
//! writing every message into a Maildir, on a free port of 127.0.0.1; stopped on drop. A test
//! whose aiosmtpd is missing skips, unless `CI=true`, where it fails. It refuses the recipients
//! at `inconnu.invalid` (« 550 5.1.1 »), and can hold its answer to the first message, a crash
//! window for the client (`mailboxes.py`).

#![allow(dead_code)] // each test file uses part of it

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
    /// Where the holding handler says it holds an answer and is told to let it go.
    control: PathBuf,
}

impl Smtp {
    /// Starts aiosmtpd with its Maildir in `dir` and `options` (`--tlscert`/`--tlskey` for
    /// STARTTLS, then required; `--smtpscert`/`--smtpskey` for TLS from the first byte).
    pub fn start(dir: &Path, options: &[&OsStr]) -> Option<Self> {
        Self::spawn(dir, options, false)
    }

    /// Starts aiosmtpd in clear with its Maildir in `dir`; it stores the first message, then
    /// holds its answer to it (« 250 ») until [`Smtp::release`]. Later messages are answered
    /// at once.
    pub fn start_holding_first(dir: &Path) -> Option<Self> {
        Self::spawn(dir, &[], true)
    }

    /// Whether the answer to the first message is held or was.
    pub fn held(&self) -> bool {
        self.control.join("held").exists()
    }

    /// Lets the held answer go.
    pub fn release(&self) {
        std::fs::write(self.control.join("release"), b"").unwrap();
    }

    fn spawn(dir: &Path, options: &[&OsStr], hold_first: bool) -> Option<Self> {
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
        let control = dir.join("smtp-control");
        std::fs::create_dir_all(&control).unwrap();
        std::fs::write(control.join("mailboxes.py"), include_str!("mailboxes.py")).unwrap();
        let mut command = Command::new("python3");
        command
            .env("PYTHONPATH", &control)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(options);
        if hold_first {
            command
                .args(["-c", "mailboxes.HoldingMailbox"])
                .args([&maildir, &control]);
        } else {
            command.args(["-c", "mailboxes.Mailbox"]).arg(&maildir);
        }
        let smtp = Self {
            child: command
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
            port,
            maildir,
            control,
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

/// The notification link of a mail (`…/api/v1/notifications/<secret>`), unfolded from its
/// quoted-printable lines.
pub fn notification_link(message: &str) -> String {
    let unfolded = message.replace("=\r\n", "").replace("=\n", "");
    let start = unfolded.find("/api/v1/notifications/").expect("a link");
    unfolded[start..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

/// The value of the header `name` (any case) of a mail, if it has one.
pub fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    message
        .lines()
        .take_while(|line| !line.is_empty())
        .find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
}
