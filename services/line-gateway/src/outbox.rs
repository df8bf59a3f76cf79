//! Members' messages to LINE users: the outbox and its sender workers.
//!
//! **Enqueue** (`enqueue`, called by the events consumer for `room.line_message`): for each
//! LINE recipient, the channel is the one whose `line_users` row holds the room (none: counted
//! `no_channel`); a suspended channel sends nothing (`suspended`); otherwise one `outbound` row
//! per (message, LINE user) is inserted if absent, with the LINE message objects and the retry
//! key derived from both, so a replayed event inserts nothing. A body LINE cannot be sent (a
//! sticker off the sendable list) is inserted `failed` and its sender told. The event is
//! acknowledged once every row is stored: from there the send is durable.
//!
//! **Batch**: a row is due `line.batch_window_ms` after it was stored, so that a burst to one
//! LINE user goes out in one push: on its first attempt, a row of fewer than 5 objects takes
//! the rows queued behind it for the same LINE user that fit with it in one request (never
//! splitting one), and the batch is fixed in the store (`batch_key`, the head row's own
//! retry key, never used before) before anything is sent. A batch is retried, settled or given
//! up as one, always with the same messages under the same key; the rows behind it wait.
//!
//! **Send** (`line.workers` tasks, woken by `outbox_wake`, polling every second for retries
//! coming due): a worker claims a row (see `store::outbound`), takes its channel's token,
//! waits for the channel's rate limiter (`line.push_per_second`) and pushes the row's batch or
//! its next request (5 objects at most) with that push's retry key. 2xx and 409 with an accepted
//! request id move to the next request (the row is `sent` after the last); 5xx, timeouts and
//! connection failures are retried with the same key after 1 s doubling to 5 minutes, 429
//! after its `Retry-After`, each at most `line.push_max_attempts` times per request; the
//! monthly quota (429 "You have reached your monthly limit.") and any other answer are given
//! up at once.
//!
//! **Give up**: the row stays `failed` (the dead-letter list), `line_outbound_dead_total`
//! counts it, the channel's `last_error` says why, and the sender gets a
//! `line_delivery_failed` notification (a `notify` change event, keyed by the message and LINE
//! user, published again by the housekeeping until it went out).

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use chat_protocol::bus::RoomKind;
use chat_protocol::events::{ChangeEvent, EventEnvelope};
use chat_protocol::frames::NotificationKind;
use chat_protocol::ids::LINE_USER_PREFIX;
use chat_protocol::{now_ms, Body, MessageId, RoomId, TenantId, UserId};
use serde_json::Value;
use tracing::{debug, info, warn, Instrument};
use uuid::Uuid;

use crate::line_api::PushOutcome;
use crate::metrics::metrics;
use crate::outbound::{
    line_messages, request_retry_key, requests, retry_key, with_preview, with_sender, MAX_MESSAGES_PER_REQUEST,
};
use crate::service::LineCore;
use crate::store::{NewOutbound, OutboundKey, OutboundRow, OutboundStatus, StoreError};

/// How often an idle sender looks for rows without being woken (retries coming due).
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// The pause after the store failed a claim.
const STORE_PAUSE: Duration = Duration::from_secs(1);

/// The first retry's backoff, doubled per attempt up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(5 * 60);

/// How often the backlog gauge is refreshed and untold failures are published again.
const HOUSEKEEPING_TICK: Duration = Duration::from_secs(5);

/// How often the rate limiter forgets idle channels.
const LIMITER_SWEEP_TICK: Duration = Duration::from_secs(60);

/// How often settled rows are purged, and how long each kind is kept.
const PURGE_TICK: Duration = Duration::from_secs(3600);
const KEEP_SENT_MS: i64 = 7 * 24 * 3600 * 1000;
const KEEP_FAILED_MS: i64 = 30 * 24 * 3600 * 1000;
const KEEP_POSTED_MS: i64 = 7 * 24 * 3600 * 1000;

/// The `sender.name` of a LINE user whose name the gateway does not know.
const LINE_USER_NAME: &str = "LINE user";

/// Untold failures published per housekeeping round.
const NOTIFY_BATCH: i64 = 100;

