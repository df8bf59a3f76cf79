//! The inbox workers (`line.workers` tasks): they claim stored webhook events (oldest first,
//! one channel's events in order; see `store`), apply each, and mark it processed. Events of
//! LINE groups (`join`, `leave`, `memberJoined`, `memberLeft`, and messages and unsends written
//! in a group) are applied in `groups`; the others come from a LINE user's 1:1 chat:
//!
//! - `follow`: the LINE user's profile is asked of LINE (`GET /v2/bot/profile/{userId}`; a
//!   5xx or a timeout retries the event, and its last attempt, a 404 or any other error do
//!   without: the display name is then the LINE user id), the member's LINE 1:1 room is created
//!   or reopened, remembered in `line_users`, and `line.follow` is published with the name
//!   and picture;
//! - `unfollow`: the LINE user leaves their 1:1 room (it stays, with its history, closed for
//!   sending: rooms answers a member's message there `line_room_closed`; a new follow brings
//!   them back), `line.unfollow` is published and the LINE user marked unfollowed;
//! - `message`: the room is ensured as for a follow, then the message is posted as the LINE
//!   user: text, sticker and location as they are; images, video, audio and files with their
//!   content downloaded from LINE at once (`GET .../message/{id}/content` on the content API,
//!   streamed into the media store under a key derived from the channel and LINE's message
//!   id, remembered in `media`) and posted with the engine's URL of it (`media.public_base_url`
//!   `/v1/line/media/<id>`): an image as an image, the others as files. Content another
//!   service holds (`contentProvider.type == "external"`) is posted with its URL, not
//!   downloaded. LINE's 202 (video or audio still being prepared) retries the event later, for
//!   10 minutes at most (the channel's later events wait behind it), then a text says so;
//!   content larger than `media.max_bytes` is not kept and a text says so; content LINE no
//!   longer has (404) fails the event ("content no longer available at LINE"), never a
//!   placeholder. Newer types are counted (`unsupported_for_now`) and skipped. The room
//!   message each LINE message became is remembered (`posted`);
//! - `unsend`: the room message the LINE message became is recalled (hidden) as the LINE
//!   user; an unknown one is counted (`unknown_message`) and ignored;
//! - other types (and a follow or unfollow from a group) are counted and ignored.
//!
//! A suspended channel's events, and events of a channel unbound since, are marked processed
//! without effect. A failure that may pass (rooms' timeout, the bus, the store) frees the event
//! again after a backoff; after `MAX_ATTEMPTS` it is marked failed, as is an event rooms refused
//! or that cannot be read. Room commands and change events take ids derived from the webhook
//! event, so an event applied again (a worker that died mid-way) changes nothing twice.

use std::sync::Arc;
use std::time::Duration;

use chat_protocol::events::ChangeEvent;
use chat_protocol::{now_ms, Body, RoomId};
use tracing::{debug, warn};

use chat_protocol::Refusal;

use crate::line_api::{ContentOutcome, ProfileOutcome};
use crate::media::{content_key, media_body, media_id, media_url, not_ready_text, too_large_text, MediaKind, Stored};
use crate::metrics::metrics;
use crate::rooms::{client_msg_id, RoomsError};
use crate::service::LineCore;
use crate::store::{Channel, InboxRow, MediaRow, Store};
use crate::webhook::{parse_event, Chat, ContentProvider, Inbound, LineEvent};

mod groups;
mod steps;

pub use steps::MAX_ATTEMPTS;
use steps::{line_user, observe_room_answer, open_room, publish_keyed, Outcome, Place};

/// The failure of an event whose content LINE no longer has.
pub const CONTENT_GONE: &str = "content no longer available at LINE";

/// How long an event that keeps failing for passing reasons is tried again (at most every
/// `MAX_BACKOFF_MS`) before it is given up.
const RETRY_WINDOW_MS: i64 = 24 * 60 * 60 * 1000;

/// How often an idle worker looks for events without being woken (retries coming due).
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// The pause after the store failed a claim.
const STORE_PAUSE: Duration = Duration::from_secs(1);

/// The first retry's backoff, doubled per attempt up to `MAX_BACKOFF_MS`.
const FIRST_BACKOFF_MS: i64 = 500;
const MAX_BACKOFF_MS: i64 = 5 * 60 * 1000;

/// How long processed events are kept (their ids deduplicate redeliveries).
const KEEP_PROCESSED_MS: i64 = 7 * 24 * 3600 * 1000;

