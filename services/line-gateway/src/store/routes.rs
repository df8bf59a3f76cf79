//! How members' messages and LINE users' answers find their way when a member's room has
//! several LINE users (see `docs/line-gateway.md`): the channel that reaches a LINE user from
//! such a room, the room a LINE user's answers go to (`line_users.reply_room`), and LINE
//! users' display names (`line_users.display_name`).

use chat_protocol::{RoomId, TenantId, UserId};

use super::{Store, StoreError};

impl Store {
    /// The channel of `tenant` through which `line_user_id` is reached from a room that is not
    /// their 1:1 room: the channel of `sender` if they follow it, else the channel of the
    /// tenant they followed last.
    pub async fn channel_for(
        &self,
        tenant: &TenantId,
        sender: &UserId,
        line_user_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT c.channel_id FROM line_users u JOIN channels c ON c.channel_id = u.channel_id \
             WHERE u.line_user_id = $1 AND u.followed = 1 AND c.tenant = $2 \
             ORDER BY CASE WHEN c.user_id = $3 THEN 0 ELSE 1 END, u.updated_at DESC LIMIT 1",
        )
        .bind(line_user_id)
        .bind(tenant.as_str())
        .bind(sender.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(channel_id,)| channel_id))
    }

    /// The room the LINE user's answers through this channel go to: `Some` a room that is not
    /// their 1:1 room, `None` their 1:1 room.
    pub async fn set_reply_room(
        &self,
        channel_id: &str,
        line_user_id: &str,
        room: Option<&RoomId>,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE line_users SET reply_room = $1, updated_at = $2 WHERE channel_id = $3 AND line_user_id = $4",
        )
        .bind(room.map(RoomId::as_str))
        .bind(now)
        .bind(channel_id)
        .bind(line_user_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Remember the LINE user's display name (from their profile).
    pub async fn set_line_user_name(&self, channel_id: &str, line_user_id: &str, name: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE line_users SET display_name = $1 WHERE channel_id = $2 AND line_user_id = $3")
            .bind(name)
            .bind(channel_id)
            .bind(line_user_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The LINE user's display name as a channel of `tenant` last saw it.
    pub async fn line_user_name(&self, tenant: &TenantId, line_user_id: &str) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT u.display_name FROM line_users u JOIN channels c ON c.channel_id = u.channel_id \
             WHERE u.line_user_id = $1 AND c.tenant = $2 AND u.display_name IS NOT NULL \
             ORDER BY u.updated_at DESC LIMIT 1",
        )
        .bind(line_user_id)
        .bind(tenant.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(name,)| name))
    }
}
