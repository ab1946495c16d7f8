//! A fresh database for each test: a SQLite file in the test's folder, or a PostgreSQL schema of
//! its own on `SEING_TEST_POSTGRES_URL`, dropped at the end (also when the test panicked).
//! PostgreSQL out of reach skips the test, or fails it when `CI=true`.
//!
//! Shared by the API tests, the engine's harness (`engine/tests/common/mod.rs`) and the
//! connectors' port tests.

use std::path::Path;

use seing_engine::storage::Database;
use sqlx::Executor as _;

/// The backend a test runs on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server the tests create their schemas on.
pub fn postgres_url() -> String {
    std::env::var("SEING_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A migrated database, and the PostgreSQL schema to drop once the test is over.
pub struct TestDatabase {
    pub database: Database,
    url: String,
    schema: Option<String>,
}

impl TestDatabase {
    /// A migrated database on `kind` (SQLite in `dir`); `None` when PostgreSQL is out of reach
    /// outside CI.
    pub async fn open(kind: Kind, dir: &Path) -> Option<Self> {
        let (database, url, schema) = match kind {
            Kind::Sqlite => {
                let url = format!("sqlite:{}", dir.join("seing.db").display());
                (Database::connect(&url).await.unwrap(), url, None)
            }
            Kind::Postgres => {
                let server = postgres_url();
                let admin = match Database::connect(&server).await {
                    Ok(db) => db,
                    Err(e) => {
                        assert!(
                            std::env::var("CI").as_deref() != Ok("true"),
                            "PostgreSQL at {server} is unreachable and CI=true: {e}"
                        );
                        eprintln!("skipped: PostgreSQL at {server} is unreachable ({e})");
                        return None;
                    }
                };
                let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
                admin
                    .pool()
                    .execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                    .await
                    .unwrap();
                admin.close().await;
                let database = Database::connect_in_schema(&server, Some(&schema))
                    .await
                    .unwrap();
                let separator = if server.contains('?') { '&' } else { '?' };
                let url = format!("{server}{separator}options[search_path]={schema}");
                (database, url, Some(schema))
            }
        };
        database.migrate().await.unwrap();
        Some(Self {
            database,
            url,
            schema,
        })
    }

    /// The URL of this database, its PostgreSQL schema included: a `seing` process given it
    /// works on the test's data.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Closes the database (every clone of its pool) and drops the PostgreSQL schema.
    pub async fn close(mut self) {
        self.database.close().await;
        if let Some(schema) = self.schema.take() {
            drop_schema(&schema).await;
        }
    }
}

impl Drop for TestDatabase {
    /// Drops the PostgreSQL schema of a test that did not close its database, a panicking one
    /// for instance (on a thread of its own, since this may run inside the test's runtime).
    fn drop(&mut self) {
        let Some(schema) = self.schema.take() else {
            return;
        };
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(drop_schema(&schema));
        })
        .join();
        if dropped.is_err() {
            eprintln!("could not drop a test schema");
        }
    }
}

/// Drops `schema` and everything in it.
async fn drop_schema(schema: &str) {
    let admin = Database::connect(&postgres_url()).await.unwrap();
    let mut conn = admin.pool().acquire().await.unwrap();
    conn.execute("SET lock_timeout = '10s'").await.unwrap();
    conn.execute(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .await
        .unwrap();
    drop(conn);
    admin.close().await;
}