/// How often processed events are purged, and the backlog gauge refreshed.
const PURGE_TICK: Duration = Duration::from_secs(3600);
const BACKLOG_TICK: Duration = Duration::from_secs(5);

/// How long a video or audio LINE is still preparing (202) is waited for: the channel's later
/// events wait behind it meanwhile. Then the room says it was not kept.
const MAX_PREPARING_MS: i64 = 10 * 60 * 1000;

/// The event types LINE documents; any other is counted as `unknown` (bounded labels).
const KNOWN_TYPES: &[&str] = &[
    "message",
    "follow",
    "unfollow",
    "join",
    "leave",
    "memberJoined",
    "memberLeft",
    "postback",
    "unsend",
    "messageEdited",
    "videoPlayComplete",
    "beacon",
    "accountLink",
    "membership",
    "module",
    "activated",
    "deactivated",
    "botSuspended",
    "botResumed",
    "delivery",
    "pnpDeliveryCompletion",
];

/// The lease of a claimed event: long enough for its slowest step, a content download
/// (`line_api::CONTENT_TIMEOUT`), and its room commands to time out, so that no second worker
/// takes an event still being worked on.
fn lease_ms(command_timeout_ms: u64) -> i64 {
    let commands = i64::try_from(command_timeout_ms).unwrap_or(i64::MAX / 8).saturating_mul(4);
    let download = i64::try_from(crate::line_api::CONTENT_TIMEOUT.as_millis()).unwrap_or(i64::MAX / 8);
    commands.saturating_add(download).saturating_add(10_000)
}

/// The backoff before attempt `attempts + 1`.
fn backoff_ms(attempts: i64) -> i64 {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    FIRST_BACKOFF_MS.saturating_mul(1 << doublings).min(MAX_BACKOFF_MS)
}

/// One inbox worker, until the process ends. It runs on actix's local tasks: the profile
/// calls use awc, whose client is not `Send`.
pub async fn run_worker(core: Arc<LineCore>) {
    let lease = lease_ms(core.settings.line.command_timeout_ms);
    let wake = Arc::clone(&core.inbox_wake);
    loop {
        // Registered before the claim, so a webhook stored meanwhile wakes this worker.
        let notified = wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        match core.store.claim(now_ms(), lease).await {
            Ok(Some(row)) => process(&core, row).await,
            Ok(None) => {
                tokio::select! {
                    () = &mut notified => {}
                    () = tokio::time::sleep(POLL_INTERVAL) => {}
                }
            }
            Err(err) => {
                warn!(error = %err, "inbox not read; trying again");
                tokio::time::sleep(STORE_PAUSE).await;
            }
        }
    }
}

/// Purge old processed events every hour and refresh the backlog gauge every few seconds.
pub async fn run_housekeeping(store: Store) {
    let mut purge = tokio::time::interval(PURGE_TICK);
    let mut backlog = tokio::time::interval(BACKLOG_TICK);
    loop {
        tokio::select! {
            _ = purge.tick() => match store.purge_processed(now_ms() - KEEP_PROCESSED_MS).await {
                Ok(0) => {}
                Ok(purged) => debug!(purged, "processed inbox events purged"),
                Err(err) => warn!(error = %err, "processed inbox events not purged"),
            },
            _ = backlog.tick() => match store.backlog().await {
                Ok(count) => metrics().backlog.set(count),
                Err(err) => warn!(error = %err, "inbox backlog not counted"),
            },
        }
    }
}

/// The event type as the metrics name it.
fn type_label(kind: &str) -> &'static str {
    KNOWN_TYPES.iter().find(|known| **known == kind).copied().unwrap_or("unknown")
}

