//! The authz store: tenants, users, trusts, the audit trail and signing keys.

use chat_kit::DatabaseSettings;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Open(#[from] chat_db::DbError),
    #[error("already exists")]
    Conflict,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineMode {
    All,
    Selected,
    None,
}

impl LineMode {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "all" => Some(LineMode::All),
            "selected" => Some(LineMode::Selected),
            "none" => Some(LineMode::None),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LineMode::All => "all",
            LineMode::Selected => "selected",
            LineMode::None => "none",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub line_mode: LineMode,
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub tenant: String,
    pub username: String,
    pub display_name: String,
    pub password_hash: String,
    pub admin: bool,
    pub disabled: bool,
    pub line_allowed: bool,
}

impl User {
    /// Whether this member may connect to LINE under the tenant's mode.
    pub fn may_use_line(&self, mode: LineMode) -> bool {
        !self.disabled
            && match mode {
                LineMode::All => true,
                LineMode::None => false,
                LineMode::Selected => self.line_allowed,
            }
    }
}

#[derive(Debug, Clone)]
pub struct AuditRow {
    pub id: String,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
    pub at_ms: i64,
}

#[derive(Debug, Clone)]
pub struct KeyRow {
    pub kid: String,
    pub private_der: String,
    pub public_x: String,
    pub created_at_ms: i64,
}

fn user_from(row: &AnyRow) -> Result<User, sqlx::Error> {
    Ok(User {
        id: row.try_get("id")?,
        tenant: row.try_get("tenant")?,
        username: row.try_get("username")?,
        display_name: row.try_get("display_name")?,
        password_hash: row.try_get("password_hash")?,
        admin: row.try_get::<i64, _>("admin")? != 0,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        line_allowed: row.try_get::<i64, _>("line_allowed")? != 0,
    })
}

const USER_COLUMNS: &str = "id, tenant, username, display_name, password_hash, admin, disabled, line_allowed";

impl Store {
    pub async fn connect(settings: &DatabaseSettings) -> Result<Self, StoreError> {
        Ok(Self { pool: chat_db::connect(settings, &MIGRATOR).await? })
    }

    pub async fn tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError> {
        let row = sqlx::query("SELECT id, name, line_mode FROM tenants WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            None => None,
            Some(r) => Some(Tenant {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                line_mode: LineMode::parse(&r.try_get::<String, _>("line_mode")?).unwrap_or(LineMode::None),
            }),
        })
    }

    /// Create a tenant; `Conflict` if it exists.
    pub async fn create_tenant(&self, id: &str, name: &str, now: i64) -> Result<(), StoreError> {
        let done = sqlx::query(
            "INSERT INTO tenants (id, name, line_mode, created_at) VALUES ($1, $2, 'none', $3) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(name)
        .bind(now)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict);
        }
        Ok(())
    }

    pub async fn set_line_mode(&self, tenant: &str, mode: LineMode) -> Result<(), StoreError> {
        sqlx::query("UPDATE tenants SET line_mode = $1 WHERE id = $2")
            .bind(mode.as_str())
            .bind(tenant)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn create_user(&self, user: &User, now: i64) -> Result<(), StoreError> {
        let done = sqlx::query(
            "INSERT INTO users (id, tenant, username, display_name, password_hash, admin, disabled, line_allowed, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) ON CONFLICT DO NOTHING",
        )
        .bind(&user.id)
        .bind(&user.tenant)
        .bind(&user.username)
        .bind(&user.display_name)
        .bind(&user.password_hash)
        .bind(i64::from(user.admin))
        .bind(i64::from(user.disabled))
        .bind(i64::from(user.line_allowed))
        .bind(now)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict);
        }
        Ok(())
    }

    pub async fn update_user(&self, user: &User, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE users SET display_name = $1, password_hash = $2, admin = $3, disabled = $4, line_allowed = $5, updated_at = $6 \
             WHERE id = $7 AND tenant = $8",
        )
        .bind(&user.display_name)
        .bind(&user.password_hash)
        .bind(i64::from(user.admin))
        .bind(i64::from(user.disabled))
        .bind(i64::from(user.line_allowed))
        .bind(now)
        .bind(&user.id)
        .bind(&user.tenant)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn user_by_name(&self, tenant: &str, username: &str) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE tenant = $1 AND username = $2"))
            .bind(tenant)
            .bind(username)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| user_from(&r)).transpose()?)
    }

    pub async fn user(&self, id: &str) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| user_from(&r)).transpose()?)
    }

    pub async fn users(&self, tenant: &str) -> Result<Vec<User>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE tenant = $1 ORDER BY username"))
            .bind(tenant)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(user_from).collect::<Result<_, _>>()?)
    }

    /// The tenants `tenant` has granted trust to, and those that granted it to `tenant`.
    pub async fn trusts(&self, tenant: &str) -> Result<(Vec<String>, Vec<String>), StoreError> {
        let ours = sqlx::query("SELECT other FROM trusts WHERE tenant = $1")
            .bind(tenant)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>("other"))
            .collect::<Result<_, _>>()?;
        let theirs = sqlx::query("SELECT tenant FROM trusts WHERE other = $1")
            .bind(tenant)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>("tenant"))
            .collect::<Result<_, _>>()?;
        Ok((ours, theirs))
    }

    /// True when both sides have granted.
    pub async fn trust_active(&self, a: &str, b: &str) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM trusts WHERE (tenant = $1 AND other = $2) OR (tenant = $2 AND other = $1)",
        )
        .bind(a)
        .bind(b)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<i64, _>("n")? == 2)
    }

    /// Grant this side; false if it was already granted.
    pub async fn grant_trust(&self, tenant: &str, other: &str, now: i64) -> Result<bool, StoreError> {
        let done =
            sqlx::query("INSERT INTO trusts (tenant, other, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                .bind(tenant)
                .bind(other)
                .bind(now)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Withdraw this side; false if it was not granted.
    pub async fn revoke_trust(&self, tenant: &str, other: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM trusts WHERE tenant = $1 AND other = $2")
            .bind(tenant)
            .bind(other)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn audit(
        &self,
        tenant: &str,
        actor: &str,
        action: &str,
        subject: &str,
        detail: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit (id, tenant, actor, action, subject, detail, at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(chat_protocol::new_id())
        .bind(tenant)
        .bind(actor)
        .bind(action)
        .bind(subject)
        .bind(detail)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn audit_trail(&self, tenant: &str, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, actor, action, subject, detail, at FROM audit WHERE tenant = $1 ORDER BY at DESC, id DESC LIMIT $2",
        )
        .bind(tenant)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditRow {
                    id: r.try_get("id")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    subject: r.try_get("subject")?,
                    detail: r.try_get("detail")?,
                    at_ms: r.try_get("at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Unretired keys, newest first.
    pub async fn keys(&self) -> Result<Vec<KeyRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT kid, private_der, public_x, created_at FROM signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC, kid DESC",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(KeyRow {
                    kid: r.try_get("kid")?,
                    private_der: r.try_get("private_der")?,
                    public_x: r.try_get("public_x")?,
                    created_at_ms: r.try_get("created_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    pub async fn add_key(&self, key: &KeyRow, now: i64) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO signing_keys (kid, private_der, public_x, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&key.kid)
            .bind(&key.private_der)
            .bind(&key.public_x)
            .bind(key.created_at_ms.max(now))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Retire every key but the newest `keep`.
    pub async fn retire_keys_except(&self, keep: &[String], now: i64) -> Result<(), StoreError> {
        for key in self.keys().await? {
            if !keep.contains(&key.kid) {
                sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE kid = $2")
                    .bind(now)
                    .bind(&key.kid)
                    .execute(&self.pool)
                    .await?;
            }
        }
        Ok(())
    }
}
