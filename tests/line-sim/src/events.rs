//! Webhook event builders: JSON in the shapes of `webhook.yml` (each builder's output is
//! checked against its `Event` schema in the tests below). Every event is complete (type,
//! source, timestamp, `mode: active`, a fresh `webhookEventId`, `deliveryContext`, and a
//! `replyToken` on replyable events); change fields with ordinary `serde_json` access.
//!
//! There is a builder for every event type of the spec, and for every nested shape: sources,
//! message types (content on LINE or `external`, image sets, sticker resource types, message
//! stickers' text and keywords, emojis, mentions of a user or of all, quotes, mark-as-read
//! tokens), standby mode and redelivery. [`webhook_shapes`] names every shape the spec defines
//! (read from its discriminator mappings, properties and enums) and [`uncovered_shapes`] those
//! a set of webhook bodies misses, so tests can prove they send all of them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use crate::schema::yaml_to_json;
use crate::spec::WEBHOOK_YML;

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// A ULID (26 Crockford base32 characters: 48 bits of milliseconds, 80 random bits), as LINE's
/// `webhookEventId`.
pub fn new_event_id() -> String {
    let random = uuid::Uuid::new_v4().as_u128() & ((1u128 << 80) - 1);
    let value = (u128::from(now_ms() & ((1 << 48) - 1)) << 80) | random;
    (0..26).rev().map(|i| CROCKFORD[((value >> (i * 5)) & 31) as usize] as char).collect()
}

/// A fresh reply token (32 hex characters, like LINE's).
pub fn new_reply_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Where an event comes from (`Source` of webhook.yml).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    User {
        user_id: String,
    },
    /// `user_id` is only in message events, and only for LINE mobile users.
    Group {
        group_id: String,
        user_id: Option<String>,
    },
    Room {
        room_id: String,
        user_id: Option<String>,
    },
}

impl Source {
    pub fn user(user_id: &str) -> Self {
        Source::User { user_id: user_id.to_owned() }
    }

    pub fn group(group_id: &str, user_id: Option<&str>) -> Self {
        Source::Group { group_id: group_id.to_owned(), user_id: user_id.map(str::to_owned) }
    }

    pub fn room(room_id: &str, user_id: Option<&str>) -> Self {
        Source::Room { room_id: room_id.to_owned(), user_id: user_id.map(str::to_owned) }
    }

    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        match self {
            Source::User { user_id } => {
                out.insert("type".into(), "user".into());
                out.insert("userId".into(), user_id.as_str().into());
            }
            Source::Group { group_id, user_id } => {
                out.insert("type".into(), "group".into());
                out.insert("groupId".into(), group_id.as_str().into());
                if let Some(u) = user_id {
                    out.insert("userId".into(), u.as_str().into());
                }
            }
            Source::Room { room_id, user_id } => {
                out.insert("type".into(), "room".into());
                out.insert("roomId".into(), room_id.as_str().into());
                if let Some(u) = user_id {
                    out.insert("userId".into(), u.as_str().into());
                }
            }
        }
        Value::Object(out)
    }
}

/// The common fields of every event, plus a reply token when `replyable`.
fn event(kind: &str, source: &Source, replyable: bool) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("type".into(), kind.into());
    out.insert("source".into(), source.to_json());
    out.insert("timestamp".into(), now_ms().into());
    out.insert("mode".into(), "active".into());
    out.insert("webhookEventId".into(), new_event_id().into());
    out.insert("deliveryContext".into(), json!({"isRedelivery": false}));
    if replyable {
        out.insert("replyToken".into(), new_reply_token().into());
    }
    out
}

fn with(mut base: Map<String, Value>, key: &str, value: Value) -> Value {
    base.insert(key.into(), value);
    Value::Object(base)
}

fn message_event(source: &Source, message: Value) -> Value {
    with(event("message", source, true), "message", message)
}

/// `follow`: added as a friend (`is_unblocked`: or unblocked).
pub fn follow(source: &Source, is_unblocked: bool) -> Value {
    with(event("follow", source, true), "follow", json!({"isUnblocked": is_unblocked}))
}

/// `unfollow`: the bot was blocked.
pub fn unfollow(source: &Source) -> Value {
    Value::Object(event("unfollow", source, false))
}

/// `join`: the bot joined a group or room.
pub fn join(source: &Source) -> Value {
    Value::Object(event("join", source, true))
}

/// `leave`: the bot was removed from a group or left a room.
pub fn leave(source: &Source) -> Value {
    Value::Object(event("leave", source, false))
}

fn members(user_ids: &[&str]) -> Value {
    json!({"members": user_ids.iter().map(|u| json!({"type": "user", "userId": u})).collect::<Vec<_>>()})
}

