//! What LINE sends (`../shared/line-openapi/webhook.yml`), read without I/O: the signature of a
//! webhook body, its envelope (`destination` and the events, each kept as raw JSON for the
//! inbox), and the events this slice acts on.
//!
//! The signature is checked on the raw bytes before anything is parsed: LINE may escape
//! non-ASCII text (`\uD83E\uDD28`), so a body parsed and serialised again would not verify.
//! Unknown fields are ignored everywhere (LINE adds fields without notice); an unknown event
//! or message type is kept as its type name, never an error.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::Sha256;

use crate::media::MediaKind;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-line-signature";

/// The longest webhook event id kept (LINE's are 26-character ULIDs).
const MAX_EVENT_ID_LEN: usize = 128;

/// The longest LINE user id accepted (LINE's are `U` and 32 hex digits).
const MAX_LINE_USER_ID_LEN: usize = 64;

/// True when `signature` (the header's value) is base64(HMAC-SHA256(channel secret, body)).
/// Compared in constant time.
pub fn signature_matches(secret: &SecretString, body: &[u8], signature: &str) -> bool {
    let Ok(expected) = BASE64.decode(signature.trim()) else { return false };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes()) else { return false };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// A webhook body: the bot's user id and the events, each as sent.
#[derive(Debug, Deserialize)]
pub struct Envelope {
    pub destination: String,
    pub events: Vec<serde_json::Value>,
}

/// Why a webhook body is refused after its signature verified.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    #[error("the body is not a webhook envelope: {0}")]
    Malformed(String),
    #[error("event {index} has no valid webhookEventId")]
    MissingEventId { index: usize },
}

/// One event of an envelope, ready for the inbox.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxEvent {
    pub webhook_event_id: String,
    /// The event exactly as LINE's JSON held it (re-serialised compactly).
    pub json: String,
}

/// Parse an envelope and give each event its id. Refuses the whole body if one event has no
/// `webhookEventId` (nothing is stored then).
pub fn parse_envelope(body: &[u8]) -> Result<(String, Vec<InboxEvent>), EnvelopeError> {
    let envelope: Envelope = serde_json::from_slice(body).map_err(|err| EnvelopeError::Malformed(err.to_string()))?;
    let events = envelope
        .events
        .into_iter()
        .enumerate()
        .map(|(index, event)| {
            let webhook_event_id = event
                .get("webhookEventId")
                .and_then(serde_json::Value::as_str)
                .filter(|id| !id.is_empty() && id.len() <= MAX_EVENT_ID_LEN)
                .ok_or(EnvelopeError::MissingEventId { index })?
                .to_owned();
            Ok(InboxEvent { webhook_event_id, json: event.to_string() })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((envelope.destination, events))
}

/// What a message of a LINE user holds, as far as this slice goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    Text {
        text: String,
    },
    Sticker {
        package_id: String,
        sticker_id: String,
    },
    Location {
        title: Option<String>,
        address: Option<String>,
        latitude: f64,
        longitude: f64,
    },
    /// Image, video, audio or file: its content is on LINE (`Line`: downloaded at once) or
    /// elsewhere (`External`: the URL is posted as it is).
    Media {
        kind: MediaKind,
        provider: ContentProvider,
        /// LINE's `fileName` and `fileSize` (files only).
        file_name: Option<String>,
        file_size: Option<u64>,
    },
    /// Any newer type: counted (`unsupported_for_now`) and skipped, never posted as a
    /// placeholder text.
    Unsupported {
        kind: String,
    },
}

/// Where a medium's content is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContentProvider {
    /// On LINE, until LINE deletes it.
    Line,
    /// At the sender's URL (`originalContentUrl`).
    External { original_url: String },
}

