//! What a member's message becomes on LINE (pure, no I/O): the LINE message objects of a
//! `Body`, texts split at LINE's length limit, the requests of at most 5 objects, and the
//! `X-Line-Retry-Key` of each request, derived from the message and the LINE user so that a
//! replayed message or a retried request carries the same key.
//!
//! - text: `text` objects of at most 5,000 UTF-16 code units each (a surrogate pair is never
//!   split);
//! - sticker: a `sticker` object, only for a package on LINE's sendable list (the list is
//!   `chat_protocol::body::SENDABLE_STICKER_PACKAGES`, which rooms checks before storing);
//! - image: an `image` object when its URL is https (and within LINE's 2,000 characters),
//!   otherwise a text link;
//! - file: LINE has no file message: a text "name: url";
//! - location: a `location` object; LINE requires a title and an address: "Location" and the
//!   coordinates stand in when the message has none.

use chat_protocol::{Body, MessageId};
use serde_json::{json, Value};
use uuid::Uuid;

/// The sticker packages a LINE Official Account may send. One list for the whole system: it
/// lives in the protocol crate, where rooms refuses unsendable stickers before storing them.
pub use chat_protocol::body::SENDABLE_STICKER_PACKAGES;

/// The longest text of one LINE text message, in UTF-16 code units.
pub const MAX_TEXT_UTF16: usize = 5_000;

/// The most message objects LINE takes in one push.
pub const MAX_MESSAGES_PER_REQUEST: usize = 5;

/// The longest media URL LINE takes.
const MAX_URL_CHARS: usize = 2_000;

/// The longest location title or address LINE takes.
const MAX_LOCATION_FIELD_CHARS: usize = 100;

/// The title of a location sent without one.
const DEFAULT_LOCATION_TITLE: &str = "Location";

/// The namespace of retry keys (UUID v5).
const RETRY_KEY_NAMESPACE: Uuid = Uuid::from_u128(0x3f9a_61c2_8d74_4b0e_a5c3_27e8_90d1_b64f);

/// A body LINE users cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotSendable {
    #[error("sticker package {0} is not on LINE's list of sendable stickers")]
    Sticker(String),
}

/// The LINE message objects of `body`, in order.
pub fn line_messages(body: &Body) -> Result<Vec<Value>, NotSendable> {
    Ok(match body {
        Body::Text { text } => split_text(text).into_iter().map(text_message).collect(),
        Body::Sticker { package_id, sticker_id } => {
            if !SENDABLE_STICKER_PACKAGES.contains(&package_id.as_str()) {
                return Err(NotSendable::Sticker(package_id.clone()));
            }
            vec![json!({"type": "sticker", "packageId": package_id, "stickerId": sticker_id})]
        }
        Body::Image { url, name, .. } => {
            if is_https(url) && url.chars().count() <= MAX_URL_CHARS {
                vec![json!({"type": "image", "originalContentUrl": url, "previewImageUrl": url})]
            } else {
                link(name.as_deref(), url)
            }
        }
        Body::File { url, name, .. } => link(name.as_deref(), url),
        Body::Location { title, address, latitude, longitude } => {
            let title = non_empty(title.as_deref()).unwrap_or(DEFAULT_LOCATION_TITLE);
            let coordinates = format!("{latitude}, {longitude}");
            let address = non_empty(address.as_deref()).unwrap_or(&coordinates);
            vec![json!({
                "type": "location",
                "title": truncate_chars(title, MAX_LOCATION_FIELD_CHARS),
                "address": truncate_chars(address, MAX_LOCATION_FIELD_CHARS),
                "latitude": latitude,
                "longitude": longitude,
            })]
        }
    })
}

/// `objects` with the image's `previewImageUrl` set to `preview` (a medium of the engine's
/// media store: its preview link, which differs from the original's).
pub fn with_preview(mut objects: Vec<Value>, preview: Option<&str>) -> Vec<Value> {
    if let Some(preview) = preview {
        for object in objects.iter_mut().filter(|object| object["type"] == "image") {
            object["previewImageUrl"] = json!(preview);
        }
    }
    objects
}

/// The longest `sender.name` LINE takes, in characters.
pub const MAX_SENDER_NAME_CHARS: usize = 20;

/// `objects` with `sender.name` set to `name` (cut to LINE's 20 characters): in a LINE group
/// or a room with several LINE users, it says which member is speaking through the account.
pub fn with_sender(mut objects: Vec<Value>, name: &str) -> Vec<Value> {
    let name = truncate_chars(name.trim(), MAX_SENDER_NAME_CHARS);
    if name.is_empty() {
        return objects;
    }
    for object in &mut objects {
        object["sender"] = json!({"name": name});
    }
    objects
}