/// `memberJoined`: users joined a group or room the bot is in.
pub fn member_joined(source: &Source, user_ids: &[&str]) -> Value {
    with(event("memberJoined", source, true), "joined", members(user_ids))
}

/// `memberLeft`: users left a group or room the bot is in.
pub fn member_left(source: &Source, user_ids: &[&str]) -> Value {
    with(event("memberLeft", source, false), "left", members(user_ids))
}

/// `unsend`: the user unsent message `message_id`.
pub fn unsend(source: &Source, message_id: &str) -> Value {
    with(event("unsend", source, false), "unsend", json!({"messageId": message_id}))
}

/// `postback`: `data`, and `params` (`{"date": "2026-01-01"}`, ...) when given.
pub fn postback(source: &Source, data: &str, params: Option<Value>) -> Value {
    let mut postback = json!({"data": data});
    if let Some(p) = params {
        postback["params"] = p;
    }
    with(event("postback", source, true), "postback", postback)
}

/// A LINE emoji inside a text message (`(hello)` in the text at `index`, `length` chars).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emoji {
    pub index: u32,
    pub length: u32,
    pub product_id: String,
    pub emoji_id: String,
}

/// A mention inside a text message: `user_id` None mentions everyone (`@All`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mention {
    pub index: u32,
    pub length: u32,
    pub user_id: Option<String>,
    /// The mentioned user is the bot.
    pub is_self: bool,
}

/// The optional parts of a text message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextExtras {
    pub emojis: Vec<Emoji>,
    pub mentions: Vec<Mention>,
    pub quoted_message_id: Option<String>,
}

/// A text message event.
pub fn text(source: &Source, message_id: &str, text: &str) -> Value {
    text_with(source, message_id, text, &TextExtras::default())
}

/// A text message event with LINE emojis, mentions or a quote.
pub fn text_with(source: &Source, message_id: &str, text: &str, extras: &TextExtras) -> Value {
    let mut message = json!({"type": "text", "id": message_id, "text": text, "quoteToken": quote_token(message_id)});
    if !extras.emojis.is_empty() {
        message["emojis"] = extras
            .emojis
            .iter()
            .map(|e| json!({"index": e.index, "length": e.length, "productId": e.product_id, "emojiId": e.emoji_id}))
            .collect();
    }
    if !extras.mentions.is_empty() {
        let mentionees: Vec<Value> = extras
            .mentions
            .iter()
            .map(|m| match &m.user_id {
                Some(user_id) => {
                    json!({"type": "user", "index": m.index, "length": m.length, "userId": user_id, "isSelf": m.is_self})
                }
                None => json!({"type": "all", "index": m.index, "length": m.length}),
            })
            .collect();
        message["mention"] = json!({ "mentionees": mentionees });
    }
    if let Some(q) = &extras.quoted_message_id {
        message["quotedMessageId"] = q.as_str().into();
    }
    message_event(source, message)
}

fn quote_token(message_id: &str) -> String {
    format!("q-{message_id}-{}", uuid::Uuid::new_v4().simple())
}

/// A sticker message event (`resource_type`: `STATIC`, `ANIMATION`, ...).
pub fn sticker(source: &Source, message_id: &str, package_id: &str, sticker_id: &str, resource_type: &str) -> Value {
    message_event(
        source,
        json!({
            "type": "sticker", "id": message_id, "packageId": package_id, "stickerId": sticker_id,
            "stickerResourceType": resource_type, "quoteToken": quote_token(message_id)
        }),
    )
}

fn line_provider() -> Value {
    json!({"type": "line"})
}

/// An image message event whose content is on LINE (`GET .../content`).
pub fn image(source: &Source, message_id: &str) -> Value {
    message_event(
        source,
        json!({"type": "image", "id": message_id, "contentProvider": line_provider(), "quoteToken": quote_token(message_id)}),
    )
}

/// A video message event whose content is on LINE.
pub fn video(source: &Source, message_id: &str, duration_ms: u64) -> Value {
    message_event(
        source,
        json!({
            "type": "video", "id": message_id, "duration": duration_ms, "contentProvider": line_provider(),
            "quoteToken": quote_token(message_id)
        }),
    )
}

/// An audio message event whose content is on LINE.
pub fn audio(source: &Source, message_id: &str, duration_ms: u64) -> Value {
    message_event(
        source,
        json!({"type": "audio", "id": message_id, "duration": duration_ms, "contentProvider": line_provider()}),
    )
}

/// A file message event whose content is on LINE.
pub fn file(source: &Source, message_id: &str, file_name: &str, file_size: u64) -> Value {
    message_event(source, json!({"type": "file", "id": message_id, "fileName": file_name, "fileSize": file_size}))
}

/// A location message event.
pub fn location(source: &Source, message_id: &str, title: &str, address: &str, latitude: f64, longitude: f64) -> Value {
    message_event(
        source,
        json!({
            "type": "location", "id": message_id, "title": title, "address": address,
            "latitude": latitude, "longitude": longitude
        }),
    )
}

