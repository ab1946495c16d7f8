//! Service configuration: command-line flags, then `SEING_*` environment variables, then a TOML
//! file, then defaults — the first that sets a value wins.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

use seing_engine::signing::SigningSettings;

use crate::http::ApiSettings;
use crate::worker::WorkerSettings;

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default data folder (SQLite file and documents), relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "seing-data";

/// Default pause of the outbox worker when no job is due, in milliseconds.
pub const DEFAULT_WORKER_POLL_MS: u64 = 1000;
/// Default delay before the first retry of a failed job, in milliseconds (doubling each time).
pub const DEFAULT_WORKER_RETRY_BASE_MS: u64 = 10_000;
/// Default time limit of one webhook delivery, in milliseconds.
pub const DEFAULT_WEBHOOK_TIMEOUT_MS: u64 = 10_000;
/// Default time a taken job stays reserved to its worker, in milliseconds (five minutes).
pub const DEFAULT_WORKER_LEASE_MS: u64 = 300_000;

/// Flags of `seing serve`; each may also come from its environment variable.
#[derive(Debug, Default, clap::Args)]
pub struct ServeArgs {
    /// TOML configuration file (keys: listen, data_dir, database_url, workflows_dir,
    /// max_upload_bytes, login_max_failures, secure_cookies, signing_batch_ttl, tsa_url,
    /// no_worker, worker_poll_ms, worker_retry_base_ms, worker_lease_ms, webhook_timeout_ms,
    /// agent_port).
    #[arg(long, env = "SEING_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address and port to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "SEING_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Folder for the SQLite database and the documents, created if missing [default: ./seing-data].
    #[arg(long, env = "SEING_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL (`sqlite:…` or `postgres://…`) [default: SQLite file in the data folder].
    #[arg(long, env = "SEING_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Folder of the circuit templates (`*.toml`) [default: the templates built into seing].
    #[arg(long, env = "SEING_WORKFLOWS_DIR")]
    pub workflows_dir: Option<PathBuf>,
    /// Largest request body accepted, uploads included, in bytes [default: 52428800].
    #[arg(long, env = "SEING_MAX_UPLOAD_BYTES")]
    pub max_upload_bytes: Option<usize>,
    /// Failed logins allowed per login in 15 minutes before answering 429 [default: 5].
    #[arg(long, env = "SEING_LOGIN_MAX_FAILURES")]
    pub login_max_failures: Option<i64>,
    /// Mark the session cookie `Secure` (when served over HTTPS) [default: false].
    #[arg(long, env = "SEING_SECURE_COOKIES")]
    pub secure_cookies: Option<bool>,
    /// Seconds a prepared signature batch waits for its signature values [default: 900].
    #[arg(long, env = "SEING_SIGNING_BATCH_TTL")]
    pub signing_batch_ttl: Option<u64>,
    /// RFC 3161 time-stamping service for signature steps at level B-T [default: none].
    #[arg(long, env = "SEING_TSA_URL")]
    pub tsa_url: Option<String>,
    /// Do not deliver outbox jobs (webhooks, transmissions, archives) in this process: a
    /// separate `seing worker` does.
    #[arg(long, env = "SEING_NO_WORKER")]
    pub no_worker: bool,
    /// Pause of the outbox worker when no job is due, in milliseconds [default: 1000].
    #[arg(long, env = "SEING_WORKER_POLL_MS")]
    pub worker_poll_ms: Option<u64>,
    /// Delay before the first retry of a failed job, doubled at each attempt up to one hour,
    /// in milliseconds [default: 10000].
    #[arg(long, env = "SEING_WORKER_RETRY_BASE_MS")]
    pub worker_retry_base_ms: Option<u64>,
    /// How long a job taken by a worker stays reserved to it: a worker that dies (crash, kill)
    /// leaves its jobs to the others once this has passed, in milliseconds [default: 300000].
    #[arg(long, env = "SEING_WORKER_LEASE_MS")]
    pub worker_lease_ms: Option<u64>,
    /// Time limit of one webhook delivery, in milliseconds [default: 10000].
    #[arg(long, env = "SEING_WEBHOOK_TIMEOUT_MS")]
    pub webhook_timeout_ms: Option<u64>,
    /// Port on 127.0.0.1 where the pages look for `seing agent` on the élu's workstation (the
    /// agent's `--listen` port) [default: 7431].
    #[arg(long, env = "SEING_AGENT_PORT")]
    pub agent_port: Option<u16>,
    /// Seed a demo authority with users, desks, circuits and dossiers (idempotent).
    #[arg(long)]
    pub demo: bool,
}

/// The keys a TOML configuration file may set.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    workflows_dir: Option<PathBuf>,
    max_upload_bytes: Option<usize>,
    login_max_failures: Option<i64>,
    secure_cookies: Option<bool>,
    signing_batch_ttl: Option<u64>,
    tsa_url: Option<String>,
    no_worker: Option<bool>,
    worker_poll_ms: Option<u64>,
    worker_retry_base_ms: Option<u64>,
    worker_lease_ms: Option<u64>,
    webhook_timeout_ms: Option<u64>,
    agent_port: Option<u16>,
}

