//! Size limits on what users send. Checked at the edge (HTTP, WebSocket) and again by the room.

use serde::{Deserialize, Serialize};

use crate::body::Body;

/// Limits, in characters (Unicode scalar values) unless the name says bytes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub max_text_chars: usize,
    pub max_name_chars: usize,
    pub max_description_chars: usize,
    pub max_url_chars: usize,
    pub max_members: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_text_chars: 10_000,
            max_name_chars: 100,
            max_description_chars: 1_000,
            max_url_chars: 2_048,
            max_members: 10_000,
        }
    }
}

/// Why a value was refused; each maps to a stable API error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("message text is longer than {max} characters")]
    TextTooLong { max: usize },
    #[error("message text is empty")]
    TextEmpty,
    #[error("room name is longer than {max} characters")]
    NameTooLong { max: usize },
    #[error("description is longer than {max} characters")]
    DescriptionTooLong { max: usize },
    #[error("url is invalid or longer than {max} characters")]
    InvalidUrl { max: usize },
    #[error("field {field} is invalid")]
    InvalidField { field: &'static str },
    #[error("too many members (at most {max})")]
    TooManyMembers { max: usize },
}

impl LimitError {
    /// The stable snake_case code clients see.
    pub fn code(&self) -> &'static str {
        match self {
            LimitError::TextTooLong { .. } => "message_too_long",
            LimitError::TextEmpty => "message_empty",
            LimitError::NameTooLong { .. } => "name_too_long",
            LimitError::DescriptionTooLong { .. } => "description_too_long",
            LimitError::InvalidUrl { .. } => "invalid_url",
            LimitError::InvalidField { .. } => "invalid_field",
            LimitError::TooManyMembers { .. } => "too_many_members",
        }
    }

    /// True when the refusal is about size (answered 413 over HTTP).
    pub fn is_too_large(&self) -> bool {
        matches!(self, LimitError::TextTooLong { .. })
    }
}

impl Limits {
    pub fn check_body(&self, body: &Body) -> Result<(), LimitError> {
        match body {
            Body::Text { text } => {
                if text.trim().is_empty() {
                    return Err(LimitError::TextEmpty);
                }
                if text.chars().count() > self.max_text_chars {
                    return Err(LimitError::TextTooLong { max: self.max_text_chars });
                }
            }
            Body::Sticker { package_id, sticker_id } => {
                for (field, value) in [("package_id", package_id), ("sticker_id", sticker_id)] {
                    if value.is_empty() || value.len() > 64 {
                        return Err(LimitError::InvalidField { field });
                    }
                }
            }
            Body::Image { url, name, .. } | Body::File { url, name, .. } => {
                self.check_url(url)?;
                if name.as_ref().is_some_and(|n| n.chars().count() > 255) {
                    return Err(LimitError::InvalidField { field: "name" });
                }
            }
            Body::Location { title, address, latitude, longitude } => {
                if !(-90.0..=90.0).contains(latitude) {
                    return Err(LimitError::InvalidField { field: "latitude" });
                }
                if !(-180.0..=180.0).contains(longitude) {
                    return Err(LimitError::InvalidField { field: "longitude" });
                }
                for (field, value) in [("title", title), ("address", address)] {
                    if value.as_ref().is_some_and(|v| v.chars().count() > 255) {
                        return Err(LimitError::InvalidField { field });
                    }
                }
            }
        }
        Ok(())
    }

    pub fn check_name(&self, name: &str) -> Result<(), LimitError> {
        if name.chars().count() > self.max_name_chars {
            return Err(LimitError::NameTooLong { max: self.max_name_chars });
        }
        Ok(())
    }

    pub fn check_description(&self, description: &str) -> Result<(), LimitError> {
        if description.chars().count() > self.max_description_chars {
            return Err(LimitError::DescriptionTooLong { max: self.max_description_chars });
        }
        Ok(())
    }

    /// Only absolute http(s) URLs: recipients' apps fetch them later.
    pub fn check_url(&self, url: &str) -> Result<(), LimitError> {
        let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
        if !scheme_ok || url.chars().count() > self.max_url_chars || url.contains(char::is_whitespace) {
            return Err(LimitError::InvalidUrl { max: self.max_url_chars });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_counted_in_characters_not_bytes() {
        let limits = Limits { max_text_chars: 3, ..Limits::default() };
        assert!(limits.check_body(&Body::Text { text: "日本語".into() }).is_ok());
        let err = limits.check_body(&Body::Text { text: "日本語!".into() }).unwrap_err();
        assert_eq!(err.code(), "message_too_long");
        assert!(err.is_too_large());
    }

    #[test]
    fn blank_text_and_bad_urls_are_refused() {
        let limits = Limits::default();
        assert_eq!(limits.check_body(&Body::Text { text: "  ".into() }), Err(LimitError::TextEmpty));
        let img = Body::Image { url: "javascript:alert(1)".into(), name: None, size: None };
        assert_eq!(limits.check_body(&img).unwrap_err().code(), "invalid_url");
    }

    #[test]
    fn names_over_the_limit_are_refused() {
        let limits = Limits::default();
        assert!(limits.check_name(&"n".repeat(100)).is_ok());
        assert_eq!(limits.check_name(&"n".repeat(101)).unwrap_err().code(), "name_too_long");
    }
}
