//! Size limits on what users send. Checked at the edge (HTTP, WebSocket) and again by the room.

use serde::{Deserialize, Serialize};

use crate::body::Body;
use crate::refusal::Refusal;
use crate::room::RoomInfo;

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
    pub fn code(&self) -> Refusal {
        match self {
            LimitError::TextTooLong { .. } => Refusal::MessageTooLong,
            LimitError::TextEmpty => Refusal::MessageEmpty,
            LimitError::NameTooLong { .. } => Refusal::NameTooLong,
            LimitError::DescriptionTooLong { .. } => Refusal::DescriptionTooLong,
            LimitError::InvalidUrl { .. } => Refusal::InvalidUrl,
            LimitError::InvalidField { .. } => Refusal::InvalidField,
            LimitError::TooManyMembers { .. } => Refusal::TooManyMembers,
        }
    }
}

/// Text the stores cannot keep: PostgreSQL refuses U+0000 in text columns. Refused at the
/// edge (400) instead of failing the commit.
fn storable(field: &'static str, value: &str) -> Result<(), LimitError> {
    if value.contains('\0') {
        return Err(LimitError::InvalidField { field });
    }
    Ok(())
}

fn storable_opt(field: &'static str, value: &Option<String>) -> Result<(), LimitError> {
    value.as_deref().map_or(Ok(()), |v| storable(field, v))
}

impl Limits {
    pub fn check_body(&self, body: &Body) -> Result<(), LimitError> {
        match body {
            Body::Text { text } => storable("text", text)?,
            Body::Sticker { package_id, sticker_id } => {
                storable("package_id", package_id)?;
                storable("sticker_id", sticker_id)?;
            }
            Body::Image { url, name, .. } | Body::File { url, name, .. } => {
                storable("url", url)?;
                storable_opt("name", name)?;
            }
            Body::Location { title, address, .. } => {
                storable_opt("title", title)?;
                storable_opt("address", address)?;
            }
        }
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

    /// A room's descriptive fields as a client gives them (create or update), normalised: the
    /// name trimmed (a blank name is no name); an empty photo URL clears the photo. Every field
    /// is checked the same way on every path.
    pub fn check_info(&self, info: &RoomInfo) -> Result<RoomInfo, LimitError> {
        storable_opt("name", &info.name)?;
        storable_opt("description", &info.description)?;
        storable_opt("photo_url", &info.photo_url)?;
        let name = info.name.as_deref().map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned);
        if let Some(n) = &name {
            self.check_name(n)?;
        }
        if let Some(d) = &info.description {
            self.check_description(d)?;
        }
        if let Some(u) = info.photo_url.as_deref().filter(|u| !u.is_empty()) {
            self.check_url(u)?;
        }
        Ok(RoomInfo { name, description: info.description.clone(), photo_url: info.photo_url.clone() })
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
        assert_eq!(err.code(), Refusal::MessageTooLong);
        assert_eq!(err.code().http_status(), 413);
    }

    #[test]
    fn blank_text_and_bad_urls_are_refused() {
        let limits = Limits::default();
        assert_eq!(limits.check_body(&Body::Text { text: "  ".into() }), Err(LimitError::TextEmpty));
        let img = Body::Image { url: "javascript:alert(1)".into(), name: None, size: None };
        assert_eq!(limits.check_body(&img).unwrap_err().code(), Refusal::InvalidUrl);
    }

    #[test]
    fn room_info_is_normalised_and_every_field_checked() {
        let limits = Limits::default();
        let info = RoomInfo { name: Some("  team ".into()), description: None, photo_url: Some(String::new()) };
        let checked = limits.check_info(&info).unwrap();
        assert_eq!(checked.name.as_deref(), Some("team"));
        let blank = RoomInfo { name: Some("   ".into()), ..RoomInfo::default() };
        assert_eq!(limits.check_info(&blank).unwrap().name, None);
        let bad_url = RoomInfo { photo_url: Some("ftp://x".into()), ..RoomInfo::default() };
        assert_eq!(limits.check_info(&bad_url).unwrap_err().code(), Refusal::InvalidUrl);
        let long = RoomInfo { description: Some("d".repeat(1_001)), ..RoomInfo::default() };
        assert_eq!(limits.check_info(&long).unwrap_err().code(), Refusal::DescriptionTooLong);
    }

    #[test]
    fn text_the_store_cannot_keep_is_refused_in_every_field() {
        let limits = Limits::default();
        let nul = "a\u{0}b".to_owned();
        let bodies = [
            Body::Text { text: nul.clone() },
            Body::Sticker { package_id: nul.clone(), sticker_id: "1".into() },
            Body::Image { url: format!("https://x/{nul}"), name: None, size: None },
            Body::File { url: "https://x/f".into(), name: Some(nul.clone()), size: None },
            Body::Location { title: None, address: Some(nul.clone()), latitude: 0.0, longitude: 0.0 },
        ];
        for body in bodies {
            assert_eq!(limits.check_body(&body).unwrap_err().code(), Refusal::InvalidField, "{body:?}");
        }
        for info in [
            RoomInfo { name: Some(nul.clone()), ..RoomInfo::default() },
            RoomInfo { description: Some(nul.clone()), ..RoomInfo::default() },
            RoomInfo { photo_url: Some(nul), ..RoomInfo::default() },
        ] {
            assert_eq!(limits.check_info(&info).unwrap_err().code(), Refusal::InvalidField, "{info:?}");
        }
    }

    #[test]
    fn names_over_the_limit_are_refused() {
        let limits = Limits::default();
        assert!(limits.check_name(&"n".repeat(100)).is_ok());
        assert_eq!(limits.check_name(&"n".repeat(101)).unwrap_err().code(), Refusal::NameTooLong);
    }
}
