//! `seing admin`: the operator's commands on the service's database (same configuration as
//! `seing serve`): create a tenant, a user, a desk, an API token; import circuit templates;
//! the signing trust store and server keys; webhook subscriptions.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use seing_engine::Engine;
use seing_engine::access::Role;
use seing_engine::ids::{DeskId, DossierId, ServerKeyId, TrustAnchorId, WebhookId};
use seing_engine::model::{Actor, NewTenant, Tenant};
use seing_engine::signing::{KeyUsage, NewServerKey};
use seing_engine::webhooks::NewWebhook;

use crate::config::{ServeArgs, ServeConfig};
use crate::http::{auth, webhooks};

/// Arguments of `seing admin`.
#[derive(Debug, Args)]
pub struct AdminArgs {
    /// Where the service keeps its data (as for `seing serve`).
    #[command(flatten)]
    pub store: ServeArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: AdminCommand,
}

/// The subcommands of `seing admin`.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a tenant (an authority) and its first administrator.
    CreateTenant {
        /// Name ("Commune de Saint-Martin").
        #[arg(long)]
        name: String,
        /// SIREN (9 digits, Luhn-valid).
        #[arg(long)]
        siren: String,
        /// Département code ("35", "2A", "974").
        #[arg(long)]
        departement: String,
        /// Login of the administrator.
        #[arg(long, default_value = "admin")]
        admin_login: String,
        /// Display name of the administrator.
        #[arg(long, default_value = "Administrateur")]
        admin_name: String,
        /// Password of the administrator (at least 10 characters).
        #[arg(long, env = "SEING_ADMIN_PASSWORD", hide_env_values = true)]
        admin_password: String,
    },
    /// Create a user in a tenant.
    CreateUser {
        /// SIREN of the tenant.
        #[arg(long)]
        tenant: String,
        /// Login.
        #[arg(long)]
        login: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Make the user a tenant administrator.
        #[arg(long)]
        admin: bool,
        /// Password (none: the user cannot log in, e.g. an account for software).
        #[arg(long, env = "SEING_USER_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
    /// Create a desk in a tenant.
    CreateDesk {
        /// SIREN of the tenant.
        #[arg(long)]
        tenant: String,
        /// Name of the desk.
        #[arg(long)]
        name: String,
        /// Name of the parent desk.
        #[arg(long)]
        parent: Option<String>,
        /// Login of a holder (repeat for several).
        #[arg(long = "holder")]
        holders: Vec<String>,
    },
    /// Create an API token and print its secret (shown once).
    CreateToken {
        /// SIREN of the tenant (omit with --operator).
        #[arg(long, required_unless_present = "operator")]
        tenant: Option<String>,
        /// Login of the user the software acts as.
        #[arg(long, required_unless_present = "operator")]
        login: Option<String>,
        /// Give the token the tenant administrator role (the user must be an administrator).
        #[arg(long)]
        tenant_admin: bool,
        /// An operator token (manages tenants) instead of a tenant token.
        #[arg(long, conflicts_with_all = ["tenant", "login", "tenant_admin"])]
        operator: bool,
        /// Which software uses it.
        #[arg(long)]
        label: String,
    },
    /// Instantiate circuit templates for a tenant, mapping their role keys to desks.
    ImportCircuits {
        /// SIREN of the tenant.
        #[arg(long)]
        tenant: String,
        /// A role key and the desk that plays it, as key=desk name (repeat).
        #[arg(long = "role", value_parser = parse_role)]
        roles: Vec<(String, String)>,
        /// Only these templates (default: every template whose roles are all mapped).
        #[arg(long = "template")]
        templates: Vec<String>,
    },
    /// Add CA certificates (trust anchors) and CRLs from a PEM file to a tenant's trust store.
    AddTrustAnchor {
        /// SIREN of the tenant.
        #[arg(long)]
        tenant: String,
        /// PEM file of CERTIFICATE and X509 CRL blocks.
        file: std::path::PathBuf,
    },
    /// Register a key of the server's PKCS#11 module for a tenant (its PIN is given at each use).
    AddServerKey {
        /// SIREN of the tenant.
        #[arg(long)]
        tenant: String,
        /// Label shown to users.
        #[arg(long)]
        label: String,
        /// RFC 7512 URI of the key, without PIN.
        #[arg(long)]
        uri: String,
        /// `seal` (the authority's seal) or `user` (an élu's key, with --owner).
        #[arg(long, value_parser = ["seal", "user"])]
        usage: String,
        /// Login of the owner of a `user` key.
        #[arg(long)]
        owner: Option<String>,
        /// PEM file of intermediate CA certificates to embed after the key's certificate.
        #[arg(long)]
        chain: Option<std::path::PathBuf>,
    },
    /// Set a tenant's connector settings (Actes, Hélios, archives) from a JSON file; every
    /// problem is listed and nothing is changed when one is found.
    SetConnectors {
        /// SIREN of the tenant.
        #[arg(long)]
        tenant: String,
        /// JSON file of the settings (see docs/connectors.md).
        file: std::path::PathBuf,
    },
    /// Remove an entry (CA certificate or CRL) from a tenant's trust store, by the id that
    /// `list-signing` shows.
    RemoveTrustAnchor {
        /// SIREN of the tenant.
        #[arg(long)]
        tenant: String,
        /// Id of the entry.
        id: TrustAnchorId,
    },
    /// Forget a server key of a tenant, by the id that `list-signing` shows (the key stays on
    /// the module; it can no longer sign).
    RemoveServerKey {
        /// SIREN of the tenant.
        #[arg(long)]
        tenant: String,
        /// Id of the key.
        id: ServerKeyId,
    },
    /// List the tenant's PES that S²LOW took but whose transaction number was lost (a crash or
    /// a lost answer between the upload and its record).
    UnnumberedPes {
        /// SIREN of the tenant.
        #[arg(long)]
        tenant: String,
    },
    /// Give such a PES the transaction number found in the S²LOW console; it is taken only if
    /// the file S²LOW holds under that number is the file sent (same SHA-1).
    NumberPes {
        /// SIREN of the tenant.
        #[arg(long)]
        tenant: String,
        /// Id of the dossier.
        #[arg(long)]
        dossier: DossierId,
        /// The S²LOW transaction number.
        #[arg(long)]
        transaction: u64,
    },
    /// List a tenant's trust anchors, CRLs and server keys.
    ListSigning {
        /// SIREN of the tenant.
        #[arg(long)]
        tenant: String,
    },
    /// Webhook subscriptions of a tenant: create (prints the secret once), list, delete.
    #[command(subcommand)]
    Webhook(WebhookCommand),
}

