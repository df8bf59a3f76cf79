//! The rooms store (PostgreSQL schema `rooms`, or SQLite in the standalone binary) through
//! sqlx's `Any` driver and one portable migration set.
//!
//! Writes of room state come only from the room's actor and carry its fencing epoch: a commit
//! is refused (`Stale`) when the room's fence is newer, so a replica that lost a shard cannot
//! write. Reads (history, room lists) go straight to the store from any replica, always
//! filtered by membership and tenant.

use std::collections::{BTreeMap, HashMap};

use chat_protocol::bus::{CommandResult, MemberKind, RoomKind};
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use crate::domain::{Member, MessageRef, PlannedEvent, RecentCommands, Role, RoomState};

use chat_kit::DatabaseSettings;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("a newer owner holds room {room_id} (fence is past epoch {epoch})")]
    Stale { room_id: String, epoch: i64 },
    #[error("a 1:1 room for this pair already exists")]
    DirectExists,
    #[error("the command was applied before")]
    Duplicate,
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("invalid setting: {0}")]
    Config(String),
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
}

/// One event as written and read.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    pub seq: i64,
    pub kind: String,
    pub message_id: Option<String>,
    pub sender: Option<String>,
    pub body: Option<String>,
    pub recalled: bool,
    pub sent_at_ms: i64,
}

#[derive(Debug, Clone)]
pub struct NotificationRow {
    pub id: String,
    pub user_id: String,
    pub tenant: String,
    pub kind: String,
    pub room_id: Option<String>,
    pub text: String,
    pub created_at_ms: i64,
}

/// The room row as a commit writes it.
#[derive(Debug, Clone)]
pub struct RoomMeta {
    pub id: String,
    pub tenant: String,
    pub kind: RoomKind,
    pub name: Option<String>,
    pub description: Option<String>,
    pub photo_url: Option<String>,
    pub direct_key: Option<String>,
    /// The last seq after this commit.
    pub last_seq: i64,
}

/// Everything one command writes, in one transaction.
#[derive(Debug, Clone)]
pub struct Commit {
    pub meta: RoomMeta,
    pub create: bool,
    pub events: Vec<(i64, PlannedEvent)>,
    pub added: Vec<(String, Member)>,
    pub removed: Vec<String>,
    pub roles: Vec<(String, Role)>,
    pub recall_seq: Option<i64>,
    pub command: Option<(String, CommandResult)>,
    pub notifications: Vec<NotificationRow>,
    pub now_ms: i64,
}

/// A room as one of its members sees it.
#[derive(Debug, Clone)]
pub struct RoomView {
    pub id: String,
    pub tenant: String,
    pub kind: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub photo_url: Option<String>,
    pub last_seq: i64,
    pub read_seq: i64,
    pub unread: i64,
    pub updated_at_ms: i64,
    pub last_message: Option<EventRow>,
}

#[derive(Debug, Clone)]
pub struct MemberRow {
    pub user_id: String,
    pub tenant: String,
    pub kind: String,
    pub role: String,
    pub read_seq: i64,
}

fn event_from_row(row: &AnyRow) -> Result<EventRow, sqlx::Error> {
    Ok(EventRow {
        seq: row.try_get("seq")?,
        kind: row.try_get("kind")?,
        message_id: row.try_get("message_id")?,
        sender: row.try_get("sender")?,
        body: row.try_get("body")?,
        recalled: row.try_get::<i64, _>("recalled")? != 0,
        sent_at_ms: row.try_get("sent_at")?,
    })
}

const EVENT_COLUMNS: &str = "seq, kind, message_id, sender, body, recalled, sent_at";

/// Store a notification (idempotent by id: a redelivered event stores nothing twice).
async fn insert_notification<'e>(
    exec: impl sqlx::Executor<'e, Database = sqlx::Any>,
    n: &NotificationRow,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO notifications (id, user_id, tenant, kind, room_id, text, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
    )
    .bind(&n.id)
    .bind(&n.user_id)
    .bind(&n.tenant)
    .bind(&n.kind)
    .bind(&n.room_id)
    .bind(&n.text)
    .bind(n.created_at_ms)
    .execute(exec)
    .await?;
    Ok(())
}

/// A room as a member sees it, with the member's unread count; callers add the filter.
const ROOM_VIEW_SELECT: &str =
    "SELECT r.id, r.tenant, r.kind, r.name, r.description, r.photo_url, r.last_seq, r.updated_at, m.read_seq, \
       (SELECT COUNT(*) FROM events e WHERE e.room_id = r.id AND e.seq > m.read_seq \
          AND e.kind = 'message' AND e.sender <> m.user_id) AS unread \
     FROM members m JOIN rooms r ON r.id = m.room_id";

