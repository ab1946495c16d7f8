//! A fresh database for each test: a SQLite file in the test's folder, or a PostgreSQL schema of
//! its own on `SEING_TEST_POSTGRES_URL`, dropped at the end. PostgreSQL out of reach skips the
//! test, or fails it when `CI=true`.

use std::path::Path;

use seing_engine::storage::Database;
use sqlx::Executor as _;

/// The backend a test runs on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Sqlite,
    Postgres,
}

fn postgres_url() -> String {
    std::env::var("SEING_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A migrated database, and the PostgreSQL schema to drop once the test is over.
pub struct TestDatabase {
    pub database: Database,
    schema: Option<String>,
}

impl TestDatabase {
    /// A migrated database on `kind` (SQLite in `dir`); `None` when PostgreSQL is out of reach
    /// outside CI.
    pub async fn open(kind: Kind, dir: &Path) -> Option<Self> {
        let (database, schema) = match kind {
            Kind::Sqlite => {
                let url = format!("sqlite:{}", dir.join("seing.db").display());
                (Database::connect(&url).await.unwrap(), None)
            }
            Kind::Postgres => {
                let url = postgres_url();
                let admin = match Database::connect(&url).await {
                    Ok(db) => db,
                    Err(e) => {
                        assert!(
                            std::env::var("CI").as_deref() != Ok("true"),
                            "PostgreSQL at {url} is unreachable and CI=true: {e}"
                        );
                        eprintln!("skipped: PostgreSQL at {url} is unreachable ({e})");
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
                let database = Database::connect_in_schema(&url, Some(&schema))
                    .await
                    .unwrap();
                (database, Some(schema))
            }
        };
        database.migrate().await.unwrap();
        Some(Self { database, schema })
    }

    /// Closes the database (every clone of its pool) and drops the PostgreSQL schema.
    pub async fn close(self) {
        self.database.close().await;
        if let Some(schema) = self.schema {
            let admin = Database::connect(&postgres_url()).await.unwrap();
            admin
                .pool()
                .execute(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                .await
                .unwrap();
            admin.close().await;
        }
    }
}