/// The subcommands of `seing admin webhook`.
#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Subscribe a URL to events of the tenant's dossiers.
    Create {
        /// SIREN of the tenant.
        #[arg(long)]
        tenant: String,
        /// Where events are POSTed.
        #[arg(long)]
        url: String,
        /// An event to receive (repeat; default: every event): dossier.created, step.completed,
        /// dossier.signed, dossier.rejected, dossier.finished, …
        #[arg(long = "event")]
        events: Vec<String>,
        /// The HMAC-SHA256 secret (default: a generated one, printed once).
        #[arg(long, env = "SEING_WEBHOOK_SECRET", hide_env_values = true)]
        secret: Option<String>,
        /// Create it inactive (it receives nothing).
        #[arg(long)]
        inactive: bool,
    },
    /// List the tenant's subscriptions (secrets are never shown).
    List {
        /// SIREN of the tenant.
        #[arg(long)]
        tenant: String,
    },
    /// Delete a subscription; deliveries not yet made are dropped.
    Delete {
        /// SIREN of the tenant.
        #[arg(long)]
        tenant: String,
        /// Id of the subscription.
        id: WebhookId,
    },
}

fn parse_role(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .filter(|(k, v)| !k.is_empty() && !v.is_empty())
        .ok_or_else(|| format!("expected key=desk name, got `{text}`"))
}

