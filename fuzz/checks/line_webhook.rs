//! The LINE webhook's intake without its store: the signature check on the raw body
//! (`webhook::signature_matches`), the envelope (`webhook::parse_envelope`) and each event as
//! the inbox reads it (`webhook::parse_event`). Included by the fuzz target `line_webhook` and
//! by `services/line-gateway/tests/fuzz_regressions.rs`, which replays the seeds and the
//! regressions.
//!
//! Input: byte 0 is the length of the channel secret (mod 64) that follows it; then the
//! `x-line-signature` header's value up to the first newline; the rest is the body.
//!
//! Invariants: never a panic; the body signed with the secret (base64 of its HMAC-SHA256,
//! computed here) verifies, with or without whitespace around it, and not with another secret
//! or once the body changes; the header's value verifies exactly when it decodes to that MAC;
//! an envelope gives each event a non-empty id of at most 128 characters, the event's own
//! `webhookEventId`, and keeps the event as JSON that reads back; an envelope refused for a
//! missing id names an event that exists; every event, and the body itself, reads as an event
//! or as an error.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use line_gateway::webhook::{parse_envelope, parse_event, signature_matches, EnvelopeError, LineEvent};
use secrecy::SecretString;
use sha2::Sha256;

fn mac(secret: &str, body: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

pub fn check(data: &[u8]) {
    let Some((&len, rest)) = data.split_first() else { return };
    let len = usize::from(len % 64).min(rest.len());
    let (secret, rest) = rest.split_at(len);
    let secret = String::from_utf8_lossy(secret).into_owned();
    let (header, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, &[][..]),
    };
    // The API passes the header only when it is visible ASCII (`HeaderValue::to_str`); any
    // string is tried here.
    let header = String::from_utf8_lossy(header);
    signature(&secret, &header, body);
    envelope(body);
    if let Ok(text) = std::str::from_utf8(body) {
        event(text);
    }
}

fn signature(secret: &str, header: &str, body: &[u8]) {
    let key = SecretString::from(secret.to_owned());
    let expected = mac(secret, body);
    let signed = BASE64.encode(&expected);
    assert!(signature_matches(&key, body, &signed), "the body signed with its secret is refused");
    assert!(signature_matches(&key, body, &format!(" {signed}\t")), "the signature with whitespace is refused");
    let other = SecretString::from(format!("{secret}x"));
    assert!(!signature_matches(&other, body, &signed), "verified with another secret");
    let mut changed = body.to_vec();
    match changed.first_mut() {
        Some(byte) => *byte ^= 1,
        None => changed.push(b'{'),
    }
    assert!(!signature_matches(&key, &changed, &signed), "verified a changed body");

    let decodes_to_mac = BASE64.decode(header.trim()).is_ok_and(|bytes| bytes == expected);
    assert_eq!(signature_matches(&key, body, header), decodes_to_mac, "header {header:?}");
}

fn envelope(body: &[u8]) {
    match parse_envelope(body) {
        Ok((_destination, events)) => {
            for inbox in events {
                let id = &inbox.webhook_event_id;
                assert!(!id.is_empty() && id.len() <= 128, "event id {id:?} kept");
                let json: serde_json::Value = serde_json::from_str(&inbox.json).expect("a kept event reads back");
                assert_eq!(json.get("webhookEventId").and_then(|v| v.as_str()), Some(id.as_str()));
                event(&inbox.json);
            }
        }
        Err(EnvelopeError::MissingEventId { index }) => {
            let value: serde_json::Value = serde_json::from_slice(body).expect("an envelope read as JSON");
            let events = value.get("events").and_then(|v| v.as_array()).expect("an envelope with events");
            assert!(index < events.len(), "event {index} of {} named", events.len());
        }
        Err(EnvelopeError::Malformed(_)) => {}
    }
}

fn event(json: &str) {
    let Ok(event) = parse_event(json) else { return };
    let valid_id = |id: &str| !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric());
    match &event {
        LineEvent::Follow { line_user_id, .. } | LineEvent::Unfollow { line_user_id, .. } => {
            assert!(valid_id(line_user_id), "LINE user id {line_user_id:?} taken");
        }
        LineEvent::Join { group_id } | LineEvent::Leave { group_id } => {
            assert!(valid_id(group_id), "group id {group_id:?} taken");
        }
        LineEvent::MembersJoined { group_id, line_user_ids } | LineEvent::MembersLeft { group_id, line_user_ids } => {
            assert!(valid_id(group_id), "group id {group_id:?} taken");
            assert!(line_user_ids.iter().all(|id| valid_id(id)), "member ids {line_user_ids:?} taken");
        }
        _ => {}
    }
    let _ = event.kind();
}