/// A `room.line_message`, as the events consumer hands it over.
#[derive(Debug, Clone)]
pub struct LineMessage {
    pub room_id: RoomId,
    pub kind: RoomKind,
    pub tenant: TenantId,
    pub message_id: MessageId,
    pub seq: i64,
    pub sender: UserId,
    pub body: Body,
    pub line_recipients: Vec<UserId>,
}

/// Store one outbound row per LINE recipient of `message` (see the module's doc). An error
/// means the event must come again (rows stored so far are not stored twice).
pub async fn enqueue(core: &LineCore, message: &LineMessage) -> Result<(), StoreError> {
    let group = core.store.group_of_room(&message.room_id).await?;
    let recipients: Vec<(String, Option<String>)> = match &group {
        // A room connected to a LINE group: one push to the group reaches every LINE user in it.
        Some(group) if !group.active => {
            count("group_left");
            return Ok(());
        }
        // LINE users read each other in the group itself.
        Some(_) if message.sender.is_line_user() => return Ok(()),
        Some(group) => vec![(group.group_id.clone(), Some(group.channel_id.clone()))],
        None => message
            .line_recipients
            .iter()
            .filter_map(|recipient| recipient.as_str().strip_prefix(LINE_USER_PREFIX).filter(|id| !id.is_empty()))
            .map(|id| (id.to_owned(), None))
            .collect(),
    };
    // An engine medium the sender may share goes as a signed link LINE can fetch.
    let shared = core.shared_for_line(&message.tenant, &message.sender, &message.room_id, &message.body).await?;
    let body = shared.as_ref().map_or(&message.body, |shared| &shared.body);
    let preview = shared.as_ref().and_then(|shared| shared.preview.as_deref());
    let mut objects = line_messages(body).map(|objects| with_preview(objects, preview));
    if message.kind != RoomKind::LineDirect {
        // A LINE group, or a room with several LINE users or members: say who speaks through
        // the account.
        let name = sender_name(core, message).await;
        objects = objects.map(|objects| with_sender(objects, &name));
    }
    let window = Duration::from_millis(core.settings.line.batch_window_ms);
    let window_ms = millis(window);
    // The rows' pushes continue the trace of this event, whenever they go.
    let trace = chat_telemetry::TraceParent::current();
    let mut inserted = false;
    for (line_user_id, group_channel) in &recipients {
        let line_user_id = line_user_id.as_str();
        // Their 1:1 room's channel; from another room (a member's room with several LINE users),
        // the sender's channel if they follow it, else the one of the tenant they followed last.
        let (channel_id, direct) = match group_channel {
            Some(channel_id) => (Some(channel_id.clone()), false),
            None => match core.store.channel_of_line_user(&message.room_id, line_user_id).await? {
                Some(channel_id) => (Some(channel_id), true),
                None => (core.store.channel_for(&message.tenant, &message.sender, line_user_id).await?, false),
            },
        };
        let channel = match channel_id {
            Some(channel_id) => core.store.channel(&channel_id).await?,
            None => None,
        };
        let key = OutboundKey { message_id: message.message_id.clone(), line_user_id: line_user_id.to_owned() };
        // Unreachable: stored failed (the dead-letter list) and the sender told, once.
        let unreachable = match channel.as_ref().filter(|channel| channel.tenant == message.tenant) {
            None => Some(("no_channel", String::new(), "no LINE account of your company reaches this LINE user")),
            Some(channel) if channel.suspended => Some((
                "suspended",
                channel.channel_id.clone(),
                "the LINE account is suspended: LINE access was withdrawn",
            )),
            Some(_) => None,
        };
        let channel_id = match (&unreachable, &channel) {
            (Some((_, channel_id, _)), _) => channel_id.clone(),
            (None, Some(channel)) => channel.channel_id.clone(),
            (None, None) => continue,
        };
        // A message LINE cannot take is stored without objects ("[]": never resendable); one
        // that reached nobody keeps them, to be sent again once a channel reaches the LINE user.
        let (json, status, error) = match (&objects, &unreachable) {
            (Err(err), _) => ("[]".to_owned(), OutboundStatus::Failed, Some(("failed", err.to_string()))),
            (Ok(objects), Some((label, _, reason))) => {
                debug!(room_id = %message.room_id, line_user_id, label, "LINE user not reachable");
                (Value::from(objects.clone()).to_string(), OutboundStatus::Failed, Some((*label, (*reason).to_owned())))
            }
            (Ok(objects), None) => (Value::from(objects.clone()).to_string(), OutboundStatus::Pending, None),
        };
        let row = NewOutbound {
            key: &key,
            channel_id: &channel_id,
            room_id: &message.room_id,
            seq: message.seq,
            tenant: &message.tenant,
            sender: &message.sender,
            messages: &json,
            retry_key: &retry_key(&message.message_id, line_user_id).to_string(),
            status,
            last_error: error.as_ref().map(|(_, reason)| reason.as_str()),
            due_at: now_ms() + window_ms,
            trace_parent: trace.traceparent(),
        };
        let now = now_ms();
        if group_channel.is_none() && unreachable.is_none() {
            // Their answers go to the room that wrote to them last.
            let reply_room = (!direct).then_some(&message.room_id);
            core.store.set_reply_room(&channel_id, line_user_id, reply_room, now).await?;
        }
        if !core.store.insert_outbound(&row, now).await? {
            debug!(message_id = %message.message_id, line_user_id, "already in the outbox");
            continue;
        }
        inserted = true;
        if let Some((label, reason)) = error {
            warn!(message_id = %message.message_id, %channel_id, %reason, "not sendable to LINE");
            gave_up(core, &key, &channel_id, &message.tenant, &message.sender, label, &reason).await;
        }
    }
    if inserted {
        // Due once its batching window has passed: the senders are woken then.
        let wake = Arc::clone(&core.outbox_wake);
        tokio::spawn(async move {
            tokio::time::sleep(window).await;
            wake.notify_waiters();
        });
    }
    Ok(())
}

