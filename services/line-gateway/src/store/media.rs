//! Stored media (`media`: what was kept of a LINE message's content, where, and who may read
//! it) and the room messages LINE users' messages became (`posted`, for LINE's `unsend`).
//! Both are written once per (channel, LINE message): a reprocessed event finds its row.

use chat_protocol::{MessageId, RoomId, TenantId, UserId};

use super::{Store, StoreError};

/// A stored medium.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRow {
    pub media_id: String,
    pub channel_id: String,
    pub line_message_id: String,
    pub store_key: String,
    pub content_type: String,
    pub size: u64,
    pub file_name: Option<String>,
    pub kind: String,
    pub room_id: RoomId,
    /// The channel's member (the LINE 1:1 room's member).
    pub owner: UserId,
    pub tenant: TenantId,
    pub created_at_ms: i64,
}

#[derive(sqlx::FromRow)]
struct MediaRecord {
    media_id: String,
    channel_id: String,
    line_message_id: String,
    store_key: String,
    content_type: String,
    size: i64,
    file_name: Option<String>,
    kind: String,
    room_id: String,
    owner: String,
    tenant: String,
    created_at: i64,
}

impl From<MediaRecord> for MediaRow {
    fn from(r: MediaRecord) -> Self {
        MediaRow {
            media_id: r.media_id,
            channel_id: r.channel_id,
            line_message_id: r.line_message_id,
            store_key: r.store_key,
            content_type: r.content_type,
            size: u64::try_from(r.size).unwrap_or(0),
            file_name: r.file_name,
            kind: r.kind,
            room_id: RoomId::new(r.room_id),
            owner: UserId::new(r.owner),
            tenant: TenantId::new(r.tenant),
            created_at_ms: r.created_at,
        }
    }
}

const MEDIA_COLUMNS: &str = "media_id, channel_id, line_message_id, store_key, content_type, size, file_name, kind, \
     room_id, owner, tenant, created_at";

/// Where a LINE message went in its room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostedRow {
    pub room_id: RoomId,
    pub message_id: MessageId,
}

impl Store {
    /// Remember a stored medium; a row already there (a reprocessed event) is kept.
    pub async fn insert_media(&self, row: &MediaRow) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO media ({MEDIA_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT DO NOTHING"
        ))
        .bind(row.media_id.as_str())
        .bind(row.channel_id.as_str())
        .bind(row.line_message_id.as_str())
        .bind(row.store_key.as_str())
        .bind(row.content_type.as_str())
        .bind(i64::try_from(row.size).unwrap_or(i64::MAX))
        .bind(row.file_name.as_deref())
        .bind(row.kind.as_str())
        .bind(row.room_id.as_str())
        .bind(row.owner.as_str())
        .bind(row.tenant.as_str())
        .bind(row.created_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The medium under this id.
    pub async fn media(&self, media_id: &str) -> Result<Option<MediaRow>, StoreError> {
        let record =
            sqlx::query_as::<_, MediaRecord>(&format!("SELECT {MEDIA_COLUMNS} FROM media WHERE media_id = $1"))
                .bind(media_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(record.map(MediaRow::from))
    }

    /// The medium of a channel's LINE message.
    pub async fn media_of_message(
        &self,
        channel_id: &str,
        line_message_id: &str,
    ) -> Result<Option<MediaRow>, StoreError> {
        let record = sqlx::query_as::<_, MediaRecord>(&format!(
            "SELECT {MEDIA_COLUMNS} FROM media WHERE channel_id = $1 AND line_message_id = $2"
        ))
        .bind(channel_id)
        .bind(line_message_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(record.map(MediaRow::from))
    }

    /// Remember the room message a LINE message became (kept if already there).
    pub async fn remember_posted(
        &self,
        channel_id: &str,
        line_message_id: &str,
        room_id: &RoomId,
        message_id: &MessageId,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO posted (channel_id, line_message_id, room_id, message_id, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (channel_id, line_message_id) DO NOTHING",
        )
        .bind(channel_id)
        .bind(line_message_id)
        .bind(room_id.as_str())
        .bind(message_id.as_str())
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The room message a channel's LINE message became.
    pub async fn posted(&self, channel_id: &str, line_message_id: &str) -> Result<Option<PostedRow>, StoreError> {
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT room_id, message_id FROM posted WHERE channel_id = $1 AND line_message_id = $2")
                .bind(channel_id)
                .bind(line_message_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(room_id, message_id)| PostedRow {
            room_id: RoomId::new(room_id),
            message_id: MessageId::new(message_id),
        }))
    }

    /// Forget which room messages LINE messages older than `before` (ms) became (LINE lets its
    /// users unsend for a limited time only); the number of rows purged.
    pub async fn purge_posted(&self, before: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM posted WHERE created_at < $1").bind(before).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }
}
