//! The authz store: tenants, users, trusts, the audit trail, signing keys and the outbox of
//! change events, as typed rows.
//!
//! A change, its audit entries and its events are written in one transaction ([`Tx`]), so
//! that an event exists exactly when its change does; the relay publishes the outbox.
//!
//! Booleans are `BIGINT` 0/1 (one schema for PostgreSQL and SQLite through sqlx's `Any`
//! driver); enums are their snake_case text, and an unknown text is a decode error, never a
//! default.

use chat_kit::DatabaseSettings;
use chat_protocol::events::EventEnvelope;
use chat_protocol::{TenantId, UserId};
use secrecy::{ExposeSecret, SecretString};
use sqlx::any::{Any, AnyTypeInfo, AnyValueRef};
use sqlx::error::BoxDynError;
use sqlx::{AnyConnection, AnyPool, Executor, Transaction};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Any database failure (connecting, migrating, a query, decoding a row).
    #[error(transparent)]
    Db(#[from] chat_db::DbError),
    /// A row with this key exists already (tenant or user).
    #[error("already exists")]
    Conflict,
    /// A change event could not be encoded (a bug: events are plain data).
    #[error("change event not encoded: {0}")]
    Encode(#[from] serde_json::Error),
}

/// So that `?` works on sqlx calls: every database error goes through `DbError::Db`.
impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        StoreError::Db(chat_db::DbError::Db(err))
    }
}

/// The authz database (its own PostgreSQL schema, or a SQLite file), migrated at connect.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    /// SQLite takes the write lock when a transaction begins (`BEGIN IMMEDIATE`), so that
    /// transactions that read then write do not fail on a concurrent writer.
    sqlite: bool,
}

/// One transaction of changes: the change, its audit entries and its events commit together
/// or not at all (dropped without `commit`, it rolls back).
pub struct Tx {
    tx: Transaction<'static, Any>,
}

/// An unsent change event of the outbox.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxRow {
    pub event_id: String,
    /// The `EventEnvelope` as JSON.
    pub payload: String,
}

chat_protocol::text_enum! {
    /// Who of a tenant may connect to LINE.
    pub enum LineMode {
        /// Every enabled member.
        All,
        /// The members granted one by one (`line_allowed`).
        Selected,
        /// Nobody (the default of a new tenant).
        None,
    }
}

chat_protocol::text_enum! {
    /// What an audit entry records.
    pub enum AuditAction {
        TenantCreated,
        UserCreated,
        UserDisabled,
        LineModeSet,
        LineAccessGranted,
        LineAccessRevoked,
        /// This side granted trust to another tenant.
        TrustGranted,
        /// This side withdrew its grant.
        TrustRevoked,
        /// The other side's grant made the trust effective.
        TrustActive,
        /// The other side's revocation ended an effective trust.
        TrustInactive,
        /// Rooms removed a member by rule.
        MemberExcluded,
    }
}

/// A boolean stored as `BIGINT` 0/1, decoded into the `bool` fields of rows.
struct Flag(bool);

impl From<Flag> for bool {
    fn from(flag: Flag) -> Self {
        flag.0
    }
}

impl<'r> sqlx::Decode<'r, Any> for Flag {
    fn decode(value: AnyValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(Flag(<i64 as sqlx::Decode<'r, Any>>::decode(value)? != 0))
    }
}

impl sqlx::Type<Any> for Flag {
    fn type_info() -> AnyTypeInfo {
        <i64 as sqlx::Type<Any>>::type_info()
    }

    fn compatible(ty: &AnyTypeInfo) -> bool {
        <i64 as sqlx::Type<Any>>::compatible(ty)
    }
}

/// A tenant (company).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Tenant {
    #[sqlx(try_from = "String")]
    pub id: TenantId,
    pub name: String,
    #[sqlx(try_from = "String")]
    pub line_mode: LineMode,
}

/// A member of a tenant (admins included).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct User {
    /// `<username>@<tenant>`.
    #[sqlx(try_from = "String")]
    pub id: UserId,
    #[sqlx(try_from = "String")]
    pub tenant: TenantId,
    pub username: String,
    pub display_name: String,
    /// argon2id PHC string.
    pub password_hash: String,
    #[sqlx(try_from = "Flag")]
    pub admin: bool,
    #[sqlx(try_from = "Flag")]
    pub disabled: bool,
    /// The per-member LINE grant, effective when the tenant's mode is `selected`.
    #[sqlx(try_from = "Flag")]
    pub line_allowed: bool,
}

