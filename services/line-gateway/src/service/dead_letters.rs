//! The dead letters: members' messages the gateway gave up sending to a LINE user (LINE
//! refused them, the monthly quota, retries exhausted, no channel reaching the LINE user, a
//! suspended channel). Admins of the sender's tenant list them and send one again once the
//! cause is fixed (a new binding, a new month's quota); a batch goes out again as it was,
//! under its retry key, so what LINE had accepted is not sent twice.

use chat_auth::Principal;
use chat_protocol::ids::LINE_USER_PREFIX;
use chat_protocol::{now_ms, MessageId, UserId};

use super::error::LineError;
use super::state::LineCore;
use crate::store::{OutboundKey, OutboundRow};

/// The most dead letters one page lists.
pub const MAX_PAGE: i64 = 200;

/// Where a page of dead letters ends: the last row's failure time and key (rows are ordered by
/// time, newest first, then by key), as `<ms>:<message_id>:<line_user_id>` in the API. Rows
/// that failed in the same millisecond are neither skipped nor repeated across pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterCursor {
    pub failed_at_ms: i64,
    pub key: OutboundKey,
}

impl DeadLetterCursor {
    /// The cursor of the page that ends with `row`.
    pub fn after(row: &OutboundRow) -> Self {
        Self { failed_at_ms: row.updated_at_ms, key: row.key.clone() }
    }
}

impl std::fmt::Display for DeadLetterCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.failed_at_ms, self.key.message_id, self.key.line_user_id)
    }
}

impl std::str::FromStr for DeadLetterCursor {
    type Err = LineError;

    fn from_str(text: &str) -> Result<Self, LineError> {
        let invalid = || LineError::InvalidField { field: "cursor", reason: "a cursor the API gave" };
        let mut parts = text.splitn(3, ':');
        let (Some(ms), Some(message_id), Some(line_user_id)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(invalid());
        };
        let failed_at_ms = ms.parse().map_err(|_| invalid())?;
        if message_id.is_empty() || line_user_id.is_empty() {
            return Err(invalid());
        }
        let key = OutboundKey { message_id: MessageId::new(message_id), line_user_id: line_user_id.to_owned() };
        Ok(Self { failed_at_ms, key })
    }
}

impl LineCore {
    /// The admin's tenant's dead letters, newest first: those after `cursor` (none: from the
    /// newest), at most `limit` (1 to `MAX_PAGE`).
    pub async fn dead_letters(
        &self,
        principal: &Principal,
        cursor: Option<DeadLetterCursor>,
        limit: i64,
    ) -> Result<Vec<OutboundRow>, LineError> {
        self.require_admin(principal).await?;
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(LineError::InvalidField { field: "limit", reason: "from 1 to 200" });
        }
        let after = cursor.map(|c| (c.failed_at_ms, c.key));
        Ok(self.store.dead_letters(&principal.tenant, after.as_ref(), limit).await?)
    }

    /// Send the dead letter of (`message_id`, `line_user`) again, through the channel that
    /// reaches the LINE user now.
    pub async fn resend(&self, principal: &Principal, message_id: &str, line_user: &str) -> Result<(), LineError> {
        self.require_admin(principal).await?;
        let line_user_id = UserId::new(line_user);
        let Some(line_user_id) = line_user_id.as_str().strip_prefix(LINE_USER_PREFIX).filter(|id| !id.is_empty())
        else {
            return Err(LineError::DeadLetterNotFound);
        };
        let key = OutboundKey { message_id: MessageId::new(message_id), line_user_id: line_user_id.to_owned() };
        let row = match self.store.outbound(&key).await? {
            Some(row) if row.tenant == principal.tenant && row.status == crate::store::OutboundStatus::Failed => row,
            _ => return Err(LineError::DeadLetterNotFound),
        };
        if row.messages == "[]" {
            return Err(LineError::NotResendable("LINE users cannot be sent this message"));
        }
        let channel_id = match self.store.channel_of_line_user(&row.room_id, line_user_id).await? {
            Some(channel_id) => Some(channel_id),
            None => self.store.channel_for(&row.tenant, &row.sender, line_user_id).await?,
        };
        let channel = match channel_id {
            Some(channel_id) => self.store.channel(&channel_id).await?,
            None => None,
        };
        let Some(channel) = channel.filter(|channel| channel.tenant == row.tenant && !channel.suspended) else {
            return Err(LineError::NotResendable("no LINE account of the company reaches this LINE user now"));
        };
        if !self.store.resend(&key, &channel.channel_id, now_ms()).await? {
            return Err(LineError::DeadLetterNotFound);
        }
        tracing::info!(message_id, channel_id = %channel.channel_id, by = %principal.user_id, "dead letter sent again");
        self.outbox_wake.notify_waiters();
        Ok(())
    }
}