/// Apply one claimed event and record what became of it.
pub(crate) async fn process(core: &LineCore, row: InboxRow) {
    let parsed = parse_event(&row.event);
    let kind = parsed.as_ref().map_or("undecodable", |event| type_label(event.kind()));
    let outcome = match parsed {
        Ok(event) => apply(core, &row, event).await,
        Err(err) => Outcome::GiveUp("undecodable", err.to_string()),
    };
    let now = now_ms();
    let event_id = row.key.webhook_event_id.as_str();
    let (label, settled) = match outcome {
        Outcome::Done(label) => (label, core.store.mark_processed(&row.key, now).await),
        // A passing failure (rooms, the bus, the store, LINE's 5xx) is tried again for a day: LINE
        // was answered 200 for this event and will not send it again.
        Outcome::Retry(cause) if row.attempts >= MAX_ATTEMPTS && now - row.received_at_ms > RETRY_WINDOW_MS => {
            warn!(event_id, attempts = row.attempts, error = %cause, "line event given up");
            ("failed", core.store.mark_failed(&row.key, now, &cause).await)
        }
        Outcome::Retry(cause) => {
            debug!(event_id, attempts = row.attempts, error = %cause, "line event retried later");
            ("retried", core.store.retry_later(&row.key, now + backoff_ms(row.attempts), &cause).await)
        }
        Outcome::GiveUp(label, cause) => {
            warn!(event_id, error = %cause, "line event not applicable");
            (label, core.store.mark_failed(&row.key, now, &cause).await)
        }
    };
    metrics().events.with_label_values(&[kind, label]).inc();
    if let Err(err) = settled {
        warn!(event_id, error = %err, "inbox event not settled; taken again when its lease ends");
    }
}

async fn apply(core: &LineCore, row: &InboxRow, event: LineEvent) -> Outcome {
    let channel = match core.store.channel(&row.channel_id).await {
        Ok(Some(channel)) => channel,
        Ok(None) => return Outcome::Done("unbound"),
        Err(err) => return err.into(),
    };
    if channel.suspended {
        return Outcome::Done("suspended");
    }
    match event {
        LineEvent::Follow { line_user_id, timestamp } => follow(core, row, &channel, &line_user_id, timestamp).await,
        LineEvent::Unfollow { line_user_id, timestamp } => {
            unfollow(core, row, &channel, &line_user_id, timestamp).await
        }
        LineEvent::Message { message: Inbound::Unsupported { kind }, .. } => {
            debug!(event_id = %row.key.webhook_event_id, kind, "LINE message type not handled yet; skipped");
            Outcome::Done("unsupported_for_now")
        }
        LineEvent::Message { chat, line_message_id, quoted_message_id, message, .. } => {
            let place = match place_of(core, row, &channel, &chat, quoted_message_id.as_deref()).await {
                Ok(place) => place,
                Err(outcome) => return outcome,
            };
            let line = LineMessage { place: &place, line_message_id: &line_message_id };
            let body = match message {
                Inbound::Text { text } => Body::Text { text },
                Inbound::Sticker { package_id, sticker_id } => Body::Sticker { package_id, sticker_id },
                Inbound::Location { title, address, latitude, longitude } => {
                    Body::Location { title, address, latitude, longitude }
                }
                Inbound::Media { kind, provider, file_name, file_size } => {
                    let medium = Medium { kind, provider, file_name, file_size };
                    return media_in(core, row, &channel, line, medium).await;
                }
                Inbound::Unsupported { .. } => return Outcome::Done("unsupported_for_now"),
            };
            post_in(core, row, &channel, line, body).await
        }
        LineEvent::Unsend { chat, line_message_id } => unsend(core, row, &channel, &chat, &line_message_id).await,
        LineEvent::Join { group_id } => groups::join(core, row, &channel, &group_id).await,
        LineEvent::Leave { group_id } => groups::leave(core, row, &channel, &group_id).await,
        LineEvent::MembersJoined { group_id, line_user_ids } => {
            groups::members_joined(core, row, &channel, &group_id, &line_user_ids).await
        }
        LineEvent::MembersLeft { group_id, line_user_ids } => {
            groups::members_left(core, row, &channel, &group_id, &line_user_ids).await
        }
        LineEvent::OtherSource { .. } => Outcome::Done("other_source"),
        LineEvent::Other { .. } => Outcome::Done("ignored"),
    }
}

/// The LINE user's display name and picture: their profile, or their id when LINE has none
/// for them; `Err` when worth asking again (not on the event's last attempt).
async fn profile(
    core: &LineCore,
    row: &InboxRow,
    channel: &Channel,
    line_user_id: &str,
) -> Result<(String, Option<String>), Outcome> {
    let fallback = (line_user_id.to_owned(), None);
    let token = match core.secrets.decrypt(&channel.token_enc) {
        Ok(token) => token,
        Err(err) => {
            warn!(channel_id = %channel.channel_id, error = %err, "no profile without the channel's token");
            return Ok(fallback);
        }
    };
    let client = core.line_api.client();
    match core.line_api.profile(&client, &token, line_user_id).await {
        ProfileOutcome::Found(profile) => Ok((profile.display_name, profile.picture_url)),
        ProfileOutcome::Unavailable(cause) => {
            debug!(line_user_id, %cause, "no LINE profile; the id stands in");
            Ok(fallback)
        }
        ProfileOutcome::Retry(cause) if row.attempts < MAX_ATTEMPTS => Err(Outcome::Retry(cause)),
        ProfileOutcome::Retry(cause) => {
            warn!(line_user_id, %cause, "no LINE profile after every attempt; the id stands in");
            Ok(fallback)
        }
    }
}

