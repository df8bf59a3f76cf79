//! The webhook's intake, in LINE's order: the channel (unknown: `ChannelNotFound`), the
//! signature over the raw body (before any parsing), the envelope, then one insert-if-absent
//! per event into the inbox, and a wake-up of the inbox workers. Nothing here touches the
//! bus, so LINE is answered fast however slow the broker is.

use chat_protocol::now_ms;

use super::error::LineError;
use super::state::LineCore;
use super::validation;
use crate::metrics::metrics;
use crate::webhook::{self, EnvelopeError};

/// What became of an accepted webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receipt {
    /// No events: LINE checking the URL.
    ConnectivityCheck,
    /// Events stored (`inserted`; the others were there already).
    Stored { inserted: u64, duplicates: u64 },
}

impl LineCore {
    /// Take a webhook for `channel_id`: `signature` is the `x-line-signature` header.
    pub async fn receive_webhook(
        &self,
        channel_id: &str,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<Receipt, LineError> {
        let outcome = self.intake(channel_id, signature, body).await;
        let label = match &outcome {
            Ok(Receipt::ConnectivityCheck) => "connectivity_check",
            Ok(Receipt::Stored { inserted: 0, .. }) => "duplicate",
            Ok(Receipt::Stored { .. }) => "accepted",
            Err(LineError::ChannelNotFound) => "unknown_channel",
            Err(LineError::InvalidSignature) => "bad_signature",
            Err(LineError::MalformedJson(_) | LineError::MissingEventId(_)) => "malformed",
            Err(_) => "failed",
        };
        metrics().webhooks.with_label_values(&[label]).inc();
        outcome
    }

    async fn intake(&self, channel_id: &str, signature: Option<&str>, body: &[u8]) -> Result<Receipt, LineError> {
        if !validation::is_channel_id(channel_id) {
            return Err(LineError::ChannelNotFound);
        }
        let channel = self.store.channel(channel_id).await?.ok_or(LineError::ChannelNotFound)?;
        let secret = self.secrets.decrypt(&channel.secret_enc)?;
        let Some(signature) = signature else { return Err(LineError::InvalidSignature) };
        if !webhook::signature_matches(&secret, body, signature) {
            tracing::warn!(channel_id, "webhook with a signature that does not match refused");
            return Err(LineError::InvalidSignature);
        }
        let (destination, events) = webhook::parse_envelope(body).map_err(|err| match err {
            EnvelopeError::Malformed(cause) => LineError::MalformedJson(cause),
            EnvelopeError::MissingEventId { index } => LineError::MissingEventId(index),
        })?;
        if events.is_empty() {
            return Ok(Receipt::ConnectivityCheck);
        }
        let inserted = self.store.insert_events(&destination, channel_id, &events, now_ms()).await?;
        if inserted > 0 {
            // One channel's events are applied one at a time: one worker is enough to wake (a
            // busy one finds the permit when it next waits), not every idle one.
            self.inbox_wake.notify_one();
        }
        let total = u64::try_from(events.len()).unwrap_or(u64::MAX);
        Ok(Receipt::Stored { inserted, duplicates: total.saturating_sub(inserted) })
    }
}