/// `text` in parts of at most `MAX_TEXT_UTF16` UTF-16 code units, cut between characters (so
/// never inside a surrogate pair). An empty text is one empty part.
pub fn split_text(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut units = 0;
    for (at, c) in text.char_indices() {
        let width = c.len_utf16();
        if units + width > MAX_TEXT_UTF16 {
            parts.push(text[start..at].to_owned());
            start = at;
            units = 0;
        }
        units += width;
    }
    if start < text.len() || parts.is_empty() {
        parts.push(text[start..].to_owned());
    }
    parts
}

/// The requests of `messages`: at most `MAX_MESSAGES_PER_REQUEST` objects each, in order.
pub fn requests(messages: &[Value]) -> Vec<&[Value]> {
    messages.chunks(MAX_MESSAGES_PER_REQUEST).collect()
}

/// The retry key of a message's first request to one LINE user (stored with the row).
pub fn retry_key(message_id: &MessageId, line_user_id: &str) -> Uuid {
    let name = format!("{}\n{line_user_id}", message_id.as_str());
    Uuid::new_v5(&RETRY_KEY_NAMESPACE, name.as_bytes())
}

/// The retry key of request `index` (from 0) of a message: the stored key for the first,
/// one derived from it and the index for the others.
pub fn request_retry_key(first: Uuid, index: usize) -> Uuid {
    if index == 0 {
        first
    } else {
        Uuid::new_v5(&first, index.to_string().as_bytes())
    }
}

fn text_message(text: String) -> Value {
    json!({"type": "text", "text": text})
}

/// A link as a text message: "name: url", or the URL alone.
fn link(name: Option<&str>, url: &str) -> Vec<Value> {
    let text = match non_empty(name) {
        Some(name) => format!("{name}: {url}"),
        None => url.to_owned(),
    };
    split_text(&text).into_iter().map(text_message).collect()
}

fn is_https(url: &str) -> bool {
    url.get(..8).is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://")) && url.len() > 8
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|value| !value.is_empty())
}

