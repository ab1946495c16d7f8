//! A tenant for the API tests: its administrator, and one user per desk holding it.

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
        let mut desks = BTreeMap::new();
        for (desk, login) in people {
            let user = engine
                .create_user(admin, login, login, false)
                .await
                .unwrap();
            let created = engine
                .create_desk(admin, desk, None, &[user.id])
                .await
                .unwrap();
            desks.insert(desk.to_string(), created.id);
            actors.insert(
                login.to_string(),
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
