//! Tenant admins manage their users and who may connect to LINE. A change of a member's
//! effective LINE permission is audited, published (`line_access`) and told to the member;
//! disabling a user is audited, published (`user_disabled`) and kept as a revocation. Each
//! change is one transaction with the tenant locked, so that the permission before and after
//! are read and written without another change in between.

use chat_auth::Principal;
use chat_protocol::events::ChangeEvent;
use chat_protocol::frames::NotificationKind;
use chat_protocol::UserId;
use secrecy::{ExposeSecret, SecretString};

use super::error::AuthzError;
use super::state::{hash_password, AuthzCore};
use crate::store::{AuditAction, LineMode, StoreError, Tx, User};

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

/// 8 to 256 characters (as the API document says: JSON Schema lengths count characters).
fn check_password(password: &SecretString) -> Result<(), AuthzError> {
    let length = password.expose_secret().chars().count();
    if !(8..=256).contains(&length) {
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

/// The notice a member gets when they may connect to LINE.
pub const LINE_GRANTED_TEXT: &str = "You can now chat with LINE users. LINE users add you as a friend with your ID, \
    your add-friend URL, your QR code or your profile card: see GET /v1/me/line-invite \
    (and /v1/me/line-invite/qr.png, /v1/me/line-invite/card.png).";

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
        let now = chat_protocol::now_ms();
        let mut tx = self.begin().await?;
        match tx.create_user(&user, now).await {
            Ok(()) => {}
            Err(StoreError::Conflict) => return Err(AuthzError::UserExists(user.id)),
            Err(err) => return Err(err.into()),
        }
        tx.audit(&me.tenant, me.id.as_str(), AuditAction::UserCreated, user.id.as_str(), "", now).await?;
        self.commit(tx).await?;
        Ok(UserSummary::new(user, mode))
    }

    /// The users of the admin's tenant, by username.
    pub async fn list_users(&self, principal: &Principal) -> Result<Vec<UserSummary>, AuthzError> {
        let (me, mode) = self.admin(principal).await?;
        let users = self.store.users(&me.tenant).await?;
        Ok(users.into_iter().map(|user| UserSummary::new(user, mode)).collect())
    }

    /// Change a user of the admin's tenant. Disabling publishes `user_disabled` (their tokens
    /// and sessions end) and records when (`/internal/v1/revocations`); a change of their LINE
    /// permission is told.
    pub async fn update_user(
        &self,
        principal: &Principal,
        id: &UserId,
        changes: UserChanges,
    ) -> Result<UserSummary, AuthzError> {
        let (me, _) = self.admin(principal).await?;
        let UserChanges { display_name, password, admin, disabled } = changes;
        if let Some(name) = &display_name {
            check_display_name(name)?;
        }
        if let Some(new_password) = &password {
            check_password(new_password)?;
        }
        // Hashing is slow by design: before the transaction, not inside it.
        let password_hash = match password {
            Some(new_password) => Some(hash_password(new_password).await?),
            None => None,
        };
        let now = chat_protocol::now_ms();
        let mut tx = self.begin().await?;
        let (mode, mut user) = self.locked_user(&mut tx, &me, id).await?;
        let could_use_line = user.may_use_line(mode);
        let was_disabled = user.disabled;
        if let Some(name) = display_name {
            user.display_name = name;
        }
        if let Some(hash) = password_hash {
            user.password_hash = hash;
        }
        if let Some(is_admin) = admin {
            user.admin = is_admin;
        }
        if let Some(is_disabled) = disabled {
            user.disabled = is_disabled;
        }
        tx.update_user(&user, now).await?;
        if user.disabled && !was_disabled {
            tx.mark_disabled(&user.id, now).await?;
            tx.audit(&me.tenant, me.id.as_str(), AuditAction::UserDisabled, user.id.as_str(), "", now).await?;
            let at_secs = u64::try_from(now / 1000).unwrap_or(0);
            let event = ChangeEvent::UserDisabled { tenant: me.tenant.clone(), user: user.id.clone(), at_secs };
            self.emit(&mut tx, event, now).await?;
        }
        self.line_changed(&mut tx, &me, &user, could_use_line, user.may_use_line(mode), now).await?;
        self.commit(tx).await?;
        Ok(UserSummary::new(user, mode))
    }

    /// Who of the admin's tenant may connect to LINE now (`all`, `selected`, `none`).
    pub async fn line_mode_of(&self, principal: &Principal) -> Result<LineMode, AuthzError> {
        let (_, mode) = self.admin(principal).await?;
        Ok(mode)
    }

    /// Set who of the admin's tenant may connect to LINE (`all`, `selected`, `none`); every
    /// member whose permission changes is told. An unknown mode is refused.
    pub async fn set_line_mode(&self, principal: &Principal, mode: String) -> Result<LineMode, AuthzError> {
        let (me, _) = self.admin(principal).await?;
        let new_mode = LineMode::try_from(mode).map_err(AuthzError::InvalidLineMode)?;
        let now = chat_protocol::now_ms();
        let mut tx = self.begin().await?;
        tx.lock_tenants(&[&me.tenant]).await?;
        let old_mode = tx.tenant(&me.tenant).await?.map_or(LineMode::None, |tenant| tenant.line_mode);
        let users = tx.users(&me.tenant).await?;
        tx.set_line_mode(&me.tenant, new_mode).await?;
        let (tenant, subject) = (&me.tenant, me.tenant.as_str());
        tx.audit(tenant, me.id.as_str(), AuditAction::LineModeSet, subject, new_mode.as_str(), now).await?;
        for user in &users {
            self.line_changed(&mut tx, &me, user, user.may_use_line(old_mode), user.may_use_line(new_mode), now)
                .await?;
        }
        self.commit(tx).await?;
        Ok(new_mode)
    }

    /// Grant or withdraw one member's LINE permission (effective in mode `selected`).
    pub async fn set_user_line(
        &self,
        principal: &Principal,
        id: &UserId,
        allowed: bool,
    ) -> Result<UserSummary, AuthzError> {
        let (me, _) = self.admin(principal).await?;
        let now = chat_protocol::now_ms();
        let mut tx = self.begin().await?;
        let (mode, mut user) = self.locked_user(&mut tx, &me, id).await?;
        let before = user.may_use_line(mode);
        user.line_allowed = allowed;
        tx.update_user(&user, now).await?;
        self.line_changed(&mut tx, &me, &user, before, user.may_use_line(mode), now).await?;
        self.commit(tx).await?;
        Ok(UserSummary::new(user, mode))
    }

    /// In `tx`, lock the admin's tenant and read its LINE mode and user `id` (a user of another
    /// tenant is answered as absent).
    async fn locked_user(&self, tx: &mut Tx, admin: &User, id: &UserId) -> Result<(LineMode, User), AuthzError> {
        tx.lock_tenants(&[&admin.tenant]).await?;
        let mode = tx.tenant(&admin.tenant).await?.map_or(LineMode::None, |tenant| tenant.line_mode);
        let user = tx
            .user(id)
            .await?
            .filter(|user| user.tenant == admin.tenant)
            .ok_or_else(|| AuthzError::UserNotFound(id.clone()))?;
        Ok((mode, user))
    }

    /// Audit, publish and tell a change of a member's effective LINE permission. The notice of a
    /// grant says where the member finds what LINE users need to add them as a friend.
    async fn line_changed(
        &self,
        tx: &mut Tx,
        actor: &User,
        user: &User,
        before: bool,
        after: bool,
        now: i64,
    ) -> Result<(), AuthzError> {
        if before == after {
            return Ok(());
        }
        let (action, kind, text) = if after {
            (AuditAction::LineAccessGranted, NotificationKind::LineAccessGranted, LINE_GRANTED_TEXT)
        } else {
            (
                AuditAction::LineAccessRevoked,
                NotificationKind::LineAccessRevoked,
                "You can no longer chat with LINE users.",
            )
        };
        tx.audit(&user.tenant, actor.id.as_str(), action, user.id.as_str(), "", now).await?;
        let (tenant, id) = (user.tenant.clone(), user.id.clone());
        self.emit(tx, ChangeEvent::LineAccess { tenant: tenant.clone(), user: id.clone(), allowed: after }, now)
            .await?;
        self.emit(tx, ChangeEvent::Notify { tenant, user: id, kind, text: text.to_owned() }, now).await?;
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