async fn follow(core: &LineCore, row: &InboxRow, channel: &Channel, line_user_id: &str, at_ms: i64) -> Outcome {
    let (display_name, picture_url) = match profile(core, row, channel, line_user_id).await {
        Ok(profile) => profile,
        Err(outcome) => return outcome,
    };
    let line_user = line_user(line_user_id);
    let room = match open_room(core, row, channel, &line_user).await {
        Ok(room) => room,
        Err(outcome) => return outcome,
    };
    observe_room_answer(row);
    if let Err(err) =
        core.store.remember_line_user(&channel.channel_id, line_user_id, &room, Some(true), now_ms()).await
    {
        return err.into();
    }
    if display_name != line_user_id {
        let now = now_ms();
        let picture = picture_url.as_deref();
        if let Err(err) =
            core.store.remember_profile(&channel.channel_id, line_user_id, &display_name, picture, now).await
        {
            return err.into();
        }
    }
    let event = ChangeEvent::LineFollow {
        tenant: channel.tenant.clone(),
        user: channel.user_id.clone(),
        line_user,
        display_name,
        picture_url,
        at_ms,
    };
    publish_keyed(core, row, event).await
}

async fn unfollow(core: &LineCore, row: &InboxRow, channel: &Channel, line_user_id: &str, at_ms: i64) -> Outcome {
    // The LINE user leaves their 1:1 room: its history stays, and rooms refuses the member's
    // messages there (`line_room_closed`) until a follow brings them back.
    let room = match core.store.line_user(&channel.channel_id, line_user_id).await {
        Ok(known) => known.and_then(|known| known.room_id),
        Err(err) => return err.into(),
    };
    if let Some(room) = room {
        let key = row.key.webhook_event_id.as_str();
        if let Err(err) = core.rooms.leave_as_line_user(&room, &line_user(line_user_id), key).await {
            return err.into();
        }
    }
    if let Err(err) = core.store.mark_unfollowed(&channel.channel_id, line_user_id, now_ms()).await {
        return err.into();
    }
    let event = ChangeEvent::LineUnfollow {
        tenant: channel.tenant.clone(),
        user: channel.user_id.clone(),
        line_user: line_user(line_user_id),
        at_ms,
    };
    publish_keyed(core, row, event).await
}

/// The place of a message: for a LINE user's 1:1 chat, the room of the message it quotes, else
/// the room that last wrote to them if it is not their 1:1 room (see `docs/line-gateway.md`),
/// else their 1:1 room (created or reopened); for a group, the group's room (made if the join
/// was missed), with the writer added to it; a writer LINE does not name (LINE's desktop apps)
/// writes as the group.
async fn place_of(
    core: &LineCore,
    row: &InboxRow,
    channel: &Channel,
    chat: &Chat,
    quoted: Option<&str>,
) -> Result<Place, Outcome> {
    match chat {
        Chat::User(line_user_id) => {
            let speaker = line_user(line_user_id);
            let known = core.store.line_user(&channel.channel_id, line_user_id).await?;
            let direct_room = known.as_ref().and_then(|known| known.room_id.clone());
            let quoted_room = match quoted {
                Some(quoted) => core.store.posted(&channel.channel_id, quoted).await?.map(|posted| posted.room_id),
                None => None,
            };
            let routed_room = match quoted_room {
                Some(room) => (Some(&room) != direct_room.as_ref()).then_some(room),
                None => known.and_then(|known| known.reply_room),
            };
            if let Some(room) = routed_room {
                // The room of the quoted message, or the room with several LINE users that wrote
                // to them last: the answer goes there.
                return Ok(Place { room, speaker, direct: None, routed: Some(line_user_id.clone()) });
            }
            let room = open_room(core, row, channel, &speaker).await?;
            Ok(Place { room, speaker, direct: Some(line_user_id.clone()), routed: None })
        }
        Chat::Group { group_id, line_user_id } => {
            groups::place(core, row, channel, group_id, line_user_id.as_deref()).await
        }
    }
}

