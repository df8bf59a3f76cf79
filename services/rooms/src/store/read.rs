//! The API's path: what members see (room lists with unread counts, one room, its members,
//! history pages, sync, read markers, notifications) and the look-ups of the authorization
//! side (rooms a LINE user or two tenants share). Every read of a room's content is filtered by
//! membership on user **and** tenant.

use std::collections::HashMap;

use chat_protocol::bus::{MemberKind, RoomKind};
use chat_protocol::call::Call;
use chat_protocol::{MessageId, RoomId, TenantId, UserId};
use sqlx::Row;

use super::blocks::hidden_from;
use super::{NotificationRow, RoomRow, Store, StoreError};
use crate::domain::{Role, RoomMeta};

chat_protocol::text_enum! {
    /// Whether an event row holds a message or a system event.
    pub enum EventKind {
        Message,
        Event,
    }
}

/// One event as stored: a message (body is a message body) or a system event (body is the event).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct EventRow {
    pub seq: i64,
    #[sqlx(try_from = "String")]
    pub kind: EventKind,
    pub message_id: Option<String>,
    pub sender: Option<String>,
    /// `None` once a message was recalled.
    pub body: Option<String>,
    pub recalled: i64,
    #[sqlx(rename = "sent_at")]
    pub sent_at_ms: i64,
}

impl EventRow {
    pub fn is_recalled(&self) -> bool {
        self.recalled != 0
    }

    pub fn message_id(&self) -> MessageId {
        MessageId::new(self.message_id.clone().unwrap_or_default())
    }

    pub fn sender(&self) -> UserId {
        UserId::new(self.sender.clone().unwrap_or_default())
    }
}

const EVENT_COLUMNS: &str = "seq, kind, message_id, sender, body, recalled, sent_at";

/// A room as one of its members sees it.
#[derive(Debug, Clone)]
pub struct RoomView {
    pub meta: RoomMeta,
    pub last_seq: i64,
    pub read_seq: i64,
    pub unread: i64,
    pub updated_at_ms: i64,
    pub last_message: Option<EventRow>,
}

#[derive(sqlx::FromRow)]
struct RoomViewRow {
    #[sqlx(flatten)]
    room: RoomRow,
    read_seq: i64,
    unread: i64,
    updated_at: i64,
    last_message_seq: i64,
    /// The last message's columns; all `NULL` when the room has no message yet.
    last_message_id: Option<String>,
    last_sender: Option<String>,
    last_body: Option<String>,
    last_recalled: Option<i64>,
    last_sent_at: Option<i64>,
}

impl RoomViewRow {
    fn into_view(self) -> RoomView {
        let last_message = self.last_sent_at.map(|sent_at_ms| EventRow {
            seq: self.last_message_seq,
            kind: EventKind::Message,
            message_id: self.last_message_id,
            sender: self.last_sender,
            body: self.last_body,
            recalled: self.last_recalled.unwrap_or(0),
            sent_at_ms,
        });
        RoomView {
            last_seq: self.room.last_seq,
            meta: self.room.into_meta(),
            read_seq: self.read_seq,
            unread: self.unread,
            updated_at_ms: self.updated_at,
            last_message,
        }
    }
}

/// A room as a member sees it; callers add the filter. Nothing here reads more than one event
/// row per room: the unread count comes from the counters the room's commits keep (see the
/// `room_counters` migration), the last message is one primary-key lookup. A last message the
/// member blocked (its sender, when it was sent) is not shown: the room has no preview then.
/// (Unread counts include such messages: the counters are per room, not per reader.)
fn room_view_select() -> String {
    format!(
        "SELECT r.id, r.tenant, r.kind, r.name, r.description, r.photo_url, r.direct_key, r.last_seq, r.updated_at, \
           m.read_seq, \
           (r.message_count - m.read_message_count) - (m.sent_count - m.read_sent_count) AS unread, \
           r.last_message_seq, e.message_id AS last_message_id, e.sender AS last_sender, e.body AS last_body, \
           e.recalled AS last_recalled, e.sent_at AS last_sent_at \
         FROM members m JOIN rooms r ON r.id = m.room_id \
         LEFT JOIN events e ON e.room_id = r.id AND e.seq = r.last_message_seq AND NOT {}",
        hidden_from("e", "m.user_id")
    )
}

