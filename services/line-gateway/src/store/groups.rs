//! LINE groups a channel's account is in (`line_groups`: the room each is connected to, and
//! whether the account is still in it) and the LINE users added to their rooms
//! (`line_group_members`).

use chat_protocol::RoomId;

use super::{Store, StoreError};

/// A channel's LINE group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineGroup {
    pub channel_id: String,
    pub group_id: String,
    pub room_id: RoomId,
    /// False once the account left the group.
    pub active: bool,
}

#[derive(sqlx::FromRow)]
struct GroupRecord {
    channel_id: String,
    group_id: String,
    room_id: String,
    active: i64,
}

impl From<GroupRecord> for LineGroup {
    fn from(r: GroupRecord) -> Self {
        LineGroup {
            channel_id: r.channel_id,
            group_id: r.group_id,
            room_id: RoomId::new(r.room_id),
            active: r.active != 0,
        }
    }
}

impl Store {
    /// Remember the group's room and whether the account is in it.
    pub async fn remember_group(
        &self,
        channel_id: &str,
        group_id: &str,
        room_id: &RoomId,
        active: bool,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO line_groups (channel_id, group_id, room_id, active, updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (channel_id, group_id) DO UPDATE SET room_id = excluded.room_id, active = excluded.active, \
             updated_at = excluded.updated_at",
        )
        .bind(channel_id)
        .bind(group_id)
        .bind(room_id.as_str())
        .bind(i64::from(active))
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The channel's group of this id.
    pub async fn group(&self, channel_id: &str, group_id: &str) -> Result<Option<LineGroup>, StoreError> {
        let record = sqlx::query_as::<_, GroupRecord>(
            "SELECT channel_id, group_id, room_id, active FROM line_groups WHERE channel_id = $1 AND group_id = $2",
        )
        .bind(channel_id)
        .bind(group_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(record.map(LineGroup::from))
    }

    /// The group a room is connected to.
    pub async fn group_of_room(&self, room_id: &RoomId) -> Result<Option<LineGroup>, StoreError> {
        let record = sqlx::query_as::<_, GroupRecord>(
            "SELECT channel_id, group_id, room_id, active FROM line_groups WHERE room_id = $1 \
             ORDER BY updated_at DESC LIMIT 1",
        )
        .bind(room_id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(record.map(LineGroup::from))
    }

    /// Whether this LINE user was added to the group's room.
    pub async fn is_group_member(
        &self,
        channel_id: &str,
        group_id: &str,
        line_user_id: &str,
    ) -> Result<bool, StoreError> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT 1 FROM line_group_members WHERE channel_id = $1 AND group_id = $2 AND line_user_id = $3",
        )
        .bind(channel_id)
        .bind(group_id)
        .bind(line_user_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// The LINE user was added to the group's room.
    pub async fn add_group_member(
        &self,
        channel_id: &str,
        group_id: &str,
        line_user_id: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO line_group_members (channel_id, group_id, line_user_id) VALUES ($1, $2, $3) \
             ON CONFLICT (channel_id, group_id, line_user_id) DO NOTHING",
        )
        .bind(channel_id)
        .bind(group_id)
        .bind(line_user_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The LINE user left the group's room.
    pub async fn remove_group_member(
        &self,
        channel_id: &str,
        group_id: &str,
        line_user_id: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM line_group_members WHERE channel_id = $1 AND group_id = $2 AND line_user_id = $3")
            .bind(channel_id)
            .bind(group_id)
            .bind(line_user_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The LINE users in the group's room, as added by the gateway.
    pub async fn group_members(&self, channel_id: &str, group_id: &str) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT line_user_id FROM line_group_members WHERE channel_id = $1 AND group_id = $2 ORDER BY line_user_id",
        )
        .bind(channel_id)
        .bind(group_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }
}