/// A location message event without a title or an address (a pin dropped on the map: LINE
/// sends only the coordinates).
pub fn location_at(source: &Source, message_id: &str, latitude: f64, longitude: f64) -> Value {
    message_event(source, json!({"type": "location", "id": message_id, "latitude": latitude, "longitude": longitude}))
}

/// Where the content of an image, video or audio message is (`ContentProvider`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provider {
    /// On LINE: `GET /v2/bot/message/{id}/content` serves it (until LINE deletes it).
    Line,
    /// Elsewhere: the message was sent through the Messaging API with the sender's own URLs
    /// (LINE then serves no content for it).
    External { original_content_url: String, preview_image_url: Option<String> },
}

impl Provider {
    /// `External` with its URLs (`preview_image_url`: images and video only).
    pub fn external(original_content_url: &str, preview_image_url: Option<&str>) -> Self {
        Provider::External {
            original_content_url: original_content_url.to_owned(),
            preview_image_url: preview_image_url.map(str::to_owned),
        }
    }

    /// The `contentProvider` object.
    pub fn to_json(&self) -> Value {
        match self {
            Provider::Line => line_provider(),
            Provider::External { original_content_url, preview_image_url } => {
                let mut out = json!({"type": "external", "originalContentUrl": original_content_url});
                if let Some(preview) = preview_image_url {
                    out["previewImageUrl"] = preview.as_str().into();
                }
                out
            }
        }
    }
}

/// The `imageSet` of an image sent with others at once: the set's id, the image's place in it
/// (from 1; LINE 11.15 or earlier for Android sends none) and the set's size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSet {
    pub id: String,
    pub index: Option<u32>,
    pub total: Option<u32>,
}

/// An image message event whose content is where `provider` says, one of an `image_set`
/// when given.
pub fn image_with(source: &Source, message_id: &str, provider: &Provider, image_set: Option<&ImageSet>) -> Value {
    let mut message = json!({
        "type": "image", "id": message_id, "contentProvider": provider.to_json(), "quoteToken": quote_token(message_id)
    });
    if let Some(set) = image_set {
        let mut json_set = json!({"id": set.id});
        if let Some(index) = set.index {
            json_set["index"] = index.into();
        }
        if let Some(total) = set.total {
            json_set["total"] = total.into();
        }
        message["imageSet"] = json_set;
    }
    message_event(source, message)
}

/// The image message events of images sent at once (one event each, content on LINE, each
/// with the set's `set_id`, its index from 1 and the set's total).
pub fn image_set(source: &Source, set_id: &str, message_ids: &[&str]) -> Vec<Value> {
    let total = u32::try_from(message_ids.len()).unwrap_or(u32::MAX);
    message_ids
        .iter()
        .zip(1u32..)
        .map(|(id, index)| {
            let set = ImageSet { id: set_id.to_owned(), index: Some(index), total: Some(total) };
            image_with(source, id, &Provider::Line, Some(&set))
        })
        .collect()
}

/// A video message event whose content is where `provider` says (`duration_ms`: LINE may
/// leave it out).
pub fn video_with(source: &Source, message_id: &str, duration_ms: Option<u64>, provider: &Provider) -> Value {
    let mut message = json!({
        "type": "video", "id": message_id, "contentProvider": provider.to_json(), "quoteToken": quote_token(message_id)
    });
    if let Some(duration) = duration_ms {
        message["duration"] = duration.into();
    }
    message_event(source, message)
}

/// An audio message event whose content is where `provider` says (`duration_ms`: LINE may
/// leave it out).
pub fn audio_with(source: &Source, message_id: &str, duration_ms: Option<u64>, provider: &Provider) -> Value {
    let mut message = json!({"type": "audio", "id": message_id, "contentProvider": provider.to_json()});
    if let Some(duration) = duration_ms {
        message["duration"] = duration.into();
    }
    message_event(source, message)
}

/// Every `stickerResourceType` of webhook.yml (`STATIC`, ... `MESSAGE`: a message sticker,
/// with the user's `text`).
pub const STICKER_RESOURCE_TYPES: &[&str] = &[
    "STATIC",
    "ANIMATION",
    "SOUND",
    "ANIMATION_SOUND",
    "POPUP",
    "POPUP_SOUND",
    "CUSTOM",
    "MESSAGE",
    "NAME_TEXT",
    "PER_STICKER_TEXT",
];

/// The optional parts of a sticker message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StickerExtras {
    /// Up to 15 words describing the sticker (LINE marks the field experimental).
    pub keywords: Vec<String>,
    /// What the user wrote on a message sticker (`MESSAGE`, at most 100 characters).
    pub text: Option<String>,
    pub quoted_message_id: Option<String>,
}

