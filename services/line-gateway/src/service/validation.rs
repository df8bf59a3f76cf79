//! The checks of what an admin types when binding a channel: LINE's channel id, the basic id
//! of the LINE Official Account, the channel secret and access token.

use secrecy::{ExposeSecret, SecretString};

use super::error::LineError;

/// The longest channel secret or access token accepted.
const MAX_CREDENTIAL_LEN: usize = 512;

/// LINE's channel id: 1 to 20 digits.
pub fn is_channel_id(id: &str) -> bool {
    (1..=20).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_digit())
}

/// A basic id: `@` and 1 to 32 of `[A-Za-z0-9._-]` (`@abc1234x`).
pub fn is_basic_id(id: &str) -> bool {
    let Some(rest) = id.strip_prefix('@') else { return false };
    (1..=32).contains(&rest.len()) && rest.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A credential: 1 to 512 printable ASCII characters, not only spaces.
pub fn is_credential(value: &SecretString) -> bool {
    let text = value.expose_secret();
    (1..=MAX_CREDENTIAL_LEN).contains(&text.len())
        && text.bytes().all(|b| (0x20..=0x7e).contains(&b))
        && !text.trim().is_empty()
}

/// Check a binding's fields, in the order the request names them.
pub fn check_binding(
    channel_id: &str,
    channel_secret: &SecretString,
    access_token: &SecretString,
    basic_id: &str,
) -> Result<(), LineError> {
    if !is_channel_id(channel_id) {
        return Err(LineError::InvalidField { field: "channel_id", reason: "1 to 20 digits" });
    }
    if !is_credential(channel_secret) {
        return Err(LineError::InvalidField { field: "channel_secret", reason: "1 to 512 printable ASCII characters" });
    }
    if !is_credential(access_token) {
        return Err(LineError::InvalidField { field: "access_token", reason: "1 to 512 printable ASCII characters" });
    }
    if !is_basic_id(basic_id) {
        return Err(LineError::InvalidField { field: "basic_id", reason: "@ and 1 to 32 of A-Z a-z 0-9 . _ -" });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s)
    }

    #[test]
    fn channel_ids_are_digits() {
        assert!(is_channel_id("1657000000"));
        assert!(is_channel_id("1"));
        assert!(is_channel_id(&"9".repeat(20)));
        for bad in ["", "12a", "-1", " 1", &"9".repeat(21), "１２"] {
            assert!(!is_channel_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn basic_ids_start_with_an_at() {
        assert!(is_basic_id("@abc1234x"));
        assert!(is_basic_id("@a.b_c-d"));
        assert!(is_basic_id(&format!("@{}", "a".repeat(32))));
        for bad in ["", "@", "abc", "@a b", "@a/b", &format!("@{}", "a".repeat(33)), "@@a"] {
            assert!(!is_basic_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn credentials_are_printable_ascii_of_bounded_length() {
        assert!(is_credential(&secret("8c570fa6dd201bb328f1c1eac23a96d8")));
        assert!(is_credential(&secret("eyJhbGciOiJIUzI1NiJ9.abc/def+ghi=")));
        assert!(is_credential(&secret(&"a".repeat(512))));
        for bad in ["", "   ", "tab\there", "new\nline", "ünïcode", &"a".repeat(513)] {
            assert!(!is_credential(&secret(bad)), "{bad:?}");
        }
    }

    #[test]
    fn a_binding_is_checked_field_by_field() {
        let ok = secret("s3cret");
        assert!(check_binding("123", &ok, &ok, "@abc").is_ok());
        let field = |result: Result<(), LineError>| match result {
            Err(LineError::InvalidField { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(check_binding("x", &ok, &ok, "@abc")), "channel_id");
        assert_eq!(field(check_binding("123", &secret(""), &ok, "@abc")), "channel_secret");
        assert_eq!(field(check_binding("123", &ok, &secret("a\u{7f}"), "@abc")), "access_token");
        assert_eq!(field(check_binding("123", &ok, &ok, "abc")), "basic_id");
    }
}
