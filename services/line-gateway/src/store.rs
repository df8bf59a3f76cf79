//! The LINE gateway store: members' channel bindings (credentials encrypted), the webhook inbox
//! (the durable queue of received events and their dedup), block periods between members and
//! LINE users, the LINE users of each channel with their room, and the outbound messages to
//! LINE users (`outbound`: their durable queue, their dedup and the dead-letter list), the
//! media kept of LINE users' messages and the room messages LINE messages became (`media`).
//!
//! Booleans are `BIGINT` 0/1 (one schema for PostgreSQL and SQLite through sqlx's `Any`
//! driver). Inbox rows are claimed with a lease (`claimed_until`), which works alike on both:
//! a worker takes the oldest unprocessed event of a channel whose older events are all done,
//! by a compare-and-set on the lease, so one channel's events are applied in order and a
//! crashed worker's event is taken again once its lease has passed.

use chat_kit::DatabaseSettings;
use chat_protocol::{RoomId, TenantId, UserId};
use sqlx::any::Any;
use sqlx::{AnyPool, Transaction};

use crate::webhook::InboxEvent;

mod groups;
mod media;
mod outbound;
mod routes;
pub use groups::LineGroup;
pub use media::{MediaRow, PostedRow};
pub use outbound::{NewOutbound, OutboundKey, OutboundRow, OutboundStatus};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How many candidates one claim looks at (others may be taken by other workers meanwhile).
const CLAIM_CANDIDATES: i64 = 8;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Any database failure (connecting, migrating, a query).
    #[error(transparent)]
    Db(#[from] chat_db::DbError),
    /// A stored value this build does not know (never read as a default).
    #[error("unknown {kind} in the store: {value:?}")]
    Unknown { kind: &'static str, value: String },
}

/// So that `?` works on sqlx calls: every database error goes through `DbError::Db`.
impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        StoreError::Db(chat_db::DbError::Db(err))
    }
}

/// A member's channel binding. The credentials are ciphertexts, and not printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Channel {
    pub channel_id: String,
    pub user_id: UserId,
    pub tenant: TenantId,
    pub basic_id: String,
    pub secret_enc: String,
    pub token_enc: String,
    pub suspended: bool,
    pub last_error: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("channel_id", &self.channel_id)
            .field("user_id", &self.user_id)
            .field("tenant", &self.tenant)
            .field("basic_id", &self.basic_id)
            .field("secret_enc", &"[redacted]")
            .field("token_enc", &"[redacted]")
            .field("suspended", &self.suspended)
            .field("last_error", &self.last_error)
            .finish()
    }
}

#[derive(sqlx::FromRow)]
struct ChannelRecord {
    channel_id: String,
    user_id: String,
    tenant: String,
    basic_id: String,
    secret_enc: String,
    token_enc: String,
    suspended: i64,
    last_error: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl From<ChannelRecord> for Channel {
    fn from(r: ChannelRecord) -> Self {
        Channel {
            channel_id: r.channel_id,
            user_id: UserId::new(r.user_id),
            tenant: TenantId::new(r.tenant),
            basic_id: r.basic_id,
            secret_enc: r.secret_enc,
            token_enc: r.token_enc,
            suspended: r.suspended != 0,
            last_error: r.last_error,
            created_at_ms: r.created_at,
            updated_at_ms: r.updated_at,
        }
    }
}

const CHANNEL_COLUMNS: &str =
    "channel_id, user_id, tenant, basic_id, secret_enc, token_enc, suspended, last_error, created_at, updated_at";

/// A binding to store (credentials already encrypted).
#[derive(Clone)]
pub struct NewBinding<'a> {
    pub channel_id: &'a str,
    pub user_id: &'a UserId,
    pub tenant: &'a TenantId,
    pub basic_id: &'a str,
    pub secret_enc: &'a str,
    pub token_enc: &'a str,
}

/// What binding a channel did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bound {
    /// The member's binding, as stored now.
    Stored(Channel),
    /// The channel id is bound to another member: nothing changed.
    TakenByAnother,
}

/// The key of an inbox row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxKey {
    pub destination: String,
    pub webhook_event_id: String,
}

/// A claimed inbox row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxRow {
    pub key: InboxKey,
    pub channel_id: String,
    pub event: String,
    pub received_at_ms: i64,
    /// Including this claim.
    pub attempts: i64,
}