/// The sender's display name (authz), or their user name when authz has none or is away.
async fn sender_name(core: &LineCore, message: &LineMessage) -> String {
    if let Some(line_user_id) = message.sender.as_str().strip_prefix(LINE_USER_PREFIX) {
        // A LINE user's message relayed to the room's other LINE users: their LINE name.
        return match core.store.line_user_name(&message.tenant, line_user_id).await {
            Ok(Some(name)) if !name.trim().is_empty() => name,
            _ => LINE_USER_NAME.to_owned(),
        };
    }
    let fallback = || message.sender.as_str().split('@').next().unwrap_or_default().to_owned();
    match core.authz.display_name(&message.tenant, &message.sender).await {
        Ok(Some(name)) if !name.trim().is_empty() => name,
        Ok(_) => fallback(),
        Err(err) => {
            debug!(error = %err, "no display name from authz; the user name stands in");
            fallback()
        }
    }
}

/// The lease of a claimed row: one push, the limiter's wait and the settling.
fn lease_ms(push_timeout_ms: u64) -> i64 {
    i64::try_from(push_timeout_ms).unwrap_or(i64::MAX / 8).saturating_add(30_000)
}

/// The backoff before attempt `attempts + 1` of a request: 1 s doubling to 5 minutes.
pub fn backoff(attempts: i64) -> Duration {
    let index = usize::try_from(attempts.saturating_sub(1).max(0)).unwrap_or(usize::MAX);
    ExponentialBuilder::new()
        .with_min_delay(FIRST_BACKOFF)
        .with_factor(2.0)
        .with_max_delay(MAX_BACKOFF)
        .without_max_times()
        .build()
        .nth(index.min(64))
        .unwrap_or(MAX_BACKOFF)
}

fn count(outcome: &str) {
    metrics().outbound.with_label_values(&[outcome]).inc();
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX / 2)
}

/// One sender worker, until the process ends. It runs on actix's local tasks: awc's client
/// is not `Send`.
pub async fn run_worker(core: Arc<LineCore>) {
    let lease = lease_ms(core.settings.line.push_timeout_ms);
    let client = core.line_api.client();
    let wake = Arc::clone(&core.outbox_wake);
    loop {
        let notified = wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        match core.store.claim_outbound(now_ms(), lease).await {
            Ok(Some(row)) => send(&core, &client, row).await,
            Ok(None) => {
                tokio::select! {
                    () = &mut notified => {}
                    () = tokio::time::sleep(POLL_INTERVAL) => {}
                }
            }
            Err(err) => {
                warn!(error = %err, "outbox not read; trying again");
                tokio::time::sleep(STORE_PAUSE).await;
            }
        }
    }
}

