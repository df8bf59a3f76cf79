//! The checks of what members type: ids of tenants and users, their notes on a contact (name,
//! phone, email), their LINE profile (about, phone, website), and LINE basic ids. Pure: each
//! check answers the value to store or the refusal.

use super::error::ContactsError;

/// The longest name a member gives a contact.
pub const NAME_MAX: usize = 100;
/// The longest phone number.
pub const PHONE_MAX: usize = 32;
/// The longest email address (RFC 5321's path limit).
pub const EMAIL_MAX: usize = 254;
/// The longest "about" text of a LINE profile.
pub const ABOUT_MAX: usize = 500;
/// The longest website URL.
pub const WEBSITE_MAX: usize = 2048;
/// The longest search text of a list.
pub const QUERY_MAX: usize = 100;

/// 1-64 of `[A-Za-z0-9._-]`: the shape of tenant ids and usernames.
pub fn is_id_part(text: &str) -> bool {
    (1..=64).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

pub fn tenant(text: &str) -> Result<(), ContactsError> {
    if is_id_part(text) {
        Ok(())
    } else {
        Err(ContactsError::InvalidTenant("tenants are 1-64 of [A-Za-z0-9._-]".into()))
    }
}

pub fn username(text: &str) -> Result<(), ContactsError> {
    if is_id_part(text) {
        Ok(())
    } else {
        Err(ContactsError::InvalidUsername("usernames are 1-64 of [A-Za-z0-9._-]".into()))
    }
}

/// The name a member gives a contact: at most [`NAME_MAX`] characters, no control characters.
pub fn name(text: &str) -> Result<(), ContactsError> {
    if text.chars().count() > NAME_MAX {
        return Err(ContactsError::FieldTooLong { field: "name", max: NAME_MAX });
    }
    if text.chars().any(char::is_control) {
        return Err(ContactsError::InvalidField("name must not contain control characters".into()));
    }
    Ok(())
}

/// At most [`PHONE_MAX`] characters of digits, spaces and `+-()`, with at least one digit.
pub fn phone(text: &str) -> Result<(), ContactsError> {
    let allowed = text.chars().all(|c| c.is_ascii_digit() || matches!(c, ' ' | '+' | '-' | '(' | ')'));
    if text.chars().count() > PHONE_MAX || !allowed || !text.chars().any(|c| c.is_ascii_digit()) {
        return Err(ContactsError::InvalidPhone);
    }
    Ok(())
}

/// At most [`EMAIL_MAX`] characters: one `@`, a local part, a domain with a dot (not at either
/// end), no whitespace or control characters.
pub fn email(text: &str) -> Result<(), ContactsError> {
    if text.chars().count() > EMAIL_MAX || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ContactsError::InvalidEmail);
    }
    let Some((local, domain)) = text.split_once('@') else { return Err(ContactsError::InvalidEmail) };
    let domain_ok = domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.');
    if local.is_empty() || domain.contains('@') || !domain_ok {
        return Err(ContactsError::InvalidEmail);
    }
    Ok(())
}

/// The "about" text of a LINE profile: at most [`ABOUT_MAX`] characters.
pub fn about(text: &str) -> Result<(), ContactsError> {
    if text.chars().count() > ABOUT_MAX {
        return Err(ContactsError::FieldTooLong { field: "about", max: ABOUT_MAX });
    }
    Ok(())
}