/// A sticker message event with keywords, a message sticker's text or a quote.
pub fn sticker_with(
    source: &Source,
    message_id: &str,
    package_id: &str,
    sticker_id: &str,
    resource_type: &str,
    extras: &StickerExtras,
) -> Value {
    let mut event = sticker(source, message_id, package_id, sticker_id, resource_type);
    let message = &mut event["message"];
    if !extras.keywords.is_empty() {
        message["keywords"] = extras.keywords.iter().map(|k| Value::from(k.as_str())).collect();
    }
    if let Some(text) = &extras.text {
        message["text"] = text.as_str().into();
    }
    if let Some(q) = &extras.quoted_message_id {
        message["quotedMessageId"] = q.as_str().into();
    }
    event
}

/// The same message event with a fresh `markAsReadToken` (any message type: LINE adds it for
/// channels that may mark messages as read).
pub fn with_mark_as_read_token(event: &Value) -> Value {
    let mut out = event.clone();
    if let Some(message) = out.get_mut("message").and_then(Value::as_object_mut) {
        message.insert("markAsReadToken".into(), format!("mr-{}", uuid::Uuid::new_v4().simple()).into());
    }
    out
}

/// The same event as a channel in standby mode receives it (`mode: standby`, while a module
/// channel holds the chat): without its reply token, unless webhook.yml requires one for the
/// event's type.
pub fn standby(event: &Value) -> Value {
    let mut out = event.clone();
    out["mode"] = "standby".into();
    let kind = out.get("type").and_then(Value::as_str).unwrap_or_default().to_owned();
    if !event_requires(&kind, "replyToken") {
        if let Some(obj) = out.as_object_mut() {
            obj.remove("replyToken");
        }
    }
    out
}

/// An event of a channel-wide kind, without a source (LINE sends none for these).
fn sourceless(kind: &str) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("type".into(), kind.into());
    out.insert("timestamp".into(), now_ms().into());
    out.insert("mode".into(), "active".into());
    out.insert("webhookEventId".into(), new_event_id().into());
    out.insert("deliveryContext".into(), json!({"isRedelivery": false}));
    out
}

/// `videoPlayComplete`: the user watched, to its end, a video message the bot sent with
/// `trackingId`.
pub fn video_play_complete(source: &Source, tracking_id: &str) -> Value {
    with(event("videoPlayComplete", source, true), "videoPlayComplete", json!({"trackingId": tracking_id}))
}

/// Every `beacon.type` of webhook.yml.
pub const BEACON_TYPES: &[&str] = &["enter", "banner", "stay"];

/// `beacon`: the user's phone saw LINE Beacon `hwid` (`kind`: `enter`, `banner` (tapped the
/// beacon banner) or `stay`), with its device message `dm` (hex) when it has one.
pub fn beacon(source: &Source, hwid: &str, kind: &str, dm: Option<&str>) -> Value {
    let mut beacon = json!({"hwid": hwid, "type": kind});
    if let Some(dm) = dm {
        beacon["dm"] = dm.into();
    }
    with(event("beacon", source, true), "beacon", beacon)
}

/// `accountLink`: the user linked their LINE account with the provider's account using
/// `nonce` (`ok`), or failed to (`failed`, and then no reply token).
pub fn account_link(source: &Source, nonce: &str, ok: bool) -> Value {
    let result = if ok { "ok" } else { "failed" };
    with(event("accountLink", source, ok), "link", json!({"result": result, "nonce": nonce}))
}

/// Every `membership.type` of webhook.yml.
pub const MEMBERSHIP_TYPES: &[&str] = &["joined", "left", "renewed"];

/// `membership`: the user `joined`, `left` or `renewed` the account's paid membership
/// `membership_id`.
pub fn membership(source: &Source, kind: &str, membership_id: i64) -> Value {
    with(event("membership", source, true), "membership", json!({"type": kind, "membershipId": membership_id}))
}

/// `module` (`attached`): sent to a module channel attached to an account whose bot is
/// `bot_id`, with the `scopes` the account's admin granted. No source.
pub fn module_attached(bot_id: &str, scopes: &[&str]) -> Value {
    with(sourceless("module"), "module", json!({"type": "attached", "botId": bot_id, "scopes": scopes}))
}

/// `module` (`detached`): the module channel was detached from the account of `bot_id`
/// because that bot was deleted (`reason: bot_deleted`, the only reason). No source.
pub fn module_detached(bot_id: &str) -> Value {
    with(sourceless("module"), "module", json!({"type": "detached", "botId": bot_id, "reason": "bot_deleted"}))
}

/// `activated`: the module channel became the active channel of the chat with the user,
/// until `expire_at_ms` (`chatControl`).
pub fn activated(source: &Source, expire_at_ms: i64) -> Value {
    with(event("activated", source, false), "chatControl", json!({"expireAt": expire_at_ms}))
}