/// Refresh the backlog gauge, tell the senders of failures not told yet, and let the rate
/// limiter forget idle channels.
pub async fn run_housekeeping(core: Arc<LineCore>) {
    let mut tick = tokio::time::interval(HOUSEKEEPING_TICK);
    let mut sweep = tokio::time::interval(LIMITER_SWEEP_TICK);
    let mut purge = tokio::time::interval(PURGE_TICK);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                match core.store.outbound_backlog().await {
                    Ok(count) => metrics().outbound_backlog.set(count),
                    Err(err) => warn!(error = %err, "outbound backlog not counted"),
                }
                notify_untold(&core).await;
            }
            _ = sweep.tick() => {
                core.push_limiter.retain_recent();
                core.push_limiter.shrink_to_fit();
            }
            _ = purge.tick() => purge_settled(&core).await,
        }
    }
}

/// Forget what no longer matters: sent rows after `KEEP_SENT_MS` (a replayed message older than
/// that would go out again, and rooms replays only recent commands), dead letters after
/// `KEEP_FAILED_MS`, and which room message a LINE message became after `KEEP_POSTED_MS` (LINE
/// users unsend within a day).
async fn purge_settled(core: &LineCore) {
    let now = now_ms();
    match core.store.purge_outbound(now - KEEP_SENT_MS, now - KEEP_FAILED_MS).await {
        Ok(0) => {}
        Ok(purged) => debug!(purged, "settled outbound rows purged"),
        Err(err) => warn!(error = %err, "settled outbound rows not purged"),
    }
    match core.store.purge_posted(now - KEEP_POSTED_MS).await {
        Ok(0) => {}
        Ok(purged) => debug!(purged, "posted rows purged"),
        Err(err) => warn!(error = %err, "posted rows not purged"),
    }
}

/// Publish the notifications of failed rows whose publish had failed.
pub(crate) async fn notify_untold(core: &LineCore) {
    let rows = match core.store.outbound_unnotified(NOTIFY_BATCH).await {
        Ok(rows) => rows,
        Err(err) => {
            warn!(error = %err, "untold outbound failures not read");
            return;
        }
    };
    for row in rows {
        let reason = row.last_error.clone().unwrap_or_else(|| "unknown error".into());
        if !tell_sender(core, &row.key, &row.tenant, &row.sender, &reason).await {
            return;
        }
    }
}

/// What one push carries: a request of one row, or a batch of rows in one request.
struct Push {
    /// The retry key of the push.
    key: Uuid,
    objects: Vec<Value>,
    /// The rows of a batch (the claimed row first) and its key; empty for one row's request.
    batch: Vec<OutboundRow>,
    batch_key: Option<String>,
    /// How many requests the claimed row has (one row's request; 1 for a batch).
    total: usize,
}

/// Push the next request of a claimed row (with the rows batched behind it) and settle it,
/// in a span that continues the trace of the event the row was made from.
pub(crate) async fn send(core: &LineCore, client: &awc::Client, row: OutboundRow) {
    let span = match chat_telemetry::tracing_on() {
        false => tracing::Span::none(),
        true => {
            let span = tracing::info_span!(
                "outbox send",
                otel.name = "outbox send",
                line.message_id = %row.key.message_id,
                line.channel_id = %row.channel_id,
            );
            if let Some(parent) = &row.trace_parent {
                chat_telemetry::TraceParent::from_traceparent(parent).adopt(&span);
            }
            span
        }
    };
    send_claimed(core, client, row).instrument(span).await
}

