//! Access control records of the API: argon2id password hashes (hashed by the caller), API
//! tokens and sessions stored by the SHA-256 of their secret, failed-login counters and the
//! idempotency keys of dossier creation; plus the directory listings the API serves.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use time::OffsetDateTime;

use crate::circuit::Circuit;
use crate::engine::{Engine, db_time, json_col, parse_col, parse_opt_col, time_col};
use crate::error::{EngineError, EngineResult};
use crate::ids::{DossierId, TenantId, UserId};
use crate::model::{Actor, CircuitInfo, Tenant, User};

/// What a caller of the API may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A user of a tenant: acts on the dossiers of the desks held.
    User,
    /// A tenant administrator: manages the tenant's users, desks and circuits.
    TenantAdmin,
    /// The operator of the instance: manages tenants, sees no tenant's dossiers.
    Operator,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::TenantAdmin => "tenant_admin",
            Self::Operator => "operator",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::User, Self::TenantAdmin, Self::Operator]
            .into_iter()
            .find(|r| r.as_str() == text)
    }
}

/// An API token as stored (its secret is never stored, only its hash).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiToken {
    /// Identifier.
    pub id: String,
    /// The tenant it is scoped to (none for an operator token).
    pub tenant: Option<TenantId>,
    /// The user it acts as (none for an operator token).
    pub user: Option<UserId>,
    /// Its role.
    pub role: Role,
    /// A label saying which software uses it.
    pub label: String,
    /// Revoked tokens authenticate nothing.
    pub revoked: bool,
}

/// What a login form is checked against.
#[derive(Debug, Clone)]
pub struct LoginRecord {
    /// The user's tenant.
    pub tenant: TenantId,
    /// The user.
    pub user: UserId,
    /// Tenant administrator.
    pub admin: bool,
    /// The argon2id PHC string, when a password was set.
    pub password_hash: Option<String>,
}

/// A live session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The user's tenant.
    pub tenant: TenantId,
    /// The user.
    pub user: UserId,
    /// Tenant administrator.
    pub admin: bool,
    /// The token a state-changing request must echo.
    pub csrf_token: String,
    /// End of validity.
    pub expires_at: OffsetDateTime,
}

/// A remembered `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// Hash of the request that first used the key.
    pub request_hash: String,
    /// The dossier it created.
    pub dossier: DossierId,
}

fn token_from_row(row: &sqlx::any::AnyRow) -> EngineResult<ApiToken> {
    let role: String = row.try_get(3)?;
    let revoked: i64 = row.try_get(5)?;
    Ok(ApiToken {
        id: row.try_get(0)?,
        tenant: parse_opt_col(row, 1)?,
        user: parse_opt_col(row, 2)?,
        role: Role::parse(&role).ok_or_else(|| EngineError::Corrupted(format!("role `{role}`")))?,
        label: row.try_get(4)?,
        revoked: revoked != 0,
    })
}

const TOKEN_COLUMNS: &str = "id, tenant_id, user_id, role, label, revoked";

impl Engine {
    /// Checks that `user` belongs to `tenant` and returns its administrator flag.
    async fn user_admin_flag(&self, tenant: TenantId, user: UserId) -> EngineResult<bool> {
        let row = sqlx::query("SELECT admin FROM users WHERE id = $1 AND tenant_id = $2")
            .bind(user.to_string())
            .bind(tenant.to_string())
            .fetch_optional(self.db.pool())
            .await?
            .ok_or(EngineError::NotFound { entity: "user" })?;
        Ok(row.try_get::<i64, _>(0)? != 0)
    }

