//! The message body validator: a body deserialised from JSON (as the HTTP API, the WebSocket
//! session and the room read it), then `Limits::check_body`. Included by the fuzz target
//! `message_body` and by `shared/protocol/tests/fuzz_regressions.rs`, which replays the seeds
//! and the regressions.
//!
//! Input: the first byte picks the limits (even: the defaults; odd: small ones made from it),
//! the rest is the body's JSON.
//!
//! Invariants: never a panic; a body that passes is one the rules allow (checked here again,
//! independently: no NUL, non-blank text within the limit, sticker ids of 1-64 bytes, absolute
//! http(s) URLs, coordinates on the globe); it serialises, reads back as the same body (floats
//! to within rounding: serde_json's default float parsing may differ in the last bit) and
//! passes again; a refused body has a code with an HTTP status of 4xx.

use chat_protocol::{Body, Limits};

/// The limits the first byte asks for.
fn limits(byte: u8) -> Limits {
    if byte.is_multiple_of(2) {
        return Limits::default();
    }
    let small = usize::from(byte >> 1);
    Limits { max_text_chars: small, max_url_chars: small + 8, ..Limits::default() }
}

pub fn check(data: &[u8]) {
    let Some((&first, json)) = data.split_first() else { return };
    let limits = limits(first);
    let Ok(body) = serde_json::from_slice::<Body>(json) else { return };
    match limits.check_body(&body) {
        Ok(()) => {
            allowed(&limits, &body);
            let again = serde_json::to_string(&body).expect("a valid body serialises");
            let back: Body = serde_json::from_str(&again).expect("a serialised body reads back");
            assert!(same(&body, &back), "{body:?} read back as {back:?}");
            assert_eq!(limits.check_body(&back), Ok(()), "{back:?} (read back) refused");
        }
        Err(err) => {
            let status = err.code().http_status();
            assert!((400..500).contains(&status), "{err:?}: status {status}");
            assert_eq!(limits.check_body(&body), Err(err), "the same answer twice");
        }
    }
}

/// What `check_body` is meant to enforce, said again.
fn allowed(limits: &Limits, body: &Body) {
    let no_nul = |v: &str| assert!(!v.contains('\0'), "NUL accepted in {body:?}");
    match body {
        Body::Text { text } => {
            no_nul(text);
            assert!(!text.trim().is_empty(), "blank text accepted");
            assert!(text.chars().count() <= limits.max_text_chars, "text over the limit accepted");
        }
        Body::Sticker { package_id, sticker_id } => {
            for id in [package_id, sticker_id] {
                no_nul(id);
                assert!((1..=64).contains(&id.len()), "sticker id {id:?} accepted");
            }
        }
        Body::Image { url, name, .. } | Body::File { url, name, .. } => {
            no_nul(url);
            assert!(url.starts_with("https://") || url.starts_with("http://"), "url {url:?} accepted");
            assert!(!url.contains(char::is_whitespace), "url with whitespace accepted");
            assert!(url.chars().count() <= limits.max_url_chars, "url over the limit accepted");
            if let Some(name) = name {
                no_nul(name);
                assert!(name.chars().count() <= 255, "name over 255 characters accepted");
            }
        }
        Body::Location { title, address, latitude, longitude } => {
            assert!(latitude.is_finite() && latitude.abs() <= 90.0, "latitude {latitude} accepted");
            assert!(longitude.is_finite() && longitude.abs() <= 180.0, "longitude {longitude} accepted");
            for text in [title, address].into_iter().flatten() {
                no_nul(text);
                assert!(text.chars().count() <= 255, "title or address over 255 characters accepted");
            }
        }
    }
}

/// Equal, floats to within rounding.
fn same(a: &Body, b: &Body) -> bool {
    let close = |x: f64, y: f64| x == y || (x - y).abs() <= f64::EPSILON * x.abs().max(y.abs());
    match (a, b) {
        (
            Body::Location { title, address, latitude, longitude },
            Body::Location { title: t, address: d, latitude: la, longitude: lo },
        ) => title == t && address == d && close(*latitude, *la) && close(*longitude, *lo),
        _ => a == b,
    }
}