async fn send_claimed(core: &LineCore, client: &awc::Client, row: OutboundRow) {
    let push = match prepare(core, &row).await {
        Ok(Some(push)) => push,
        Ok(None) => return,
        Err(Prepared::GiveUp(reason)) => return give_up(core, &row, &[], "failed", &reason).await,
        Err(Prepared::Retry(reason)) => return retry(core, &row, millis(backoff(row.attempts)), &reason).await,
    };
    let channel = match core.store.channel(&row.channel_id).await {
        Ok(Some(channel)) => channel,
        Ok(None) => {
            let reason = "the member's LINE account is no longer connected";
            return give_up(core, &row, &push.batch, "failed", reason).await;
        }
        Err(err) => return retry(core, &row, millis(backoff(row.attempts)), &err.to_string()).await,
    };
    if channel.suspended {
        // The member may not use LINE any more: nothing is sent, and authz told them.
        for key in rows_of(&row, &push.batch) {
            count("suspended");
            let settled = core.store.outbound_failed(key, "the member may not use LINE", false, now_ms()).await;
            if let Err(err) = settled {
                warn!(error = %err, "outbound row not settled; taken again when its lease ends");
            }
        }
        return;
    }
    let token = match core.secrets.decrypt(&channel.token_enc) {
        Ok(token) => token,
        Err(err) => return give_up(core, &row, &push.batch, "failed", &err.to_string()).await,
    };
    core.push_limiter.until_key_ready(&row.channel_id).await;
    let outcome = core.line_api.push(client, &token, push.key, &row.key.line_user_id, &push.objects).await;
    let max_attempts = i64::from(core.settings.line.push_max_attempts.max(1));
    let now = now_ms();
    match outcome {
        PushOutcome::Sent(_) | PushOutcome::AlreadyAccepted(_) => {
            let (label, accepted) = match &outcome {
                PushOutcome::AlreadyAccepted(id) => ("already_accepted", Some(id.as_str())),
                _ => ("sent", None),
            };
            count(label);
            if let PushOutcome::Sent(ids) = &outcome {
                remember_sent(core, &row, &push, ids).await;
            }
            let total = i64::try_from(push.total).unwrap_or(i64::MAX);
            let settled = match &push.batch_key {
                Some(batch_key) => core.store.outbound_batch_done(batch_key, accepted, now).await.map(|()| true),
                _ => core.store.outbound_request_done(&row.key, row.chunks_sent, total, accepted, now).await,
            };
            match settled {
                Ok(true) => debug!(message_id = %row.key.message_id, rows = push.batch.len().max(1), "sent to LINE"),
                // The next request is due now.
                Ok(false) => core.outbox_wake.notify_waiters(),
                Err(err) => warn!(error = %err, "outbound row not settled; taken again when its lease ends"),
            }
        }
        PushOutcome::Retry(cause) if row.attempts >= max_attempts => {
            let reason = format!("LINE did not accept it after {} attempts ({cause})", row.attempts);
            give_up(core, &row, &push.batch, "failed", &reason).await;
        }
        PushOutcome::RateLimited(_) if row.attempts >= max_attempts => {
            let reason = format!("LINE's rate limit still held after {} attempts", row.attempts);
            give_up(core, &row, &push.batch, "failed", &reason).await;
        }
        // Only the claimed row waits: the rows batched behind it are queued behind it.
        PushOutcome::Retry(cause) => retry(core, &row, millis(backoff(row.attempts)), &cause).await,
        PushOutcome::RateLimited(after) => retry(core, &row, millis(after), "rate limited by LINE").await,
        PushOutcome::Quota(message) => {
            let reason = format!("the LINE Official Account reached its monthly message limit ({message})");
            give_up(core, &row, &push.batch, "quota", &reason).await;
        }
        PushOutcome::Refused(reason) => {
            warn!(message_id = %row.key.message_id, channel_id = %row.channel_id, %reason, "LINE refused a push");
            give_up(core, &row, &push.batch, "failed", &reason).await;
        }
    }
}

/// Remember which room message each LINE message id of a push is, so that a LINE user who
/// quotes one answers in its room: a batch's ids go to its rows in order, as many as each
/// row has objects.
async fn remember_sent(core: &LineCore, row: &OutboundRow, push: &Push, ids: &[String]) {
    let single = [row.clone()];
    let rows: &[OutboundRow] = if push.batch.is_empty() { &single } else { &push.batch };
    let mut ids = ids.iter();
    for sent in rows {
        let objects =
            if push.batch.is_empty() { push.objects.len() } else { stored_messages(sent).map_or(0, |m| m.len()) };
        for id in ids.by_ref().take(objects) {
            let remembered =
                core.store.remember_posted(&sent.channel_id, id, &sent.room_id, &sent.key.message_id, now_ms()).await;
            if let Err(err) = remembered {
                debug!(error = %err, "a sent message's id not remembered; a quote of it goes by the usual route");
            }
        }
    }
}

