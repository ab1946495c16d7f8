//! Engine benchmark, run on demand:
//! `cargo run --release -p seing-engine --example bench -- [--database-url URL] [--dossiers N] [--list N] [--workers N]`.
//!
//! 1. creates and drives N dossiers (default 10 000) through `visa-signature`
//!    (create → submit → visa → sign with a signed document) and reports dossiers per second;
//! 2. fills one desk with M dossiers (default 100 000, bulk-inserted rows) and measures the
//!    median and p99 latency of listing its first page (50 items), and of a page deep inside.
//!
//! Without `--database-url`, a fresh SQLite file in a temporary folder is used (kept with
//! `--keep DIR`); a PostgreSQL URL gets a fresh schema that is dropped at the end (kept, and
//! named, with `--keep`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use seing_engine::Engine;
use seing_engine::circuit::Template;
use seing_engine::clock::{SystemClock, format_time};
use seing_engine::docstore::DocumentStore;
use seing_engine::ids::{DeskId, DossierId};
use seing_engine::model::{ActionInput, Actor, NewDocument, NewDossier, NewTenant, SignedOutput};
use seing_engine::storage::Database;
use sqlx::Executor;

struct Options {
    database_url: Option<String>,
    dossiers: usize,
    list: usize,
    workers: usize,
    keep: Option<PathBuf>,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        database_url: None,
        dossiers: 10_000,
        list: 100_000,
        workers: 4,
        keep: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |v: String| v.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--database-url" => o.database_url = Some(value()?),
            "--dossiers" => o.dossiers = number(value()?)?,
            "--list" => o.list = number(value()?)?,
            "--workers" => o.workers = number(value()?)?.max(1),
            "--keep" => o.keep = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(o)
}

