//! The webhook body as LINE writes it and its `x-line-signature`: Base64(HMAC-SHA256(channel
//! secret, the exact body bytes)).

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// The signature header name.
pub const HEADER: &str = "x-line-signature";

/// Base64 HMAC-SHA256 of `body` keyed by `channel_secret`.
pub fn sign(channel_secret: &str, body: &[u8]) -> String {
    // HMAC takes a key of any length: `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(channel_secret.as_bytes()) {
        Ok(mac) => mac,
        Err(e) => unreachable!("hmac accepts keys of any length: {e}"),
    };
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// True when `signature` is the one of `body` (constant-time comparison).
pub fn verify(channel_secret: &str, body: &[u8], signature: &str) -> bool {
    let Ok(given) = base64::engine::general_purpose::STANDARD.decode(signature) else { return false };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(channel_secret.as_bytes()) else { return false };
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

/// Compact JSON; with `escape_non_ascii`, every non-ASCII character as `\uXXXX` (UTF-16 units,
/// surrogate pairs beyond the BMP) as LINE writes it. Outside strings JSON is ASCII, so the
/// characters replaced are all inside strings.
pub fn to_body(value: &Value, escape_non_ascii: bool) -> Vec<u8> {
    let text = value.to_string();
    if !escape_non_ascii {
        return text.into_bytes();
    }
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04X}"));
            }
        }
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_over_the_exact_bytes_only() {
        let body = br#"{"destination":"U1","events":[]}"#;
        let sig = sign("secret", body);
        assert!(verify("secret", body, &sig));
        assert!(!verify("other", body, &sig));
        assert!(!verify("secret", br#"{"destination":"U1","events":[] }"#, &sig));
    }

    #[test]
    fn non_ascii_is_escaped_like_line_does() {
        let body = to_body(&serde_json::json!({"text": "é🤨"}), true);
        assert_eq!(String::from_utf8(body.clone()).unwrap(), r#"{"text":"\u00E9\uD83E\uDD28"}"#);
        let parsed: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(parsed["text"], "é🤨");
    }
}