fn truncate_chars(value: &str, max: usize) -> String {
    value.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16_len(text: &str) -> usize {
        text.encode_utf16().count()
    }

    #[test]
    fn a_text_of_exactly_5000_units_is_one_part_and_one_more_makes_two() {
        let exact = "a".repeat(5_000);
        assert_eq!(split_text(&exact), vec![exact.clone()]);
        let over = "a".repeat(5_001);
        let parts = split_text(&over);
        assert_eq!(parts.iter().map(|p| utf16_len(p)).collect::<Vec<_>>(), [5_000, 1]);
        assert_eq!(split_text(""), vec![String::new()]);
    }

    #[test]
    fn a_surrogate_pair_at_the_boundary_moves_to_the_next_part_whole() {
        // 4,999 units, then an apple (2 units: a surrogate pair) that would end at 5,001.
        let text = format!("{}🍎b", "a".repeat(4_999));
        let parts = split_text(&text);
        assert_eq!(parts, vec!["a".repeat(4_999), "🍎b".to_owned()]);
        assert_eq!(parts.concat(), text);
        // 4,998 units and the pair end exactly at 5,000.
        let text = format!("{}🍎b", "a".repeat(4_998));
        let parts = split_text(&text);
        assert_eq!(parts.iter().map(|p| utf16_len(p)).collect::<Vec<_>>(), [5_000, 1]);
        // Only pairs: never cut inside one.
        let apples = "🍎".repeat(2_600);
        let parts = split_text(&apples);
        assert!(parts.iter().all(|p| utf16_len(p) <= MAX_TEXT_UTF16 && utf16_len(p).is_multiple_of(2)));
        assert_eq!(parts.concat(), apples);
    }

    #[test]
    fn twelve_thousand_characters_make_three_parts() {
        let text: String = "あいう".chars().cycle().take(12_000).collect();
        let parts = split_text(&text);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts.iter().map(|p| p.chars().count()).collect::<Vec<_>>(), [5_000, 5_000, 2_000]);
        assert_eq!(parts.concat(), text);
    }

    #[test]
    fn requests_carry_at_most_five_objects_in_order() {
        let six: Vec<Value> = (0..6).map(|i| json!({"type": "text", "text": i.to_string()})).collect();
        let requests = requests(&six);
        assert_eq!(requests.iter().map(|r| r.len()).collect::<Vec<_>>(), [5, 1]);
        assert_eq!(requests[1][0]["text"], "5");
        assert_eq!(super::requests(&six[..5]).len(), 1);
        // A text of 6 parts (25,001 units) goes out in 2 requests.
        let long = Body::Text { text: "x".repeat(25_001) };
        let messages = line_messages(&long).unwrap();
        assert_eq!(messages.len(), 6);
        assert_eq!(super::requests(&messages).len(), 2);
    }

    #[test]
    fn every_body_kind_has_its_line_objects() {
        let text = line_messages(&Body::Text { text: "hello".into() }).unwrap();
        assert_eq!(text, [json!({"type": "text", "text": "hello"})]);

        let sticker = Body::Sticker { package_id: "446".into(), sticker_id: "1988".into() };
        assert_eq!(
            line_messages(&sticker).unwrap(),
            [json!({"type": "sticker", "packageId": "446", "stickerId": "1988"})]
        );
        let bought = Body::Sticker { package_id: "1234567".into(), sticker_id: "1".into() };
        assert_eq!(line_messages(&bought), Err(NotSendable::Sticker("1234567".into())));

        let image = Body::Image { url: "https://files.example/a.png".into(), name: None, size: None };
        assert_eq!(
            line_messages(&image).unwrap(),
            [json!({"type": "image", "originalContentUrl": "https://files.example/a.png",
                    "previewImageUrl": "https://files.example/a.png"})]
        );
        let plain = Body::Image { url: "http://files.example/a.png".into(), name: Some("a.png".into()), size: None };
        assert_eq!(
            line_messages(&plain).unwrap(),
            [json!({"type": "text", "text": "a.png: http://files.example/a.png"})]
        );
        let too_long = format!("https://files.example/{}", "x".repeat(2_000));
        let linked = line_messages(&Body::Image { url: too_long.clone(), name: None, size: None }).unwrap();
        assert_eq!(linked, [json!({"type": "text", "text": too_long})]);

        let file =
            Body::File { url: "https://files.example/q.pdf".into(), name: Some("quote.pdf".into()), size: Some(9) };
        assert_eq!(
            line_messages(&file).unwrap(),
            [json!({"type": "text", "text": "quote.pdf: https://files.example/q.pdf"})]
        );
        let unnamed = Body::File { url: "https://files.example/q.pdf".into(), name: None, size: None };
        assert_eq!(line_messages(&unnamed).unwrap(), [json!({"type": "text", "text": "https://files.example/q.pdf"})]);

        let place = Body::Location {
            title: Some("Office".into()),
            address: Some("1-2-3 Chiyoda".into()),
            latitude: 35.68,
            longitude: 139.76,
        };
        assert_eq!(
            line_messages(&place).unwrap(),
            [json!({"type": "location", "title": "Office", "address": "1-2-3 Chiyoda",
                    "latitude": 35.68, "longitude": 139.76})]
        );
        let bare = Body::Location { title: None, address: Some(" ".into()), latitude: 35.5, longitude: 139.25 };
        assert_eq!(
            line_messages(&bare).unwrap(),
            [json!({"type": "location", "title": "Location", "address": "35.5, 139.25",
                    "latitude": 35.5, "longitude": 139.25})]
        );
    }

    #[test]
    fn the_sendable_list_is_lines_documented_one() {
        let documented = [
            "446", "789", "1070", "6136", "6325", "6359", "6362", "6370", "6632", "8515", "8522", "8525", "11537",
            "11538", "11539",
        ];
        let mut ours = SENDABLE_STICKER_PACKAGES.to_vec();
        ours.sort_unstable();
        let mut documented = documented.to_vec();
        documented.sort_unstable();
        assert_eq!(ours, documented);
    }

    #[test]
    fn retry_keys_are_stable_and_differ_per_line_user_and_request() {
        let message = MessageId::new("0193aaaa-0000-7000-8000-000000000001");
        let first = retry_key(&message, "U1");
        assert_eq!(first, retry_key(&message, "U1"), "a replay uses the same key");
        assert_ne!(first, retry_key(&message, "U2"));
        assert_ne!(first, retry_key(&MessageId::new("0193aaaa-0000-7000-8000-000000000002"), "U1"));
        assert_eq!(request_retry_key(first, 0), first);
        assert_eq!(request_retry_key(first, 1), request_retry_key(first, 1));
        assert_ne!(request_retry_key(first, 1), first);
        assert_ne!(request_retry_key(first, 1), request_retry_key(first, 2));
        assert_eq!(first.get_version_num(), 5);
        // LINE wants the hex form with hyphens.
        assert_eq!(first.to_string().len(), 36);
    }
}