/// Where a LINE message goes, and LINE's id of it.
#[derive(Clone, Copy)]
struct LineMessage<'a> {
    place: &'a Place,
    line_message_id: &'a str,
}

async fn post_in(core: &LineCore, row: &InboxRow, channel: &Channel, line: LineMessage<'_>, body: Body) -> Outcome {
    let place = line.place;
    let client_msg_id = client_msg_id(&row.key.webhook_event_id);
    let posted = core.rooms.post_as_line_user(&place.room, &place.speaker, client_msg_id.clone(), body.clone()).await;
    let fallback: Place;
    let (message_id, place) = match (posted, &place.routed) {
        (Ok(message_id), _) => (message_id, place),
        // The room that wrote to them last no longer has them: back to their 1:1 room.
        (Err(RoomsError::Refused(refusal)), Some(line_user_id)) if refusal.code == Refusal::RoomNotFound => {
            if let Err(err) = core.store.set_reply_room(&channel.channel_id, line_user_id, None, now_ms()).await {
                return err.into();
            }
            let room = match open_room(core, row, channel, &place.speaker).await {
                Ok(room) => room,
                Err(outcome) => return outcome,
            };
            fallback = Place { room, speaker: place.speaker.clone(), direct: Some(line_user_id.clone()), routed: None };
            match core.rooms.post_as_line_user(&fallback.room, &fallback.speaker, client_msg_id, body).await {
                Ok(message_id) => (message_id, &fallback),
                Err(err) => return err.into(),
            }
        }
        (Err(err), _) => return err.into(),
    };
    observe_room_answer(row);
    if !line.line_message_id.is_empty() {
        let remembered = core
            .store
            .remember_posted(&channel.channel_id, line.line_message_id, &place.room, &message_id, now_ms())
            .await;
        if let Err(err) = remembered {
            return err.into();
        }
    }
    let Some(line_user_id) = &place.direct else { return Outcome::Done("applied") };
    match core.store.remember_line_user(&channel.channel_id, line_user_id, &place.room, None, now_ms()).await {
        Ok(()) => Outcome::Done("applied"),
        Err(err) => err.into(),
    }
}

struct Medium {
    kind: MediaKind,
    provider: ContentProvider,
    file_name: Option<String>,
    file_size: Option<u64>,
}

fn count_media(outcome: &str) {
    metrics().media.with_label_values(&[outcome]).inc();
}

/// Keep the content of a medium (unless kept already, or elsewhere) and post it.
async fn media_in(
    core: &LineCore,
    row: &InboxRow,
    channel: &Channel,
    line: LineMessage<'_>,
    medium: Medium,
) -> Outcome {
    let room = line.place.room.clone();
    let Medium { kind, provider, file_name, file_size } = medium;
    let body = match provider {
        ContentProvider::External { original_url } => {
            count_media("external");
            media_body(kind, original_url, file_name, file_size)
        }
        ContentProvider::Line => {
            match keep_content(core, row, channel, line, &room, kind, file_name, file_size).await {
                Ok(body) => body,
                Err(outcome) => return outcome,
            }
        }
    };
    post_in(core, row, channel, line, body).await
}