/// `deactivated`: the module channel went back to standby for the chat with the user.
pub fn deactivated(source: &Source) -> Value {
    Value::Object(event("deactivated", source, false))
}

/// `botSuspended`: the account was suspended (sent to module channels; no source).
pub fn bot_suspended() -> Value {
    Value::Object(sourceless("botSuspended"))
}

/// `botResumed`: the account is back from suspension (sent to module channels; no source).
pub fn bot_resumed() -> Value {
    Value::Object(sourceless("botResumed"))
}

/// `delivery` (`PnpDeliveryCompletionEvent`): a LINE notification message reached the user;
/// `data` is the hashed phone number or the request's `X-Line-Delivery-Tag`.
pub fn delivery(source: &Source, data: &str) -> Value {
    with(event("delivery", source, false), "delivery", json!({"data": data}))
}

/// The same event redelivered: `deliveryContext.isRedelivery` true, the same `webhookEventId`.
pub fn redelivered(event: &Value) -> Value {
    let mut out = event.clone();
    out["deliveryContext"] = json!({"isRedelivery": true});
    out
}

/// The webhook body `{destination, events}` (`CallbackRequest`).
pub fn callback(destination: &str, events: Vec<Value>) -> Value {
    json!({"destination": destination, "events": events})
}

/// Fill what a hand-written event may lack: `webhookEventId`, `timestamp`, `mode: active`,
/// `deliveryContext: {isRedelivery: false}`.
pub fn complete(event: &mut Value) {
    let Value::Object(obj) = event else { return };
    obj.entry("webhookEventId").or_insert_with(|| new_event_id().into());
    obj.entry("timestamp").or_insert_with(|| now_ms().into());
    obj.entry("mode").or_insert_with(|| "active".into());
    obj.entry("deliveryContext").or_insert_with(|| json!({"isRedelivery": false}));
}

// What webhook.yml defines, and how much of it a set of webhook bodies shows (the tests use
// it to prove their bodies hold every event and message shape of the spec).

const SCHEMAS: &str = "#/components/schemas/";

/// `webhook.yml` as JSON, as written (discriminators not converted).
fn webhook_doc() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| yaml_to_json(WEBHOOK_YML).expect("the embedded webhook.yml is valid YAML"))
}

fn component(name: &str) -> Option<&'static Value> {
    webhook_doc().get("components")?.get("schemas")?.get(name)
}

fn ref_name(schema: &Value) -> Option<&str> {
    schema.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix(SCHEMAS))
}

fn scalar(value: &Value) -> String {
    value.as_str().map_or_else(|| value.to_string(), str::to_owned)
}

/// A component's own parts: itself and the inline members of its `allOf` (its `$ref`
/// members are other components, their parents).
fn own_parts(schema: &Value) -> impl Iterator<Item = &Value> {
    let inline = schema.get("allOf").and_then(Value::as_array).into_iter().flatten().filter(|p| ref_name(p).is_none());
    std::iter::once(schema).chain(inline)
}

/// True when webhook.yml's schema of event type `kind` requires `field`.
fn event_requires(kind: &str, field: &str) -> bool {
    let Some(target) = component("Event")
        .and_then(|event| event.pointer(&format!("/discriminator/mapping/{kind}")))
        .and_then(Value::as_str)
        .and_then(|target| target.strip_prefix(SCHEMAS))
        .and_then(component)
    else {
        return false;
    };
    own_parts(target)
        .filter_map(|part| part.get("required").and_then(Value::as_array))
        .flatten()
        .any(|required| required == field)
}

/// The discriminated unions of webhook.yml: component name -> (property, the mapped values).
pub fn webhook_unions() -> BTreeMap<String, (String, BTreeSet<String>)> {
    let Some(schemas) = webhook_doc().get("components").and_then(|c| c.get("schemas")).and_then(Value::as_object)
    else {
        return BTreeMap::new();
    };
    schemas
        .iter()
        .filter_map(|(name, schema)| {
            let discriminator = schema.get("discriminator")?;
            let property = discriminator.get("propertyName")?.as_str()?.to_owned();
            let values = discriminator.get("mapping")?.as_object()?.keys().cloned().collect();
            Some((name.clone(), (property, values)))
        })
        .collect()
}

