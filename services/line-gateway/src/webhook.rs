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
        line_user_id: String,
        timestamp: i64,
        /// LINE's id of the message (`message.id`; empty if LINE sent none).
        line_message_id: String,
        message: Inbound,
    },
    /// The LINE user unsent one of their messages.
    Unsend { line_user_id: String, line_message_id: String },
    /// An event from a group or a multi-person chat (or without a source): a later slice.
    OtherSource { kind: String, source: String },
    /// Any other event type: ignored.
    Other { kind: String },
}

impl LineEvent {
    /// The event's type as LINE names it (for the metrics).
    pub fn kind(&self) -> &str {
        match self {
            LineEvent::Follow { .. } => "follow",
            LineEvent::Unfollow { .. } => "unfollow",
            LineEvent::Message { .. } => "message",
            LineEvent::Unsend { .. } => "unsend",
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
    if !matches!(raw.kind.as_str(), "follow" | "unfollow" | "message" | "unsend") {
        return Ok(LineEvent::Other { kind: raw.kind });
    }
    let line_user_id = match raw.source {
        Some(RawSource { kind, user_id: Some(user_id) }) if kind == "user" => user_id,
        Some(RawSource { kind, .. }) => return Ok(LineEvent::OtherSource { kind: raw.kind, source: kind }),
        None => return Ok(LineEvent::OtherSource { kind: raw.kind, source: "none".into() }),
    };
    if !is_line_user_id(&line_user_id) {
        return Err(UndecodableEvent(format!("invalid LINE user id of length {}", line_user_id.len())));
    }
    let timestamp = raw.timestamp;
    Ok(match raw.kind.as_str() {
        "follow" => LineEvent::Follow { line_user_id, timestamp },
        "unfollow" => LineEvent::Unfollow { line_user_id, timestamp },
        "unsend" => {
            let unsend = raw.unsend.ok_or_else(|| UndecodableEvent("an unsend event without its message".into()))?;
            LineEvent::Unsend { line_user_id, line_message_id: unsend.message_id }
        }
        _ => {
            let message = raw.message.ok_or_else(|| UndecodableEvent("a message event without a message".into()))?;
            let line_message_id = message.get("id").and_then(serde_json::Value::as_str).unwrap_or_default().to_owned();
            LineEvent::Message { line_user_id, timestamp, line_message_id, message: parse_message(message)? }
        }
    })
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
        let LineEvent::Message { message, line_user_id, .. } = parse_event(&text).unwrap() else { panic!() };
        assert_eq!(line_user_id, USER);
        assert_eq!(message, Inbound::Text { text: "@All @example Good Morning!! (love)".into() });

        let sticker = event(
            "message",
            r#","message":{"type":"sticker","id":"1501597916","quoteToken":"q","stickerId":"52002738",
            "packageId":"11537","stickerResourceType":"ANIMATION","keywords":["cony","sally"]}"#,
        );
        let LineEvent::Message { message, .. } = parse_event(&sticker).unwrap() else { panic!() };
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
            LineEvent::Unsend { line_user_id: USER.into(), line_message_id: "325708".into() }
        );
        assert!(parse_event(&event("unsend", "")).is_err());

        let postback = event("postback", r#","postback":{"data":"a=1"}"#);
        assert_eq!(parse_event(&postback).unwrap(), LineEvent::Other { kind: "postback".into() });
        assert_eq!(parse_event(&postback).unwrap().kind(), "postback");

        let group = r#"{"type":"message","timestamp":1,"source":{"type":"group","groupId":"Ca56f9","userId":"U1"},
            "message":{"type":"text","id":"1","text":"hi"},"webhookEventId":"e","mode":"active","deliveryContext":{"isRedelivery":false}}"#;
        assert_eq!(
            parse_event(group).unwrap(),
            LineEvent::OtherSource { kind: "message".into(), source: "group".into() }
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