/// The body of a medium whose content is on LINE: kept in the media store (found there when
/// the event is processed again), or a text saying it was too large.
#[allow(clippy::too_many_arguments)]
async fn keep_content(
    core: &LineCore,
    row: &InboxRow,
    channel: &Channel,
    line: LineMessage<'_>,
    room: &RoomId,
    kind: MediaKind,
    file_name: Option<String>,
    file_size: Option<u64>,
) -> Result<Body, Outcome> {
    let media = &core.media;
    let message_id = line.line_message_id;
    if message_id.is_empty() {
        return Err(Outcome::GiveUp("undecodable", "a media message without an id".into()));
    }
    let known = core.store.media_of_message(&channel.channel_id, message_id).await.map_err(Outcome::from)?;
    if let Some(known) = known {
        return Ok(media_body(
            kind,
            media_url(&media.public_base_url, &known.media_id),
            known.file_name,
            Some(known.size),
        ));
    }
    let too_large = |size: Option<u64>| {
        count_media("too_large");
        Body::Text { text: too_large_text(kind, file_name.as_deref(), size, media.max_bytes) }
    };
    if let Some(size) = file_size.filter(|size| *size > media.max_bytes) {
        return Ok(too_large(Some(size)));
    }
    let token = core.secrets.decrypt(&channel.token_enc).map_err(|err| Outcome::GiveUp("failed", err.to_string()))?;
    let client = core.line_api.content_client();
    let (content_type, length, body) = match core.line_api.content(&client, &token, message_id).await {
        ContentOutcome::Ready { content_type, length, body } => (content_type, length, body),
        // Not for ever: the channel's later events wait behind this one.
        ContentOutcome::Preparing if now_ms() - row.received_at_ms > MAX_PREPARING_MS => {
            count_media("not_ready");
            return Ok(Body::Text { text: not_ready_text(kind, file_name.as_deref()) });
        }
        ContentOutcome::Preparing => return Err(Outcome::Retry("LINE is still preparing the content".into())),
        ContentOutcome::Gone => {
            count_media("gone");
            return Err(Outcome::GiveUp("gone", CONTENT_GONE.into()));
        }
        ContentOutcome::Retry(cause) => return Err(Outcome::Retry(cause)),
        ContentOutcome::Refused(cause) => return Err(Outcome::GiveUp("failed", cause)),
    };
    if let Some(length) = length.filter(|length| *length > media.max_bytes) {
        return Ok(too_large(Some(length)));
    }
    let key = content_key(&channel.channel_id, message_id);
    let size = match media.put_stream(&key, body).await {
        Ok(Stored::Done(size)) => size,
        Ok(Stored::TooLarge) => return Ok(too_large(file_size.or(length))),
        Err(err) => return Err(Outcome::Retry(err.to_string())),
    };
    let media_row = MediaRow {
        media_id: media_id(&channel.channel_id, message_id),
        channel_id: channel.channel_id.clone(),
        line_message_id: message_id.to_owned(),
        store_key: key.to_string(),
        content_type: content_type.unwrap_or_else(|| kind.default_content_type().to_owned()),
        size,
        file_name: file_name.clone(),
        kind: kind.as_str().to_owned(),
        room_id: room.clone(),
        owner: channel.user_id.clone(),
        tenant: channel.tenant.clone(),
        created_at_ms: now_ms(),
    };
    core.store.insert_media(&media_row).await.map_err(Outcome::from)?;
    count_media("stored");
    metrics().media_bytes.inc_by(size);
    Ok(media_body(kind, media_url(&media.public_base_url, &media_row.media_id), file_name, Some(size)))
}

/// Recall, as the LINE user, the room message their unsent LINE message became.
async fn unsend(core: &LineCore, row: &InboxRow, channel: &Channel, chat: &Chat, line_message_id: &str) -> Outcome {
    let posted = match core.store.posted(&channel.channel_id, line_message_id).await {
        Ok(Some(posted)) => posted,
        Ok(None) => return Outcome::Done("unknown_message"),
        Err(err) => return err.into(),
    };
    // Who wrote it: the LINE user, or the group for a writer LINE did not name.
    let line_user = match chat {
        Chat::User(id) | Chat::Group { line_user_id: Some(id), .. } => line_user(id),
        Chat::Group { group_id, line_user_id: None } => line_user(group_id),
    };
    let key = row.key.webhook_event_id.as_str();
    match core.rooms.recall_as_line_user(&posted.room_id, &line_user, &posted.message_id, key).await {
        Ok(()) => Outcome::Done("applied"),
        Err(RoomsError::Refused(refusal)) if refusal.code == Refusal::AlreadyRecalled => Outcome::Done("applied"),
        Err(RoomsError::Refused(refusal)) if refusal.code == Refusal::MessageNotFound => {
            Outcome::Done("unknown_message")
        }
        Err(err) => err.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        assert_eq!(backoff_ms(1), 500);
        assert_eq!(backoff_ms(2), 1_000);
        assert_eq!(backoff_ms(5), 8_000);
        assert_eq!(backoff_ms(40), MAX_BACKOFF_MS);
        assert_eq!(backoff_ms(0), 500);
    }

    #[test]
    fn the_lease_outlasts_the_commands_and_the_download_of_one_event() {
        let download = crate::line_api::CONTENT_TIMEOUT.as_millis() as i64;
        assert!(lease_ms(10_000) > download + 3 * 10_000);
        assert!(lease_ms(u64::MAX) > 0);
    }

    #[test]
    fn event_type_labels_are_bounded() {
        assert_eq!(type_label("follow"), "follow");
        assert_eq!(type_label("memberJoined"), "memberJoined");
        assert_eq!(type_label("greatNewEvent"), "unknown");
    }
}
