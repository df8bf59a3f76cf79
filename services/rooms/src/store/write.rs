//! The room actor's path: claim a room (raise its fence), load its state, commit a command's
//! plan in one transaction, and the look-ups a command needs (a message to recall, a recorded
//! result, the existing 1:1 room of a pair).
//!
//! A commit also keeps the counters the room list reads instead of the history (the
//! `room_counters` migration): the room's last message seq and message count, each event's
//! running counts, each member's own message count.

use std::collections::HashSet;

use chat_protocol::bus::{CommandResult, MemberKind};
use chat_protocol::{MessageId, RoomId, TenantId, UserId};
use sqlx::Row;

use super::{insert_notification, Fence, NotificationRow, RoomRow, Store, StoreError};
use crate::domain::{
    Member, Members, MessageRef, Plan, PlannedEvent, PlannedNotification, RecentCommands, Role, RoomMeta, RoomState,
};

/// Everything one command writes, in one transaction.
pub struct Commit<'a> {
    /// The room's meta after the command.
    pub meta: &'a RoomMeta,
    /// The room's last seq before the command; its events take the seqs after it.
    pub last_seq: i64,
    pub plan: &'a Plan,
    /// Recorded with the plan's result: the same command is never applied twice.
    pub command_id: &'a str,
    pub now_ms: i64,
}

impl Commit<'_> {
    /// The room's last seq after the command.
    pub fn new_last_seq(&self) -> i64 {
        self.last_seq + self.plan.events.len() as i64
    }
}

#[derive(sqlx::FromRow)]
struct MemberStateRow {
    #[sqlx(try_from = "String")]
    user_id: UserId,
    #[sqlx(try_from = "String")]
    tenant: TenantId,
    #[sqlx(try_from = "String")]
    kind: MemberKind,
    #[sqlx(try_from = "String")]
    role: Role,
    joined_seq: i64,
}

#[derive(sqlx::FromRow)]
struct RecordedRow {
    result: String,
}

#[derive(sqlx::FromRow)]
struct MessageRefRow {
    seq: i64,
    #[sqlx(try_from = "String")]
    sender: UserId,
    recalled: i64,
}

/// The condition that no newer epoch owns the shard: `$shard` and `$epoch` are the numbers of
/// the statement's placeholders holding them.
fn shard_is_current(shard: usize, epoch: usize) -> String {
    format!("NOT EXISTS (SELECT 1 FROM shard_fences WHERE shard = ${shard} AND fence > ${epoch})")
}

