//! Test harness: one engine per test on a fresh SQLite file or a fresh PostgreSQL schema, and a
//! tenant populated with desks, users and one circuit per template.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use seing_engine::Engine;
use seing_engine::circuit::Template;
use seing_engine::clock::ManualClock;
use seing_engine::docstore::DocumentStore;
use seing_engine::ids::{CircuitId, DeskId, DossierId};
use seing_engine::metadata::{MetaValue, Metadata};
use seing_engine::model::{Actor, NewDocument, NewDossier, SignedOutput};

#[path = "../../../api/tests/common/database.rs"]
mod database;
#[path = "../../../api/tests/common/tenant.rs"]
mod tenant;

pub use database::Kind;
use database::TestDatabase;
use tenant::TestTenant;

/// One isolated engine.
pub struct Harness {
    pub engine: Engine,
    pub clock: Arc<ManualClock>,
    pub kind: Kind,
    database: TestDatabase,
    dir: tempfile::TempDir,
}

pub fn workflows_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../workflows")
}

/// Templates of `workflows/` plus two test circuits with several desks (`any` and `all`).
pub fn templates() -> BTreeMap<String, Template> {
    let mut templates = Template::load_dir(&workflows_dir()).expect("workflows/ loads");
    for (name, quorum) in [("double-any", "any"), ("double-all", "all")] {
        let text = format!(
            "title = \"t\"\n[[steps]]\naction = \"visa\"\ndesks = [\"a\", \"b\"]\nquorum = \"{quorum}\"\n[[steps]]\naction = \"visa\"\ndesk = \"c\"\n"
        );
        templates.insert(name.into(), Template::parse("test", name, &text).unwrap());
    }
    let seal = "title = \"Cachet\"\n[[steps]]\naction = \"seal\"\ndesk = \"c\"\n[[steps]]\naction = \"archive\"\n";
    templates.insert(
        "seal".into(),
        Template::parse("test", "seal", seal).unwrap(),
    );
    templates
}

impl Harness {
    /// A harness on `kind`, or `None` when PostgreSQL is unreachable outside CI.
    pub async fn new(kind: Kind) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let start = time::macros::datetime!(2026-03-02 09:00 UTC);
        let clock = Arc::new(ManualClock::new(start));
        let database = TestDatabase::open(kind, dir.path()).await?;
        let engine = Engine::new(
            database.database.clone(),
            DocumentStore::new(dir.path().join("documents")),
            clock.clone(),
            templates(),
        );
        Some(Self {
            engine,
            clock,
            kind,
            database,
            dir,
        })
    }

    /// The folder holding the SQLite file and the documents (`documents/`): a `seing` process
    /// given it as `--data-dir` and [`Harness::database_url`] works on this engine's data.
    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// The URL of this harness's database, its PostgreSQL schema included.
    pub fn database_url(&self) -> String {
        self.database.url().to_owned()
    }

    /// Closes the pool; dropping the harness then drops the PostgreSQL schema.
    pub async fn cleanup(self) {
        self.engine.database().close().await;
    }
}

/// Runs `$body` (an async fn taking a `Harness`) on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident => $body:path;)*) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let h = $crate::common::Harness::new($crate::common::Kind::Sqlite).await.unwrap();
                    $body(&h).await;
                    h.cleanup().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(h) = $crate::common::Harness::new($crate::common::Kind::Postgres).await else { return };
                    $body(&h).await;
                    h.cleanup().await;
                }
            )*
        }
    };
}

/// A populated tenant.
pub struct World {
    pub admin: Actor,
    pub users: BTreeMap<&'static str, Actor>,
    pub desks: BTreeMap<&'static str, DeskId>,
    pub circuits: BTreeMap<&'static str, CircuitId>,
}

/// (desk, holder login, parent desk)
const DESKS: &[(&str, &str, Option<&str>)] = &[
    ("dgs", "dgs", None),
    ("maire", "maire", None),
    ("adjoint", "adjoint", None),
    ("finances", "fin", Some("dgs")),
    ("drh", "drh", Some("dgs")),
    ("comptable", "compta", None),
    ("marches", "marches", None),
    ("chef", "chef", Some("dgs")),
    ("agent", "agent", Some("chef")),
    ("orphan", "orphan", None),
    ("a", "ua", None),
    ("b", "ub", None),
    ("c", "uc", None),
];