/// The resolved configuration of the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Data folder.
    pub data_dir: PathBuf,
    /// Database URL.
    pub database_url: String,
    /// Circuit templates folder.
    pub workflows_dir: Option<PathBuf>,
    /// API settings (upload limit, login rate limit, cookies).
    pub api: ApiSettings,
    /// Signing settings (batch lifetime, TSA).
    pub signing: SigningSettings,
    /// Run the outbox worker in the service's process.
    pub worker: bool,
    /// Settings of the outbox worker.
    pub worker_settings: WorkerSettings,
    /// Seed the demo authority.
    pub demo: bool,
}

impl ServeConfig {
    /// Merges flags/environment with the configuration file (if any) and the defaults.
    pub fn resolve(args: ServeArgs) -> anyhow::Result<Self> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let listen = args
            .listen
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("valid default address"));
        let data_dir = args
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let database_url = args
            .database_url
            .or(file.database_url)
            .unwrap_or_else(|| format!("sqlite:{}", data_dir.join("seing.db").display()));
        let workflows_dir = args.workflows_dir.or(file.workflows_dir);
        let defaults = ApiSettings::default();
        let login_max_failures = args
            .login_max_failures
            .or(file.login_max_failures)
            .unwrap_or(defaults.login_max_failures);
        if login_max_failures < 1 {
            anyhow::bail!("login_max_failures must be at least 1");
        }
        let api = ApiSettings {
            max_upload_bytes: args
                .max_upload_bytes
                .or(file.max_upload_bytes)
                .unwrap_or(defaults.max_upload_bytes),
            login_max_failures,
            secure_cookies: args
                .secure_cookies
                .or(file.secure_cookies)
                .unwrap_or(defaults.secure_cookies),
            agent_port: args
                .agent_port
                .or(file.agent_port)
                .unwrap_or(defaults.agent_port),
            ..defaults
        };
        if api.agent_port == 0 {
            anyhow::bail!("agent_port must be a port number (1 to 65535)");
        }
        let signing_defaults = SigningSettings::default();
        let signing = SigningSettings {
            batch_ttl: args
                .signing_batch_ttl
                .or(file.signing_batch_ttl)
                .map(std::time::Duration::from_secs)
                .unwrap_or(signing_defaults.batch_ttl),
            tsa_url: args.tsa_url.or(file.tsa_url),
        };
        if signing.batch_ttl.is_zero() {
            anyhow::bail!("signing_batch_ttl must be at least 1 second");
        }
        let millis = |flag: Option<u64>, key: Option<u64>, default: u64, name: &str| {
            let value = flag.or(key).unwrap_or(default);
            if value == 0 {
                anyhow::bail!("{name} must be at least 1");
            }
            Ok(std::time::Duration::from_millis(value))
        };
        let worker_settings = WorkerSettings {
            poll: millis(
                args.worker_poll_ms,
                file.worker_poll_ms,
                DEFAULT_WORKER_POLL_MS,
                "worker_poll_ms",
            )?,
            retry_base: millis(
                args.worker_retry_base_ms,
                file.worker_retry_base_ms,
                DEFAULT_WORKER_RETRY_BASE_MS,
                "worker_retry_base_ms",
            )?,
            lease: millis(
                args.worker_lease_ms,
                file.worker_lease_ms,
                DEFAULT_WORKER_LEASE_MS,
                "worker_lease_ms",
            )?,
            webhook_timeout: millis(
                args.webhook_timeout_ms,
                file.webhook_timeout_ms,
                DEFAULT_WEBHOOK_TIMEOUT_MS,
                "webhook_timeout_ms",
            )?,
        };
        Ok(Self {
            listen,
            data_dir,
            database_url,
            workflows_dir,
            api,
            signing,
            worker: !(args.no_worker || file.no_worker.unwrap_or(false)),
            worker_settings,
            demo: args.demo,
        })
    }
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read configuration file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid configuration file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_without_flags_or_file() {
        let config = ServeConfig::resolve(ServeArgs::default()).unwrap();
        assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(config.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert_eq!(config.database_url, "sqlite:seing-data/seing.db");
        assert_eq!(config.api.agent_port, crate::agent::DEFAULT_PORT);
    }

    #[test]
    fn flags_override_file_and_file_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seing.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\ndata_dir = \"/srv/seing\"\nagent_port = 7500\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(path),
            listen: Some("127.0.0.1:9100".parse().unwrap()),
            ..ServeArgs::default()
        };
        let config = ServeConfig::resolve(args).unwrap();
        assert_eq!(config.listen.port(), 9100);
        assert_eq!(config.data_dir, PathBuf::from("/srv/seing"));
        assert_eq!(config.database_url, "sqlite:/srv/seing/seing.db");
        assert_eq!(config.api.agent_port, 7500);
    }

    #[test]
    fn unknown_key_in_file_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "lisen = \"127.0.0.1:9000\"\n").unwrap();
        let error = ServeConfig::resolve(ServeArgs {
            config: Some(path.clone()),
            ..ServeArgs::default()
        })
        .unwrap_err();
        assert!(format!("{error:#}").contains(&path.display().to_string()));
        assert!(format!("{error:#}").contains("lisen"));
    }
}