#[derive(sqlx::FromRow)]
struct InboxRecord {
    destination: String,
    webhook_event_id: String,
    channel_id: String,
    event: String,
    received_at: i64,
    attempts: i64,
    claimed_until: i64,
}

/// A LINE user of a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineUser {
    pub room_id: Option<RoomId>,
    pub followed: bool,
    /// Where their answers go when not to their 1:1 room (see `set_reply_room`).
    pub reply_room: Option<RoomId>,
}

/// One block period: `until_ms` is `None` while it lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockPeriod {
    pub since_ms: i64,
    pub until_ms: Option<i64>,
}

/// The LINE gateway's database (its own PostgreSQL schema, or a SQLite file), migrated at connect.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    /// SQLite takes the write lock when a transaction begins (`BEGIN IMMEDIATE`), so that
    /// transactions that read then write do not fail on a concurrent writer.
    sqlite: bool,
}

impl Store {
    /// Open the database and apply the migrations.
    pub async fn connect(settings: &DatabaseSettings) -> Result<Self, StoreError> {
        let sqlite = settings.url.starts_with("sqlite");
        Ok(Self { pool: chat_db::connect(settings, &MIGRATOR).await?, sqlite })
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn begin(&self) -> Result<Transaction<'static, Any>, StoreError> {
        Ok(if self.sqlite { self.pool.begin_with("BEGIN IMMEDIATE").await? } else { self.pool.begin().await? })
    }

    // ----- channels -----

