//! Outbound messages to LINE users (`outbound`): inserted once per (message, LINE user),
//! claimed by the sender workers with a lease (`next_attempt_at`, a compare-and-set as the
//! inbox's `claimed_until`): the oldest pending message of a (channel, LINE user) whose older
//! messages are all settled, so one LINE user gets a member's messages in order, and a long
//! message's requests go out one after the other. The rows queued behind a claimed row can
//! join it in one push (`form_batch`: all or none, before the first attempt), settled together.

use chat_protocol::{MessageId, RoomId, TenantId, UserId};

use super::{Store, StoreError};

/// How many candidates one claim looks at.
const CLAIM_CANDIDATES: i64 = 8;

/// Where an outbound row stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboundStatus {
    Pending,
    Sent,
    /// Given up: stays as the dead-letter list.
    Failed,
}

impl OutboundStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboundStatus::Pending => "pending",
            OutboundStatus::Sent => "sent",
            OutboundStatus::Failed => "failed",
        }
    }

    fn parse(value: &str) -> Result<Self, StoreError> {
        match value {
            "pending" => Ok(OutboundStatus::Pending),
            "sent" => Ok(OutboundStatus::Sent),
            "failed" => Ok(OutboundStatus::Failed),
            other => Err(StoreError::Unknown { kind: "outbound status", value: other.to_owned() }),
        }
    }
}

/// The key of an outbound row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundKey {
    pub message_id: MessageId,
    /// LINE's user id (without `line:`).
    pub line_user_id: String,
}

/// A row to insert.
#[derive(Debug, Clone)]
pub struct NewOutbound<'a> {
    pub key: &'a OutboundKey,
    pub channel_id: &'a str,
    pub room_id: &'a RoomId,
    pub seq: i64,
    pub tenant: &'a TenantId,
    pub sender: &'a UserId,
    /// The LINE message objects, a JSON array.
    pub messages: &'a str,
    pub retry_key: &'a str,
    /// `Pending`, or `Failed` with `last_error` for a body LINE cannot be sent.
    pub status: OutboundStatus,
    pub last_error: Option<&'a str>,
    /// When the row may first be claimed (ms): the end of its batching window.
    pub due_at: i64,
    /// The W3C traceparent of the work that made the row (tracing on), for its push's span.
    pub trace_parent: Option<&'a str>,
}

/// An outbound row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRow {
    pub key: OutboundKey,
    pub channel_id: String,
    pub room_id: RoomId,
    pub tenant: TenantId,
    pub sender: UserId,
    pub messages: String,
    pub retry_key: String,
    pub status: OutboundStatus,
    pub chunks_sent: i64,
    /// Of the current request, including this claim.
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub accepted_request_id: Option<String>,
    pub notified: bool,
    /// The retry key of the push this row goes out in with others (see `form_batch`).
    pub batch_key: Option<String>,
    /// When the row last changed (ms): for a failed row, when it was given up.
    pub updated_at_ms: i64,
    /// The W3C traceparent of the work that made the row, if it was traced.
    pub trace_parent: Option<String>,
}

#[derive(sqlx::FromRow)]
struct OutboundRecord {
    message_id: String,
    line_user_id: String,
    channel_id: String,
    room_id: String,
    tenant: String,
    sender: String,
    messages: String,
    retry_key: String,
    status: String,
    chunks_sent: i64,
    attempts: i64,
    next_attempt_at: i64,
    last_error: Option<String>,
    accepted_request_id: Option<String>,
    notified: i64,
    batch_key: Option<String>,
    updated_at: i64,
    trace_parent: Option<String>,
}

const OUTBOUND_COLUMNS: &str = "o.message_id, o.line_user_id, o.channel_id, o.room_id, o.tenant, o.sender, \
     o.messages, o.retry_key, o.status, o.chunks_sent, o.attempts, o.next_attempt_at, o.last_error, \
     o.accepted_request_id, o.notified, o.batch_key, o.updated_at, o.trace_parent";

impl TryFrom<OutboundRecord> for OutboundRow {
    type Error = StoreError;

    fn try_from(r: OutboundRecord) -> Result<Self, StoreError> {
        Ok(OutboundRow {
            key: OutboundKey { message_id: MessageId::new(r.message_id), line_user_id: r.line_user_id },
            channel_id: r.channel_id,
            room_id: RoomId::new(r.room_id),
            tenant: TenantId::new(r.tenant),
            sender: UserId::new(r.sender),
            messages: r.messages,
            retry_key: r.retry_key,
            status: OutboundStatus::parse(&r.status)?,
            chunks_sent: r.chunks_sent,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
            last_error: r.last_error,
            accepted_request_id: r.accepted_request_id,
            notified: r.notified != 0,
            batch_key: r.batch_key,
            updated_at_ms: r.updated_at,
            trace_parent: r.trace_parent,
        })
    }
}