/// Runs `seing admin`.
pub fn run(args: AdminArgs) -> anyhow::Result<ExitCode> {
    let config = ServeConfig::resolve(args.store)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let engine = crate::server::open_engine(&config).await?;
        let result = execute(&engine, args.command).await;
        engine.database().close().await;
        result
    })?;
    Ok(ExitCode::SUCCESS)
}

async fn tenant(engine: &Engine, siren: &str) -> anyhow::Result<Tenant> {
    engine
        .tenant_by_siren(siren)
        .await?
        .with_context(|| format!("no tenant with SIREN {siren}"))
}

/// The tenant's first administrator, in whose name the operator's changes are journaled.
async fn tenant_admin(engine: &Engine, tenant: &Tenant) -> anyhow::Result<Actor> {
    let user = engine
        .tenant_users(tenant.id)
        .await?
        .into_iter()
        .find(|u| u.admin)
        .with_context(|| format!("tenant {} has no administrator", tenant.siren))?;
    Ok(Actor {
        tenant: tenant.id,
        user: user.id,
    })
}

async fn user(engine: &Engine, tenant: &Tenant, login: &str) -> anyhow::Result<Actor> {
    let user = engine
        .tenant_users(tenant.id)
        .await?
        .into_iter()
        .find(|u| u.login == login)
        .with_context(|| format!("no user `{login}` in tenant {}", tenant.siren))?;
    Ok(Actor {
        tenant: tenant.id,
        user: user.id,
    })
}

async fn set_password(engine: &Engine, actor: Actor, password: &str) -> anyhow::Result<()> {
    auth::check_password(password)?;
    let hash = auth::hash_password(password)?;
    engine
        .set_password_hash(actor.tenant, actor.user, &hash)
        .await?;
    Ok(())
}

