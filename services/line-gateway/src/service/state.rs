//! What every rule works on (`LineCore`), and the steps several rules share: the admin's
//! member, publishing a change event.

use std::sync::Arc;

use chat_auth::{Principal, Verifier};
use chat_bus::SharedBus;
use chat_protocol::events::EventEnvelope;
use chat_protocol::UserId;
use tokio::sync::Notify;

use super::error::LineError;
use crate::authz::AuthzClient;
use crate::line_api::LineApi;
use crate::media::MediaStore;
use crate::media_links::MediaLinks;
use crate::membership::RoomMembership;
use crate::rooms::RoomsClient;
use crate::secrets::SecretsKey;
use crate::settings::Settings;
use crate::store::Store;

/// The role that manages a tenant's LINE channels.
const ADMIN_ROLE: &str = "admin";

/// The LINE gateway: its store, the bus, its clients of authz and rooms, the key of the stored
/// credentials, and the rules over them (the methods in `service/*.rs`). Shared by every HTTP
/// worker, the inbox workers and the event consumer.
pub struct LineCore {
    pub store: Store,
    pub bus: SharedBus,
    pub settings: Settings,
    /// Verifies the bearer tokens of API callers.
    pub verifier: Verifier,
    pub authz: AuthzClient,
    pub rooms: Arc<RoomsClient>,
    /// Encrypts and decrypts channel secrets and access tokens.
    pub secrets: SecretsKey,
    /// Wakes the inbox workers when a webhook stored events.
    pub inbox_wake: Arc<Notify>,
    /// LINE's Messaging API (pushes, profiles).
    pub line_api: LineApi,
    /// Wakes the sender workers when outbound messages were stored or became due.
    pub outbox_wake: Arc<Notify>,
    /// Push requests per second, per channel (`line.push_per_second`).
    pub push_limiter: PushLimiter,
    /// Where LINE users' media is kept (`media.*`).
    pub media: MediaStore,
    /// Who is in a room, asked of rooms (`rooms.url`).
    pub membership: RoomMembership,
    /// Signs the links LINE fetches members' media from.
    pub links: MediaLinks,
    /// Preview images being made at once (each decodes a whole image).
    pub previews: Arc<tokio::sync::Semaphore>,
}

/// A rate limiter of push requests keyed by channel id.
pub type PushLimiter = Arc<governor::DefaultKeyedRateLimiter<String>>;

/// The limiter of `per_second` pushes per channel (at least 1).
pub fn push_limiter(per_second: u32) -> PushLimiter {
    let rate = std::num::NonZeroU32::new(per_second.max(1)).unwrap_or(std::num::NonZeroU32::MIN);
    Arc::new(governor::RateLimiter::keyed(governor::Quota::per_second(rate)))
}

impl LineCore {
    /// The caller must be an admin of their own tenant (every rule then works in it): the
    /// token says so, and authz says so now (a role removed or an account disabled after the
    /// token was issued counts at once).
    pub(super) async fn require_admin(&self, principal: &Principal) -> Result<(), LineError> {
        if !principal.roles.iter().any(|role| role == ADMIN_ROLE) {
            return Err(LineError::NotAdmin);
        }
        let admin = self
            .authz
            .admin(&principal.tenant, &principal.user_id)
            .await
            .map_err(|err| LineError::AuthzUnavailable(err.0))?;
        if admin {
            Ok(())
        } else {
            Err(LineError::NotAdmin)
        }
    }

    /// The member `user_id` names, when the caller is an admin of the member's tenant; a
    /// member of another tenant is `UserNotFound`, as if absent.
    pub(super) async fn admins_member(&self, principal: &Principal, user_id: &str) -> Result<UserId, LineError> {
        self.require_admin(principal).await?;
        let member = UserId::new(user_id);
        if member.is_line_user() || member.tenant_part() != Some(principal.tenant.as_str()) {
            return Err(LineError::UserNotFound(member));
        }
        Ok(member)
    }

    /// Publish a change event (after its change is stored); a failure is `BusUnavailable`.
    pub(crate) async fn publish(&self, envelope: &EventEnvelope) -> Result<(), LineError> {
        let payload = serde_json::to_vec(envelope)?;
        self.bus.publish_event(payload).await.map_err(|err| LineError::BusUnavailable(err.to_string()))
    }
}
