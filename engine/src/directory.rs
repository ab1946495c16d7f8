//! Tenants, users, desks, delegations and circuits: the directory a tenant administrator keeps.

use std::collections::BTreeMap;

use serde_json::json;
use sqlx::Row;
use time::OffsetDateTime;

use crate::engine::{Engine, db_time, json_col, parse_col, parse_opt_col, time_col, to_json};
use crate::error::{EngineError, EngineResult};
use crate::ids::{CircuitId, DelegationId, DeskId, TenantId, UserId};
use crate::journal::{self, GENESIS, NewEntry};
use crate::model::{Actor, CircuitInfo, Delegation, Desk, NewTenant, Tenant, User};

/// Checks a SIREN: 9 digits with a valid Luhn key.
pub fn valid_siren(siren: &str) -> bool {
    siren.len() == 9
        && siren.bytes().all(|b| b.is_ascii_digit())
        && siren
            .bytes()
            .rev()
            .enumerate()
            .map(|(i, b)| {
                let d = u32::from(b - b'0');
                if i % 2 == 1 {
                    let x = d * 2;
                    if x > 9 { x - 9 } else { x }
                } else {
                    d
                }
            })
            .sum::<u32>()
            % 10
            == 0
}

/// Checks a département code: 01–95 (not 20), 2A, 2B, 971–976.
pub fn valid_departement(code: &str) -> bool {
    match code {
        "2A" | "2B" => true,
        _ => match code.parse::<u32>() {
            Ok(n) if code.len() == 2 => (1..=95).contains(&n) && n != 20,
            Ok(n) if code.len() == 3 => (971..=976).contains(&n),
            _ => false,
        },
    }
}

fn non_empty(field: &str, value: &str) -> EngineResult<()> {
    if value.trim().is_empty() {
        Err(EngineError::invalid(field, "must not be empty"))
    } else {
        Ok(())
    }
}

fn unique_violation(error: sqlx::Error, field: &str) -> EngineError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            EngineError::conflict(format!("{field} déjà utilisé"))
        }
        _ => error.into(),
    }
}

impl Engine {
    /// Checks that `actor` is an administrator of its tenant.
    pub(crate) async fn require_admin(
        &self,
        conn: &mut sqlx::AnyConnection,
        actor: Actor,
    ) -> EngineResult<()> {
        let user = Self::load_user(conn, actor).await?;
        if user.admin {
            Ok(())
        } else {
            Err(EngineError::forbidden(
                "réservé aux administrateurs de la collectivité",
            ))
        }
    }

    /// Creates a tenant and its first administrator (an operator action).
    pub async fn create_tenant(&self, new: NewTenant) -> EngineResult<(Tenant, User)> {
        non_empty("name", &new.name)?;
        non_empty("admin_login", &new.admin_login)?;
        if !valid_siren(&new.siren) {
            return Err(EngineError::invalid(
                "siren",
                "9 chiffres avec une clé de Luhn valide",
            ));
        }
        if !valid_departement(&new.departement) {
            return Err(EngineError::invalid(
                "departement",
                "code de département inconnu",
            ));
        }
        let tenant = Tenant {
            id: TenantId::new(),
            name: new.name,
            siren: new.siren,
            departement: new.departement,
        };
        let admin = User {
            id: UserId::new(),
            login: new.admin_login,
            display_name: new.admin_name,
            admin: true,
        };
        let now = db_time(self.now());
        let mut tx = self.db.begin_write().await?;
        sqlx::query(
            "INSERT INTO tenants (id, name, siren, departement, journal_seq, journal_head, created_at) VALUES ($1, $2, $3, $4, 0, $5, $6)",
        )
        .bind(tenant.id.to_string())
        .bind(tenant.name.clone())
        .bind(tenant.siren.clone())
        .bind(tenant.departement.clone())
        .bind(GENESIS)
        .bind(now.clone())
        .execute(&mut *tx)
        .await
        .map_err(|e| unique_violation(e, "SIREN"))?;
        self.insert_user(&mut tx, tenant.id, &admin).await?;
        journal::append(
            &mut tx,
            NewEntry {
                tenant: tenant.id,
                at: now,
                user: None,
                desk: None,
                on_behalf_of: None,
                dossier: None,
                action: "tenant.create",
                detail: json!({"name": tenant.name, "siren": tenant.siren, "admin": admin.id}),
            },
        )
        .await?;
        tx.commit().await?;
        Ok((tenant, admin))
    }