/// An event, as this slice acts on it.
#[derive(Debug, Clone, PartialEq)]
pub enum LineEvent {
    /// A LINE user added the channel as a friend (or unblocked it).
    Follow { line_user_id: String, timestamp: i64 },
    /// A LINE user blocked the channel.
    Unfollow { line_user_id: String, timestamp: i64 },
    Message {
        chat: Chat,
        timestamp: i64,
        /// LINE's id of the message (`message.id`; empty if LINE sent none).
        line_message_id: String,
        /// The id of the message it quotes (`message.quotedMessageId`: text and stickers).
        quoted_message_id: Option<String>,
        message: Inbound,
    },
    /// A LINE user unsent one of their messages.
    Unsend { chat: Chat, line_message_id: String },
    /// The channel's account was invited into a LINE group (or multi-person chat).
    Join { group_id: String },
    /// The channel's account was removed from a LINE group (or left a multi-person chat).
    Leave { group_id: String },
    /// LINE users joined a group the account is in.
    MembersJoined { group_id: String, line_user_ids: Vec<String> },
    /// LINE users left a group the account is in.
    MembersLeft { group_id: String, line_user_ids: Vec<String> },
    /// An event of a kind handled only for some sources (a follow from a group), or without a
    /// source.
    OtherSource { kind: String, source: String },
    /// Any other event type: ignored.
    Other { kind: String },
}

/// Where a message was written: a LINE user's 1:1 chat with the account, or a LINE group
/// (`C...`) or multi-person chat (`R...`) the account is in, with the writer's id when LINE
/// gives it (only for LINE's phone apps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chat {
    User(String),
    Group { group_id: String, line_user_id: Option<String> },
}

