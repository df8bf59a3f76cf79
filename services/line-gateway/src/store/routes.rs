//! How members' messages and LINE users' answers find their way when a member's room has
//! several LINE users (see `docs/line-gateway.md`): the channel that reaches a LINE user from
//! such a room, the room a LINE user's answers go to (`line_users.reply_room`), and LINE
//! users' display names and pictures (`line_profiles`: friends and LINE group members).

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
        // Written only when it changes: every message to a LINE user comes here.
        sqlx::query(
            "UPDATE line_users SET reply_room = $1, updated_at = $2 WHERE channel_id = $3 AND line_user_id = $4 \
             AND COALESCE(reply_room, '') <> COALESCE($1, '')",
        )
        .bind(room.map(RoomId::as_str))
        .bind(now)
        .bind(channel_id)
        .bind(line_user_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Remember what a LINE user's profile says (their display name and picture).
    pub async fn remember_profile(
        &self,
        channel_id: &str,
        line_user_id: &str,
        display_name: &str,
        picture_url: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO line_profiles (channel_id, line_user_id, display_name, picture_url, updated_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (channel_id, line_user_id) DO UPDATE SET \
             display_name = excluded.display_name, picture_url = excluded.picture_url, updated_at = excluded.updated_at",
        )
        .bind(channel_id)
        .bind(line_user_id)
        .bind(display_name)
        .bind(picture_url)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Whether a channel has the LINE user's profile.
    pub async fn has_profile(&self, channel_id: &str, line_user_id: &str) -> Result<bool, StoreError> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT 1 FROM line_profiles WHERE channel_id = $1 AND line_user_id = $2")
                .bind(channel_id)
                .bind(line_user_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.is_some())
    }

    /// The LINE user's display name and picture as a channel of `tenant` last saw them.
    pub async fn line_profile(
        &self,
        tenant: &TenantId,
        line_user_id: &str,
    ) -> Result<Option<(String, Option<String>)>, StoreError> {
        let row: Option<(String, Option<String>)> = sqlx::query_as(
            "SELECT p.display_name, p.picture_url FROM line_profiles p JOIN channels c ON c.channel_id = p.channel_id \
             WHERE p.line_user_id = $1 AND c.tenant = $2 ORDER BY p.updated_at DESC LIMIT 1",
        )
        .bind(line_user_id)
        .bind(tenant.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row)
    }

    /// The LINE user's display name as a channel of `tenant` last saw it.
    pub async fn line_user_name(&self, tenant: &TenantId, line_user_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self.line_profile(tenant, line_user_id).await?.map(|(name, _)| name))
    }
}