    async fn insert_user(
        &self,
        conn: &mut sqlx::AnyConnection,
        tenant: TenantId,
        user: &User,
    ) -> EngineResult<()> {
        sqlx::query(
            "INSERT INTO users (id, tenant_id, login, display_name, admin) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(user.id.to_string())
        .bind(tenant.to_string())
        .bind(user.login.clone())
        .bind(user.display_name.clone())
        .bind(i64::from(user.admin))
        .execute(&mut *conn)
        .await
        .map_err(|e| unique_violation(e, "identifiant"))?;
        Ok(())
    }

    /// Reads a tenant.
    pub async fn tenant(&self, id: TenantId) -> EngineResult<Tenant> {
        let row = sqlx::query("SELECT name, siren, departement FROM tenants WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(self.db.pool())
            .await?
            .ok_or(EngineError::NotFound { entity: "tenant" })?;
        Ok(Tenant {
            id,
            name: row.try_get(0)?,
            siren: row.try_get(1)?,
            departement: row.try_get(2)?,
        })
    }

    /// Creates a user (administrators only).
    pub async fn create_user(
        &self,
        actor: Actor,
        login: &str,
        display_name: &str,
        admin: bool,
    ) -> EngineResult<User> {
        non_empty("login", login)?;
        let user = User {
            id: UserId::new(),
            login: login.to_owned(),
            display_name: display_name.to_owned(),
            admin,
        };
        let mut tx = self.db.begin_write().await?;
        self.require_admin(&mut tx, actor).await?;
        self.insert_user(&mut tx, actor.tenant, &user).await?;
        self.log_admin(
            &mut tx,
            actor,
            "user.create",
            json!({"user": user.id, "login": login, "admin": admin}),
        )
        .await?;
        tx.commit().await?;
        Ok(user)
    }

    async fn log_admin(
        &self,
        conn: &mut sqlx::AnyConnection,
        actor: Actor,
        action: &'static str,
        detail: serde_json::Value,
    ) -> EngineResult<()> {
        journal::append(
            conn,
            NewEntry {
                tenant: actor.tenant,
                at: db_time(self.now()),
                user: Some(actor.user),
                desk: None,
                on_behalf_of: None,
                dossier: None,
                action,
                detail,
            },
        )
        .await?;
        Ok(())
    }

    /// Creates a desk with its holders and optional parent (administrators only).
    pub async fn create_desk(
        &self,
        actor: Actor,
        name: &str,
        parent: Option<DeskId>,
        holders: &[UserId],
    ) -> EngineResult<Desk> {
        non_empty("name", name)?;
        let desk = Desk {
            id: DeskId::new(),
            name: name.to_owned(),
            parent,
            holders: holders.to_vec(),
        };
        let mut tx = self.db.begin_write().await?;
        self.require_admin(&mut tx, actor).await?;
        if let Some(parent) = parent {
            Self::desk_exists(&mut tx, actor.tenant, parent).await?;
        }
        sqlx::query("INSERT INTO desks (id, tenant_id, name, parent_id) VALUES ($1, $2, $3, $4)")
            .bind(desk.id.to_string())
            .bind(actor.tenant.to_string())
            .bind(name.to_owned())
            .bind(parent.map(|p| p.to_string()))
            .execute(&mut *tx)
            .await
            .map_err(|e| unique_violation(e, "nom de bureau"))?;
        for holder in holders {
            let known = sqlx::query("SELECT id FROM users WHERE id = $1 AND tenant_id = $2")
                .bind(holder.to_string())
                .bind(actor.tenant.to_string())
                .fetch_optional(&mut *tx)
                .await?;
            if known.is_none() {
                return Err(EngineError::NotFound { entity: "user" });
            }
            sqlx::query("INSERT INTO desk_holders (desk_id, user_id) VALUES ($1, $2)")
                .bind(desk.id.to_string())
                .bind(holder.to_string())
                .execute(&mut *tx)
                .await?;
        }
        self.log_admin(
            &mut tx,
            actor,
            "desk.create",
            json!({"desk": desk.id, "name": name, "parent": parent, "holders": holders}),
        )
        .await?;
        tx.commit().await?;
        Ok(desk)
    }

    /// Lists the tenant's desks.
    pub async fn desks(&self, actor: Actor) -> EngineResult<Vec<Desk>> {
        let mut conn = self.db.pool().acquire().await?;
        Self::load_user(&mut conn, actor).await?;
        let rows =
            sqlx::query("SELECT id, name, parent_id FROM desks WHERE tenant_id = $1 ORDER BY name")
                .bind(actor.tenant.to_string())
                .fetch_all(&mut *conn)
                .await?;
        let holders = sqlx::query(
            "SELECT h.desk_id, h.user_id FROM desk_holders h JOIN desks d ON d.id = h.desk_id WHERE d.tenant_id = $1",
        )
        .bind(actor.tenant.to_string())
        .fetch_all(&mut *conn)
        .await?;
        let mut by_desk: BTreeMap<DeskId, Vec<UserId>> = BTreeMap::new();
        for row in &holders {
            by_desk
                .entry(parse_col(row, 0)?)
                .or_default()
                .push(parse_col(row, 1)?);
        }
        rows.iter()
            .map(|row| {
                let id: DeskId = parse_col(row, 0)?;
                Ok(Desk {
                    id,
                    name: row.try_get(1)?,
                    parent: parse_opt_col(row, 2)?,
                    holders: by_desk.remove(&id).unwrap_or_default(),
                })
            })
            .collect()
    }

    /// Records that `from` is absent between `starts_at` and `ends_at` and `to` acts for it,
    /// optionally only for some circuits. Administrators and holders of `from` may do it.
    pub async fn create_delegation(
        &self,
        actor: Actor,
        from: DeskId,
        to: DeskId,
        starts_at: OffsetDateTime,
        ends_at: OffsetDateTime,
        circuits: Vec<CircuitId>,
    ) -> EngineResult<Delegation> {
        if ends_at <= starts_at {
            return Err(EngineError::invalid(
                "ends_at",
                "la fin doit suivre le début",
            ));
        }
        if from == to {
            return Err(EngineError::invalid(
                "to",
                "un bureau ne se remplace pas lui-même",
            ));
        }
        let delegation = Delegation {
            id: DelegationId::new(),
            from,
            to,
            starts_at,
            ends_at,
            circuits,
        };
        let mut tx = self.db.begin_write().await?;
        let user = Self::load_user(&mut tx, actor).await?;
        Self::desk_exists(&mut tx, actor.tenant, from).await?;
        Self::desk_exists(&mut tx, actor.tenant, to).await?;
        if !user.admin && !user.desks.contains(&from) {
            return Err(EngineError::forbidden(
                "seuls les titulaires du bureau absent et les administrateurs créent une délégation",
            ));
        }
        for c in &delegation.circuits {
            sqlx::query("SELECT id FROM circuits WHERE id = $1 AND tenant_id = $2")
                .bind(c.to_string())
                .bind(actor.tenant.to_string())
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(EngineError::NotFound { entity: "circuit" })?;
        }
        sqlx::query(
            "INSERT INTO delegations (id, tenant_id, from_desk, to_desk, starts_at, ends_at, circuits) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(delegation.id.to_string())
        .bind(actor.tenant.to_string())
        .bind(from.to_string())
        .bind(to.to_string())
        .bind(db_time(starts_at))
        .bind(db_time(ends_at))
        .bind(to_json(&delegation.circuits)?)
        .execute(&mut *tx)
        .await?;
        self.log_admin(
            &mut tx,
            actor,
            "delegation.create",
            json!({"delegation": delegation.id, "from": from, "to": to, "starts_at": db_time(starts_at), "ends_at": db_time(ends_at), "circuits": delegation.circuits}),
        )
        .await?;
        tx.commit().await?;
        Ok(delegation)
    }

    /// Lists the tenant's delegations.
    pub async fn delegations(&self, actor: Actor) -> EngineResult<Vec<Delegation>> {
        let mut conn = self.db.pool().acquire().await?;
        Self::load_user(&mut conn, actor).await?;
        let rows = sqlx::query(
            "SELECT id, from_desk, to_desk, starts_at, ends_at, circuits FROM delegations WHERE tenant_id = $1 ORDER BY id",
        )
        .bind(actor.tenant.to_string())
        .fetch_all(&mut *conn)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Delegation {
                    id: parse_col(row, 0)?,
                    from: parse_col(row, 1)?,
                    to: parse_col(row, 2)?,
                    starts_at: time_col(row, 3)?,
                    ends_at: time_col(row, 4)?,
                    circuits: json_col(row, 5)?,
                })
            })
            .collect()
    }