/// The id of member `username` of `tenant`: unique across tenants.
pub fn member_id(username: &str, tenant: &TenantId) -> UserId {
    UserId::new(format!("{username}@{tenant}"))
}

impl User {
    /// A new, enabled member without a LINE grant.
    pub fn new_member(
        tenant: &TenantId,
        username: &str,
        display_name: &str,
        password_hash: String,
        admin: bool,
    ) -> Self {
        Self {
            id: member_id(username, tenant),
            tenant: tenant.clone(),
            username: username.to_owned(),
            display_name: display_name.to_owned(),
            password_hash,
            admin,
            disabled: false,
            line_allowed: false,
        }
    }

    /// Whether this member may connect to LINE under the tenant's mode.
    pub fn may_use_line(&self, mode: LineMode) -> bool {
        !self.disabled
            && match mode {
                LineMode::All => true,
                LineMode::None => false,
                LineMode::Selected => self.line_allowed,
            }
    }

    /// The roles of this user's tokens and of `/v1/me`.
    pub fn roles(&self) -> Vec<String> {
        if self.admin {
            vec!["admin".to_owned()]
        } else {
            vec![]
        }
    }
}

/// One entry of a tenant's audit trail. `actor` is a user id, `system` or `bootstrap`;
/// `subject` a user or a tenant id.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    pub id: String,
    pub actor: String,
    #[sqlx(try_from = "String")]
    pub action: AuditAction,
    pub subject: String,
    pub detail: String,
    #[sqlx(rename = "at")]
    pub at_ms: i64,
}

/// An Ed25519 signing key. The private key (PKCS#8 DER, base64) never shows in `Debug`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyRow {
    pub kid: String,
    #[sqlx(try_from = "String")]
    pub private_der: SecretString,
    /// The public key, base64url (the JWK `x`).
    pub public_x: String,
    #[sqlx(rename = "created_at")]
    pub created_at_ms: i64,
}

const USER_COLUMNS: &str = "id, tenant, username, display_name, password_hash, admin, disabled, line_allowed";

async fn fetch_tenant<'e, E: Executor<'e, Database = Any>>(db: E, id: &TenantId) -> Result<Option<Tenant>, StoreError> {
    let tenant = sqlx::query_as::<_, Tenant>("SELECT id, name, line_mode FROM tenants WHERE id = $1")
        .bind(id.as_str())
        .fetch_optional(db)
        .await?;
    Ok(tenant)
}

async fn fetch_user<'e, E: Executor<'e, Database = Any>>(db: E, id: &UserId) -> Result<Option<User>, StoreError> {
    let user = sqlx::query_as::<_, User>(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
        .bind(id.as_str())
        .fetch_optional(db)
        .await?;
    Ok(user)
}

async fn fetch_users<'e, E: Executor<'e, Database = Any>>(db: E, tenant: &TenantId) -> Result<Vec<User>, StoreError> {
    let users =
        sqlx::query_as::<_, User>(&format!("SELECT {USER_COLUMNS} FROM users WHERE tenant = $1 ORDER BY username"))
            .bind(tenant.as_str())
            .fetch_all(db)
            .await?;
    Ok(users)
}

async fn fetch_trust_active<'e, E: Executor<'e, Database = Any>>(
    db: E,
    a: &TenantId,
    b: &TenantId,
) -> Result<bool, StoreError> {
    let sides = sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) AS n FROM trusts WHERE (tenant = $1 AND other = $2) OR (tenant = $2 AND other = $1)",
    )
    .bind(a.as_str())
    .bind(b.as_str())
    .fetch_one(db)
    .await?;
    Ok(sides == 2)
}

