//! The rooms store (PostgreSQL schema `rooms`, or SQLite in the standalone binary) through
//! sqlx's `Any` driver and one portable migration set.
//!
//! Two paths, in two files:
//! - `write`: the room actor's path (claim a room, load its state, commit a command). Writes
//!   carry the actor's fencing epoch: a commit is refused (`Stale`) when the room's fence is
//!   newer, so a replica that lost a room cannot write.
//! - `read`: the API's path (room lists, history, sync, read markers, notifications), from any
//!   replica, always filtered by membership and tenant.
//!
//! `blocks` holds who blocks whom (from the contacts service's events), which both paths read.

mod blocks;
mod read;
#[cfg(test)]
mod tests;
mod write;

use chat_db::DbError;
use chat_kit::{ApiError, DatabaseSettings};
use chat_protocol::bus::RoomKind;
use chat_protocol::call::Call;
use chat_protocol::frames::NotificationKind;
use chat_protocol::room::RoomInfo;
use chat_protocol::{RoomId, TenantId, UserId};
use sqlx::AnyPool;

use crate::domain::RoomMeta;

pub use read::{EventKind, EventRow, MemberRow, RoomView, SharedRoomMember, TenantRoom};
pub use write::{Commit, PostCommit};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// What a room write is fenced with: the owner's shard and the epoch of its lease there. A
/// write is refused (`Stale`) when the room or the shard carries a newer epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fence {
    pub shard: u16,
    pub epoch: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("a newer owner holds room {room_id} (fence is past epoch {epoch})")]
    Stale { room_id: RoomId, epoch: i64 },
    #[error("a 1:1 room for this pair already exists")]
    DirectExists,
    #[error("the command was applied before")]
    Duplicate,
    #[error("{} commands of the batch were applied before", .0.len())]
    Duplicates(Vec<String>),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// True when the same write cannot succeed later either (see `DbError::is_permanent`).
    pub fn is_permanent(&self) -> bool {
        match self {
            StoreError::Db(db) => db.is_permanent(),
            StoreError::Corrupt(_) => true,
            StoreError::Stale { .. } | StoreError::DirectExists | StoreError::Duplicate | StoreError::Duplicates(_) => {
                false
            }
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        StoreError::Db(DbError::Db(err))
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(err: serde_json::Error) -> Self {
        StoreError::Corrupt(err.to_string())
    }
}

/// A store failure reaching the API is the server's fault: 500, the cause logged.
impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        ApiError::internal(&err)
    }
}

/// A `rooms` row: the room's meta and its last seq.
#[derive(sqlx::FromRow)]
struct RoomRow {
    #[sqlx(try_from = "String")]
    id: RoomId,
    #[sqlx(try_from = "String")]
    tenant: TenantId,
    #[sqlx(try_from = "String")]
    kind: RoomKind,
    name: Option<String>,
    description: Option<String>,
    photo_url: Option<String>,
    direct_key: Option<String>,
    last_seq: i64,
    /// The call going on (JSON), read at activation only.
    #[sqlx(default)]
    call_state: Option<String>,
}

impl RoomRow {
    /// The room's call, if one goes on. One that cannot be read is dropped (logged): a call
    /// is live state, and losing it must not stop the room.
    fn call(&self) -> Option<Call> {
        let json = self.call_state.as_deref()?;
        match serde_json::from_str(json) {
            Ok(call) => Some(call),
            Err(err) => {
                tracing::error!(room_id = %self.id, error = %err, "the stored call cannot be read; dropped");
                None
            }
        }
    }

    fn into_meta(self) -> RoomMeta {
        RoomMeta {
            id: self.id,
            tenant: self.tenant,
            kind: self.kind,
            info: RoomInfo { name: self.name, description: self.description, photo_url: self.photo_url },
            direct_key: self.direct_key,
        }
    }
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
}

/// A notification as stored and read.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct NotificationRow {
    pub id: String,
    #[sqlx(try_from = "String")]
    pub user_id: UserId,
    #[sqlx(try_from = "String")]
    pub tenant: TenantId,
    #[sqlx(try_from = "String")]
    pub kind: NotificationKind,
    pub room_id: Option<String>,
    pub text: String,
    #[sqlx(rename = "created_at")]
    pub created_at_ms: i64,
}

impl Store {
    /// Connect, create the schema if needed (PostgreSQL) and run the migrations.
    pub async fn connect(settings: &DatabaseSettings) -> Result<Self, StoreError> {
        Ok(Self { pool: chat_db::connect(settings, &MIGRATOR).await? })
    }

    /// A store of its own for the room actors of one arbiter (PostgreSQL): a pool with the same
    /// settings whose connections are opened lazily, by the first tasks that use them, so their
    /// sockets belong to that arbiter's runtime and a commit's I/O wakes no other thread. SQLite
    /// (one writer per file anyway) keeps the shared pool.
    pub fn for_one_arbiter(&self, max_connections: u32) -> Store {
        let options = self.pool.connect_options();
        if !options.database_url.scheme().starts_with("postgres") {
            return self.clone();
        }
        let pool =
            self.pool.options().clone().max_connections(max_connections.max(1)).connect_lazy_with((*options).clone());
        Store { pool }
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// A notification that belongs to no room command (authorization changes). Idempotent by
    /// id: a redelivered event stores nothing twice.
    pub async fn insert_notification(&self, n: &NotificationRow) -> Result<(), StoreError> {
        insert_notification(&self.pool, n).await
    }
}

async fn insert_notification<'e>(
    exec: impl sqlx::Executor<'e, Database = sqlx::Any>,
    n: &NotificationRow,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO notifications (id, user_id, tenant, kind, room_id, text, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
    )
    .bind(&n.id)
    .bind(n.user_id.as_str())
    .bind(n.tenant.as_str())
    .bind(n.kind.as_str())
    .bind(&n.room_id)
    .bind(&n.text)
    .bind(n.created_at_ms)
    .execute(exec)
    .await?;
    Ok(())
}
