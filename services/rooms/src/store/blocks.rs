//! Blocks between users, as the contacts service publishes them: the periods (written by the
//! event worker), the open blocks among a room's members (read by its actor at activation and
//! when members join) and the filter history and sync apply for a reader (`read` uses it).

use std::collections::HashSet;

use chat_protocol::UserId;
use sqlx::Row;

use super::{Store, StoreError};

/// The SQL condition that hides the `events` row aliased `event` from `reader` (a bind
/// parameter or a column): a message whose sender the reader blocked when it was sent.
pub(super) fn hidden_from(event: &str, reader: &str) -> String {
    format!(
        "({event}.kind = 'message' AND EXISTS (SELECT 1 FROM blocks b WHERE b.blocker = {reader} \
         AND b.blocked = {event}.sender AND {event}.sent_at >= b.since_ms \
         AND (b.until_ms IS NULL OR {event}.sent_at < b.until_ms)))"
    )
}

impl Store {
    /// Record a block period of `blocker` on `blocked` starting at `since_ms`, open (`until_ms`
    /// `None`) or ended. Idempotent, and an end is never undone by a late start.
    pub async fn record_block(
        &self,
        blocker: &UserId,
        blocked: &UserId,
        since_ms: i64,
        until_ms: Option<i64>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO blocks (blocker, blocked, since_ms, until_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (blocker, blocked, since_ms) \
             DO UPDATE SET until_ms = COALESCE(excluded.until_ms, blocks.until_ms)",
        )
        .bind(blocker.as_str())
        .bind(blocked.as_str())
        .bind(since_ms)
        .bind(until_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The open blocks whose blocker is a member of the room: (blocker, blocked).
    pub async fn room_blocks(&self, room_id: &chat_protocol::RoomId) -> Result<HashSet<(UserId, UserId)>, StoreError> {
        let rows = sqlx::query(
            "SELECT b.blocker, b.blocked FROM blocks b \
             JOIN members m ON m.room_id = $1 AND m.user_id = b.blocker \
             WHERE b.until_ms IS NULL",
        )
        .bind(room_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((UserId::new(r.try_get::<String, _>("blocker")?), UserId::new(r.try_get::<String, _>("blocked")?)))
            })
            .collect()
    }
}