async fn execute(engine: &Engine, command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::CreateTenant {
            name,
            siren,
            departement,
            admin_login,
            admin_name,
            admin_password,
        } => {
            auth::check_password(&admin_password)?;
            let (tenant, admin) = engine
                .create_tenant(NewTenant {
                    name,
                    siren,
                    departement,
                    admin_login: admin_login.clone(),
                    admin_name,
                })
                .await?;
            set_password(
                engine,
                Actor {
                    tenant: tenant.id,
                    user: admin.id,
                },
                &admin_password,
            )
            .await?;
            println!(
                "tenant {} created (SIREN {}), administrator `{admin_login}` {}",
                tenant.id, tenant.siren, admin.id
            );
        }
        AdminCommand::CreateUser {
            tenant: siren,
            login,
            name,
            admin,
            password,
        } => {
            let tenant = tenant(engine, &siren).await?;
            if let Some(p) = &password {
                auth::check_password(p)?;
            }
            let by = tenant_admin(engine, &tenant).await?;
            let user = engine.create_user(by, &login, &name, admin).await?;
            if let Some(p) = password {
                set_password(
                    engine,
                    Actor {
                        tenant: tenant.id,
                        user: user.id,
                    },
                    &p,
                )
                .await?;
            }
            println!("user `{login}` created: {}", user.id);
        }
        AdminCommand::CreateDesk {
            tenant: siren,
            name,
            parent,
            holders,
        } => {
            let tenant = tenant(engine, &siren).await?;
            let by = tenant_admin(engine, &tenant).await?;
            let desks = engine.desks(by).await?;
            let parent = match parent {
                Some(p) => Some(
                    desks
                        .iter()
                        .find(|d| d.name == p)
                        .map(|d| d.id)
                        .with_context(|| format!("no desk `{p}` in tenant {siren}"))?,
                ),
                None => None,
            };
            let mut ids = Vec::new();
            for login in &holders {
                ids.push(user(engine, &tenant, login).await?.user);
            }
            let desk = engine.create_desk(by, &name, parent, &ids).await?;
            println!("desk `{name}` created: {}", desk.id);
        }
        AdminCommand::CreateToken {
            tenant: siren,
            login,
            tenant_admin: admin_role,
            operator,
            label,
        } => {
            let (scope, role) = if operator {
                (None, Role::Operator)
            } else {
                let (Some(siren), Some(login)) = (siren, login) else {
                    bail!("--tenant and --login are required without --operator");
                };
                let tenant = tenant(engine, &siren).await?;
                let actor = user(engine, &tenant, &login).await?;
                let role = if admin_role {
                    Role::TenantAdmin
                } else {
                    Role::User
                };
                (Some(actor), role)
            };
            let secret = auth::new_token_secret()?;
            let token = engine
                .create_api_token(scope, role, &label, &auth::secret_hash(&secret))
                .await?;
            println!(
                "token {} ({}) created; its secret, shown once:",
                token.id,
                role.as_str()
            );
            println!("{secret}");
        }
        AdminCommand::ImportCircuits {
            tenant: siren,
            roles,
            templates,
        } => {
            let tenant = tenant(engine, &siren).await?;
            let by = tenant_admin(engine, &tenant).await?;
            let desks = engine.desks(by).await?;
            let mut role_desks: BTreeMap<String, DeskId> = BTreeMap::new();
            for (key, name) in roles {
                let desk = desks
                    .iter()
                    .find(|d| d.name == name)
                    .with_context(|| format!("no desk `{name}` in tenant {siren}"))?;
                role_desks.insert(key, desk.id);
            }
            for wanted in &templates {
                if !engine.templates().contains_key(wanted) {
                    bail!("no circuit template `{wanted}`");
                }
            }
            let mut imported = 0;
            for (name, template) in engine.templates() {
                if !templates.is_empty() && !templates.contains(name) {
                    continue;
                }
                let needed = template.roles();
                let missing: Vec<&str> = needed
                    .iter()
                    .copied()
                    .filter(|r| !role_desks.contains_key(*r))
                    .collect();
                if !missing.is_empty() {
                    if !templates.is_empty() {
                        bail!("template `{name}` needs --role for: {}", missing.join(", "));
                    }
                    println!("skipped `{name}`: no desk for {}", missing.join(", "));
                    continue;
                }
                let roles: BTreeMap<String, DeskId> = needed
                    .iter()
                    .map(|r| ((*r).to_owned(), role_desks[*r]))
                    .collect();
                let circuit = engine
                    .create_circuit(by, &template.title, name, &roles)
                    .await?;
                println!(
                    "circuit `{}` created from `{name}`: {}",
                    template.title, circuit.id
                );
                imported += 1;
            }
            println!("{imported} circuit(s) imported");
        }
        AdminCommand::SetConnectors {
            tenant: siren,
            file,
        } => {
            let tenant = tenant(engine, &siren).await?;
            let json = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let settings = seing_connectors::settings::store_settings(
                engine,
                tenant.id,
                &json,
                time::OffsetDateTime::now_utc(),
            )
            .await?;
            for folder in settings.folders() {
                println!("folder: {}", folder.display());
            }
            println!("connector settings of {} saved", tenant.siren);
        }
        AdminCommand::AddTrustAnchor {
            tenant: siren,
            file,
        } => {
            let tenant = tenant(engine, &siren).await?;
            let by = tenant_admin(engine, &tenant).await?;
            let pem = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            for entry in engine.add_trust_entries(by, &pem).await? {
                println!("{:?} added: {} ({})", entry.kind, entry.subject, entry.id);
            }
        }
        AdminCommand::AddServerKey {
            tenant: siren,
            label,
            uri,
            usage,
            owner,
            chain,
        } => {
            let tenant = tenant(engine, &siren).await?;
            let by = tenant_admin(engine, &tenant).await?;
            let owner = match owner {
                Some(login) => Some(user(engine, &tenant, &login).await?.user),
                None => None,
            };
            let chain_pem = chain
                .map(|p| {
                    std::fs::read_to_string(&p)
                        .with_context(|| format!("cannot read {}", p.display()))
                })
                .transpose()?;
            let key = engine
                .add_server_key(
                    by,
                    NewServerKey {
                        label,
                        uri,
                        usage: KeyUsage::parse(&usage).context("usage: seal or user")?,
                        owner,
                        chain_pem,
                    },
                )
                .await?;
            println!("server key `{}` registered: {}", key.label, key.id);
        }
        AdminCommand::RemoveTrustAnchor { tenant: siren, id } => {
            let tenant = tenant(engine, &siren).await?;
            let by = tenant_admin(engine, &tenant).await?;
            engine.remove_trust_entry(by, id).await?;
            println!("trust store entry {id} removed");
        }
        AdminCommand::RemoveServerKey { tenant: siren, id } => {
            let tenant = tenant(engine, &siren).await?;
            let by = tenant_admin(engine, &tenant).await?;
            engine.remove_server_key(by, id).await?;
            println!("server key {id} removed");
        }
        AdminCommand::UnnumberedPes { tenant: siren } => {
            let tenant = tenant(engine, &siren).await?;
            for pes in seing_connectors::recovery::unnumbered_pes(engine, tenant.id).await? {
                println!(
                    "{}\t{}\tsha1:{}\t{}\t{}",
                    pes.dossier, pes.sent_at, pes.sha1, pes.file, pes.title
                );
            }
        }
        AdminCommand::NumberPes {
            tenant: siren,
            dossier,
            transaction,
        } => {
            let tenant = tenant(engine, &siren).await?;
            let by = tenant_admin(engine, &tenant).await?;
            seing_connectors::recovery::number_pes(
                engine,
                tenant.id,
                by.user,
                dossier,
                transaction,
            )
            .await?;
            println!(
                "dossier {dossier}: PES numbered S²LOW transaction {transaction}, followed from now on"
            );
        }
        AdminCommand::ListSigning { tenant: siren } => {
            let tenant = tenant(engine, &siren).await?;
            let by = tenant_admin(engine, &tenant).await?;
            for entry in engine.trust_entries(by).await? {
                println!("{:?}\t{}\t{}", entry.kind, entry.id, entry.subject);
            }
            for key in engine.server_keys(by).await? {
                println!("key\t{}\t{}\t{:?}", key.id, key.label, key.usage);
            }
        }
        AdminCommand::Webhook(command) => webhook(engine, command).await?,
    }
    Ok(())
}

