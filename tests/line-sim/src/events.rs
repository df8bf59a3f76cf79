//! Webhook event builders: JSON in the shapes of `webhook.yml` (each builder's output is
//! checked against its `Event` schema in the tests below). Every event is complete (type,
//! source, timestamp, `mode: active`, a fresh `webhookEventId`, `deliveryContext`, and a
//! `replyToken` on replyable events); change fields with ordinary `serde_json` access.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{validate_callback, validate_event};

    fn all_builders() -> Vec<Value> {
        let user = Source::user("U4af4980629");
        let group = Source::group("Ca56f94637c", Some("U4af4980629"));
        let room = Source::room("Ra8dbf4673c", None);
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
        vec![
            follow(&user, false),
            follow(&user, true),
            unfollow(&user),
            text(&user, "1", "hello"),
            text(&group, "2", "hello"),
            text_with(&group, "3", "(hello) @bot @All", &extras),
            sticker(&room, "4", "446", "1988", "STATIC"),
            image(&user, "5"),
            video(&user, "6", 6000),
            audio(&user, "7", 3000),
            file(&user, "8", "report.pdf", 2048),
            location(&user, "9", "Tokyo Tower", "4 Chome-2-8 Shibakoen", 35.6586, 139.7454),
            unsend(&group, "3"),
            join(&group),
            leave(&room),
            member_joined(&group, &["U1", "U2"]),
            member_left(&group, &["U1"]),
            postback(&user, "action=buy&id=1", None),
            postback(&user, "date", Some(json!({"date": "2026-01-01"}))),
            redelivered(&text(&user, "10", "again")),
        ]
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