/// An absolute `http` or `https` URL with a host, at most [`WEBSITE_MAX`] characters.
pub fn website(text: &str) -> Result<(), ContactsError> {
    if text.chars().count() > WEBSITE_MAX {
        return Err(ContactsError::InvalidUrl(format!("at most {WEBSITE_MAX} characters")));
    }
    let url = url::Url::parse(text).map_err(|err| ContactsError::InvalidUrl(err.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ContactsError::InvalidUrl("only http and https URLs".into()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ContactsError::InvalidUrl("the URL needs a host".into()));
    }
    Ok(())
}

/// A LINE Official Account's basic id: `@` and 1-32 of `[A-Za-z0-9._-]`.
pub fn is_basic_id(text: &str) -> bool {
    text.strip_prefix('@').is_some_and(|rest| {
        (1..=32).contains(&rest.len())
            && rest.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    })
}

/// The URL a LINE user opens to add the member's LINE Official Account as a friend.
pub fn add_friend_url(base: &str, basic_id: &str) -> String {
    format!("{base}{basic_id}")
}

/// The page size of a list: `limit` (default 50), 1 to `page_max`.
pub fn page_limit(limit: Option<u32>, page_max: u32) -> Result<u32, ContactsError> {
    let limit = limit.unwrap_or(50.min(page_max));
    if limit == 0 || limit > page_max {
        return Err(ContactsError::InvalidQuery(format!("limit is 1 to {page_max}")));
    }
    Ok(limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(result: Result<(), ContactsError>) -> &'static str {
        match result {
            Ok(()) => "ok",
            Err(ContactsError::FieldTooLong { .. }) => "field_too_long",
            Err(ContactsError::InvalidField(_)) => "invalid_field",
            Err(ContactsError::InvalidPhone) => "invalid_phone",
            Err(ContactsError::InvalidEmail) => "invalid_email",
            Err(ContactsError::InvalidUrl(_)) => "invalid_url",
            Err(ContactsError::InvalidTenant(_)) => "invalid_tenant",
            Err(ContactsError::InvalidUsername(_)) => "invalid_username",
            Err(_) => "other",
        }
    }

    #[test]
    fn tenants_and_usernames_are_short_plain_ids() {
        for good in ["acme", "a", "A.b_c-9", &"x".repeat(64)] {
            assert_eq!(code(tenant(good)), "ok", "{good}");
            assert_eq!(code(username(good)), "ok", "{good}");
        }
        for bad in ["", &"x".repeat(65), "a b", "a@b", "a/b", "é", "a\u{0}"] {
            assert_eq!(code(tenant(bad)), "invalid_tenant", "{bad:?}");
            assert_eq!(code(username(bad)), "invalid_username", "{bad:?}");
        }
    }

    #[test]
    fn names_are_at_most_100_characters_without_control_characters() {
        assert_eq!(code(name("Taro Yamada")), "ok");
        assert_eq!(code(name(&"山".repeat(100))), "ok", "characters, not bytes");
        assert_eq!(code(name("")), "ok");
        assert_eq!(code(name(&"a".repeat(101))), "field_too_long");
        assert_eq!(code(name("Taro\nYamada")), "invalid_field");
        assert_eq!(code(name("Taro\u{7f}")), "invalid_field");
        assert_eq!(code(name("Taro\u{0}")), "invalid_field");
    }

    #[test]
    fn phones_are_digits_spaces_and_punctuation_with_a_digit() {
        for good in ["+81 3-1234-5678", "(03) 1234 5678", "1", &"1".repeat(32)] {
            assert_eq!(code(phone(good)), "ok", "{good}");
        }
        for bad in ["", "   ", "+-()", "090-1234-abcd", "1234.5678", &"1".repeat(33), "１２３", "12\n34", "#123"] {
            assert_eq!(code(phone(bad)), "invalid_phone", "{bad:?}");
        }
    }

    #[test]
    fn emails_have_one_at_a_local_part_and_a_dotted_domain() {
        for good in ["taro@example.com", "a.b+c@mail.example.co.jp", "x@y.z"] {
            assert_eq!(code(email(good)), "ok", "{good}");
        }
        let long = format!("{}@example.com", "a".repeat(243));
        assert_eq!(long.len(), 255);
        for bad in [
            "",
            "taro",
            "@example.com",
            "taro@",
            "taro@localhost",
            "taro@@example.com",
            "ta@ro@example.com",
            "taro @example.com",
            "taro@exa mple.com",
            "taro@example.com\n",
            "taro\u{0}@example.com",
            "taro@.example",
            "taro@example.",
            long.as_str(),
        ] {
            assert_eq!(code(email(bad)), "invalid_email", "{bad:?}");
        }
    }

    #[test]
    fn about_is_at_most_500_characters() {
        assert_eq!(code(about(&"é".repeat(500))), "ok");
        assert_eq!(code(about("")), "ok");
        assert_eq!(code(about(&"a".repeat(501))), "field_too_long");
    }

    #[test]
    fn websites_are_absolute_http_urls_with_a_host() {
        for good in ["https://example.com", "http://example.com/a?b=c#d", "https://例え.jp/"] {
            assert_eq!(code(website(good)), "ok", "{good}");
        }
        let long = format!("https://example.com/{}", "a".repeat(2030));
        for bad in [
            "",
            "example.com",
            "/relative/path",
            "ftp://example.com",
            "javascript:alert(1)",
            "mailto:taro@example.com",
            "https://",
            "data:text/html,hi",
            long.as_str(),
        ] {
            assert_eq!(code(website(bad)), "invalid_url", "{bad:?}");
        }
    }

    #[test]
    fn basic_ids_are_an_at_sign_and_a_short_plain_id() {
        for good in ["@abc1234x", "@a", "@A.b_c-9", &format!("@{}", "x".repeat(32))] {
            assert!(is_basic_id(good), "{good}");
        }
        for bad in ["", "@", "abc", "@@abc", "@a b", "@a/b", &format!("@{}", "x".repeat(33)), "@あ"] {
            assert!(!is_basic_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_add_friend_url_is_the_base_and_the_basic_id() {
        assert_eq!(add_friend_url("https://line.me/R/ti/p/", "@abc1234x"), "https://line.me/R/ti/p/@abc1234x");
    }

    #[test]
    fn page_limits_default_to_50_and_stay_within_the_maximum() {
        assert_eq!(page_limit(None, 200).unwrap(), 50);
        assert_eq!(page_limit(None, 20).unwrap(), 20);
        assert_eq!(page_limit(Some(1), 200).unwrap(), 1);
        assert_eq!(page_limit(Some(200), 200).unwrap(), 200);
        assert!(matches!(page_limit(Some(0), 200), Err(ContactsError::InvalidQuery(_))));
        assert!(matches!(page_limit(Some(201), 200), Err(ContactsError::InvalidQuery(_))));
    }
}