    /// Sets (or replaces) a user's password hash.
    pub async fn set_password_hash(
        &self,
        tenant: TenantId,
        user: UserId,
        hash: &str,
    ) -> EngineResult<()> {
        self.user_admin_flag(tenant, user).await?;
        sqlx::query(
            "INSERT INTO credentials (user_id, password_hash, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id) DO UPDATE SET password_hash = excluded.password_hash, updated_at = excluded.updated_at",
        )
        .bind(user.to_string())
        .bind(hash.to_owned())
        .bind(db_time(self.now()))
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// Finds the login `login` of the tenant whose SIREN is `siren`.
    pub async fn login_record(
        &self,
        siren: &str,
        login: &str,
    ) -> EngineResult<Option<LoginRecord>> {
        let row = sqlx::query(
            "SELECT u.tenant_id, u.id, u.admin, c.password_hash FROM users u \
             JOIN tenants t ON t.id = u.tenant_id LEFT JOIN credentials c ON c.user_id = u.id \
             WHERE t.siren = $1 AND u.login = $2",
        )
        .bind(siren.to_owned())
        .bind(login.to_owned())
        .fetch_optional(self.db.pool())
        .await?;
        row.map(|row| {
            Ok(LoginRecord {
                tenant: parse_col(&row, 0)?,
                user: parse_col(&row, 1)?,
                admin: row.try_get::<i64, _>(2)? != 0,
                password_hash: row.try_get(3)?,
            })
        })
        .transpose()
    }

    /// Stores a new API token by the hash of its secret. A tenant token acts as `user`, who
    /// must be a tenant administrator for the `TenantAdmin` role; an operator token has neither.
    pub async fn create_api_token(
        &self,
        scope: Option<Actor>,
        role: Role,
        label: &str,
        token_hash: &str,
    ) -> EngineResult<ApiToken> {
        match (scope, role) {
            (None, Role::Operator) => {}
            (Some(actor), Role::TenantAdmin) => {
                if !self.user_admin_flag(actor.tenant, actor.user).await? {
                    return Err(EngineError::invalid(
                        "role",
                        "seul un administrateur de la collectivité reçoit un jeton administrateur",
                    ));
                }
            }
            (Some(actor), Role::User) => {
                self.user_admin_flag(actor.tenant, actor.user).await?;
            }
            _ => {
                return Err(EngineError::invalid(
                    "role",
                    "un jeton opérateur n'a pas de collectivité, les autres en ont une",
                ));
            }
        }
        let token = ApiToken {
            id: uuid::Uuid::now_v7().to_string(),
            tenant: scope.map(|a| a.tenant),
            user: scope.map(|a| a.user),
            role,
            label: label.to_owned(),
            revoked: false,
        };
        sqlx::query(
            "INSERT INTO api_tokens (id, tenant_id, user_id, role, label, token_hash, revoked, created_at) VALUES ($1, $2, $3, $4, $5, $6, 0, $7)",
        )
        .bind(token.id.clone())
        .bind(token.tenant.map(|t| t.to_string()))
        .bind(token.user.map(|u| u.to_string()))
        .bind(role.as_str())
        .bind(label.to_owned())
        .bind(token_hash.to_owned())
        .bind(db_time(self.now()))
        .execute(self.db.pool())
        .await?;
        Ok(token)
    }

    /// The token whose secret hashes to `token_hash`, revoked or not.
    pub async fn api_token_by_hash(&self, token_hash: &str) -> EngineResult<Option<ApiToken>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = $1"
        )))
        .bind(token_hash.to_owned())
        .fetch_optional(self.db.pool())
        .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    /// The tokens of a tenant (or the operator tokens for `None`).
    pub async fn api_tokens(&self, tenant: Option<TenantId>) -> EngineResult<Vec<ApiToken>> {
        let rows = match tenant {
            Some(t) => sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE tenant_id = $1 ORDER BY id"
            )))
            .bind(t.to_string()),
            None => sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE tenant_id IS NULL ORDER BY id"
            ))),
        }
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(token_from_row).collect()
    }

    /// Revokes a token of `tenant` (operator tokens for `None`); a foreign one is not found.
    pub async fn revoke_api_token(&self, tenant: Option<TenantId>, id: &str) -> EngineResult<()> {
        let done = match tenant {
            Some(t) => {
                sqlx::query("UPDATE api_tokens SET revoked = 1 WHERE id = $1 AND tenant_id = $2")
                    .bind(id.to_owned())
                    .bind(t.to_string())
            }
            None => {
                sqlx::query("UPDATE api_tokens SET revoked = 1 WHERE id = $1 AND tenant_id IS NULL")
                    .bind(id.to_owned())
            }
        }
        .execute(self.db.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(EngineError::NotFound { entity: "token" });
        }
        Ok(())
    }

    /// Opens a session stored by the hash of its id.
    pub async fn create_session(
        &self,
        id_hash: &str,
        actor: Actor,
        csrf_token: &str,
        expires_at: OffsetDateTime,
    ) -> EngineResult<()> {
        sqlx::query(
            "INSERT INTO sessions (id_hash, tenant_id, user_id, csrf_token, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id_hash.to_owned())
        .bind(actor.tenant.to_string())
        .bind(actor.user.to_string())
        .bind(csrf_token.to_owned())
        .bind(db_time(expires_at))
        .bind(db_time(self.now()))
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// The unexpired session whose id hashes to `id_hash`.
    pub async fn session(&self, id_hash: &str) -> EngineResult<Option<Session>> {
        let row = sqlx::query(
            "SELECT s.tenant_id, s.user_id, u.admin, s.csrf_token, s.expires_at FROM sessions s \
             JOIN users u ON u.id = s.user_id WHERE s.id_hash = $1 AND s.expires_at > $2",
        )
        .bind(id_hash.to_owned())
        .bind(db_time(self.now()))
        .fetch_optional(self.db.pool())
        .await?;
        row.map(|row| {
            Ok(Session {
                tenant: parse_col(&row, 0)?,
                user: parse_col(&row, 1)?,
                admin: row.try_get::<i64, _>(2)? != 0,
                csrf_token: row.try_get(3)?,
                expires_at: time_col(&row, 4)?,
            })
        })
        .transpose()
    }

    /// Closes a session.
    pub async fn delete_session(&self, id_hash: &str) -> EngineResult<()> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash.to_owned())
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    /// Records a failed login for `key` (login and client address) and returns how many
    /// failures `key` has had since `since`.
    pub async fn record_login_failure(
        &self,
        key: &str,
        since: OffsetDateTime,
    ) -> EngineResult<i64> {
        sqlx::query("INSERT INTO login_attempts (attempt_key, at) VALUES ($1, $2)")
            .bind(key.to_owned())
            .bind(db_time(self.now()))
            .execute(self.db.pool())
            .await?;
        self.login_failures(key, since).await
    }

    /// How many failed logins `key` has had since `since`.
    pub async fn login_failures(&self, key: &str, since: OffsetDateTime) -> EngineResult<i64> {
        let row =
            sqlx::query("SELECT COUNT(*) FROM login_attempts WHERE attempt_key = $1 AND at > $2")
                .bind(key.to_owned())
                .bind(db_time(since))
                .fetch_one(self.db.pool())
                .await?;
        Ok(row.try_get(0)?)
    }

    /// Forgets the failures of `key` (after a successful login).
    pub async fn clear_login_failures(&self, key: &str) -> EngineResult<()> {
        sqlx::query("DELETE FROM login_attempts WHERE attempt_key = $1")
            .bind(key.to_owned())
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    /// The dossier an `Idempotency-Key` of the tenant already created.
    pub async fn idempotency_record(
        &self,
        tenant: TenantId,
        key: &str,
    ) -> EngineResult<Option<IdempotencyRecord>> {
        let row = sqlx::query(
            "SELECT request_hash, dossier_id FROM idempotency_keys WHERE tenant_id = $1 AND idem_key = $2",
        )
        .bind(tenant.to_string())
        .bind(key.to_owned())
        .fetch_optional(self.db.pool())
        .await?;
        row.map(|row| {
            Ok(IdempotencyRecord {
                request_hash: row.try_get(0)?,
                dossier: parse_col(&row, 1)?,
            })
        })
        .transpose()
    }

    /// Remembers that `key` created `dossier`; returns the record that wins when another
    /// request stored the same key first.
    pub async fn remember_idempotency(
        &self,
        tenant: TenantId,
        key: &str,
        record: IdempotencyRecord,
    ) -> EngineResult<IdempotencyRecord> {
        sqlx::query(
            "INSERT INTO idempotency_keys (tenant_id, idem_key, request_hash, dossier_id, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (tenant_id, idem_key) DO NOTHING",
        )
        .bind(tenant.to_string())
        .bind(key.to_owned())
        .bind(record.request_hash.clone())
        .bind(record.dossier.to_string())
        .bind(db_time(self.now()))
        .execute(self.db.pool())
        .await?;
        Ok(self
            .idempotency_record(tenant, key)
            .await?
            .unwrap_or(record))
    }

    /// Every tenant (an operator listing).
    pub async fn tenants(&self) -> EngineResult<Vec<Tenant>> {
        let rows =
            sqlx::query("SELECT id, name, siren, departement FROM tenants ORDER BY name, id")
                .fetch_all(self.db.pool())
                .await?;
        rows.iter()
            .map(|row| {
                Ok(Tenant {
                    id: parse_col(row, 0)?,
                    name: row.try_get(1)?,
                    siren: row.try_get(2)?,
                    departement: row.try_get(3)?,
                })
            })
            .collect()
    }

    /// The tenant with SIREN `siren`.
    pub async fn tenant_by_siren(&self, siren: &str) -> EngineResult<Option<Tenant>> {
        let row = sqlx::query("SELECT id FROM tenants WHERE siren = $1")
            .bind(siren.to_owned())
            .fetch_optional(self.db.pool())
            .await?;
        match row {
            Some(row) => Ok(Some(self.tenant(parse_col(&row, 0)?).await?)),
            None => Ok(None),
        }
    }

    /// The users of a tenant, by login (no actor check: the API checks roles).
    pub async fn tenant_users(&self, tenant: TenantId) -> EngineResult<Vec<User>> {
        let rows = sqlx::query(
            "SELECT id, login, display_name, admin FROM users WHERE tenant_id = $1 ORDER BY login",
        )
        .bind(tenant.to_string())
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(User {
                    id: parse_col(row, 0)?,
                    login: row.try_get(1)?,
                    display_name: row.try_get(2)?,
                    admin: row.try_get::<i64, _>(3)? != 0,
                })
            })
            .collect()
    }

    /// The circuits of the actor's tenant, by name.
    pub async fn circuits(&self, actor: Actor) -> EngineResult<Vec<CircuitInfo>> {
        let mut conn = self.db.pool().acquire().await?;
        Self::load_user(&mut conn, actor).await?;
        let rows = sqlx::query(
            "SELECT id, name, template, spec FROM circuits WHERE tenant_id = $1 ORDER BY name",
        )
        .bind(actor.tenant.to_string())
        .fetch_all(&mut *conn)
        .await?;
        rows.iter()
            .map(|row| {
                let spec: Circuit = json_col(row, 3)?;
                Ok(CircuitInfo {
                    id: parse_col(row, 0)?,
                    name: row.try_get(1)?,
                    template: row.try_get(2)?,
                    spec,
                })
            })
            .collect()
    }
}