impl Store {
    /// The channel through which the LINE user of this room is reached: the channel whose
    /// `line_users` row holds the room.
    pub async fn channel_of_line_user(
        &self,
        room_id: &RoomId,
        line_user_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT channel_id FROM line_users WHERE room_id = $1 AND line_user_id = $2 ORDER BY updated_at DESC LIMIT 1",
        )
        .bind(room_id.as_str())
        .bind(line_user_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(channel_id,)| channel_id))
    }

    /// Insert the row unless it is there already (a replayed message); true if inserted.
    pub async fn insert_outbound(&self, row: &NewOutbound<'_>, now: i64) -> Result<bool, StoreError> {
        let failed = row.status == OutboundStatus::Failed;
        let done = sqlx::query(
            "INSERT INTO outbound (message_id, line_user_id, channel_id, room_id, seq, tenant, sender, messages, \
             retry_key, status, last_error, notified, next_attempt_at, created_at, updated_at, trace_parent) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, $15) \
             ON CONFLICT (message_id, line_user_id) DO NOTHING",
        )
        .bind(row.key.message_id.as_str())
        .bind(row.key.line_user_id.as_str())
        .bind(row.channel_id)
        .bind(row.room_id.as_str())
        .bind(row.seq)
        .bind(row.tenant.as_str())
        .bind(row.sender.as_str())
        .bind(row.messages)
        .bind(row.retry_key)
        .bind(row.status.as_str())
        .bind(row.last_error)
        .bind(i64::from(!failed))
        .bind(if failed { 0 } else { row.due_at })
        .bind(now)
        .bind(row.trace_parent)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The row of this key.
    pub async fn outbound(&self, key: &OutboundKey) -> Result<Option<OutboundRow>, StoreError> {
        let record = sqlx::query_as::<_, OutboundRecord>(&format!(
            "SELECT {OUTBOUND_COLUMNS} FROM outbound o WHERE o.message_id = $1 AND o.line_user_id = $2"
        ))
        .bind(key.message_id.as_str())
        .bind(key.line_user_id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        record.map(OutboundRow::try_from).transpose()
    }

    /// Claim the next pending row until `now + lease_ms`: the oldest pending message of a
    /// (channel, LINE user) with no older pending one, not leased and not backing off. Only each
    /// recipient's first pending rows are looked at, so a claim does not slow down as the
    /// backlog grows (a LINE outage).
    pub async fn claim_outbound(&self, now: i64, lease_ms: i64) -> Result<Option<OutboundRow>, StoreError> {
        let candidates = sqlx::query_as::<_, OutboundRecord>(&format!(
            "SELECT {OUTBOUND_COLUMNS} FROM outbound o JOIN (SELECT channel_id, line_user_id, MIN(created_at) AS first_at \
               FROM outbound WHERE status = 'pending' GROUP BY channel_id, line_user_id) h \
               ON h.channel_id = o.channel_id AND h.line_user_id = o.line_user_id AND h.first_at = o.created_at \
             WHERE o.status = 'pending' AND o.next_attempt_at <= $1 \
             AND NOT EXISTS (SELECT 1 FROM outbound p WHERE p.status = 'pending' AND p.channel_id = o.channel_id \
               AND p.line_user_id = o.line_user_id AND p.created_at = o.created_at \
               AND (p.seq < o.seq OR (p.seq = o.seq AND p.message_id < o.message_id))) \
             ORDER BY o.created_at, o.seq LIMIT $2"
        ))
        .bind(now)
        .bind(CLAIM_CANDIDATES)
        .fetch_all(&self.pool)
        .await?;
        for candidate in candidates {
            let taken = sqlx::query(
                "UPDATE outbound SET next_attempt_at = $1, attempts = attempts + 1, updated_at = $2 \
                 WHERE message_id = $3 AND line_user_id = $4 AND status = 'pending' AND next_attempt_at = $5",
            )
            .bind(now + lease_ms)
            .bind(now)
            .bind(candidate.message_id.as_str())
            .bind(candidate.line_user_id.as_str())
            .bind(candidate.next_attempt_at)
            .execute(&self.pool)
            .await?;
            if taken.rows_affected() == 1 {
                let mut row = OutboundRow::try_from(candidate)?;
                row.attempts += 1;
                row.next_attempt_at = now + lease_ms;
                return Ok(Some(row));
            }
        }
        Ok(None)
    }

    /// The pending rows queued behind `head` for the same LINE user of the same channel, in
    /// order, that were never tried (nor failed and sent again) and are in no batch: candidates to go out in one push with
    /// it (at most `limit`).
    pub async fn outbound_followers(&self, head: &OutboundRow, limit: i64) -> Result<Vec<OutboundRow>, StoreError> {
        let (created_at, seq): (i64, i64) =
            sqlx::query_as("SELECT created_at, seq FROM outbound WHERE message_id = $1 AND line_user_id = $2")
                .bind(head.key.message_id.as_str())
                .bind(head.key.line_user_id.as_str())
                .fetch_one(&self.pool)
                .await?;
        let records = sqlx::query_as::<_, OutboundRecord>(&format!(
            "SELECT {OUTBOUND_COLUMNS} FROM outbound o WHERE o.status = 'pending' AND o.channel_id = $1 \
             AND o.line_user_id = $2 AND o.batch_key IS NULL AND o.chunks_sent = 0 AND o.attempts = 0 AND o.last_error IS NULL \
             AND (o.created_at > $3 OR (o.created_at = $3 AND (o.seq > $4 OR (o.seq = $4 AND o.message_id > $5)))) \
             ORDER BY o.created_at, o.seq, o.message_id LIMIT $6"
        ))
        .bind(head.channel_id.as_str())
        .bind(head.key.line_user_id.as_str())
        .bind(created_at)
        .bind(seq)
        .bind(head.key.message_id.as_str())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        records.into_iter().map(OutboundRow::try_from).collect()
    }

    /// Put `rows` (a claimed head and its followers, in order) into one batch under
    /// `batch_key`, all or none: false if one of them changed meanwhile (then none is in it).
    pub async fn form_batch(&self, batch_key: &str, rows: &[&OutboundKey], now: i64) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        for key in rows {
            let done = sqlx::query(
                "UPDATE outbound SET batch_key = $1, updated_at = $2 \
                 WHERE message_id = $3 AND line_user_id = $4 AND status = 'pending' AND batch_key IS NULL",
            )
            .bind(batch_key)
            .bind(now)
            .bind(key.message_id.as_str())
            .bind(key.line_user_id.as_str())
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    /// The pending rows of a batch, in order.
    pub async fn outbound_batch(&self, batch_key: &str) -> Result<Vec<OutboundRow>, StoreError> {
        let records = sqlx::query_as::<_, OutboundRecord>(&format!(
            "SELECT {OUTBOUND_COLUMNS} FROM outbound o WHERE o.batch_key = $1 AND o.status = 'pending' \
             ORDER BY o.created_at, o.seq, o.message_id"
        ))
        .bind(batch_key)
        .fetch_all(&self.pool)
        .await?;
        records.into_iter().map(OutboundRow::try_from).collect()
    }

    /// The push of a batch was accepted (`accepted`: the request id LINE named on a 409):
    /// every row of it is sent.
    pub async fn outbound_batch_done(
        &self,
        batch_key: &str,
        accepted: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbound SET chunks_sent = 1, status = 'sent', attempts = 0, next_attempt_at = 0, last_error = NULL, \
             accepted_request_id = COALESCE($1, accepted_request_id), updated_at = $2 \
             WHERE batch_key = $3 AND status = 'pending'",
        )
        .bind(accepted)
        .bind(now)
        .bind(batch_key)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Request `index` of the row was accepted (`accepted`: the request id LINE named on a
    /// 409): the next request is due now, or the row is sent when it was the last of `total`.
    /// True if the row is sent.
    pub async fn outbound_request_done(
        &self,
        key: &OutboundKey,
        index: i64,
        total: i64,
        accepted: Option<&str>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let status = if index + 1 >= total { OutboundStatus::Sent } else { OutboundStatus::Pending };
        sqlx::query(
            "UPDATE outbound SET chunks_sent = $1, status = $2, attempts = 0, next_attempt_at = 0, last_error = NULL, \
             accepted_request_id = COALESCE($3, accepted_request_id), updated_at = $4 \
             WHERE message_id = $5 AND line_user_id = $6 AND status = 'pending' AND chunks_sent = $7",
        )
        .bind(index + 1)
        .bind(status.as_str())
        .bind(accepted)
        .bind(now)
        .bind(key.message_id.as_str())
        .bind(key.line_user_id.as_str())
        .bind(index)
        .execute(&self.pool)
        .await?;
        Ok(status == OutboundStatus::Sent)
    }

    /// The current request failed for now: the row is due again at `retry_at`.
    pub async fn outbound_retry_at(
        &self,
        key: &OutboundKey,
        retry_at: i64,
        error: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbound SET next_attempt_at = $1, last_error = $2, updated_at = $3 \
             WHERE message_id = $4 AND line_user_id = $5 AND status = 'pending'",
        )
        .bind(retry_at)
        .bind(error)
        .bind(now)
        .bind(key.message_id.as_str())
        .bind(key.line_user_id.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The row is given up: `failed`, its sender to be told (`notify`) or not.
    pub async fn outbound_failed(
        &self,
        key: &OutboundKey,
        error: &str,
        notify: bool,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbound SET status = 'failed', last_error = $1, notified = $2, next_attempt_at = 0, updated_at = $3 \
             WHERE message_id = $4 AND line_user_id = $5 AND status = 'pending'",
        )
        .bind(error)
        .bind(i64::from(!notify))
        .bind(now)
        .bind(key.message_id.as_str())
        .bind(key.line_user_id.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The sender of a failed row was told.
    pub async fn outbound_notified(&self, key: &OutboundKey) -> Result<(), StoreError> {
        sqlx::query("UPDATE outbound SET notified = 1 WHERE message_id = $1 AND line_user_id = $2")
            .bind(key.message_id.as_str())
            .bind(key.line_user_id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Failed rows whose sender was not told yet (the publish failed), oldest first.
    pub async fn outbound_unnotified(&self, limit: i64) -> Result<Vec<OutboundRow>, StoreError> {
        let records = sqlx::query_as::<_, OutboundRecord>(&format!(
            "SELECT {OUTBOUND_COLUMNS} FROM outbound o WHERE o.notified = 0 AND o.status = 'failed' \
             ORDER BY o.updated_at LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        records.into_iter().map(OutboundRow::try_from).collect()
    }

    /// Outbound rows not sent yet.
    pub async fn outbound_backlog(&self) -> Result<i64, StoreError> {
        let (count,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM outbound WHERE status = 'pending'").fetch_one(&self.pool).await?;
        Ok(count)
    }

    /// Remember the last error of a channel (shown to admins with the binding).
    pub async fn set_channel_error(&self, channel_id: &str, error: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE channels SET last_error = $1, updated_at = $2 WHERE channel_id = $3")
            .bind(error)
            .bind(now)
            .bind(channel_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ----- the dead letters -----

    /// The tenant's failed rows, newest first (then by key), those after `after` (the last row of
    /// the previous page: its failure time and key), at most `limit`.
    pub async fn dead_letters(
        &self,
        tenant: &TenantId,
        after: Option<&(i64, OutboundKey)>,
        limit: i64,
    ) -> Result<Vec<OutboundRow>, StoreError> {
        // Without a cursor: after a row that would come before every row.
        let (ms, message_id, line_user_id) = match after {
            Some((ms, key)) => (*ms, key.message_id.as_str(), key.line_user_id.as_str()),
            None => (i64::MAX, "", ""),
        };
        let records = sqlx::query_as::<_, OutboundRecord>(&format!(
            "SELECT {OUTBOUND_COLUMNS} FROM outbound o WHERE o.tenant = $1 AND o.status = 'failed' \
             AND (o.updated_at < $2 OR (o.updated_at = $2 AND (o.message_id > $3 \
             OR (o.message_id = $3 AND o.line_user_id > $4)))) \
             ORDER BY o.updated_at DESC, o.message_id, o.line_user_id LIMIT $5"
        ))
        .bind(tenant.as_str())
        .bind(ms)
        .bind(message_id)
        .bind(line_user_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        records.into_iter().map(OutboundRow::try_from).collect()
    }

    /// Send a failed row again through `channel_id`, with the rows of its batch (a batch goes
    /// out again as it was, under its key): pending, due now, its attempts forgotten. False if
    /// the row is not failed (any more).
    pub async fn resend(&self, key: &OutboundKey, channel_id: &str, now: i64) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let batch: Option<(Option<String>,)> = sqlx::query_as(
            "SELECT batch_key FROM outbound WHERE message_id = $1 AND line_user_id = $2 AND status = 'failed'",
        )
        .bind(key.message_id.as_str())
        .bind(key.line_user_id.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let Some((batch_key,)) = batch else {
            tx.rollback().await?;
            return Ok(false);
        };
        let reset = "UPDATE outbound SET status = 'pending', channel_id = $1, attempts = 0, next_attempt_at = 0, \
                     notified = 1, updated_at = $2";
        match batch_key {
            Some(batch_key) => {
                sqlx::query(&format!("{reset} WHERE batch_key = $3 AND status = 'failed'"))
                    .bind(channel_id)
                    .bind(now)
                    .bind(batch_key)
                    .execute(&mut *tx)
                    .await?;
            }
            None => {
                sqlx::query(&format!("{reset} WHERE message_id = $3 AND line_user_id = $4 AND status = 'failed'"))
                    .bind(channel_id)
                    .bind(now)
                    .bind(key.message_id.as_str())
                    .bind(key.line_user_id.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Forget sent rows settled before `sent_before` and failed ones before `failed_before`
    /// (ms); the number of rows purged.
    pub async fn purge_outbound(&self, sent_before: i64, failed_before: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM outbound WHERE (status = 'sent' AND updated_at < $1) OR (status = 'failed' AND updated_at < $2)",
        )
        .bind(sent_before)
        .bind(failed_before)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}