/// Append to an audit trail; an entry whose `id` exists already is left alone (false).
#[allow(clippy::too_many_arguments)]
async fn insert_audit<'e, E: Executor<'e, Database = Any>>(
    db: E,
    id: &str,
    tenant: &TenantId,
    actor: &str,
    action: AuditAction,
    subject: &str,
    detail: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO audit (id, tenant, actor, action, subject, detail, at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(tenant.as_str())
    .bind(actor)
    .bind(action.as_str())
    .bind(subject)
    .bind(detail)
    .bind(now)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// An `INSERT ... ON CONFLICT DO NOTHING` that inserted nothing met an existing row.
fn inserted(done: sqlx::any::AnyQueryResult) -> Result<(), StoreError> {
    if done.rows_affected() == 0 {
        return Err(StoreError::Conflict);
    }
    Ok(())
}

impl Store {
    /// Open the database and apply the migrations.
    pub async fn connect(settings: &DatabaseSettings) -> Result<Self, StoreError> {
        let sqlite = settings.url.starts_with("sqlite");
        Ok(Self { pool: chat_db::connect(settings, &MIGRATOR).await?, sqlite })
    }

    /// Begin a transaction of changes.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        let tx = if self.sqlite { self.pool.begin_with("BEGIN IMMEDIATE").await? } else { self.pool.begin().await? };
        Ok(Tx { tx })
    }

    pub async fn tenant(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError> {
        fetch_tenant(&self.pool, id).await
    }

    /// Create a tenant; `Conflict` if it exists.
    pub async fn create_tenant(&self, id: &TenantId, name: &str, now: i64) -> Result<(), StoreError> {
        let done = sqlx::query(
            "INSERT INTO tenants (id, name, line_mode, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(id.as_str())
        .bind(name)
        .bind(LineMode::None.as_str())
        .bind(now)
        .execute(&self.pool)
        .await?;
        inserted(done)
    }

    pub async fn user_by_name(&self, tenant: &TenantId, username: &str) -> Result<Option<User>, StoreError> {
        let user =
            sqlx::query_as::<_, User>(&format!("SELECT {USER_COLUMNS} FROM users WHERE tenant = $1 AND username = $2"))
                .bind(tenant.as_str())
                .bind(username)
                .fetch_optional(&self.pool)
                .await?;
        Ok(user)
    }

    pub async fn user(&self, id: &UserId) -> Result<Option<User>, StoreError> {
        fetch_user(&self.pool, id).await
    }

    /// The users of a tenant, by username.
    pub async fn users(&self, tenant: &TenantId) -> Result<Vec<User>, StoreError> {
        fetch_users(&self.pool, tenant).await
    }

    /// The users disabled at or after `since_ms`, with the time (ms) they were last disabled.
    pub async fn disabled_since(&self, since_ms: i64) -> Result<Vec<(UserId, i64)>, StoreError> {
        let rows = sqlx::query_as::<_, (String, i64)>(
            "SELECT id, disabled_at FROM users WHERE disabled_at IS NOT NULL AND disabled_at >= $1 ORDER BY disabled_at",
        )
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(id, at)| (UserId::new(id), at)).collect())
    }

    /// The tenants `tenant` has granted trust to, and those that granted it to `tenant`.
    pub async fn trusts(&self, tenant: &TenantId) -> Result<(Vec<TenantId>, Vec<TenantId>), StoreError> {
        let ours = sqlx::query_scalar::<_, String>("SELECT other FROM trusts WHERE tenant = $1")
            .bind(tenant.as_str())
            .fetch_all(&self.pool)
            .await?;
        let theirs = sqlx::query_scalar::<_, String>("SELECT tenant FROM trusts WHERE other = $1")
            .bind(tenant.as_str())
            .fetch_all(&self.pool)
            .await?;
        Ok((ours.into_iter().map(TenantId::from).collect(), theirs.into_iter().map(TenantId::from).collect()))
    }

    /// True when both sides have granted.
    pub async fn trust_active(&self, a: &TenantId, b: &TenantId) -> Result<bool, StoreError> {
        fetch_trust_active(&self.pool, a, b).await
    }

    /// Append to `tenant`'s audit trail once: an entry with this `id` is not written again
    /// (false), so a redelivered event is audited once.
    #[allow(clippy::too_many_arguments)]
    pub async fn audit_once(
        &self,
        id: &str,
        tenant: &TenantId,
        actor: &str,
        action: AuditAction,
        subject: &str,
        detail: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        insert_audit(&self.pool, id, tenant, actor, action, subject, detail, now).await
    }

    /// The newest `limit` entries of `tenant`'s audit trail, newest first.
    pub async fn audit_trail(&self, tenant: &TenantId, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
        let rows = sqlx::query_as::<_, AuditRow>(
            "SELECT id, actor, action, subject, detail, at FROM audit WHERE tenant = $1 ORDER BY at DESC, id DESC LIMIT $2",
        )
        .bind(tenant.as_str())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// The oldest `limit` unsent change events, in the order they are to be published.
    pub async fn unsent_events(&self, limit: i64) -> Result<Vec<OutboxRow>, StoreError> {
        let rows = sqlx::query_as::<_, OutboxRow>(
            "SELECT event_id, payload FROM outbox WHERE sent_at IS NULL ORDER BY created_at, event_id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// How many change events wait to be published.
    pub async fn unsent_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar::<_, i64>("SELECT COUNT(*) AS n FROM outbox WHERE sent_at IS NULL")
            .fetch_one(&self.pool)
            .await?)
    }

    /// The broker confirmed this event.
    pub async fn mark_sent(&self, event_id: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE outbox SET sent_at = $1 WHERE event_id = $2 AND sent_at IS NULL")
            .bind(now)
            .bind(event_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Delete the events sent before `before_ms`; how many went.
    pub async fn purge_sent(&self, before_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Take or extend the relay lease for `holder` until `until_ms`: true when `holder` holds
    /// it now (it held it, or the last holder's lease ran out before `now_ms`).
    pub async fn take_relay_lease(&self, holder: &str, now_ms: i64, until_ms: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE outbox_relay SET holder = $1, lease_until = $2 WHERE id = 1 AND (holder = $1 OR lease_until < $3)",
        )
        .bind(holder)
        .bind(until_ms)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Give the relay lease up (another replica may take it at once).
    pub async fn release_relay_lease(&self, holder: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE outbox_relay SET lease_until = 0 WHERE id = 1 AND holder = $1")
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Unretired keys, newest first.
    pub async fn keys(&self) -> Result<Vec<KeyRow>, StoreError> {
        let keys = sqlx::query_as::<_, KeyRow>(
            "SELECT kid, private_der, public_x, created_at FROM signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC, kid DESC",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(keys)
    }

    pub async fn add_key(&self, key: &KeyRow, now: i64) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO signing_keys (kid, private_der, public_x, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&key.kid)
            .bind(key.private_der.expose_secret())
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

impl Tx {
    /// Commit the change with its audit entries and events.
    pub async fn commit(self) -> Result<(), StoreError> {
        Ok(self.tx.commit().await?)
    }

    fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    /// Lock these tenants' rows until the end of the transaction (in id order, so that two
    /// transactions locking the same tenants cannot deadlock): the changes of a tenant, and of
    /// the trust between two, are made one after the other.
    pub async fn lock_tenants(&mut self, tenants: &[&TenantId]) -> Result<(), StoreError> {
        let mut ids: Vec<&str> = tenants.iter().map(|tenant| tenant.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        for id in ids {
            sqlx::query("UPDATE tenants SET line_mode = line_mode WHERE id = $1").bind(id).execute(self.conn()).await?;
        }
        Ok(())
    }

    pub async fn tenant(&mut self, id: &TenantId) -> Result<Option<Tenant>, StoreError> {
        fetch_tenant(self.conn(), id).await
    }

    pub async fn user(&mut self, id: &UserId) -> Result<Option<User>, StoreError> {
        fetch_user(self.conn(), id).await
    }

    /// The users of a tenant, by username.
    pub async fn users(&mut self, tenant: &TenantId) -> Result<Vec<User>, StoreError> {
        fetch_users(self.conn(), tenant).await
    }

    /// True when both sides have granted.
    pub async fn trust_active(&mut self, a: &TenantId, b: &TenantId) -> Result<bool, StoreError> {
        fetch_trust_active(self.conn(), a, b).await
    }

    pub async fn set_line_mode(&mut self, tenant: &TenantId, mode: LineMode) -> Result<(), StoreError> {
        sqlx::query("UPDATE tenants SET line_mode = $1 WHERE id = $2")
            .bind(mode.as_str())
            .bind(tenant.as_str())
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Create a user; `Conflict` if the id or the username in the tenant is taken.
    pub async fn create_user(&mut self, user: &User, now: i64) -> Result<(), StoreError> {
        let done = sqlx::query(
            "INSERT INTO users (id, tenant, username, display_name, password_hash, admin, disabled, line_allowed, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) ON CONFLICT DO NOTHING",
        )
        .bind(user.id.as_str())
        .bind(user.tenant.as_str())
        .bind(&user.username)
        .bind(&user.display_name)
        .bind(&user.password_hash)
        .bind(i64::from(user.admin))
        .bind(i64::from(user.disabled))
        .bind(i64::from(user.line_allowed))
        .bind(now)
        .execute(self.conn())
        .await?;
        inserted(done)
    }

    pub async fn update_user(&mut self, user: &User, now: i64) -> Result<(), StoreError> {
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
        .bind(user.id.as_str())
        .bind(user.tenant.as_str())
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Record that `user` was disabled at `now` (their tokens until then stay refused).
    pub async fn mark_disabled(&mut self, user: &UserId, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET disabled_at = $1 WHERE id = $2")
            .bind(now)
            .bind(user.as_str())
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Grant this side; false if it was already granted.
    pub async fn grant_trust(&mut self, tenant: &TenantId, other: &TenantId, now: i64) -> Result<bool, StoreError> {
        let done =
            sqlx::query("INSERT INTO trusts (tenant, other, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                .bind(tenant.as_str())
                .bind(other.as_str())
                .bind(now)
                .execute(self.conn())
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Withdraw this side; false if it was not granted.
    pub async fn revoke_trust(&mut self, tenant: &TenantId, other: &TenantId) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM trusts WHERE tenant = $1 AND other = $2")
            .bind(tenant.as_str())
            .bind(other.as_str())
            .execute(self.conn())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Append to `tenant`'s audit trail.
    pub async fn audit(
        &mut self,
        tenant: &TenantId,
        actor: &str,
        action: AuditAction,
        subject: &str,
        detail: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let id = chat_protocol::new_id();
        insert_audit(self.conn(), &id, tenant, actor, action, subject, detail, now).await?;
        Ok(())
    }

    /// Put a change event in the outbox: it is published once the transaction commits.
    pub async fn enqueue(&mut self, envelope: &EventEnvelope, now: i64) -> Result<(), StoreError> {
        let payload = serde_json::to_string(envelope)?;
        sqlx::query("INSERT INTO outbox (event_id, payload, created_at) VALUES ($1, $2, $3)")
            .bind(&envelope.event_id)
            .bind(payload)
            .bind(now)
            .execute(self.conn())
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use strum::IntoEnumIterator;

    use super::*;

    #[test]
    fn line_modes_round_trip_and_unknown_text_is_refused() {
        for mode in LineMode::iter() {
            assert_eq!(LineMode::try_from(mode.as_str().to_owned()), Ok(mode));
        }
        assert_eq!(LineMode::try_from("selected".to_owned()), Ok(LineMode::Selected));
        assert!(LineMode::try_from("sometimes".to_owned()).is_err());
        assert!(LineMode::try_from("All".to_owned()).is_err());
        assert!(LineMode::try_from(String::new()).is_err());
    }

    #[test]
    fn audit_actions_keep_their_stored_names() {
        let names: Vec<&str> = AuditAction::iter().map(AuditAction::as_str).collect();
        assert_eq!(
            names,
            [
                "tenant_created",
                "user_created",
                "user_disabled",
                "line_mode_set",
                "line_access_granted",
                "line_access_revoked",
                "trust_granted",
                "trust_revoked",
                "trust_active",
                "trust_inactive",
                "member_excluded",
            ]
        );
        for action in AuditAction::iter() {
            assert_eq!(AuditAction::try_from(action.as_str().to_owned()), Ok(action));
        }
        assert!(AuditAction::try_from("user_deleted".to_owned()).is_err());
    }

    #[test]
    fn line_access_follows_the_tenant_mode_and_the_member_grant() {
        let mut user = User::new_member(&TenantId::new("acme"), "alice", "Alice", String::new(), false);
        assert_eq!(user.id, "alice@acme");
        assert!(user.may_use_line(LineMode::All));
        assert!(!user.may_use_line(LineMode::Selected));
        assert!(!user.may_use_line(LineMode::None));
        user.line_allowed = true;
        assert!(user.may_use_line(LineMode::Selected));
        assert!(!user.may_use_line(LineMode::None));
        user.disabled = true;
        assert!(!user.may_use_line(LineMode::All));
    }

    #[test]
    fn the_debug_form_of_a_key_row_hides_the_private_key() {
        let key = KeyRow {
            kid: "k1".to_owned(),
            private_der: SecretString::from("TUM0Q0FRQXdCUVlESzJWd0JDSUVJ-private"),
            public_x: "public".to_owned(),
            created_at_ms: 1,
        };
        let shown = format!("{key:?}");
        assert!(!shown.contains("TUM0Q0FRQXdCUVlESzJWd0JDSUVJ"), "{shown}");
        assert!(shown.contains("k1") && shown.contains("public"), "{shown}");
    }
}