/// A member as the room's details list it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MemberRow {
    #[sqlx(try_from = "String")]
    pub user_id: UserId,
    #[sqlx(try_from = "String")]
    pub tenant: TenantId,
    #[sqlx(try_from = "String")]
    pub kind: MemberKind,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub read_seq: i64,
}

/// A room and the tenant it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TenantRoom {
    #[sqlx(try_from = "String")]
    pub room_id: RoomId,
    #[sqlx(try_from = "String")]
    pub tenant: TenantId,
}

/// A member of a room that holds members of two given tenants.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SharedRoomMember {
    #[sqlx(try_from = "String")]
    pub room_id: RoomId,
    #[sqlx(try_from = "String")]
    pub room_tenant: TenantId,
    #[sqlx(try_from = "String")]
    pub user_id: UserId,
    #[sqlx(try_from = "String")]
    pub member_tenant: TenantId,
}

impl Store {
    /// True when `user` of `tenant` is a member of the room.
    pub async fn is_member(&self, room_id: &RoomId, user: &UserId, tenant: &TenantId) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 AS one FROM members WHERE room_id = $1 AND user_id = $2 AND tenant = $3")
            .bind(room_id.as_str())
            .bind(user.as_str())
            .bind(tenant.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// The calls going on in the caller's rooms.
    pub async fn calls_of(&self, user: &UserId, tenant: &TenantId) -> Result<Vec<(RoomId, Call)>, StoreError> {
        let rows = sqlx::query(
            "SELECT r.id, r.call_state FROM rooms r JOIN members m ON m.room_id = r.id \
             WHERE m.user_id = $1 AND m.tenant = $2 AND r.call_state IS NOT NULL",
        )
        .bind(user.as_str())
        .bind(tenant.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| Ok((RoomId::new(row.try_get::<String, _>("id")?), call_of(row)?))).collect()
    }

    /// Every call going on, with its room's tenant (the call sweep, `call_sweep.rs`).
    pub async fn calls(&self) -> Result<Vec<(RoomId, TenantId, Call)>, StoreError> {
        let rows = sqlx::query("SELECT id, tenant, call_state FROM rooms WHERE call_state IS NOT NULL")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let room = RoomId::new(row.try_get::<String, _>("id")?);
                Ok((room, TenantId::new(row.try_get::<String, _>("tenant")?), call_of(row)?))
            })
            .collect()
    }

    /// The caller's rooms, most recently active first.
    pub async fn list_rooms(&self, user: &UserId, tenant: &TenantId, limit: i64) -> Result<Vec<RoomView>, StoreError> {
        let rows = sqlx::query_as::<_, RoomViewRow>(&format!(
            "{} WHERE m.user_id = $1 AND m.tenant = $2 ORDER BY r.updated_at DESC, r.id LIMIT $3",
            room_view_select()
        ))
        .bind(user.as_str())
        .bind(tenant.as_str())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(RoomViewRow::into_view).collect())
    }

    /// One room as the caller sees it; `None` when the caller is not a member (or the room
    /// belongs to another tenant): the caller cannot tell that from a missing room.
    pub async fn room_view(
        &self,
        room_id: &RoomId,
        user: &UserId,
        tenant: &TenantId,
    ) -> Result<Option<RoomView>, StoreError> {
        let row = sqlx::query_as::<_, RoomViewRow>(&format!(
            "{} WHERE r.id = $1 AND m.user_id = $2 AND m.tenant = $3",
            room_view_select()
        ))
        .bind(room_id.as_str())
        .bind(user.as_str())
        .bind(tenant.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(RoomViewRow::into_view))
    }

    pub async fn members(&self, room_id: &RoomId) -> Result<Vec<MemberRow>, StoreError> {
        Ok(sqlx::query_as::<_, MemberRow>(
            "SELECT user_id, tenant, kind, role, read_seq FROM members WHERE room_id = $1 ORDER BY joined_seq, user_id",
        )
        .bind(room_id.as_str())
        .fetch_all(&self.pool)
        .await?)
    }

    /// Member ids of every room the user is in (for `GET /v1/rooms?members=`).
    pub async fn member_sets(
        &self,
        user: &UserId,
        tenant: &TenantId,
    ) -> Result<HashMap<RoomId, Vec<UserId>>, StoreError> {
        let rows = sqlx::query(
            "SELECT room_id, user_id FROM members WHERE room_id IN \
               (SELECT room_id FROM members WHERE user_id = $1 AND tenant = $2)",
        )
        .bind(user.as_str())
        .bind(tenant.as_str())
        .fetch_all(&self.pool)
        .await?;
        let mut map: HashMap<RoomId, Vec<UserId>> = HashMap::new();
        for r in rows {
            map.entry(RoomId::new(r.try_get::<String, _>("room_id")?))
                .or_default()
                .push(UserId::new(r.try_get::<String, _>("user_id")?));
        }
        Ok(map)
    }

    /// Events with `after < seq < before`, oldest first. Without `after`, the newest page. With
    /// a `reader`, the messages it blocked (their sender, when they were sent) are left out.
    pub async fn history(
        &self,
        room_id: &RoomId,
        reader: Option<&UserId>,
        after: Option<i64>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<EventRow>, StoreError> {
        let before = before.unwrap_or(i64::MAX);
        // The reader is the query's last parameter.
        let visible =
            |param: &str| reader.map(|_| format!("AND NOT {}", hidden_from("events", param))).unwrap_or_default();
        let rows = match after {
            Some(after) => {
                let sql = format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE room_id = $1 AND seq > $2 AND seq < $3 {} \
                     ORDER BY seq ASC LIMIT $4",
                    visible("$5")
                );
                let query =
                    sqlx::query_as::<_, EventRow>(&sql).bind(room_id.as_str()).bind(after).bind(before).bind(limit);
                match reader {
                    Some(reader) => query.bind(reader.as_str()),
                    None => query,
                }
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                let sql = format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE room_id = $1 AND seq < $2 {} ORDER BY seq DESC LIMIT $3",
                    visible("$4")
                );
                let query = sqlx::query_as::<_, EventRow>(&sql).bind(room_id.as_str()).bind(before).bind(limit);
                let mut rows = match reader {
                    Some(reader) => query.bind(reader.as_str()),
                    None => query,
                }
                .fetch_all(&self.pool)
                .await?;
                rows.reverse();
                rows
            }
        };
        Ok(rows)
    }

    /// Move the read marker forward (never back, never past the last seq), with what the
    /// history holds up to it: the room's messages and the member's own (one primary-key lookup
    /// and one probe of `events_by_sender`). Returns the marker, or `None` when the caller is
    /// not a member.
    pub async fn mark_read(
        &self,
        room_id: &RoomId,
        user: &UserId,
        tenant: &TenantId,
        seq: i64,
    ) -> Result<Option<i64>, StoreError> {
        let last_seq = sqlx::query("SELECT last_seq FROM rooms WHERE id = $1")
            .bind(room_id.as_str())
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.try_get::<i64, _>("last_seq"))
            .transpose()?;
        if let Some(last_seq) = last_seq {
            // Every seq up to `last_seq` is a stored event: the room commits them together.
            let marker = seq.min(last_seq);
            sqlx::query(
                "UPDATE members SET read_seq = $1, \
                   read_message_count = COALESCE((SELECT e.message_count FROM events e \
                                                  WHERE e.room_id = $2 AND e.seq = $1), 0), \
                   read_sent_count = COALESCE((SELECT e.sender_message_count FROM events e \
                                               WHERE e.room_id = $2 AND e.sender = $3 AND e.seq <= $1 \
                                               ORDER BY e.seq DESC LIMIT 1), 0) \
                 WHERE room_id = $2 AND user_id = $3 AND tenant = $4 AND read_seq < $1",
            )
            .bind(marker)
            .bind(room_id.as_str())
            .bind(user.as_str())
            .bind(tenant.as_str())
            .execute(&self.pool)
            .await?;
        }
        let row = sqlx::query("SELECT read_seq FROM members WHERE room_id = $1 AND user_id = $2 AND tenant = $3")
            .bind(room_id.as_str())
            .bind(user.as_str())
            .bind(tenant.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("read_seq")).transpose()?)
    }

    /// The LINE rooms `user` is in.
    pub async fn line_rooms_of(&self, user: &UserId) -> Result<Vec<TenantRoom>, StoreError> {
        Ok(sqlx::query_as::<_, TenantRoom>(
            "SELECT r.id AS room_id, r.tenant FROM members m JOIN rooms r ON r.id = m.room_id \
             WHERE m.user_id = $1 AND r.kind IN ('line_direct', 'line_group')",
        )
        .bind(user.as_str())
        .fetch_all(&self.pool)
        .await?)
    }

    /// Every member (LINE users aside) of every room holding members of both tenants.
    pub async fn rooms_shared_by(&self, a: &TenantId, b: &TenantId) -> Result<Vec<SharedRoomMember>, StoreError> {
        Ok(sqlx::query_as::<_, SharedRoomMember>(
            "SELECT r.id AS room_id, r.tenant AS room_tenant, m.user_id, m.tenant AS member_tenant \
             FROM rooms r JOIN members m ON m.room_id = r.id \
             WHERE m.kind = 'member' \
               AND r.id IN (SELECT room_id FROM members WHERE tenant = $1) \
               AND r.id IN (SELECT room_id FROM members WHERE tenant = $2)",
        )
        .bind(a.as_str())
        .bind(b.as_str())
        .fetch_all(&self.pool)
        .await?)
    }

    /// The rooms both users are members of, with each room's tenant.
    pub async fn rooms_of_pair(&self, a: &UserId, b: &UserId) -> Result<Vec<TenantRoom>, StoreError> {
        Ok(sqlx::query_as::<_, TenantRoom>(
            "SELECT r.id AS room_id, r.tenant FROM members ma \
             JOIN members mb ON mb.room_id = ma.room_id AND mb.user_id = $2 \
             JOIN rooms r ON r.id = ma.room_id \
             WHERE ma.user_id = $1",
        )
        .bind(a.as_str())
        .bind(b.as_str())
        .fetch_all(&self.pool)
        .await?)
    }

    /// The room's kind (it never changes), or `None`.
    pub async fn room_kind(&self, room_id: &RoomId) -> Result<Option<RoomKind>, StoreError> {
        let row = sqlx::query("SELECT kind FROM rooms WHERE id = $1")
            .bind(room_id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let kind =
            RoomKind::try_from(row.try_get::<String, _>("kind")?).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(Some(kind))
    }

    /// The tenant a room belongs to (its creator's).
    pub async fn room_tenant(&self, room_id: &RoomId) -> Result<Option<TenantId>, StoreError> {
        let row = sqlx::query("SELECT tenant FROM rooms WHERE id = $1")
            .bind(room_id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(TenantId::new(row.try_get::<String, _>("tenant")?)))
    }

    /// The distinct tenants of a room's members (LINE users excluded).
    pub async fn member_tenants(&self, room_id: &RoomId) -> Result<Vec<TenantId>, StoreError> {
        let rows = sqlx::query("SELECT DISTINCT tenant FROM members WHERE room_id = $1 AND kind = 'member'")
            .bind(room_id.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(TenantId::new(r.try_get::<String, _>("tenant")?))).collect()
    }

    pub async fn notifications(
        &self,
        user: &UserId,
        tenant: &TenantId,
        limit: i64,
    ) -> Result<Vec<NotificationRow>, StoreError> {
        Ok(sqlx::query_as::<_, NotificationRow>(
            "SELECT id, user_id, tenant, kind, room_id, text, created_at FROM notifications \
             WHERE user_id = $1 AND tenant = $2 ORDER BY created_at DESC, id DESC LIMIT $3",
        )
        .bind(user.as_str())
        .bind(tenant.as_str())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }
}

/// The call of a `rooms` row that has one.
fn call_of(row: &sqlx::any::AnyRow) -> Result<Call, StoreError> {
    let json: String = row.try_get("call_state")?;
    serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(format!("a stored call: {e}")))
}