impl LineEvent {
    /// The event's type as LINE names it (for the metrics).
    pub fn kind(&self) -> &str {
        match self {
            LineEvent::Follow { .. } => "follow",
            LineEvent::Unfollow { .. } => "unfollow",
            LineEvent::Message { .. } => "message",
            LineEvent::Unsend { .. } => "unsend",
            LineEvent::Join { .. } => "join",
            LineEvent::Leave { .. } => "leave",
            LineEvent::MembersJoined { .. } => "memberJoined",
            LineEvent::MembersLeft { .. } => "memberLeft",
            LineEvent::OtherSource { kind, .. } | LineEvent::Other { kind } => kind,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEvent {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    source: Option<RawSource>,
    timestamp: i64,
    #[serde(default)]
    message: Option<serde_json::Value>,
    #[serde(default)]
    unsend: Option<RawUnsend>,
    #[serde(default)]
    joined: Option<RawMembers>,
    #[serde(default)]
    left: Option<RawMembers>,
}

#[derive(Deserialize)]
struct RawMembers {
    members: Vec<RawSource>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawUnsend {
    message_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMedia {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    content_provider: Option<RawProvider>,
    #[serde(default)]
    file_name: Option<String>,
    #[serde(default)]
    file_size: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawProvider {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    original_content_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSource {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    group_id: Option<String>,
    #[serde(default)]
    room_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
enum RawMessage {
    Text {
        text: String,
    },
    #[serde(rename_all = "camelCase")]
    Sticker {
        package_id: String,
        sticker_id: String,
    },
    Location {
        #[serde(default)]
        title: Option<String>,
        #[serde(default)]
        address: Option<String>,
        latitude: f64,
        longitude: f64,
    },
}

/// A stored event that is not what LINE's schema promises (a known type missing a field).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("undecodable event: {0}")]
pub struct UndecodableEvent(pub String);

fn is_line_user_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_LINE_USER_ID_LEN && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Read one stored event.
pub fn parse_event(json: &str) -> Result<LineEvent, UndecodableEvent> {
    let raw: RawEvent = serde_json::from_str(json).map_err(|err| UndecodableEvent(err.to_string()))?;
    let kind = raw.kind.as_str();
    if !matches!(kind, "follow" | "unfollow" | "message" | "unsend" | "join" | "leave" | "memberJoined" | "memberLeft")
    {
        return Ok(LineEvent::Other { kind: raw.kind });
    }
    let Some(source) = raw.source else {
        return Ok(LineEvent::OtherSource { kind: raw.kind, source: "none".into() });
    };
    let chat = chat_of(&source)?;
    let timestamp = raw.timestamp;
    Ok(match (kind, chat) {
        ("follow", Chat::User(line_user_id)) => LineEvent::Follow { line_user_id, timestamp },
        ("unfollow", Chat::User(line_user_id)) => LineEvent::Unfollow { line_user_id, timestamp },
        ("join", Chat::Group { group_id, .. }) => LineEvent::Join { group_id },
        ("leave", Chat::Group { group_id, .. }) => LineEvent::Leave { group_id },
        ("memberJoined", Chat::Group { group_id, .. }) => {
            LineEvent::MembersJoined { group_id, line_user_ids: members(raw.joined, "joined")? }
        }
        ("memberLeft", Chat::Group { group_id, .. }) => {
            LineEvent::MembersLeft { group_id, line_user_ids: members(raw.left, "left")? }
        }
        ("unsend", chat) => {
            let unsend = raw.unsend.ok_or_else(|| UndecodableEvent("an unsend event without its message".into()))?;
            LineEvent::Unsend { chat, line_message_id: unsend.message_id }
        }
        ("message", chat) => {
            let message = raw.message.ok_or_else(|| UndecodableEvent("a message event without a message".into()))?;
            let field = |name: &str| message.get(name).and_then(serde_json::Value::as_str).map(str::to_owned);
            let line_message_id = field("id").unwrap_or_default();
            let quoted_message_id = field("quotedMessageId").filter(|id| !id.is_empty());
            LineEvent::Message { chat, timestamp, line_message_id, quoted_message_id, message: parse_message(message)? }
        }
        (_, _) => LineEvent::OtherSource { kind: raw.kind.clone(), source: source.kind },
    })
}

/// The chat of an event's source; ids are checked (they become room participants).
fn chat_of(source: &RawSource) -> Result<Chat, UndecodableEvent> {
    let user = match source.user_id.as_deref() {
        Some(id) if is_line_user_id(id) => Some(id.to_owned()),
        Some(id) => return Err(UndecodableEvent(format!("invalid LINE user id of length {}", id.len()))),
        None => None,
    };
    let group = match source.kind.as_str() {
        "user" => {
            return user.map(Chat::User).ok_or_else(|| UndecodableEvent("a user source without its userId".into()))
        }
        "group" => source.group_id.as_deref(),
        "room" => source.room_id.as_deref(),
        other => return Err(UndecodableEvent(format!("unknown source type {other:?}"))),
    };
    match group {
        Some(id) if is_line_user_id(id) => Ok(Chat::Group { group_id: id.to_owned(), line_user_id: user }),
        _ => Err(UndecodableEvent(format!("a {} source without a valid id", source.kind))),
    }
}

/// The LINE user ids of a memberJoined / memberLeft event.
fn members(members: Option<RawMembers>, field: &str) -> Result<Vec<String>, UndecodableEvent> {
    let members = members.ok_or_else(|| UndecodableEvent(format!("a member event without `{field}`")))?;
    members
        .members
        .iter()
        .map(|member| match member.user_id.as_deref() {
            Some(id) if is_line_user_id(id) => Ok(id.to_owned()),
            _ => Err(UndecodableEvent(format!("a `{field}` member without a valid userId"))),
        })
        .collect()
}

fn parse_message(message: serde_json::Value) -> Result<Inbound, UndecodableEvent> {
    let kind = message
        .get("type")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| UndecodableEvent("a message without a type".into()))?
        .to_owned();
    if let Some(media_kind) = MediaKind::from_line(&kind) {
        return parse_media(media_kind, message);
    }
    if !matches!(kind.as_str(), "text" | "sticker" | "location") {
        return Ok(Inbound::Unsupported { kind });
    }
    let raw: RawMessage = serde_json::from_value(message).map_err(|err| UndecodableEvent(err.to_string()))?;
    Ok(match raw {
        RawMessage::Text { text } => Inbound::Text { text },
        RawMessage::Sticker { package_id, sticker_id } => Inbound::Sticker { package_id, sticker_id },
        RawMessage::Location { title, address, latitude, longitude } => {
            Inbound::Location { title, address, latitude, longitude }
        }
    })
}

/// An image, video, audio or file message: a file's content is always on LINE; the others
/// say where theirs is.
fn parse_media(kind: MediaKind, message: serde_json::Value) -> Result<Inbound, UndecodableEvent> {
    let raw: RawMedia = serde_json::from_value(message).map_err(|err| UndecodableEvent(err.to_string()))?;
    debug_assert_eq!(MediaKind::from_line(&raw.kind), Some(kind));
    let provider = match (kind, raw.content_provider) {
        (MediaKind::File, _) => ContentProvider::Line,
        (_, None) => return Err(UndecodableEvent(format!("a {} message without contentProvider", kind.as_str()))),
        (_, Some(provider)) => match provider.kind.as_str() {
            "line" => ContentProvider::Line,
            "external" => match provider.original_content_url.filter(|url| !url.is_empty()) {
                Some(original_url) => ContentProvider::External { original_url },
                None => return Err(UndecodableEvent("an external content without originalContentUrl".into())),
            },
            other => return Err(UndecodableEvent(format!("unknown content provider {other:?}"))),
        },
    };
    Ok(Inbound::Media { kind, provider, file_name: raw.file_name, file_size: raw.file_size })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "8c570fa6dd201bb328f1c1eac23a96d8";

    fn sign(secret: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body);
        BASE64.encode(mac.finalize().into_bytes())
    }

    #[test]
    fn a_signature_made_with_the_channel_secret_verifies() {
        let secret = SecretString::from(SECRET);
        let body = br#"{"destination":"U0123456789abcdef0123456789abcdef","events":[]}"#;
        let signature = sign(SECRET, body);
        assert!(signature_matches(&secret, body, &signature));
        assert!(!signature_matches(&SecretString::from("another secret"), body, &signature));
        assert!(!signature_matches(&secret, b"{\"destination\":\"x\",\"events\":[]}", &signature));
        assert!(!signature_matches(&secret, body, ""));
        assert!(!signature_matches(&secret, body, "not base64!"));
        assert!(!signature_matches(&secret, body, &signature[..20]));
    }

    #[test]
    fn a_known_vector_verifies() {
        // HMAC-SHA256(key "key", "The quick brown fox jumps over the lazy dog") (RFC 4231 style
        // vector published with the algorithm), in base64.
        let secret = SecretString::from("key");
        let body = b"The quick brown fox jumps over the lazy dog";
        let expected_hex = "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8";
        let bytes: Vec<u8> = (0..expected_hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&expected_hex[i..i + 2], 16).unwrap())
            .collect();
        assert!(signature_matches(&secret, body, &BASE64.encode(&bytes)));
        assert_eq!(sign("key", body), BASE64.encode(&bytes));
    }

    #[test]
    fn escaped_text_verifies_on_the_raw_bytes_only() {
        let secret = SecretString::from(SECRET);
        let body =
            br#"{"destination":"U1","events":[{"type":"message","message":{"type":"text","text":"\uD83E\uDD28"}}]}"#;
        let signature = sign(SECRET, body);
        assert!(signature_matches(&secret, body, &signature));
        let reserialised = serde_json::to_vec(&serde_json::from_slice::<serde_json::Value>(body).unwrap()).unwrap();
        assert_ne!(reserialised.as_slice(), body.as_slice());
        assert!(!signature_matches(&secret, &reserialised, &signature), "re-serialised JSON does not verify");
    }

    fn event(kind: &str, extra: &str) -> String {
        format!(
            r#"{{"type":"{kind}","mode":"active","timestamp":1462629479859,
            "source":{{"type":"user","userId":"U4af4980629aaaaaaaaaaaaaaaaaaaaaaaa"}},
            "webhookEventId":"01FZ74A0TDDPYRVKNK77XKC3ZR","deliveryContext":{{"isRedelivery":false}}{extra}}}"#
        )
    }

    const USER: &str = "U4af4980629aaaaaaaaaaaaaaaaaaaaaaaa";

    #[test]
    fn follow_and_unfollow_events_parse() {
        let follow =
            event("follow", r#","replyToken":"85cbe770fa8b4f45bbe077b1d4be4a36","follow":{"isUnblocked":false}"#);
        assert_eq!(
            parse_event(&follow).unwrap(),
            LineEvent::Follow { line_user_id: USER.into(), timestamp: 1_462_629_479_859 }
        );
        assert_eq!(
            parse_event(&event("unfollow", "")).unwrap(),
            LineEvent::Unfollow { line_user_id: USER.into(), timestamp: 1_462_629_479_859 }
        );
    }

    #[test]
    fn text_sticker_and_location_messages_parse() {
        let text = event(
            "message",
            r#","replyToken":"r","message":{"id":"444573844083572737","type":"text","quoteToken":"q",
            "text":"@All @example Good Morning!! (love)","emojis":[{"index":29,"length":6,"productId":"5ac1bfd5040ab15980c9b435","emojiId":"001"}]}"#,
        );
        let LineEvent::Message { message, chat, quoted_message_id, .. } = parse_event(&text).unwrap() else { panic!() };
        assert_eq!(chat, Chat::User(USER.into()));
        assert_eq!(quoted_message_id, None);
        assert_eq!(message, Inbound::Text { text: "@All @example Good Morning!! (love)".into() });

        let sticker = event(
            "message",
            r#","message":{"type":"sticker","id":"1501597916","quoteToken":"q","stickerId":"52002738","quotedMessageId":"468789577898262530",
            "packageId":"11537","stickerResourceType":"ANIMATION","keywords":["cony","sally"]}"#,
        );
        let LineEvent::Message { message, quoted_message_id, .. } = parse_event(&sticker).unwrap() else { panic!() };
        assert_eq!(quoted_message_id.as_deref(), Some("468789577898262530"));
        assert_eq!(message, Inbound::Sticker { package_id: "11537".into(), sticker_id: "52002738".into() });

        let location = event(
            "message",
            r#","message":{"id":"325708","type":"location","title":"my location",
            "address":"1-3 Kioicho, Chiyoda-ku, Tokyo, 102-8282, Japan","latitude":35.67966,"longitude":139.73669}"#,
        );
        let LineEvent::Message { message, .. } = parse_event(&location).unwrap() else { panic!() };
        assert_eq!(
            message,
            Inbound::Location {
                title: Some("my location".into()),
                address: Some("1-3 Kioicho, Chiyoda-ku, Tokyo, 102-8282, Japan".into()),
                latitude: 35.67966,
                longitude: 139.73669,
            }
        );
    }

    #[test]
    fn media_messages_say_where_their_content_is_and_other_events_and_sources_are_named() {
        let image = event(
            "message",
            r#","message":{"id":"354718705033693859","type":"image","quoteToken":"q","contentProvider":{"type":"line"}}"#,
        );
        let LineEvent::Message { message, line_message_id, .. } = parse_event(&image).unwrap() else { panic!() };
        assert_eq!(line_message_id, "354718705033693859");
        let line = ContentProvider::Line;
        assert_eq!(
            message,
            Inbound::Media { kind: MediaKind::Image, provider: line, file_name: None, file_size: None }
        );
        let external = event(
            "message",
            r#","message":{"id":"5","type":"video","duration":6000,"contentProvider":{"type":"external",
            "originalContentUrl":"https://cdn.example/v.mp4","previewImageUrl":"https://cdn.example/v.jpg"}}"#,
        );
        let LineEvent::Message { message, .. } = parse_event(&external).unwrap() else { panic!() };
        let provider = ContentProvider::External { original_url: "https://cdn.example/v.mp4".into() };
        assert_eq!(message, Inbound::Media { kind: MediaKind::Video, provider, file_name: None, file_size: None });
        let file = event("message", r#","message":{"id":"6","type":"file","fileName":"a.pdf","fileSize":2138}"#);
        let LineEvent::Message { message, .. } = parse_event(&file).unwrap() else { panic!() };
        let (file_name, file_size) = (Some("a.pdf".to_owned()), Some(2138));
        assert_eq!(
            message,
            Inbound::Media { kind: MediaKind::File, provider: ContentProvider::Line, file_name, file_size }
        );
        let no_provider = event("message", r#","message":{"id":"7","type":"audio","duration":1}"#);
        assert!(parse_event(&no_provider).is_err());
        let newer = event("message", r#","message":{"id":"8","type":"hologram"}"#);
        let LineEvent::Message { message, .. } = parse_event(&newer).unwrap() else { panic!() };
        assert_eq!(message, Inbound::Unsupported { kind: "hologram".into() });

        let unsend = event("unsend", r#","unsend":{"messageId":"325708"}"#);
        assert_eq!(
            parse_event(&unsend).unwrap(),
            LineEvent::Unsend { chat: Chat::User(USER.into()), line_message_id: "325708".into() }
        );
        assert!(parse_event(&event("unsend", "")).is_err());

        let postback = event("postback", r#","postback":{"data":"a=1"}"#);
        assert_eq!(parse_event(&postback).unwrap(), LineEvent::Other { kind: "postback".into() });
        assert_eq!(parse_event(&postback).unwrap().kind(), "postback");

        let in_group = |kind: &str, source: &str, rest: &str| {
            format!(
                r#"{{"type":"{kind}","timestamp":1,"source":{source}{rest},"webhookEventId":"e","mode":"active",
                "deliveryContext":{{"isRedelivery":false}}}}"#
            )
        };
        let group = r#"{"type":"group","groupId":"Ca56f9","userId":"U1"}"#;
        let said = in_group("message", group, r#","message":{"type":"text","id":"1","text":"hi"}"#);
        let LineEvent::Message { chat, .. } = parse_event(&said).unwrap() else { panic!() };
        assert_eq!(chat, Chat::Group { group_id: "Ca56f9".into(), line_user_id: Some("U1".into()) });
        let desktop = in_group(
            "message",
            r#"{"type":"room","roomId":"Ra8dbf"}"#,
            r#","message":{"type":"text","id":"1","text":"hi"}"#,
        );
        let LineEvent::Message { chat, .. } = parse_event(&desktop).unwrap() else { panic!() };
        assert_eq!(chat, Chat::Group { group_id: "Ra8dbf".into(), line_user_id: None });
        let bare_group = r#"{"type":"group","groupId":"Ca56f9"}"#;
        assert_eq!(
            parse_event(&in_group("join", bare_group, "")).unwrap(),
            LineEvent::Join { group_id: "Ca56f9".into() }
        );
        assert_eq!(
            parse_event(&in_group("leave", bare_group, "")).unwrap(),
            LineEvent::Leave { group_id: "Ca56f9".into() }
        );
        let joined = in_group(
            "memberJoined",
            bare_group,
            r#","joined":{"members":[{"type":"user","userId":"U1"},{"type":"user","userId":"U2"}]}"#,
        );
        assert_eq!(
            parse_event(&joined).unwrap(),
            LineEvent::MembersJoined { group_id: "Ca56f9".into(), line_user_ids: vec!["U1".into(), "U2".into()] }
        );
        let left = in_group("memberLeft", bare_group, r#","left":{"members":[{"type":"user","userId":"U1"}]}"#);
        assert_eq!(
            parse_event(&left).unwrap(),
            LineEvent::MembersLeft { group_id: "Ca56f9".into(), line_user_ids: vec!["U1".into()] }
        );
        assert!(parse_event(&in_group("memberLeft", bare_group, "")).is_err(), "without `left`");
        assert!(parse_event(&in_group("join", r#"{"type":"group"}"#, "")).is_err(), "without a group id");
        assert_eq!(
            parse_event(&in_group("follow", bare_group, "")).unwrap(),
            LineEvent::OtherSource { kind: "follow".into(), source: "group".into() }
        );
    }

    #[test]
    fn a_known_type_without_its_fields_is_undecodable() {
        assert!(parse_event(&event("message", "")).is_err());
        assert!(parse_event(&event("message", r#","message":{"type":"text","id":"1"}"#)).is_err());
        assert!(parse_event(r#"{"type":"follow","source":{"type":"user","userId":"U1"}}"#).is_err());
        assert!(parse_event("[]").is_err());
    }

    #[test]
    fn an_envelope_gives_each_event_its_id_and_refuses_events_without_one() {
        let body = format!(r#"{{"destination":"Uab","events":[{},{}]}}"#, event("follow", ""), event("unfollow", ""));
        let (destination, events) = parse_envelope(body.as_bytes()).unwrap();
        assert_eq!(destination, "Uab");
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].webhook_event_id, "01FZ74A0TDDPYRVKNK77XKC3ZR");
        assert_eq!(parse_event(&events[1].json).unwrap().kind(), "unfollow");

        let (_, none) = parse_envelope(br#"{"destination":"Uab","events":[]}"#).unwrap();
        assert!(none.is_empty());
        let without_id = br#"{"destination":"Uab","events":[{"type":"follow"}]}"#;
        assert_eq!(parse_envelope(without_id), Err(EnvelopeError::MissingEventId { index: 0 }));
        assert!(matches!(parse_envelope(b"{"), Err(EnvelopeError::Malformed(_))));
        assert!(matches!(parse_envelope(br#"{"events":[]}"#), Err(EnvelopeError::Malformed(_))));
    }
}