    /// The channel bound under this id.
    pub async fn channel(&self, channel_id: &str) -> Result<Option<Channel>, StoreError> {
        let record = sqlx::query_as::<_, ChannelRecord>(&format!(
            "SELECT {CHANNEL_COLUMNS} FROM channels WHERE channel_id = $1"
        ))
        .bind(channel_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(record.map(Channel::from))
    }

    /// The member's channel.
    pub async fn channel_of(&self, user: &UserId, tenant: &TenantId) -> Result<Option<Channel>, StoreError> {
        let record = sqlx::query_as::<_, ChannelRecord>(&format!(
            "SELECT {CHANNEL_COLUMNS} FROM channels WHERE user_id = $1 AND tenant = $2"
        ))
        .bind(user.as_str())
        .bind(tenant.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(record.map(Channel::from))
    }

    /// Every channel of a tenant, by member.
    pub async fn channels_of_tenant(&self, tenant: &TenantId) -> Result<Vec<Channel>, StoreError> {
        let records = sqlx::query_as::<_, ChannelRecord>(&format!(
            "SELECT {CHANNEL_COLUMNS} FROM channels WHERE tenant = $1 ORDER BY user_id"
        ))
        .bind(tenant.as_str())
        .fetch_all(&self.pool)
        .await?;
        Ok(records.into_iter().map(Channel::from).collect())
    }

    /// Bind the member to the channel, replacing the member's previous binding; refused when
    /// the channel id is another member's. Re-binding the same channel keeps its creation
    /// time; it is not suspended (authz has just allowed the member LINE).
    pub async fn bind(&self, binding: &NewBinding<'_>, now: i64) -> Result<Bound, StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM channels WHERE user_id = $1 AND channel_id <> $2")
            .bind(binding.user_id.as_str())
            .bind(binding.channel_id)
            .execute(&mut *tx)
            .await?;
        let written = sqlx::query(
            "INSERT INTO channels (channel_id, user_id, tenant, basic_id, secret_enc, token_enc, suspended, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $7) \
             ON CONFLICT (channel_id) DO UPDATE SET basic_id = excluded.basic_id, secret_enc = excluded.secret_enc, \
             token_enc = excluded.token_enc, suspended = 0, last_error = NULL, updated_at = excluded.updated_at \
             WHERE channels.user_id = excluded.user_id AND channels.tenant = excluded.tenant",
        )
        .bind(binding.channel_id)
        .bind(binding.user_id.as_str())
        .bind(binding.tenant.as_str())
        .bind(binding.basic_id)
        .bind(binding.secret_enc)
        .bind(binding.token_enc)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if written.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(Bound::TakenByAnother);
        }
        let record = sqlx::query_as::<_, ChannelRecord>(&format!(
            "SELECT {CHANNEL_COLUMNS} FROM channels WHERE channel_id = $1"
        ))
        .bind(binding.channel_id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Bound::Stored(record.into()))
    }

    /// Remove the member's binding; true if there was one.
    pub async fn unbind(&self, user: &UserId, tenant: &TenantId) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM channels WHERE user_id = $1 AND tenant = $2")
            .bind(user.as_str())
            .bind(tenant.as_str())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Suspend or resume the member's channel; true if the member has one.
    pub async fn set_suspended(
        &self,
        user: &UserId,
        tenant: &TenantId,
        suspended: bool,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE channels SET suspended = $1, updated_at = $2 WHERE user_id = $3 AND tenant = $4")
                .bind(i64::from(suspended))
                .bind(now)
                .bind(user.as_str())
                .bind(tenant.as_str())
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    // ----- inbox -----

    /// Insert the events that are not there yet (one transaction); the number inserted.
    pub async fn insert_events(
        &self,
        destination: &str,
        channel_id: &str,
        events: &[InboxEvent],
        now: i64,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        let mut inserted = 0;
        for (position, event) in events.iter().enumerate() {
            let done = sqlx::query(
                "INSERT INTO inbox (destination, webhook_event_id, channel_id, position, event, received_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (destination, webhook_event_id) DO NOTHING",
            )
            .bind(destination)
            .bind(event.webhook_event_id.as_str())
            .bind(channel_id)
            .bind(i64::try_from(position).unwrap_or(i64::MAX))
            .bind(event.json.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            inserted += done.rows_affected();
        }
        tx.commit().await?;
        Ok(inserted)
    }

    /// Claim the next event to process until `now + lease_ms`: the oldest unprocessed event of
    /// a channel whose older events are processed, not leased and not backing off. Only each
    /// channel's first webhook's events are looked at (the pending index gives each channel's
    /// first arrival), so a claim does not slow down as a channel's backlog grows.
    pub async fn claim(&self, now: i64, lease_ms: i64) -> Result<Option<InboxRow>, StoreError> {
        let candidates = sqlx::query_as::<_, InboxRecord>(
            "SELECT i.destination, i.webhook_event_id, i.channel_id, i.event, i.received_at, i.attempts, i.claimed_until \
             FROM inbox i JOIN (SELECT channel_id, MIN(received_at) AS first_at FROM inbox WHERE processed_at IS NULL \
               GROUP BY channel_id) h ON h.channel_id = i.channel_id AND h.first_at = i.received_at \
             WHERE i.processed_at IS NULL AND i.claimed_until <= $1 \
             AND NOT EXISTS (SELECT 1 FROM inbox o WHERE o.processed_at IS NULL AND o.channel_id = i.channel_id \
               AND o.received_at = i.received_at AND o.position < i.position) \
             ORDER BY i.received_at, i.position LIMIT $2",
        )
        .bind(now)
        .bind(CLAIM_CANDIDATES)
        .fetch_all(&self.pool)
        .await?;
        for candidate in candidates {
            let taken = sqlx::query(
                "UPDATE inbox SET claimed_until = $1, attempts = attempts + 1 \
                 WHERE destination = $2 AND webhook_event_id = $3 AND processed_at IS NULL AND claimed_until = $4",
            )
            .bind(now + lease_ms)
            .bind(candidate.destination.as_str())
            .bind(candidate.webhook_event_id.as_str())
            .bind(candidate.claimed_until)
            .execute(&self.pool)
            .await?;
            if taken.rows_affected() == 1 {
                return Ok(Some(InboxRow {
                    key: InboxKey { destination: candidate.destination, webhook_event_id: candidate.webhook_event_id },
                    channel_id: candidate.channel_id,
                    event: candidate.event,
                    received_at_ms: candidate.received_at,
                    attempts: candidate.attempts + 1,
                }));
            }
        }
        Ok(None)
    }

    /// The event is done (applied, ignored or skipped).
    pub async fn mark_processed(&self, key: &InboxKey, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE inbox SET processed_at = $1, claimed_until = 0, last_error = NULL \
             WHERE destination = $2 AND webhook_event_id = $3",
        )
        .bind(now)
        .bind(key.destination.as_str())
        .bind(key.webhook_event_id.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The event failed for now: free it at `retry_at` (ms).
    pub async fn retry_later(&self, key: &InboxKey, retry_at: i64, error: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE inbox SET claimed_until = $1, last_error = $2 WHERE destination = $3 AND webhook_event_id = $4",
        )
        .bind(retry_at)
        .bind(error)
        .bind(key.destination.as_str())
        .bind(key.webhook_event_id.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The event is given up (too many attempts, or refused for good): processed, failed.
    pub async fn mark_failed(&self, key: &InboxKey, now: i64, error: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE inbox SET processed_at = $1, claimed_until = 0, failed = 1, last_error = $2 \
             WHERE destination = $3 AND webhook_event_id = $4",
        )
        .bind(now)
        .bind(error)
        .bind(key.destination.as_str())
        .bind(key.webhook_event_id.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Delete the events processed before `before` (ms); the number deleted.
    pub async fn purge_processed(&self, before: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM inbox WHERE processed_at IS NOT NULL AND processed_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Events not processed yet.
    pub async fn backlog(&self) -> Result<i64, StoreError> {
        let (count,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL").fetch_one(&self.pool).await?;
        Ok(count)
    }

    // ----- LINE users -----

    /// The LINE user of a channel.
    pub async fn line_user(&self, channel_id: &str, line_user_id: &str) -> Result<Option<LineUser>, StoreError> {
        let row: Option<(Option<String>, i64, Option<String>)> = sqlx::query_as(
            "SELECT room_id, followed, reply_room FROM line_users WHERE channel_id = $1 AND line_user_id = $2",
        )
        .bind(channel_id)
        .bind(line_user_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(room_id, followed, reply_room)| LineUser {
            room_id: room_id.map(RoomId::new),
            followed: followed != 0,
            reply_room: reply_room.map(RoomId::new),
        }))
    }

    /// Remember the LINE user's room; `followed` sets whether they follow (`None` keeps it; a
    /// new row counts as following: the user wrote to the channel; a follow sends their answers
    /// to their 1:1 room again).
    pub async fn remember_line_user(
        &self,
        channel_id: &str,
        line_user_id: &str,
        room_id: &RoomId,
        followed: Option<bool>,
        now: i64,
    ) -> Result<(), StoreError> {
        let sql = if followed.is_some() {
            "INSERT INTO line_users (channel_id, line_user_id, room_id, followed, updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (channel_id, line_user_id) DO UPDATE SET room_id = excluded.room_id, followed = excluded.followed, \
             reply_room = NULL, updated_at = excluded.updated_at"
        } else {
            "INSERT INTO line_users (channel_id, line_user_id, room_id, followed, updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (channel_id, line_user_id) DO UPDATE SET room_id = excluded.room_id, updated_at = excluded.updated_at"
        };
        sqlx::query(sql)
            .bind(channel_id)
            .bind(line_user_id)
            .bind(room_id.as_str())
            .bind(i64::from(followed.unwrap_or(true)))
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The LINE user stopped following (the row is kept, with its room).
    pub async fn mark_unfollowed(&self, channel_id: &str, line_user_id: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO line_users (channel_id, line_user_id, followed, updated_at) VALUES ($1, $2, 0, $3) \
             ON CONFLICT (channel_id, line_user_id) DO UPDATE SET followed = 0, updated_at = excluded.updated_at",
        )
        .bind(channel_id)
        .bind(line_user_id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    // ----- blocks -----

    /// The member blocks the LINE user from `since_ms` (applied any number of times, in either
    /// order with its end).
    pub async fn block(&self, user: &UserId, line_user: &UserId, since_ms: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO blocks (user_id, line_user, since_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id, line_user, since_ms) DO NOTHING",
        )
        .bind(user.as_str())
        .bind(line_user.as_str())
        .bind(since_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The block period starting at `since_ms` ended at `until_ms` (an end is never undone).
    pub async fn unblock(
        &self,
        user: &UserId,
        line_user: &UserId,
        since_ms: i64,
        until_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO blocks (user_id, line_user, since_ms, until_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_id, line_user, since_ms) DO UPDATE SET until_ms = excluded.until_ms",
        )
        .bind(user.as_str())
        .bind(line_user.as_str())
        .bind(since_ms)
        .bind(until_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The block periods of the member on the LINE user, oldest first.
    pub async fn block_periods(&self, user: &UserId, line_user: &UserId) -> Result<Vec<BlockPeriod>, StoreError> {
        let rows: Vec<(i64, Option<i64>)> = sqlx::query_as(
            "SELECT since_ms, until_ms FROM blocks WHERE user_id = $1 AND line_user = $2 ORDER BY since_ms",
        )
        .bind(user.as_str())
        .bind(line_user.as_str())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(since_ms, until_ms)| BlockPeriod { since_ms, until_ms }).collect())
    }
}

#[cfg(test)]
pub(crate) mod tests;
