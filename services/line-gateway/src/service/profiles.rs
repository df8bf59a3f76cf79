//! LINE users as members see them in rooms: their LINE display name and picture, known to a
//! channel of the member's company (its friends, and the members of its LINE groups). A LINE
//! user no channel of the company knows is left out, as if absent.

use chat_auth::Principal;
use chat_protocol::ids::LINE_USER_PREFIX;
use chat_protocol::UserId;

use super::error::LineError;
use super::state::LineCore;

/// The most LINE users one request asks about.
pub const MAX_PROFILES: usize = 100;

/// A LINE user's profile, for members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineProfile {
    pub user: UserId,
    pub display_name: String,
    pub picture_url: Option<String>,
}

impl LineCore {
    /// The profiles of `users` (`line:<id>`) that a channel of the caller's company knows.
    pub async fn line_profiles(&self, principal: &Principal, users: &[UserId]) -> Result<Vec<LineProfile>, LineError> {
        if users.len() > MAX_PROFILES {
            return Err(LineError::InvalidField { field: "users", reason: "at most 100 LINE users" });
        }
        let mut profiles = Vec::new();
        for user in users {
            let Some(line_user_id) = user.as_str().strip_prefix(LINE_USER_PREFIX).filter(|id| !id.is_empty()) else {
                continue;
            };
            if let Some((display_name, picture_url)) = self.store.line_profile(&principal.tenant, line_user_id).await? {
                profiles.push(LineProfile { user: user.clone(), display_name, picture_url });
            }
        }
        Ok(profiles)
    }
}
