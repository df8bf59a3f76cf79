//! What a room is: its kind, the kinds of its participants, and its descriptive fields.

use serde::{Deserialize, Serialize};

crate::text_enum! {
    /// The kinds of room. External and LINE kinds carry markers in the room list.
    pub enum RoomKind {
        /// 1:1 between two members of one tenant; unique per pair.
        Direct,
        /// Several members of one tenant, with a name, photo and description.
        Group,
        /// 1:1 with a member of another tenant (needs bilateral trust).
        ExternalDirect,
        /// Several members of several tenants; a Group Master manages membership.
        ExternalGroup,
        /// 1:1 with a LINE user (created when the LINE user adds the member as a friend).
        LineDirect,
        /// Connected to a LINE group, or several LINE users invited by a member.
        LineGroup,
    }
}

impl RoomKind {
    /// 1:1 kinds: exactly two participants, no rename, no invitations.
    pub fn is_one_to_one(self) -> bool {
        matches!(self, RoomKind::Direct | RoomKind::ExternalDirect | RoomKind::LineDirect)
    }

    /// Rooms with members of other tenants (posting needs an active trust).
    pub fn is_external(self) -> bool {
        matches!(self, RoomKind::ExternalDirect | RoomKind::ExternalGroup)
    }

    /// Rooms with LINE users (posting needs the LINE permission).
    pub fn is_line(self) -> bool {
        matches!(self, RoomKind::LineDirect | RoomKind::LineGroup)
    }

    /// The markers shown in the room list (`line`, `external`).
    pub fn markers(self) -> Vec<&'static str> {
        match self {
            RoomKind::Direct | RoomKind::Group => vec![],
            RoomKind::ExternalDirect | RoomKind::ExternalGroup => vec!["external"],
            RoomKind::LineDirect | RoomKind::LineGroup => vec!["line"],
        }
    }
}

crate::text_enum! {
    /// Whether a participant is a member of a tenant or a LINE user reached through a gateway.
    #[derive(Default)]
    pub enum MemberKind {
        #[default]
        Member,
        LineUser,
    }
}

crate::text_enum! {
    /// Why a user was left out of an invitation, or removed from a room by rule.
    pub enum ExclusionReason {
        /// Not allowed here (no authorization service configured, or outside the room's scope).
        NotAuthorized,
        /// No such user, or a disabled one.
        UnknownUser,
        /// The two tenants have no active trust.
        ExternalNotAuthorized,
        /// The inviting member may not connect to LINE.
        LineNotAuthorized,
        /// The member's LINE permission was withdrawn.
        LineAccessRevoked,
        /// The trust between the member's tenant and the room's was withdrawn.
        TrustRevoked,
    }
}

/// A room's descriptive fields. In a command each is optional (absent: unchanged); in a room's
/// state they are the current values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RoomInfo {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub photo_url: Option<String>,
}

impl RoomInfo {
    /// This change applied over `current`: the fields it sets replace, the others stay.
    pub fn over(&self, current: &RoomInfo) -> RoomInfo {
        RoomInfo {
            name: self.name.clone().or_else(|| current.name.clone()),
            description: self.description.clone().or_else(|| current.description.clone()),
            photo_url: self.photo_url.clone().or_else(|| current.photo_url.clone()),
        }
    }
}