/// Every shape webhook.yml defines, named:
/// - `Union.type=value` for each value of each discriminator mapping (`Event.type=delivery`,
///   `MessageContent.type=sticker`, `Source.type=room`, `Mentionee.type=all`,
///   `MembershipContent.type=renewed`, `ModuleContent.type=detached`, ...);
/// - `Component.property` for each property of each component (`TextMessageContent.quotedMessageId`,
///   `ImageMessageContent.imageSet`, `ContentProvider.previewImageUrl`, ...);
/// - `Component.property=value` for each value of a property's enum
///   (`StickerMessageContent.stickerResourceType=POPUP`, `LinkContent.result=failed`, ...) and
///   `Component=value` for an enum component (`EventMode=standby`).
///
/// Derived from the spec alone: a newer webhook.yml with a new type or field names new shapes.
pub fn webhook_shapes() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let Some(schemas) = webhook_doc().get("components").and_then(|c| c.get("schemas")).and_then(Value::as_object)
    else {
        return out;
    };
    for (name, (property, values)) in webhook_unions() {
        out.extend(values.iter().map(|v| format!("{name}.{property}={v}")));
    }
    for (name, schema) in schemas {
        for value in schema.get("enum").and_then(Value::as_array).into_iter().flatten() {
            out.insert(format!("{name}={}", scalar(value)));
        }
        for part in own_parts(schema) {
            for (property, sub) in part.get("properties").and_then(Value::as_object).into_iter().flatten() {
                out.insert(format!("{name}.{property}"));
                for value in sub.get("enum").and_then(Value::as_array).into_iter().flatten() {
                    out.insert(format!("{name}.{property}={}", scalar(value)));
                }
            }
        }
    }
    // The envelope is the root, not a shape of an event.
    out.retain(|shape| !shape.starts_with("CallbackRequest."));
    out
}

/// The shapes (named as by [`webhook_shapes`]) that webhook bodies (`CallbackRequest`s) hold.
pub fn shapes_of(bodies: &[Value]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if let Some(root) = component("CallbackRequest") {
        for body in bodies {
            walk_component("CallbackRequest", root, body, true, &mut out);
        }
    }
    out.retain(|shape| !shape.starts_with("CallbackRequest."));
    out
}

/// The shapes of webhook.yml that none of the webhook bodies holds (empty: they cover it).
pub fn uncovered_shapes(bodies: &[Value]) -> Vec<String> {
    let seen = shapes_of(bodies);
    webhook_shapes().difference(&seen).cloned().collect()
}

/// Note the shapes `instance` shows of component `name`: its enum value, the mapped
/// subschema its discriminator chooses (`dispatch`: not when reached as a subschema's parent),
/// its parents' and its own properties.
fn walk_component(name: &str, schema: &Value, instance: &Value, dispatch: bool, out: &mut BTreeSet<String>) {
    if schema.get("enum").is_some() {
        out.insert(format!("{name}={}", scalar(instance)));
    }
    if let Some(discriminator) = schema.get("discriminator").filter(|_| dispatch) {
        let property = discriminator.get("propertyName").and_then(Value::as_str).unwrap_or("type");
        if let Some(value) = instance.get(property).and_then(Value::as_str) {
            out.insert(format!("{name}.{property}={value}"));
            let target = discriminator.get("mapping").and_then(|m| m.get(value)).and_then(Value::as_str);
            if let Some((target, sub)) =
                target.and_then(|t| t.strip_prefix(SCHEMAS)).and_then(|t| Some((t, component(t)?)))
            {
                walk_component(target, sub, instance, false, out);
                return;
            }
        }
    }
    for parent in schema.get("allOf").and_then(Value::as_array).into_iter().flatten() {
        if let Some((parent, sub)) = ref_name(parent).and_then(|p| Some((p, component(p)?))) {
            walk_component(parent, sub, instance, false, out);
        }
    }
    for part in own_parts(schema) {
        walk_properties(name, part, instance, out);
    }
}

fn walk_properties(owner: &str, schema: &Value, instance: &Value, out: &mut BTreeSet<String>) {
    let (Some(properties), Some(given)) = (schema.get("properties").and_then(Value::as_object), instance.as_object())
    else {
        return;
    };
    for (property, sub) in properties {
        let Some(value) = given.get(property) else { continue };
        out.insert(format!("{owner}.{property}"));
        if sub.get("enum").is_some() {
            out.insert(format!("{owner}.{property}={}", scalar(value)));
        }
        walk_value(owner, sub, value, out);
    }
}