    /// Ends a delegation now (administrators and holders of the absent desk).
    pub async fn end_delegation(&self, actor: Actor, id: DelegationId) -> EngineResult<()> {
        let now = self.now();
        let mut tx = self.db.begin_write().await?;
        let user = Self::load_user(&mut tx, actor).await?;
        let row = sqlx::query(
            "SELECT from_desk, ends_at FROM delegations WHERE id = $1 AND tenant_id = $2",
        )
        .bind(id.to_string())
        .bind(actor.tenant.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(EngineError::NotFound {
            entity: "delegation",
        })?;
        let from: DeskId = parse_col(&row, 0)?;
        if !user.admin && !user.desks.contains(&from) {
            return Err(EngineError::forbidden(
                "seuls les titulaires du bureau absent et les administrateurs terminent une délégation",
            ));
        }
        if time_col(&row, 1)? <= now {
            return Err(EngineError::conflict("cette délégation est déjà terminée"));
        }
        sqlx::query("UPDATE delegations SET ends_at = $1 WHERE id = $2")
            .bind(db_time(now))
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        self.log_admin(&mut tx, actor, "delegation.end", json!({"delegation": id}))
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Instantiates template `template` as circuit `name`, mapping its role keys to desks
    /// (administrators only).
    pub async fn create_circuit(
        &self,
        actor: Actor,
        name: &str,
        template: &str,
        roles: &BTreeMap<String, DeskId>,
    ) -> EngineResult<CircuitInfo> {
        non_empty("name", name)?;
        let spec = self
            .templates
            .get(template)
            .ok_or_else(|| {
                EngineError::invalid(
                    "template",
                    format!("modèle de circuit inconnu « {template} »"),
                )
            })?
            .instantiate(roles)?;
        let info = CircuitInfo {
            id: CircuitId::new(),
            name: name.to_owned(),
            template: template.to_owned(),
            spec,
        };
        let mut tx = self.db.begin_write().await?;
        self.require_admin(&mut tx, actor).await?;
        for desk in roles.values() {
            Self::desk_exists(&mut tx, actor.tenant, *desk).await?;
        }
        sqlx::query(
            "INSERT INTO circuits (id, tenant_id, name, template, spec, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(info.id.to_string())
        .bind(actor.tenant.to_string())
        .bind(name.to_owned())
        .bind(template.to_owned())
        .bind(to_json(&info.spec)?)
        .bind(db_time(self.now()))
        .execute(&mut *tx)
        .await
        .map_err(|e| unique_violation(e, "nom de circuit"))?;
        self.log_admin(
            &mut tx,
            actor,
            "circuit.create",
            json!({"circuit": info.id, "name": name, "template": template, "roles": roles}),
        )
        .await?;
        tx.commit().await?;
        Ok(info)
    }

    /// Edits a tenant's circuit: renames it and maps its template's roles to other desks
    /// (administrators only). Dossiers already submitted keep the steps they were given.
    pub async fn update_circuit(
        &self,
        actor: Actor,
        id: CircuitId,
        name: &str,
        roles: &BTreeMap<String, DeskId>,
    ) -> EngineResult<CircuitInfo> {
        non_empty("name", name)?;
        let mut tx = self.db.begin_write().await?;
        self.require_admin(&mut tx, actor).await?;
        let current = Self::load_circuit(&mut tx, actor.tenant, id).await?;
        let spec = self
            .templates
            .get(&current.template)
            .ok_or_else(|| {
                EngineError::invalid(
                    "template",
                    format!("modèle de circuit inconnu « {} »", current.template),
                )
            })?
            .instantiate(roles)?;
        for desk in roles.values() {
            Self::desk_exists(&mut tx, actor.tenant, *desk).await?;
        }
        sqlx::query("UPDATE circuits SET name = $1, spec = $2 WHERE id = $3 AND tenant_id = $4")
            .bind(name.to_owned())
            .bind(to_json(&spec)?)
            .bind(id.to_string())
            .bind(actor.tenant.to_string())
            .execute(&mut *tx)
            .await
            .map_err(|e| unique_violation(e, "nom de circuit"))?;
        self.log_admin(
            &mut tx,
            actor,
            "circuit.update",
            json!({"circuit": id, "name": name, "roles": roles}),
        )
        .await?;
        tx.commit().await?;
        Ok(CircuitInfo {
            id,
            name: name.to_owned(),
            template: current.template,
            spec,
        })
    }

    /// Reads a circuit of the actor's tenant.
    pub async fn circuit(&self, actor: Actor, id: CircuitId) -> EngineResult<CircuitInfo> {
        let mut conn = self.db.pool().acquire().await?;
        Self::load_user(&mut conn, actor).await?;
        Self::load_circuit(&mut conn, actor.tenant, id).await
    }

    pub(crate) async fn load_circuit(
        conn: &mut sqlx::AnyConnection,
        tenant: TenantId,
        id: CircuitId,
    ) -> EngineResult<CircuitInfo> {
        let row = sqlx::query(
            "SELECT name, template, spec FROM circuits WHERE id = $1 AND tenant_id = $2",
        )
        .bind(id.to_string())
        .bind(tenant.to_string())
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(EngineError::NotFound { entity: "circuit" })?;
        Ok(CircuitInfo {
            id,
            name: row.try_get(0)?,
            template: row.try_get(1)?,
            spec: json_col(&row, 2)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siren_and_departement_checks() {
        assert!(valid_siren("732829320"));
        assert!(!valid_siren("732829321"));
        assert!(!valid_siren("73282932"));
        assert!(!valid_siren("73282932a"));
        assert!(valid_departement("35") && valid_departement("2A") && valid_departement("974"));
        assert!(!valid_departement("20") && !valid_departement("00") && !valid_departement("977"));
    }
}
