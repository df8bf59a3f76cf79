//! Tenant admins manage their users and who may connect to LINE. A change of a member's
//! effective LINE permission is audited, published (`line_access`) and told to the member.

use chat_auth::Principal;
use chat_protocol::authz::AuthzEvent;
use chat_protocol::frames::NotificationKind;
use chat_protocol::UserId;
use secrecy::{ExposeSecret, SecretString};

use super::error::AuthzError;
use super::state::{hash_password, AuthzCore};
use crate::store::{AuditAction, LineMode, StoreError, User};

/// A user as admins see them: the row and their effective LINE permission.
#[derive(Debug)]
pub struct UserSummary {
    pub user: User,
    pub line_access: bool,
}

impl UserSummary {
    fn new(user: User, mode: LineMode) -> Self {
        Self { line_access: user.may_use_line(mode), user }
    }
}

/// A user to create in the admin's tenant.
pub struct NewUser {
    pub username: String,
    pub password: SecretString,
    /// The username when absent.
    pub display_name: Option<String>,
    pub admin: bool,
}

/// Changes to a user; absent fields stay as they are.
pub struct UserChanges {
    pub display_name: Option<String>,
    pub password: Option<SecretString>,
    pub admin: Option<bool>,
    pub disabled: Option<bool>,
}

/// 1 to 64 of `[a-z0-9._-]`.
fn check_username(name: &str) -> Result<(), AuthzError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'));
    if !valid {
        return Err(AuthzError::InvalidUsername(name.to_owned()));
    }
    Ok(())
}

/// 8 to 256 characters (at most 256 bytes).
fn check_password(password: &SecretString) -> Result<(), AuthzError> {
    let text = password.expose_secret();
    if text.chars().count() < 8 || text.len() > 256 {
        return Err(AuthzError::InvalidPassword);
    }
    Ok(())
}

/// 1 to 100 characters, not only blanks.
fn check_display_name(name: &str) -> Result<(), AuthzError> {
    if name.trim().is_empty() || name.chars().count() > 100 {
        return Err(AuthzError::InvalidDisplayName);
    }
    Ok(())
}

impl AuthzCore {
    /// Create a user in the admin's tenant, without LINE access.
    pub async fn create_user(&self, principal: &Principal, new: NewUser) -> Result<UserSummary, AuthzError> {
        let (me, mode) = self.admin(principal).await?;
        let NewUser { username, password, display_name, admin } = new;
        check_username(&username)?;
        check_password(&password)?;
        let shown_name = display_name.unwrap_or_else(|| username.clone());
        check_display_name(&shown_name)?;
        let user = User::new_member(&me.tenant, &username, &shown_name, hash_password(password).await?, admin);
        match self.store.create_user(&user, chat_protocol::now_ms()).await {
            Ok(()) => {}
            Err(StoreError::Conflict) => return Err(AuthzError::UserExists(user.id)),
            Err(err) => return Err(err.into()),
        }
        self.record(&me.tenant, me.id.as_str(), AuditAction::UserCreated, user.id.as_str(), "").await?;
        Ok(UserSummary::new(user, mode))
    }

    /// The users of the admin's tenant, by username.
    pub async fn list_users(&self, principal: &Principal) -> Result<Vec<UserSummary>, AuthzError> {
        let (me, mode) = self.admin(principal).await?;
        let users = self.store.users(&me.tenant).await?;
        Ok(users.into_iter().map(|user| UserSummary::new(user, mode)).collect())
    }

    /// Change a user of the admin's tenant. Disabling publishes `user_disabled` (their tokens
    /// and sessions end); a change of their LINE permission is told.
    pub async fn update_user(
        &self,
        principal: &Principal,
        id: &UserId,
        changes: UserChanges,
    ) -> Result<UserSummary, AuthzError> {
        let (me, mode) = self.admin(principal).await?;
        let mut user = self.own_user(&me.tenant, id).await?;
        let UserChanges { display_name, password, admin, disabled } = changes;
        if let Some(name) = &display_name {
            check_display_name(name)?;
        }
        if let Some(new_password) = &password {
            check_password(new_password)?;
        }
        let could_use_line = user.may_use_line(mode);
        let was_disabled = user.disabled;
        if let Some(name) = display_name {
            user.display_name = name;
        }
        if let Some(new_password) = password {
            user.password_hash = hash_password(new_password).await?;
        }
        if let Some(is_admin) = admin {
            user.admin = is_admin;
        }
        if let Some(is_disabled) = disabled {
            user.disabled = is_disabled;
        }
        let now = chat_protocol::now_ms();
        self.store.update_user(&user, now).await?;
        if user.disabled && !was_disabled {
            self.record(&me.tenant, me.id.as_str(), AuditAction::UserDisabled, user.id.as_str(), "").await?;
            let at_secs = u64::try_from(now / 1000).unwrap_or(0);
            self.emit(AuthzEvent::UserDisabled { tenant: me.tenant.clone(), user: user.id.clone(), at_secs }).await;
        }
        self.line_changed(&me, &user, could_use_line, user.may_use_line(mode)).await?;
        Ok(UserSummary::new(user, mode))
    }