/// Why a claimed row has no push.
enum Prepared {
    GiveUp(String),
    Retry(String),
}

/// The push of a claimed row: its batch if it has one; else, on its first attempt, a new
/// batch of it and the rows queued behind it that fit in one request with it; else its next
/// request. `None` when nothing is left to send (the row is settled here).
async fn prepare(core: &LineCore, row: &OutboundRow) -> Result<Option<Push>, Prepared> {
    let messages = stored_messages(row).map_err(Prepared::GiveUp)?;
    let first_key = Uuid::parse_str(&row.retry_key)
        .map_err(|err| Prepared::GiveUp(format!("stored retry key unreadable: {err}")))?;
    if let Some(batch_key) = &row.batch_key {
        // Fixed before its first attempt: the same rows under the same key, every time.
        let batch = core.store.outbound_batch(batch_key).await.map_err(|err| Prepared::Retry(err.to_string()))?;
        let key = Uuid::parse_str(batch_key)
            .map_err(|err| Prepared::GiveUp(format!("stored batch key unreadable: {err}")))?;
        let objects = batch_objects(&batch).map_err(Prepared::GiveUp)?;
        return Ok(Some(Push { key, objects, batch, batch_key: Some(batch_key.clone()), total: 1 }));
    }
    // Only a row never tried before leads a batch: a row LINE may have accepted alone (a
    // timeout), or one sent again from the dead letters, keeps its own key and goes alone.
    let never_tried = row.attempts == 1 && row.chunks_sent == 0 && row.last_error.is_none();
    if never_tried && messages.len() < MAX_MESSAGES_PER_REQUEST {
        if let Some(push) = batch_behind(core, row, &messages, first_key).await {
            return Ok(Some(push));
        }
    }
    let requests = requests(&messages);
    let index = usize::try_from(row.chunks_sent).unwrap_or(usize::MAX);
    let Some(request) = requests.get(index) else {
        // Nothing left to send (an empty message list, or a row settled but not marked).
        if let Err(err) =
            core.store.outbound_request_done(&row.key, row.chunks_sent, row.chunks_sent, None, now_ms()).await
        {
            warn!(error = %err, "outbound row not settled; taken again when its lease ends");
        }
        return Ok(None);
    };
    let key = request_retry_key(first_key, index);
    Ok(Some(Push { key, objects: request.to_vec(), batch: Vec::new(), batch_key: None, total: requests.len() }))
}

/// A new batch of `row` (on its first attempt) and the rows queued behind it for the same
/// LINE user that fit in one request with it, fixed in the store before anything is sent; its
/// key is the row's own first retry key (never used yet). None when no row fits behind it, or
/// when the store changed meanwhile (the row then goes alone).
async fn batch_behind(core: &LineCore, row: &OutboundRow, messages: &[Value], key: Uuid) -> Option<Push> {
    let room = MAX_MESSAGES_PER_REQUEST - messages.len();
    let followers = match core.store.outbound_followers(row, i64::try_from(room).unwrap_or(1)).await {
        Ok(followers) => followers,
        Err(err) => {
            debug!(error = %err, "rows behind not read; sent alone");
            return None;
        }
    };
    let mut objects = messages.to_vec();
    let mut batch = vec![row.clone()];
    for follower in followers {
        let Ok(theirs) = stored_messages(&follower) else { break };
        if objects.len() + theirs.len() > MAX_MESSAGES_PER_REQUEST {
            break;
        }
        objects.extend(theirs);
        batch.push(follower);
    }
    if batch.len() < 2 {
        return None;
    }
    let batch_key = key.to_string();
    let keys: Vec<&OutboundKey> = batch.iter().map(|r| &r.key).collect();
    match core.store.form_batch(&batch_key, &keys, now_ms()).await {
        Ok(true) => {}
        Ok(false) => return None,
        Err(err) => {
            debug!(error = %err, "batch not formed; sent alone");
            return None;
        }
    }
    for _ in 1..batch.len() {
        count("batched");
    }
    Some(Push { key, objects, batch, batch_key: Some(batch_key), total: 1 })
}