fn document(name: &str, bytes: Vec<u8>) -> NewDocument {
    NewDocument {
        name: name.into(),
        media_type: "application/pdf".into(),
        bytes,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let o = options()?;
    let temp = tempfile::tempdir()?;
    let dir = o.keep.clone().unwrap_or_else(|| temp.path().to_owned());
    std::fs::create_dir_all(&dir)?;
    let (url, schema) = match &o.database_url {
        Some(url) if url.starts_with("postgres") => {
            let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
            let admin = Database::connect(url).await?;
            admin
                .pool()
                .execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                .await?;
            admin.close().await;
            (url.clone(), Some(schema))
        }
        Some(url) => (url.clone(), None),
        None => (format!("sqlite:{}", dir.join("seing.db").display()), None),
    };
    let db = Database::connect_in_schema(&url, schema.as_deref()).await?;
    db.migrate().await?;
    let workflows = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../workflows");
    let engine = Engine::new(
        db.clone(),
        DocumentStore::new(dir.join("documents")),
        Arc::new(SystemClock),
        Template::load_dir(&workflows)?,
    );
    println!("backend: {}, workers: {}", db.backend(), o.workers);

    let (tenant, admin) = engine
        .create_tenant(NewTenant {
            name: "Commune de Banc-d'Essai".into(),
            siren: "213502388".into(),
            departement: "35".into(),
            admin_login: "admin".into(),
            admin_name: "Admin".into(),
        })
        .await?;
    let admin = Actor {
        tenant: tenant.id,
        user: admin.id,
    };
    let mut actors = BTreeMap::new();
    let mut desks = BTreeMap::new();
    for name in ["viseur", "signataire", "liste"] {
        let user = engine.create_user(admin, name, name, false).await?;
        let desk = engine.create_desk(admin, name, None, &[user.id]).await?;
        actors.insert(
            name,
            Actor {
                tenant: tenant.id,
                user: user.id,
            },
        );
        desks.insert(name, desk.id);
    }
    let roles: BTreeMap<String, DeskId> = [
        ("viseur".to_owned(), desks["viseur"]),
        ("signataire".to_owned(), desks["signataire"]),
    ]
    .into();
    let circuit = engine
        .create_circuit(admin, "visa-signature", "visa-signature", &roles)
        .await?;

    // 1. Throughput.
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..o.workers {
        let engine = engine.clone();
        let (viseur, signataire) = (actors["viseur"], actors["signataire"]);
        let emitter = desks["viseur"];
        let count = o.dossiers / o.workers + usize::from(worker < o.dossiers % o.workers);
        let circuit = circuit.id;
        tasks.push(tokio::spawn(async move {
            for i in 0..count {
                let new = NewDossier {
                    circuit,
                    emitter_desk: emitter,
                    title: format!("Dossier {worker}-{i}"),
                    main: document("main.pdf", format!("%PDF-1.7 {worker}-{i}").into_bytes()),
                    annexes: Vec::new(),
                    metadata: Default::default(),
                    chosen_desks: Default::default(),
                    deadline: None,
                };
                let d = engine.create_dossier(viseur, new).await?;
                engine.submit(viseur, d.id, None).await?;
                engine.visa(viseur, d.id, ActionInput::default()).await?;
                let signed = SignedOutput {
                    documents: vec![document(
                        "signed.pdf",
                        format!("%PDF-1.7 signed {worker}-{i}").into_bytes(),
                    )],
                    signatures: Vec::new(),
                };
                engine
                    .sign(signataire, d.id, ActionInput::default(), signed)
                    .await?;
            }
            Ok::<usize, seing_engine::EngineError>(count)
        }));
    }
    let mut driven = 0;
    for task in tasks {
        driven += task.await??;
    }
    let elapsed = started.elapsed();
    println!(
        "drove {driven} dossiers through visa-signature in {:.1} s: {:.0} dossiers/s",
        elapsed.as_secs_f64(),
        driven as f64 / elapsed.as_secs_f64()
    );

    // 2. Listing one desk among many dossiers: rows inserted in bulk, as the engine stores them.
    let desk = desks["liste"];
    let now = format_time(time::OffsetDateTime::now_utc());
    let started = Instant::now();
    let mut inserted = 0;
    while inserted < o.list {
        let batch = (o.list - inserted).min(1000);
        let mut tx = db.begin_write().await?;
        for _ in 0..batch {
            let id = DossierId::new().to_string();
            sqlx::query(
                "INSERT INTO dossiers (id, tenant_id, circuit_id, title, emitter_desk, emitter_user, state, current_step, steps, metadata, chosen, undo, deadline, version, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, '[]', '{}', '{}', NULL, NULL, 1, $7, $7)",
            )
            .bind(id.clone())
            .bind(tenant.id.to_string())
            .bind(circuit.id.to_string())
            .bind(format!("Dossier {inserted}"))
            .bind(desk.to_string())
            .bind(actors["liste"].user.to_string())
            .bind(now.clone())
            .execute(&mut *tx)
            .await?;
            sqlx::query("INSERT INTO inbox (tenant_id, desk_id, dossier_id, reason) VALUES ($1, $2, $3, 'act')")
                .bind(tenant.id.to_string())
                .bind(desk.to_string())
                .bind(id)
                .execute(&mut *tx)
                .await?;
            inserted += 1;
        }
        tx.commit().await?;
    }
    // Fresh statistics, as a production database would have.
    db.pool().execute("ANALYZE").await?;
    println!(
        "inserted {inserted} dossiers in the desk's list in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let lister = actors["liste"];
    let first = engine.desk_dossiers(lister, desk, None, 50).await?;
    let middle_cursor = {
        let mut cursor = first.next_cursor.clone();
        for _ in 0..(o.list / 100).min(1000) {
            let page = engine
                .desk_dossiers(lister, desk, cursor.as_deref(), 50)
                .await?;
            cursor = page.next_cursor;
        }
        cursor
    };
    for (label, cursor) in [("first page", None), ("deep page", middle_cursor)] {
        let mut samples = Vec::new();
        for _ in 0..500 {
            let t = Instant::now();
            let page = engine
                .desk_dossiers(lister, desk, cursor.as_deref(), 50)
                .await?;
            samples.push(t.elapsed());
            assert_eq!(page.items.len(), 50);
        }
        samples.sort();
        println!(
            "list {label} (50 of {inserted}): median {:.2} ms, p99 {:.2} ms",
            percentile(&samples, 0.5).as_secs_f64() * 1e3,
            percentile(&samples, 0.99).as_secs_f64() * 1e3
        );
    }
    db.close().await;
    if let (Some(schema), Some(_)) = (&schema, &o.keep) {
        println!("kept PostgreSQL schema {schema}");
    } else if let (Some(schema), Some(url)) = (schema, &o.database_url) {
        let admin = Database::connect(url).await?;
        admin
            .pool()
            .execute(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .await?;
        admin.close().await;
    }
    Ok(())
}
