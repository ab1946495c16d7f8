//! A tenant for the tests: its administrator, and one user per desk holding it.
//!
//! Shared by the API tests, the engine's harness (`engine/tests/common/mod.rs`) and the
//! connectors' port tests.

use std::collections::BTreeMap;

use seing_engine::Engine;
use seing_engine::ids::DeskId;
use seing_engine::model::{Actor, NewTenant};

/// The tenant's administrator, its users by login and its desks by name.
pub struct TestTenant {
    pub admin: Actor,
    pub actors: BTreeMap<String, Actor>,
    pub desks: BTreeMap<String, DeskId>,
}

impl TestTenant {
    /// Creates the tenant `name` (SIREN `siren`, département 35) and, for each `(desk, login)`,
    /// a user `login` holding a new desk `desk`.
    pub async fn create(engine: &Engine, name: &str, siren: &str, people: &[(&str, &str)]) -> Self {
        let people: Vec<_> = people
            .iter()
            .map(|&(desk, login)| (desk, login, None))
            .collect();
        Self::with_parents(engine, name, siren, &people).await
    }

    /// Creates the tenant `name` (SIREN `siren`, département 35) and, for each
    /// `(desk, login, parent)`, a user `login` holding a new desk `desk` under the desk `parent`
    /// (one listed before it).
    pub async fn with_parents(
        engine: &Engine,
        name: &str,
        siren: &str,
        people: &[(&str, &str, Option<&str>)],
    ) -> Self {
        let (tenant, admin) = engine
            .create_tenant(NewTenant {
                name: name.into(),
                siren: siren.into(),
                departement: "35".into(),
                admin_login: "admin".into(),
                admin_name: "Admin".into(),
            })
            .await
            .unwrap();
        let admin = Actor {
            tenant: tenant.id,
            user: admin.id,
        };
        let mut actors = BTreeMap::new();
        let mut desks: BTreeMap<String, DeskId> = BTreeMap::new();
        for &(desk, login, parent) in people {
            let user = engine
                .create_user(admin, login, login, false)
                .await
                .unwrap();
            let parent = parent.map(|p| desks[p]);
            let created = engine
                .create_desk(admin, desk, parent, &[user.id])
                .await
                .unwrap();
            desks.insert(desk.to_owned(), created.id);
            actors.insert(
                login.to_owned(),
                Actor {
                    tenant: tenant.id,
                    user: user.id,
                },
            );
        }
        Self {
            admin,
            actors,
            desks,
        }
    }
}