    /// Set who of the admin's tenant may connect to LINE (`all`, `selected`, `none`); every
    /// member whose permission changes is told. An unknown mode is refused.
    pub async fn set_line_mode(&self, principal: &Principal, mode: String) -> Result<LineMode, AuthzError> {
        let (me, old_mode) = self.admin(principal).await?;
        let new_mode = LineMode::try_from(mode).map_err(AuthzError::InvalidLineMode)?;
        let users = self.store.users(&me.tenant).await?;
        self.store.set_line_mode(&me.tenant, new_mode).await?;
        self.record(&me.tenant, me.id.as_str(), AuditAction::LineModeSet, me.tenant.as_str(), new_mode.as_str())
            .await?;
        for user in &users {
            self.line_changed(&me, user, user.may_use_line(old_mode), user.may_use_line(new_mode)).await?;
        }
        Ok(new_mode)
    }

    /// Grant or withdraw one member's LINE permission (effective in mode `selected`).
    pub async fn set_user_line(
        &self,
        principal: &Principal,
        id: &UserId,
        allowed: bool,
    ) -> Result<UserSummary, AuthzError> {
        let (me, mode) = self.admin(principal).await?;
        let mut user = self.own_user(&me.tenant, id).await?;
        let before = user.may_use_line(mode);
        user.line_allowed = allowed;
        self.store.update_user(&user, chat_protocol::now_ms()).await?;
        self.line_changed(&me, &user, before, user.may_use_line(mode)).await?;
        Ok(UserSummary::new(user, mode))
    }

    /// Audit, publish and tell a change of a member's effective LINE permission.
    async fn line_changed(&self, actor: &User, user: &User, before: bool, after: bool) -> Result<(), AuthzError> {
        if before == after {
            return Ok(());
        }
        let (action, kind, text) = if after {
            (AuditAction::LineAccessGranted, NotificationKind::LineAccessGranted, "You can now chat with LINE users.")
        } else {
            (
                AuditAction::LineAccessRevoked,
                NotificationKind::LineAccessRevoked,
                "You can no longer chat with LINE users.",
            )
        };
        self.record(&user.tenant, actor.id.as_str(), action, user.id.as_str(), "").await?;
        self.emit(AuthzEvent::LineAccess { tenant: user.tenant.clone(), user: user.id.clone(), allowed: after }).await;
        self.emit(AuthzEvent::Notify {
            tenant: user.tenant.clone(),
            user: user.id.clone(),
            kind,
            text: text.to_owned(),
        })
        .await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_short_lowercase_words() {
        assert!(check_username("alice.b_c-1").is_ok());
        for bad in ["", "Eve Smith!", "Alice", "a@b", &"x".repeat(65)] {
            assert!(matches!(check_username(bad), Err(AuthzError::InvalidUsername(_))), "{bad:?}");
        }
    }

    #[test]
    fn passwords_and_display_names_have_bounds() {
        assert!(check_password(&SecretString::from("12345678")).is_ok());
        assert!(matches!(check_password(&SecretString::from("short")), Err(AuthzError::InvalidPassword)));
        assert!(matches!(check_password(&SecretString::from("x".repeat(257))), Err(AuthzError::InvalidPassword)));
        assert!(check_display_name("Alice Anders").is_ok());
        assert!(matches!(check_display_name("  "), Err(AuthzError::InvalidDisplayName)));
        assert!(matches!(check_display_name(&"x".repeat(101)), Err(AuthzError::InvalidDisplayName)));
    }
}