pub async fn world(engine: &Engine, siren: &str) -> World {
    let tenant = TestTenant::with_parents(engine, "Commune de Test", siren, DESKS).await;
    let admin = tenant.admin;
    let mut users = BTreeMap::new();
    let mut desks = BTreeMap::new();
    for (desk, login, _) in DESKS {
        users.insert(*login, tenant.actors[*login]);
        desks.insert(*desk, tenant.desks[*desk]);
    }
    // A second holder of the finance desk, for concurrent actions on one desk.
    let fin2 = engine
        .create_user(admin, "fin2", "fin2", false)
        .await
        .unwrap();
    users.insert(
        "fin2",
        Actor {
            tenant: admin.tenant,
            user: fin2.id,
        },
    );
    sqlx::query("INSERT INTO desk_holders (desk_id, user_id) VALUES ($1, $2)")
        .bind(desks["finances"].to_string())
        .bind(fin2.id.to_string())
        .execute(engine.database().pool())
        .await
        .unwrap();
    let mut circuits = BTreeMap::new();
    let roles = |pairs: &[(&str, &str)]| -> BTreeMap<String, DeskId> {
        pairs
            .iter()
            .map(|(k, d)| (k.to_string(), desks[d]))
            .collect()
    };
    let specs: [(&str, BTreeMap<String, DeskId>); 9] = [
        (
            "pes-bordereaux",
            roles(&[("finances", "finances"), ("maire", "maire")]),
        ),
        (
            "actes-deliberation",
            roles(&[("dgs", "dgs"), ("maire", "maire")]),
        ),
        ("marches-notification", roles(&[("marches", "marches")])),
        ("conges", roles(&[("drh", "drh")])),
        (
            "frais-deplacement",
            roles(&[("dgs", "dgs"), ("comptable", "comptable")]),
        ),
        (
            "visa-signature",
            roles(&[("viseur", "finances"), ("signataire", "maire")]),
        ),
        ("double-any", roles(&[("a", "a"), ("b", "b"), ("c", "c")])),
        ("double-all", roles(&[("a", "a"), ("b", "b"), ("c", "c")])),
        ("seal", roles(&[("c", "c")])),
    ];
    for (template, roles) in specs {
        let c = engine
            .create_circuit(admin, template, template, &roles)
            .await
            .unwrap();
        circuits.insert(template, c.id);
    }
    World {
        admin,
        users,
        desks,
        circuits,
    }
}

pub fn doc(name: &str, bytes: &[u8]) -> NewDocument {
    NewDocument {
        name: name.into(),
        media_type: "application/pdf".into(),
        bytes: bytes.to_vec(),
    }
}

pub fn signed(bytes: &[u8]) -> SignedOutput {
    SignedOutput {
        documents: vec![doc("signed.pdf", bytes)],
        signatures: vec![],
    }
}

pub fn meta(pairs: &[(&str, MetaValue)]) -> Metadata {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

impl World {
    pub fn new_dossier(&self, circuit: &str, emitter: &str) -> NewDossier {
        NewDossier {
            circuit: self.circuits[circuit],
            emitter_desk: self.desks[emitter],
            title: format!("{circuit} n°1"),
            main: doc("main.pdf", format!("%PDF {circuit}").as_bytes()),
            annexes: vec![doc("annexe.pdf", b"%PDF annexe")],
            metadata: Metadata::new(),
            chosen_desks: BTreeMap::new(),
            deadline: None,
        }
    }

    /// Creates and submits a dossier.
    pub async fn submitted(
        &self,
        engine: &Engine,
        circuit: &str,
        emitter: &str,
        login: &str,
        metadata: Metadata,
    ) -> DossierId {
        let mut new = self.new_dossier(circuit, emitter);
        new.metadata = metadata;
        let d = engine.create_dossier(self.users[login], new).await.unwrap();
        engine
            .submit(self.users[login], d.id, Some(d.version))
            .await
            .unwrap();
        d.id
    }
}