fn room_view_from(r: &AnyRow, last_message: Option<EventRow>) -> Result<RoomView, sqlx::Error> {
    Ok(RoomView {
        id: r.try_get("id")?,
        tenant: r.try_get("tenant")?,
        kind: r.try_get("kind")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        photo_url: r.try_get("photo_url")?,
        last_seq: r.try_get("last_seq")?,
        read_seq: r.try_get("read_seq")?,
        unread: r.try_get("unread")?,
        updated_at_ms: r.try_get("updated_at")?,
        last_message,
    })
}

impl Store {
    /// Connect, create the schema if needed (PostgreSQL) and run the migrations.
    pub async fn connect(settings: &DatabaseSettings) -> Result<Self, StoreError> {
        let pool = chat_db::connect(settings, &MIGRATOR).await.map_err(|e| match e {
            chat_db::DbError::Db(e) => StoreError::Db(e),
            chat_db::DbError::Migrate(e) => StoreError::Migrate(e),
            other => StoreError::Config(other.to_string()),
        })?;
        Ok(Self { pool })
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The highest fence any room carries: a new owner's epoch must be above it.
    pub async fn max_fence(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COALESCE(MAX(fence), 0) AS f FROM rooms").fetch_one(&self.pool).await?;
        Ok(row.try_get("f")?)
    }

    /// Raise the room's fence to `epoch` (activation). False when a newer owner holds it.
    pub async fn claim(&self, room_id: &str, epoch: i64) -> Result<bool, StoreError> {
        let exists =
            sqlx::query("SELECT fence FROM rooms WHERE id = $1").bind(room_id).fetch_optional(&self.pool).await?;
        let Some(row) = exists else {
            return Ok(true); // not created yet: the create commit carries the epoch
        };
        let fence: i64 = row.try_get("fence")?;
        if fence > epoch {
            return Ok(false);
        }
        let done = sqlx::query("UPDATE rooms SET fence = $1 WHERE id = $2 AND fence <= $1")
            .bind(epoch)
            .bind(room_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Load a room's state for its actor: meta, members and the dedup window.
    pub async fn load_room(&self, room_id: &str, dedup: usize) -> Result<Option<RoomState>, StoreError> {
        let Some(row) = sqlx::query(
            "SELECT id, tenant, kind, name, description, photo_url, direct_key, last_seq, created_at \
             FROM rooms WHERE id = $1",
        )
        .bind(room_id)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let kind_text: String = row.try_get("kind")?;
        let kind = RoomKind::parse(&kind_text).ok_or_else(|| StoreError::Corrupt(format!("room kind {kind_text}")))?;
        let mut members = BTreeMap::new();
        for m in sqlx::query("SELECT user_id, tenant, kind, role, joined_seq FROM members WHERE room_id = $1")
            .bind(room_id)
            .fetch_all(&self.pool)
            .await?
        {
            let kind: String = m.try_get("kind")?;
            let role: String = m.try_get("role")?;
            members.insert(
                m.try_get::<String, _>("user_id")?,
                Member {
                    tenant: m.try_get("tenant")?,
                    kind: if kind == "line_user" { MemberKind::LineUser } else { MemberKind::Member },
                    role: Role::parse(&role),
                    joined_seq: m.try_get("joined_seq")?,
                },
            );
        }
        let mut recent = RecentCommands::new(dedup);
        let rows = sqlx::query(
            "SELECT command_id, result FROM commands WHERE room_id = $1 ORDER BY seq DESC, created_at DESC LIMIT $2",
        )
        .bind(room_id)
        .bind(dedup as i64)
        .fetch_all(&self.pool)
        .await?;
        for r in rows.iter().rev() {
            let result: String = r.try_get("result")?;
            let result: CommandResult =
                serde_json::from_str(&result).map_err(|e| StoreError::Corrupt(format!("command result: {e}")))?;
            recent.insert(r.try_get("command_id")?, result);
        }
        Ok(Some(RoomState {
            id: row.try_get("id")?,
            tenant: row.try_get("tenant")?,
            kind,
            name: row.try_get("name")?,
            description: row.try_get("description")?,
            photo_url: row.try_get("photo_url")?,
            direct_key: row.try_get("direct_key")?,
            last_seq: row.try_get("last_seq")?,
            created_at_ms: row.try_get("created_at")?,
            members,
            recent,
        }))
    }

    /// The recorded result of a command older than the in-memory window.
    pub async fn command_result(&self, room_id: &str, command_id: &str) -> Result<Option<CommandResult>, StoreError> {
        let row = sqlx::query("SELECT result FROM commands WHERE room_id = $1 AND command_id = $2")
            .bind(room_id)
            .bind(command_id)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            None => Ok(None),
            Some(r) => {
                let text: String = r.try_get("result")?;
                serde_json::from_str(&text).map(Some).map_err(|e| StoreError::Corrupt(e.to_string()))
            }
        }
    }

    pub async fn message_ref(&self, room_id: &str, message_id: &str) -> Result<Option<MessageRef>, StoreError> {
        let row = sqlx::query(
            "SELECT seq, sender, recalled FROM events WHERE room_id = $1 AND message_id = $2 AND kind = 'message'",
        )
        .bind(room_id)
        .bind(message_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            None => None,
            Some(r) => Some(MessageRef {
                seq: r.try_get("seq")?,
                sender: r.try_get::<Option<String>, _>("sender")?.unwrap_or_default(),
                recalled: r.try_get::<i64, _>("recalled")? != 0,
            }),
        })
    }

    /// The id of the existing 1:1 room for a pair.
    pub async fn find_direct(&self, key: &str) -> Result<Option<String>, StoreError> {
        let row =
            sqlx::query("SELECT id FROM rooms WHERE direct_key = $1").bind(key).fetch_optional(&self.pool).await?;
        Ok(row.map(|r| r.try_get("id")).transpose()?)
    }

    /// Write one command's effects, fenced by `epoch`, in one transaction.
    pub async fn commit(&self, epoch: i64, c: &Commit) -> Result<(), StoreError> {
        let s = &c.meta;
        let mut tx = self.pool.begin().await?;
        if c.create {
            let inserted = sqlx::query(
                "INSERT INTO rooms (id, tenant, kind, name, description, photo_url, direct_key, last_seq, fence, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) ON CONFLICT DO NOTHING",
            )
            .bind(&s.id)
            .bind(&s.tenant)
            .bind(s.kind.as_str())
            .bind(&s.name)
            .bind(&s.description)
            .bind(&s.photo_url)
            .bind(&s.direct_key)
            .bind(s.last_seq)
            .bind(epoch)
            .bind(c.now_ms)
            .execute(&mut *tx)
            .await?;
            if inserted.rows_affected() == 0 {
                return Err(StoreError::DirectExists);
            }
        } else {
            let updated = sqlx::query(
                "UPDATE rooms SET last_seq = $1, fence = $2, updated_at = $3, name = $4, description = $5, photo_url = $6 \
                 WHERE id = $7 AND fence <= $2",
            )
            .bind(s.last_seq)
            .bind(epoch)
            .bind(c.now_ms)
            .bind(&s.name)
            .bind(&s.description)
            .bind(&s.photo_url)
            .bind(&s.id)
            .execute(&mut *tx)
            .await?;
            if updated.rows_affected() != 1 {
                return Err(StoreError::Stale { room_id: s.id.clone(), epoch });
            }
        }
        for (seq, event) in &c.events {
            let (kind, message_id, sender, body) = match event {
                PlannedEvent::Message { message_id, sender, body } => (
                    "message",
                    Some(message_id.as_str()),
                    Some(sender.as_str()),
                    serde_json::to_string(body).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                ),
                PlannedEvent::System(e) => {
                    ("event", None, None, serde_json::to_string(e).map_err(|e| StoreError::Corrupt(e.to_string()))?)
                }
            };
            sqlx::query(
                "INSERT INTO events (room_id, seq, kind, message_id, sender, body, recalled, sent_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, 0, $7)",
            )
            .bind(&s.id)
            .bind(*seq)
            .bind(kind)
            .bind(message_id)
            .bind(sender)
            .bind(body)
            .bind(c.now_ms)
            .execute(&mut *tx)
            .await?;
        }
        for user in &c.removed {
            sqlx::query("DELETE FROM members WHERE room_id = $1 AND user_id = $2")
                .bind(&s.id)
                .bind(user)
                .execute(&mut *tx)
                .await?;
        }
        for (user, m) in &c.added {
            sqlx::query(
                "INSERT INTO members (room_id, user_id, tenant, kind, role, joined_seq, read_seq) \
                 VALUES ($1, $2, $3, $4, $5, $6, 0)",
            )
            .bind(&s.id)
            .bind(user)
            .bind(&m.tenant)
            .bind(m.kind.as_str())
            .bind(m.role.as_str())
            .bind(m.joined_seq)
            .execute(&mut *tx)
            .await?;
        }
        for (user, role) in &c.roles {
            sqlx::query("UPDATE members SET role = $1 WHERE room_id = $2 AND user_id = $3")
                .bind(role.as_str())
                .bind(&s.id)
                .bind(user)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(seq) = c.recall_seq {
            sqlx::query("UPDATE events SET recalled = 1, body = NULL WHERE room_id = $1 AND seq = $2")
                .bind(&s.id)
                .bind(seq)
                .execute(&mut *tx)
                .await?;
        }
        if let Some((command_id, result)) = &c.command {
            let text = serde_json::to_string(result).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let recorded = sqlx::query(
                "INSERT INTO commands (room_id, command_id, result, seq, created_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(&s.id)
            .bind(command_id)
            .bind(text)
            .bind(s.last_seq)
            .bind(c.now_ms)
            .execute(&mut *tx)
            .await?;
            if recorded.rows_affected() == 0 {
                // Applied before, beyond the in-memory window: roll back, answer the record.
                return Err(StoreError::Duplicate);
            }
        }
        for n in &c.notifications {
            insert_notification(&mut *tx, n).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    // ----- reads, always through membership -----

    /// True when `user` of `tenant` is a member of the room.
    pub async fn is_member(&self, room_id: &str, user: &str, tenant: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 AS one FROM members WHERE room_id = $1 AND user_id = $2 AND tenant = $3")
            .bind(room_id)
            .bind(user)
            .bind(tenant)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// The caller's rooms, most recently active first.
    pub async fn list_rooms(&self, user: &str, tenant: &str, limit: i64) -> Result<Vec<RoomView>, StoreError> {
        let rows = sqlx::query(&format!(
            "{ROOM_VIEW_SELECT} WHERE m.user_id = $1 AND m.tenant = $2 ORDER BY r.updated_at DESC, r.id LIMIT $3"
        ))
        .bind(user)
        .bind(tenant)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut last = self.last_messages(user).await?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get("id")?;
                room_view_from(r, last.remove(&id))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    async fn last_messages(&self, user: &str) -> Result<HashMap<String, EventRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT e.room_id, e.seq, e.kind, e.message_id, e.sender, e.body, e.recalled, e.sent_at FROM events e \
             JOIN (SELECT room_id, MAX(seq) AS seq FROM events WHERE kind = 'message' \
                   AND room_id IN (SELECT room_id FROM members WHERE user_id = $1) GROUP BY room_id) last \
             ON last.room_id = e.room_id AND last.seq = e.seq",
        )
        .bind(user)
        .fetch_all(&self.pool)
        .await?;
        let mut map = HashMap::new();
        for r in rows {
            map.insert(r.try_get::<String, _>("room_id")?, event_from_row(&r)?);
        }
        Ok(map)
    }

    /// One room as the caller sees it; `None` when the caller is not a member (or the room
    /// belongs to another tenant): the caller cannot tell that from a missing room.
    pub async fn room_view(&self, room_id: &str, user: &str, tenant: &str) -> Result<Option<RoomView>, StoreError> {
        let row = sqlx::query(&format!("{ROOM_VIEW_SELECT} WHERE r.id = $1 AND m.user_id = $2 AND m.tenant = $3"))
            .bind(room_id)
            .bind(user)
            .bind(tenant)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let last = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE room_id = $1 AND kind = 'message' ORDER BY seq DESC LIMIT 1"
        ))
        .bind(room_id)
        .fetch_optional(&self.pool)
        .await?
        .map(|row| event_from_row(&row))
        .transpose()?;
        Ok(Some(room_view_from(&row, last)?))
    }

    pub async fn members(&self, room_id: &str) -> Result<Vec<MemberRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT user_id, tenant, kind, role, read_seq FROM members WHERE room_id = $1 ORDER BY joined_seq, user_id",
        )
        .bind(room_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(MemberRow {
                    user_id: r.try_get("user_id")?,
                    tenant: r.try_get("tenant")?,
                    kind: r.try_get("kind")?,
                    role: r.try_get("role")?,
                    read_seq: r.try_get("read_seq")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Member ids of every room the user is in (for `GET /v1/rooms?members=`).
    pub async fn member_sets(&self, user: &str, tenant: &str) -> Result<HashMap<String, Vec<String>>, StoreError> {
        let rows = sqlx::query(
            "SELECT room_id, user_id FROM members WHERE room_id IN \
               (SELECT room_id FROM members WHERE user_id = $1 AND tenant = $2)",
        )
        .bind(user)
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?;
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for r in rows {
            map.entry(r.try_get("room_id")?).or_default().push(r.try_get("user_id")?);
        }
        Ok(map)
    }

    /// Events with `after < seq < before`, oldest first. Without `after`, the newest page.
    pub async fn history(
        &self,
        room_id: &str,
        after: Option<i64>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<EventRow>, StoreError> {
        let before = before.unwrap_or(i64::MAX);
        let rows = match after {
            Some(after) => {
                sqlx::query(&format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE room_id = $1 AND seq > $2 AND seq < $3 ORDER BY seq ASC LIMIT $4"
                ))
                .bind(room_id)
                .bind(after)
                .bind(before)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                let mut rows = sqlx::query(&format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE room_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3"
                ))
                .bind(room_id)
                .bind(before)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                rows.reverse();
                rows
            }
        };
        rows.iter().map(event_from_row).collect::<Result<_, _>>().map_err(StoreError::from)
    }

    /// Move the read marker forward (never back, never past the last seq). Returns the marker,
    /// or `None` when the caller is not a member.
    pub async fn mark_read(
        &self,
        room_id: &str,
        user: &str,
        tenant: &str,
        seq: i64,
    ) -> Result<Option<i64>, StoreError> {
        sqlx::query(
            "UPDATE members SET read_seq = \
               CASE WHEN $1 > read_seq THEN \
                 CASE WHEN $1 > (SELECT last_seq FROM rooms WHERE id = $2) THEN (SELECT last_seq FROM rooms WHERE id = $2) ELSE $1 END \
               ELSE read_seq END \
             WHERE room_id = $2 AND user_id = $3 AND tenant = $4",
        )
        .bind(seq)
        .bind(room_id)
        .bind(user)
        .bind(tenant)
        .execute(&self.pool)
        .await?;
        let row = sqlx::query("SELECT read_seq FROM members WHERE room_id = $1 AND user_id = $2 AND tenant = $3")
            .bind(room_id)
            .bind(user)
            .bind(tenant)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("read_seq")).transpose()?)
    }

    /// LINE rooms `user` is in: (room id, room tenant).
    pub async fn line_rooms_of(&self, user: &str) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT r.id, r.tenant FROM members m JOIN rooms r ON r.id = m.room_id \
             WHERE m.user_id = $1 AND r.kind IN ('line_direct', 'line_group')",
        )
        .bind(user)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("tenant")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Rooms holding members of both tenants: (room id, room tenant, member id, member tenant).
    pub async fn rooms_shared_by(&self, a: &str, b: &str) -> Result<Vec<(String, String, String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT r.id, r.tenant, m.user_id, m.tenant AS member_tenant FROM rooms r JOIN members m ON m.room_id = r.id \
             WHERE m.kind = 'member' \
               AND r.id IN (SELECT room_id FROM members WHERE tenant = $1) \
               AND r.id IN (SELECT room_id FROM members WHERE tenant = $2)",
        )
        .bind(a)
        .bind(b)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("tenant")?, r.try_get("user_id")?, r.try_get("member_tenant")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// The room's kind and tenant (they never change), or `None`.
    pub async fn room_kind(&self, room_id: &str) -> Result<Option<(String, String)>, StoreError> {
        let row = sqlx::query("SELECT kind, tenant FROM rooms WHERE id = $1")
            .bind(room_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            None => None,
            Some(r) => Some((r.try_get("kind")?, r.try_get("tenant")?)),
        })
    }

    /// The distinct tenants of a room's members (LINE users excluded).
    pub async fn member_tenants(&self, room_id: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT DISTINCT tenant FROM members WHERE room_id = $1 AND kind = 'member'")
            .bind(room_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| r.try_get("tenant")).collect::<Result<_, sqlx::Error>>().map_err(StoreError::from)
    }

    /// A notification that belongs to no room command (authorization changes).
    pub async fn insert_notification(&self, n: &NotificationRow) -> Result<(), StoreError> {
        insert_notification(&self.pool, n).await
    }

    pub async fn notifications(
        &self,
        user: &str,
        tenant: &str,
        limit: i64,
    ) -> Result<Vec<NotificationRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, user_id, tenant, kind, room_id, text, created_at FROM notifications \
             WHERE user_id = $1 AND tenant = $2 ORDER BY created_at DESC, id DESC LIMIT $3",
        )
        .bind(user)
        .bind(tenant)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(NotificationRow {
                    id: r.try_get("id")?,
                    user_id: r.try_get("user_id")?,
                    tenant: r.try_get("tenant")?,
                    kind: r.try_get("kind")?,
                    room_id: r.try_get("room_id")?,
                    text: r.try_get("text")?,
                    created_at_ms: r.try_get("created_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}