fn walk_value(owner: &str, schema: &Value, value: &Value, out: &mut BTreeSet<String>) {
    if let Some((name, sub)) = ref_name(schema).and_then(|n| Some((n, component(n)?))) {
        walk_component(name, sub, value, true, out);
    } else if let (Some(items), Some(values)) = (schema.get("items"), value.as_array()) {
        for item in values {
            walk_value(owner, items, item, out);
        }
    } else {
        walk_properties(owner, schema, value, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{validate_callback, validate_event};

    const GROUP_ID: &str = "Ca56f94637c";
    const ROOM_ID: &str = "Ra8dbf4673c";
    const USER_ID: &str = "U4af4980629";

    /// One event of every builder, in every variant: together every shape of webhook.yml.
    fn all_builders() -> Vec<Value> {
        let user = Source::user(USER_ID);
        let group = Source::group(GROUP_ID, Some(USER_ID));
        let desktop_in_group = Source::group(GROUP_ID, None);
        let room = Source::room(ROOM_ID, None);
        let in_room = Source::room(ROOM_ID, Some(USER_ID));
        let extras = TextExtras {
            emojis: vec![Emoji {
                index: 0,
                length: 7,
                product_id: "5ac1bfd5040ab15980c9b435".into(),
                emoji_id: "001".into(),
            }],
            mentions: vec![
                Mention { index: 8, length: 4, user_id: Some("U0123".into()), is_self: true },
                Mention { index: 13, length: 4, user_id: None, is_self: false },
            ],
            quoted_message_id: Some("468789577898262530".into()),
        };
        let external = Provider::external("https://cdn.example/a.jpg", Some("https://cdn.example/a-preview.jpg"));
        let message_sticker = StickerExtras {
            keywords: vec!["cony".into(), "hello".into()],
            text: Some("See you at 7".into()),
            quoted_message_id: Some("1".into()),
        };
        let old_android = ImageSet { id: "E005D41A7288F41B65593ED38FF6E983".into(), index: None, total: None };
        let mut all = vec![
            follow(&user, false),
            follow(&user, true),
            unfollow(&user),
            text(&user, "1", "hello"),
            text(&group, "2", "hello"),
            text(&desktop_in_group, "2a", "from the desktop app"),
            text_with(&group, "3", "(hello) @bot @All", &extras),
            with_mark_as_read_token(&text(&user, "3a", "read me")),
            sticker(&room, "4", "446", "1988", "STATIC"),
            with_mark_as_read_token(&sticker_with(&user, "4a", "11537", "52002738", "MESSAGE", &message_sticker)),
            image(&user, "5"),
            with_mark_as_read_token(&image_with(&user, "5a", &external, None)),
            image_with(&user, "5b", &Provider::Line, Some(&old_android)),
            video(&user, "6", 6000),
            with_mark_as_read_token(&video_with(&in_room, "6a", None, &external)),
            audio(&user, "7", 3000),
            with_mark_as_read_token(&audio_with(
                &user,
                "7a",
                Some(1000),
                &Provider::external("https://cdn.example/a.m4a", None),
            )),
            file(&user, "8", "report.pdf", 2048),
            with_mark_as_read_token(&file(&user, "8a", "notes.txt", 12)),
            location(&user, "9", "Tokyo Tower", "4 Chome-2-8 Shibakoen", 35.6586, 139.7454),
            with_mark_as_read_token(&location_at(&in_room, "9a", 35.6586, 139.7454)),
            unsend(&group, "3"),
            join(&group),
            leave(&room),
            member_joined(&group, &["U1", "U2"]),
            member_left(&group, &["U1"]),
            postback(&user, "action=buy&id=1", None),
            postback(&user, "date", Some(json!({"date": "2026-01-01"}))),
            redelivered(&text(&user, "10", "again")),
            standby(&text(&user, "11", "while a module holds the chat")),
            standby(&follow(&user, false)),
            video_play_complete(&user, "track-1"),
            account_link(&user, "nonce-ok", true),
            account_link(&user, "nonce-failed", false),
            module_attached("U0123456789abcdef0123456789abcdef", &["message:send", "message:receive"]),
            module_detached("U0123456789abcdef0123456789abcdef"),
            activated(&user, 1_462_629_479_860),
            deactivated(&user),
            bot_suspended(),
            bot_resumed(),
            delivery(&user, "3c4f0d2c6e5b4a1f"),
        ];
        all.extend(image_set(
            &group,
            "E005D41A7288F41B65593ED38FF6E9834B046AB36A37921A56BC236F13A91855",
            &["12", "13"],
        ));
        all.extend(
            STICKER_RESOURCE_TYPES
                .iter()
                .enumerate()
                .map(|(i, kind)| sticker(&user, &format!("20{i}"), "446", "1988", kind)),
        );
        all.extend(BEACON_TYPES.iter().map(|kind| beacon(&user, "d41d8cd98f", kind, None)));
        all.push(beacon(&user, "d41d8cd98f", "enter", Some("1234567890abcdef")));
        all.extend(MEMBERSHIP_TYPES.iter().map(|kind| membership(&user, kind, 3189)));
        all
    }

    #[test]
    fn every_builder_validates_against_the_webhook_event_schema() {
        for event in all_builders() {
            assert_eq!(validate_event(&event), Vec::<String>::new(), "{event:#}");
        }
        let body = callback("U0123456789abcdef0123456789abcdef", all_builders());
        assert_eq!(validate_callback(&body), Vec::<String>::new());
    }

    #[test]
    fn the_builders_cover_every_event_and_message_shape_of_webhook_yml() {
        let unions = webhook_unions();
        for union in ["Event", "MessageContent", "Source", "Mentionee", "MembershipContent", "ModuleContent"] {
            assert!(unions.contains_key(union), "{union} is a discriminated union of webhook.yml: {unions:?}");
        }
        let events = &unions["Event"].1;
        assert!(events.contains("delivery") && events.contains("message") && events.len() >= 19, "{events:?}");
        let shapes = webhook_shapes();
        for (union, (property, values)) in &unions {
            for value in values {
                assert!(shapes.contains(&format!("{union}.{property}={value}")), "{union} {value}");
            }
        }
        for shape in ["EventMode=standby", "LinkContent.result=failed", "TextMessageContent.quotedMessageId"] {
            assert!(shapes.contains(shape), "{shape} in {shapes:?}");
        }
        let body = callback("U0123456789abcdef0123456789abcdef", all_builders());
        assert_eq!(uncovered_shapes(&[body]), Vec::<String>::new(), "shapes of webhook.yml no builder makes");
    }

    #[test]
    fn a_shape_no_body_holds_is_named() {
        let without_beacons: Vec<Value> = all_builders().into_iter().filter(|e| e["type"] != "beacon").collect();
        let uncovered = uncovered_shapes(&[callback("U0123456789abcdef0123456789abcdef", without_beacons)]);
        for shape in ["Event.type=beacon", "BeaconContent.type=stay", "BeaconContent.dm", "BeaconEvent.beacon"] {
            assert!(uncovered.contains(&shape.to_owned()), "{shape} in {uncovered:?}");
        }
        let only_text = callback("U0123456789abcdef0123456789abcdef", vec![text(&Source::user("U1"), "1", "hi")]);
        let seen = shapes_of(&[only_text]);
        assert!(seen.contains("MessageContent.type=text") && seen.contains("Source.type=user"), "{seen:?}");
        assert!(!seen.contains("TextMessageContent.emojis"), "{seen:?}");
    }

    #[test]
    fn the_listed_values_are_the_specs() {
        let shapes = webhook_shapes();
        let values = |prefix: &str| -> BTreeSet<String> {
            shapes.iter().filter_map(|s| s.strip_prefix(prefix)).map(str::to_owned).collect()
        };
        let listed = |l: &[&str]| -> BTreeSet<String> { l.iter().map(|s| (*s).to_owned()).collect() };
        assert_eq!(values("StickerMessageContent.stickerResourceType="), listed(STICKER_RESOURCE_TYPES));
        assert_eq!(values("BeaconContent.type="), listed(BEACON_TYPES));
        assert_eq!(values("MembershipContent.type="), listed(MEMBERSHIP_TYPES));
    }

    #[test]
    fn standby_keeps_a_reply_token_only_where_the_spec_requires_one() {
        let user = Source::user("U1");
        let message = standby(&text(&user, "1", "hi"));
        assert_eq!(message["mode"], "standby");
        assert!(message.get("replyToken").is_none(), "{message}");
        let followed = standby(&follow(&user, false));
        assert!(followed.get("replyToken").is_some(), "the spec requires it of follow: {followed}");
        for event in [message, followed] {
            assert_eq!(validate_event(&event), Vec::<String>::new(), "{event:#}");
        }
        assert!(account_link(&user, "n", false).get("replyToken").is_none());
        assert!(account_link(&user, "n", true).get("replyToken").is_some());
    }

    #[test]
    fn the_event_schema_rejects_what_line_never_sends() {
        let mut text_without_quote = text(&Source::user("U1"), "1", "hi");
        text_without_quote["message"].as_object_mut().unwrap().remove("quoteToken");
        assert!(!validate_event(&text_without_quote).is_empty());
        let mut unknown = unfollow(&Source::user("U1"));
        unknown["type"] = "greatNewEvent".into();
        assert!(!validate_event(&unknown).is_empty());
        let mut bad_source = unfollow(&Source::user("U1"));
        bad_source["source"] = json!({"type": "group"});
        assert!(!validate_event(&bad_source).is_empty());
    }

    #[test]
    fn event_ids_are_ulids() {
        let id = new_event_id();
        assert_eq!(id.len(), 26);
        assert!(id.bytes().all(|b| CROCKFORD.contains(&b)));
        assert_ne!(id, new_event_id());
    }

    #[test]
    fn complete_fills_only_what_is_missing() {
        let mut event = json!({"type": "unfollow", "source": {"type": "user", "userId": "U1"}, "timestamp": 5});
        complete(&mut event);
        assert_eq!(event["timestamp"], 5);
        assert_eq!(event["mode"], "active");
        assert_eq!(event["deliveryContext"]["isRedelivery"], false);
        assert!(validate_event(&event).is_empty());
    }
}