impl Store {
    /// The highest fence in the store (rooms and shards): epochs granted from now on must be
    /// above it, even if Redis has lost its counters.
    pub async fn max_fence(&self) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "SELECT COALESCE((SELECT MAX(fence) FROM rooms), 0) AS r, COALESCE((SELECT MAX(fence) FROM shard_fences), 0) AS s",
        )
        .fetch_one(&self.pool)
        .await?;
        let (rooms, shards): (i64, i64) = (row.try_get("r")?, row.try_get("s")?);
        Ok(rooms.max(shards))
    }

    /// Record that `fence.epoch` now owns its shard (before consuming it): from then on, writes
    /// with an older epoch are refused. False when a newer epoch was recorded already.
    pub async fn raise_shard_fence(&self, fence: Fence) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO shard_fences (shard, fence) VALUES ($1, $2) \
             ON CONFLICT (shard) DO UPDATE SET fence = excluded.fence WHERE shard_fences.fence <= excluded.fence",
        )
        .bind(i32::from(fence.shard))
        .bind(fence.epoch)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The epoch recorded for a shard (0: none).
    pub async fn shard_fence(&self, shard: u16) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT fence FROM shard_fences WHERE shard = $1")
            .bind(i32::from(shard))
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get::<i64, _>("fence")).transpose()?.unwrap_or(0))
    }

    /// Activate a room for its actor: raise its fence to the owner's epoch and load its state
    /// (meta, members, the dedup window) and its members' blocks. Two round trips: the fence
    /// raise returns the room's row, then the members, the window and the blocks are read at
    /// once (after the raise, so every write of an older owner is in). `Stale` when a newer
    /// owner holds the room or its shard; `None` for a room not created yet.
    pub async fn activate(
        &self,
        room_id: &RoomId,
        fence: Fence,
        dedup: usize,
    ) -> Result<Option<(RoomState, HashSet<(UserId, UserId)>)>, StoreError> {
        let sql = format!(
            "UPDATE rooms SET fence = $1 WHERE id = $2 AND fence <= $1 AND {} \
             RETURNING id, tenant, kind, name, description, photo_url, direct_key, last_seq, call_state",
            shard_is_current(3, 1)
        );
        let room = sqlx::query_as::<_, RoomRow>(&sql)
            .bind(fence.epoch)
            .bind(room_id.as_str())
            .bind(i32::from(fence.shard))
            .fetch_optional(&self.pool)
            .await?;
        let Some(room) = room else {
            // Not created yet (the create commit carries the epoch and checks the shard's), or
            // a newer owner holds it.
            let exists = sqlx::query("SELECT fence FROM rooms WHERE id = $1")
                .bind(room_id.as_str())
                .fetch_optional(&self.pool)
                .await?
                .is_some();
            if exists || self.shard_fence(fence.shard).await? > fence.epoch {
                return Err(StoreError::Stale { room_id: room_id.clone(), epoch: fence.epoch });
            }
            return Ok(None);
        };
        let (members, recent, blocks) = tokio::try_join!(
            self.members_of(room_id),
            self.recent_commands(room_id, dedup),
            self.room_blocks(room_id)
        )?;
        let last_seq = room.last_seq;
        let call = room.call();
        Ok(Some((RoomState { meta: room.into_meta(), last_seq, members, recent, call }, blocks)))
    }

    async fn members_of(&self, room_id: &RoomId) -> Result<Members, StoreError> {
        Ok(sqlx::query_as::<_, MemberStateRow>(
            "SELECT user_id, tenant, kind, role, joined_seq FROM members WHERE room_id = $1",
        )
        .bind(room_id.as_str())
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|m| (m.user_id, Member { tenant: m.tenant, kind: m.kind, role: m.role, joined_seq: m.joined_seq }))
        .collect())
    }

    /// The last `dedup` commands' ids, oldest first.
    async fn recent_commands(&self, room_id: &RoomId, dedup: usize) -> Result<RecentCommands, StoreError> {
        let mut recent = RecentCommands::new(dedup);
        let ids = sqlx::query(
            "SELECT command_id FROM commands WHERE room_id = $1 ORDER BY seq DESC, created_at DESC LIMIT $2",
        )
        .bind(room_id.as_str())
        .bind(dedup as i64)
        .fetch_all(&self.pool)
        .await?;
        for row in ids.iter().rev() {
            recent.insert(&row.try_get::<String, _>("command_id")?);
        }
        Ok(recent)
    }

    /// The recorded result of a command older than the in-memory window.
    pub async fn command_result(
        &self,
        room_id: &RoomId,
        command_id: &str,
    ) -> Result<Option<CommandResult>, StoreError> {
        let row =
            sqlx::query_as::<_, RecordedRow>("SELECT result FROM commands WHERE room_id = $1 AND command_id = $2")
                .bind(room_id.as_str())
                .bind(command_id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| serde_json::from_str(&r.result)).transpose().map_err(StoreError::from)
    }

    pub async fn message_ref(
        &self,
        room_id: &RoomId,
        message_id: &MessageId,
    ) -> Result<Option<MessageRef>, StoreError> {
        let row = sqlx::query_as::<_, MessageRefRow>(
            "SELECT seq, sender, recalled FROM events WHERE room_id = $1 AND message_id = $2 AND kind = 'message'",
        )
        .bind(room_id.as_str())
        .bind(message_id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| MessageRef { seq: r.seq, sender: r.sender, recalled: r.recalled != 0 }))
    }

    /// The id of the existing 1:1 room for a pair.
    pub async fn find_direct(&self, key: &str) -> Result<Option<RoomId>, StoreError> {
        let row =
            sqlx::query("SELECT id FROM rooms WHERE direct_key = $1").bind(key).fetch_optional(&self.pool).await?;
        Ok(row.map(|r| r.try_get::<String, _>("id")).transpose()?.map(RoomId::from))
    }

    /// Write one command's effects, fenced by `epoch`, in one transaction, with the counters.
    pub async fn commit(&self, fence: Fence, c: &Commit<'_>) -> Result<(), StoreError> {
        let epoch = fence.epoch;
        let shard = i32::from(fence.shard);
        let meta = c.meta;
        let room = meta.id.as_str();
        let plan = c.plan;
        let last_seq = c.new_last_seq();
        let messages = plan.events.iter().filter(|e| matches!(e, PlannedEvent::Message { .. })).count() as i64;
        let last_message_seq = plan
            .sequenced(c.last_seq)
            .filter(|(_, e)| matches!(e, PlannedEvent::Message { .. }))
            .map(|(seq, _)| seq)
            .last()
            .unwrap_or(0);
        let mut tx = self.pool.begin().await?;
        // The room's message count before this command's events.
        let messages_before = if plan.create.is_some() {
            let sql = format!(
                "INSERT INTO rooms (id, tenant, kind, name, description, photo_url, direct_key, last_seq, fence, created_at, updated_at, \
                   last_message_seq, message_count) \
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11, $12 WHERE {} ON CONFLICT DO NOTHING",
                shard_is_current(13, 9)
            );
            let inserted = sqlx::query(&sql)
                .bind(room)
                .bind(meta.tenant.as_str())
                .bind(meta.kind.as_str())
                .bind(&meta.info.name)
                .bind(&meta.info.description)
                .bind(&meta.info.photo_url)
                .bind(&meta.direct_key)
                .bind(last_seq)
                .bind(epoch)
                .bind(c.now_ms)
                .bind(last_message_seq)
                .bind(messages)
                .bind(shard)
                .execute(&mut *tx)
                .await?;
            if inserted.rows_affected() == 0 {
                drop(tx);
                if self.shard_fence(fence.shard).await? > epoch {
                    return Err(StoreError::Stale { room_id: meta.id.clone(), epoch });
                }
                return Err(StoreError::DirectExists);
            }
            0
        } else {
            let sql = format!(
                "UPDATE rooms SET last_seq = $1, fence = $2, updated_at = $3, name = $4, description = $5, photo_url = $6, \
                   message_count = message_count + $8, \
                   last_message_seq = CASE WHEN $9 > 0 THEN $9 ELSE last_message_seq END \
                 WHERE id = $7 AND fence <= $2 AND {} RETURNING message_count",
                shard_is_current(10, 2)
            );
            let updated = sqlx::query(&sql)
                .bind(last_seq)
                .bind(epoch)
                .bind(c.now_ms)
                .bind(&meta.info.name)
                .bind(&meta.info.description)
                .bind(&meta.info.photo_url)
                .bind(room)
                .bind(messages)
                .bind(last_message_seq)
                .bind(shard)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(updated) = updated else {
                return Err(StoreError::Stale { room_id: meta.id.clone(), epoch });
            };
            updated.try_get::<i64, _>("message_count")? - messages
        };
        let mut room_messages = messages_before;
        for (seq, event) in plan.sequenced(c.last_seq) {
            let (kind, message_id, sender, body, sender_messages) = match event {
                PlannedEvent::Message { message_id, sender, body } => {
                    room_messages += 1;
                    let sent = count_sent(&mut tx, room, sender).await?;
                    ("message", Some(message_id.as_str()), Some(sender.as_str()), serde_json::to_string(body)?, sent)
                }
                PlannedEvent::System(e) => ("event", None, None, serde_json::to_string(e)?, 0),
            };
            sqlx::query(
                "INSERT INTO events (room_id, seq, kind, message_id, sender, body, recalled, sent_at, message_count, \
                   sender_message_count) \
                 VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, $9)",
            )
            .bind(room)
            .bind(seq)
            .bind(kind)
            .bind(message_id)
            .bind(sender)
            .bind(body)
            .bind(c.now_ms)
            .bind(room_messages)
            .bind(sender_messages)
            .execute(&mut *tx)
            .await?;
        }
        for user in &plan.removed {
            sqlx::query("DELETE FROM members WHERE room_id = $1 AND user_id = $2")
                .bind(room)
                .bind(user.as_str())
                .execute(&mut *tx)
                .await?;
        }
        // A member who comes back finds their own earlier messages counted as theirs.
        for (user, m) in &plan.added {
            sqlx::query(
                "INSERT INTO members (room_id, user_id, tenant, kind, role, joined_seq, read_seq, sent_count) \
                 VALUES ($1, $2, $3, $4, $5, $6, 0, \
                   COALESCE((SELECT e.sender_message_count FROM events e WHERE e.room_id = $1 AND e.sender = $2 \
                             ORDER BY e.seq DESC LIMIT 1), 0))",
            )
            .bind(room)
            .bind(user.as_str())
            .bind(m.tenant.as_str())
            .bind(m.kind.as_str())
            .bind(m.role.as_str())
            .bind(m.joined_seq)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(master) = &plan.new_master {
            sqlx::query("UPDATE members SET role = $1 WHERE room_id = $2 AND user_id = $3")
                .bind(Role::Master.as_str())
                .bind(room)
                .bind(master.as_str())
                .execute(&mut *tx)
                .await?;
        }
        if let Some(change) = &plan.call {
            let call = change.after.as_ref().map(serde_json::to_string).transpose()?;
            sqlx::query("UPDATE rooms SET call_state = $1 WHERE id = $2")
                .bind(call)
                .bind(room)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(seq) = plan.recall_seq {
            sqlx::query("UPDATE events SET recalled = 1, body = NULL WHERE room_id = $1 AND seq = $2")
                .bind(room)
                .bind(seq)
                .execute(&mut *tx)
                .await?;
        }
        let recorded = sqlx::query(
            "INSERT INTO commands (room_id, command_id, result, seq, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT DO NOTHING",
        )
        .bind(room)
        .bind(c.command_id)
        .bind(serde_json::to_string(&plan.result)?)
        .bind(last_seq)
        .bind(c.now_ms)
        .execute(&mut *tx)
        .await?;
        if recorded.rows_affected() == 0 {
            // Applied before, beyond the in-memory window: roll back, answer the record.
            return Err(StoreError::Duplicate);
        }
        for n in &plan.notifications {
            insert_notification(&mut *tx, &NotificationRow::planned(n, room, c.now_ms)).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

impl NotificationRow {
    /// The row of a notification a command leaves in `room`.
    pub fn planned(n: &PlannedNotification, room: &str, now_ms: i64) -> Self {
        NotificationRow {
            id: n.id.clone(),
            user_id: n.user.clone(),
            tenant: n.tenant.clone(),
            kind: n.kind,
            room_id: Some(room.to_owned()),
            text: n.text.clone(),
            created_at_ms: now_ms,
        }
    }
}

/// One post of a batch, as `commit_posts` writes it: the command, its plan (one message) and
/// the seq its message takes.
pub struct PostCommit<'a> {
    pub command_id: &'a str,
    pub plan: &'a Plan,
    pub seq: i64,
}

impl Store {
    /// Write a batch of posts of one room (seqs following each other from the room's last seq),
    /// fenced by `fence`, in one transaction: one update of the room row, one multi-row insert of
    /// the command ids and one of the events, one counter update per sender. Nothing is written
    /// if the fence is stale (`Stale`) or if any command id was recorded before
    /// (`Duplicates`, naming them: the caller takes them out and commits the rest again).
    pub async fn commit_posts(
        &self,
        fence: Fence,
        room_id: &RoomId,
        posts: &[PostCommit<'_>],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let (Some(first), Some(last)) = (posts.first(), posts.last()) else { return Ok(()) };
        let room = room_id.as_str();
        let messages = posts.len() as i64;
        let mut tx = self.pool.begin().await?;
        let sql = format!(
            "UPDATE rooms SET last_seq = $1, fence = $2, updated_at = $3, message_count = message_count + $4, \
               last_message_seq = $1 \
             WHERE id = $5 AND fence <= $2 AND {} RETURNING message_count",
            shard_is_current(6, 2)
        );
        let updated = sqlx::query(&sql)
            .bind(last.seq)
            .bind(fence.epoch)
            .bind(now_ms)
            .bind(messages)
            .bind(room)
            .bind(i32::from(fence.shard))
            .fetch_optional(&mut *tx)
            .await?;
        let Some(updated) = updated else {
            return Err(StoreError::Stale { room_id: room_id.clone(), epoch: fence.epoch });
        };
        let messages_before = updated.try_get::<i64, _>("message_count")? - messages;
        // The command ids first: a repeat found here costs no event insert.
        let values = (0..posts.len()).map(|i| format!("($1, ${}, ${}, ${}, $2)", 3 * i + 3, 3 * i + 4, 3 * i + 5));
        let sql = format!(
            "INSERT INTO commands (room_id, command_id, result, seq, created_at) VALUES {} \
             ON CONFLICT DO NOTHING RETURNING command_id",
            values.collect::<Vec<_>>().join(", ")
        );
        let mut insert = sqlx::query(&sql).bind(room).bind(now_ms);
        for p in posts {
            insert = insert.bind(p.command_id).bind(serde_json::to_string(&p.plan.result)?).bind(p.seq);
        }
        let recorded: Vec<String> =
            insert.fetch_all(&mut *tx).await?.iter().map(|r| r.try_get("command_id")).collect::<Result<_, _>>()?;
        if recorded.len() < posts.len() {
            let repeats =
                posts.iter().map(|p| p.command_id.to_owned()).filter(|id| !recorded.contains(id)).collect::<Vec<_>>();
            return Err(StoreError::Duplicates(repeats));
        }
        // Each sender's running count, one update per sender.
        let mut per_sender: Vec<(&UserId, i64)> = Vec::new();
        for p in posts {
            let sender = post_sender(p)?;
            match per_sender.iter_mut().find(|(s, _)| *s == sender) {
                Some((_, n)) => *n += 1,
                None => per_sender.push((sender, 1)),
            }
        }
        let mut next_count: Vec<(&UserId, i64)> = Vec::with_capacity(per_sender.len());
        for (sender, n) in per_sender {
            let after = count_sent_by(&mut tx, room, sender, n).await?;
            next_count.push((sender, after - n + 1));
        }
        let values = (0..posts.len()).map(|i| {
            let b = 6 * i + 3;
            format!("($1, ${b}, 'message', ${}, ${}, ${}, 0, $2, ${}, ${})", b + 1, b + 2, b + 3, b + 4, b + 5)
        });
        let sql = format!(
            "INSERT INTO events (room_id, seq, kind, message_id, sender, body, recalled, sent_at, message_count, \
               sender_message_count) VALUES {}",
            values.collect::<Vec<_>>().join(", ")
        );
        let mut insert = sqlx::query(&sql).bind(room).bind(now_ms);
        for (i, p) in posts.iter().enumerate() {
            let Some(PlannedEvent::Message { message_id, sender, body }) = p.plan.events.first() else {
                return Err(StoreError::Corrupt("a batched post without its message".into()));
            };
            let count = next_count.iter_mut().find(|(s, _)| *s == sender).map(|(_, c)| c);
            let Some(count) = count else { return Err(StoreError::Corrupt("a sender not counted".into())) };
            let sender_messages = *count;
            *count += 1;
            insert = insert
                .bind(p.seq)
                .bind(message_id.as_str())
                .bind(sender.as_str())
                .bind(serde_json::to_string(body)?)
                .bind(messages_before + i as i64 + 1)
                .bind(sender_messages);
        }
        insert.execute(&mut *tx).await?;
        for n in posts.iter().flat_map(|p| &p.plan.notifications) {
            insert_notification(&mut *tx, &NotificationRow::planned(n, room, now_ms)).await?;
        }
        debug_assert_eq!(first.seq + messages - 1, last.seq);
        tx.commit().await?;
        Ok(())
    }
}

/// The sender of a batched post (its one message event).
fn post_sender<'p>(p: &'p PostCommit<'_>) -> Result<&'p UserId, StoreError> {
    match p.plan.events.as_slice() {
        [PlannedEvent::Message { sender, .. }] => Ok(sender),
        _ => Err(StoreError::Corrupt("a batched post must hold exactly one message".into())),
    }
}

/// Count one more message of `sender` in the room and return the sender's count with it.
async fn count_sent(tx: &mut sqlx::Transaction<'_, sqlx::Any>, room: &str, sender: &UserId) -> Result<i64, StoreError> {
    count_sent_by(tx, room, sender, 1).await
}

/// Count `n` more messages of `sender` in the room and return the sender's count after them:
/// the member row's counter, or, for a sender who is not a member (the system), from their
/// last message.
async fn count_sent_by(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    room: &str,
    sender: &UserId,
    n: i64,
) -> Result<i64, StoreError> {
    let counted = sqlx::query(
        "UPDATE members SET sent_count = sent_count + $3 WHERE room_id = $1 AND user_id = $2 RETURNING sent_count",
    )
    .bind(room)
    .bind(sender.as_str())
    .bind(n)
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(row) = counted {
        return Ok(row.try_get("sent_count")?);
    }
    let last = sqlx::query(
        "SELECT sender_message_count FROM events WHERE room_id = $1 AND sender = $2 ORDER BY seq DESC LIMIT 1",
    )
    .bind(room)
    .bind(sender.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    Ok(last.map(|r| r.try_get::<i64, _>("sender_message_count")).transpose()?.unwrap_or(0) + n)
}