async fn webhook(engine: &Engine, command: WebhookCommand) -> anyhow::Result<()> {
    match command {
        WebhookCommand::Create {
            tenant: siren,
            url,
            events,
            secret,
            inactive,
        } => {
            let tenant = tenant(engine, &siren).await?;
            let by = tenant_admin(engine, &tenant).await?;
            let events = webhooks::parse_events(&events)?;
            let (secret, generated) = match secret {
                Some(s) => (s, false),
                None => (webhooks::new_webhook_secret()?, true),
            };
            let webhook = engine
                .create_webhook(
                    by,
                    NewWebhook {
                        url,
                        events,
                        secret: secret.clone(),
                        active: !inactive,
                    },
                )
                .await?;
            println!("webhook {} created for {}", webhook.id, webhook.url);
            if generated {
                println!("its secret, shown once:");
                println!("{secret}");
            }
        }
        WebhookCommand::List { tenant: siren } => {
            let tenant = tenant(engine, &siren).await?;
            let by = tenant_admin(engine, &tenant).await?;
            for webhook in engine.webhooks(by).await? {
                let events: Vec<&str> = webhook.events.iter().map(|e| e.as_str()).collect();
                println!(
                    "{} {} {} [{}]",
                    webhook.id,
                    if webhook.active { "active" } else { "inactive" },
                    webhook.url,
                    if events.is_empty() {
                        "every event".to_owned()
                    } else {
                        events.join(", ")
                    }
                );
            }
        }
        WebhookCommand::Delete { tenant: siren, id } => {
            let tenant = tenant(engine, &siren).await?;
            let by = tenant_admin(engine, &tenant).await?;
            engine.delete_webhook(by, id).await?;
            println!("webhook {id} deleted");
        }
    }
    Ok(())
}