/// The LINE message objects stored with a row.
fn stored_messages(row: &OutboundRow) -> Result<Vec<Value>, String> {
    serde_json::from_str(&row.messages).map_err(|err| format!("stored messages unreadable: {err}"))
}

/// The objects of a batch's rows, in order.
fn batch_objects(batch: &[OutboundRow]) -> Result<Vec<Value>, String> {
    let mut objects = Vec::new();
    for row in batch {
        objects.extend(stored_messages(row)?);
    }
    Ok(objects)
}

/// The keys of the rows a push settles: the batch's, or the claimed row's.
fn rows_of<'a>(row: &'a OutboundRow, batch: &'a [OutboundRow]) -> Vec<&'a OutboundKey> {
    if batch.is_empty() {
        vec![&row.key]
    } else {
        batch.iter().map(|r| &r.key).collect()
    }
}

async fn retry(core: &LineCore, row: &OutboundRow, after_ms: i64, cause: &str) {
    count("retried");
    debug!(message_id = %row.key.message_id, attempts = row.attempts, after_ms, error = %cause, "push retried later");
    let now = now_ms();
    if let Err(err) = core.store.outbound_retry_at(&row.key, now + after_ms, cause, now).await {
        warn!(error = %err, "outbound row not settled; taken again when its lease ends");
    }
}

/// Give up the claimed row, or every row of its batch, each told to its sender.
async fn give_up(core: &LineCore, row: &OutboundRow, batch: &[OutboundRow], label: &'static str, reason: &str) {
    let rows = if batch.is_empty() { std::slice::from_ref(row) } else { batch };
    for row in rows {
        warn!(message_id = %row.key.message_id, channel_id = %row.channel_id, %reason, "push given up");
        if let Err(err) = core.store.outbound_failed(&row.key, reason, true, now_ms()).await {
            warn!(error = %err, "outbound row not settled; taken again when its lease ends");
            return;
        }
        gave_up(core, &row.key, &row.channel_id, &row.tenant, &row.sender, label, reason).await;
    }
}

/// After a row was stored `failed`: count it, record the channel's last error, tell the sender.
async fn gave_up(
    core: &LineCore,
    key: &OutboundKey,
    channel_id: &str,
    tenant: &TenantId,
    sender: &UserId,
    label: &'static str,
    reason: &str,
) {
    count(label);
    metrics().outbound_dead.inc();
    if let Err(err) = core.store.set_channel_error(channel_id, reason, now_ms()).await {
        warn!(error = %err, "the channel's last error not recorded");
    }
    tell_sender(core, key, tenant, sender, reason).await;
}

/// Publish the sender's notification (keyed by the row: published again, it is the same
/// event) and mark the row told; false if the bus failed (the housekeeping tries again).
async fn tell_sender(core: &LineCore, key: &OutboundKey, tenant: &TenantId, sender: &UserId, reason: &str) -> bool {
    if sender.is_line_user() {
        // A LINE user's message relayed to others: nobody in the engine to tell.
        if let Err(err) = core.store.outbound_notified(key).await {
            warn!(error = %err, "failed relay not marked told");
        }
        return true;
    }
    let event = ChangeEvent::Notify {
        tenant: tenant.clone(),
        user: sender.clone(),
        kind: NotificationKind::LineDeliveryFailed,
        text: format!("Your message could not be delivered to LINE: {reason}"),
    };
    let id = format!("line-outbound-failed:{}:{}", key.message_id, key.line_user_id);
    if let Err(err) = core.publish(&EventEnvelope::keyed(&id, event)).await {
        warn!(error = %err, "delivery failure not told yet; trying again later");
        return false;
    }
    if let Err(err) = core.store.outbound_notified(key).await {
        warn!(error = %err, "told delivery failure not marked; it may be told again (same event id)");
    } else {
        info!(message_id = %key.message_id, sender = %sender, "sender told of a failed delivery to LINE");
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_from_one_second_to_five_minutes() {
        let secs: Vec<u64> = (1..=10).map(|attempt| backoff(attempt).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]);
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(i64::MAX), MAX_BACKOFF);
    }

    #[test]
    fn the_lease_outlasts_one_push() {
        assert!(lease_ms(10_000) > 10_000);
        assert!(lease_ms(u64::MAX) > 0);
    }
}
