//! The authorization service's internal decision endpoint, as other services call it. (Its
//! change events are in `events`.)

use serde::{Deserialize, Serialize};

use crate::ids::{TenantId, UserId};
use crate::room::ExclusionReason;

/// `POST /internal/v1/decide`: may `actor` (of `tenant`) have these users in a room?
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecideRequest {
    pub tenant: TenantId,
    pub actor: UserId,
    pub users: Vec<UserId>,
}

/// One user's verdict. `tenant` is `None` when the user does not exist (or is disabled).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Verdict {
    pub user: UserId,
    pub tenant: Option<TenantId>,
    pub allowed: bool,
    /// Why not: `unknown_user`, `external_not_authorized`, `line_not_authorized`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<ExclusionReason>,
    /// The user may connect to LINE now (a member whose admin allows it; a LINE user itself).
    /// A room with LINE users keeps out the members who may not, even when they are invited.
    #[serde(default)]
    pub line: bool,
    /// The user's display name (members that exist).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The name of the user's company (members that exist).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DecideResponse {
    /// Whether the actor may connect to LINE now.
    pub actor_line: bool,
    /// Whether the actor is an enabled admin of the tenant now: the stored member, not a
    /// token's claim (a role removed, or an account disabled, after the token was issued).
    #[serde(default)]
    pub actor_admin: bool,
    /// Tenants the actor's tenant has an active (bilateral) trust with.
    pub trusted_tenants: Vec<TenantId>,
    pub verdicts: Vec<Verdict>,
}
