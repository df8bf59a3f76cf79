//! What travels on the bus: commands to rooms (`rooms.cmd`, one queue per shard) and messages
//! to gateway nodes (`gw.deliver`, routing key = node id): command replies and deliveries.

use serde::{Deserialize, Serialize};

use crate::body::Body;
use crate::ids::{MessageId, RoomId, TenantId, UserId};
use crate::limits::LimitError;
use crate::refusal::Refusal;
pub use crate::room::{ExclusionReason, MemberKind, RoomInfo, RoomKind};

/// A participant to add: a user id with the tenant it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberSpec {
    pub user: UserId,
    pub tenant: TenantId,
    #[serde(default)]
    pub kind: MemberKind,
}

/// Where the result of a command goes: the issuing node and the caller waiting there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyTo {
    pub node: String,
    pub correlation_id: String,
}

/// A command to one room, as published on `rooms.cmd` with routing key `s<shard>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandEnvelope {
    /// The idempotency key: a redelivered or repeated command is answered, never re-applied.
    pub command_id: String,
    pub room_id: RoomId,
    /// Who asks, and on behalf of which tenant (from the verified token).
    pub actor: UserId,
    pub tenant: TenantId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<ReplyTo>,
    pub issued_at_ms: i64,
    pub command: RoomCommand,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RoomCommand {
    Create {
        kind: RoomKind,
        members: Vec<MemberSpec>,
        #[serde(flatten)]
        info: RoomInfo,
    },
    Post {
        #[serde(default)]
        client_msg_id: Option<String>,
        body: Body,
    },
    Recall {
        message_id: MessageId,
    },
    UpdateInfo {
        #[serde(flatten)]
        info: RoomInfo,
    },
    AddMembers {
        users: Vec<MemberSpec>,
    },
    RemoveMember {
        user: UserId,
    },
    Leave,
    /// Sent by the authorization side when a permission or trust is withdrawn.
    Exclude {
        user: UserId,
        reason: ExclusionReason,
    },
    /// Sent by rooms' event worker when a member blocked or unblocked someone: the room reads
    /// its members' blocks again (live delivery leaves the blocked sender's messages out).
    BlocksChanged,
}

impl RoomCommand {
    pub fn name(&self) -> &'static str {
        match self {
            RoomCommand::Create { .. } => "create",
            RoomCommand::Post { .. } => "post",
            RoomCommand::Recall { .. } => "recall",
            RoomCommand::UpdateInfo { .. } => "update_info",
            RoomCommand::AddMembers { .. } => "add_members",
            RoomCommand::RemoveMember { .. } => "remove_member",
            RoomCommand::Leave => "leave",
            RoomCommand::Exclude { .. } => "exclude",
            RoomCommand::BlocksChanged => "blocks_changed",
        }
    }
}

/// A member left out of an invitation, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Excluded {
    pub user: UserId,
    pub reason: ExclusionReason,
}

/// The recorded answer to a command; re-sent as it is when the command comes again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum CommandResult {
    Created { room_id: RoomId, existed: bool },
    Posted { message_id: MessageId, seq: i64 },
    Done { seq: i64 },
    MembersAdded { added: Vec<UserId>, excluded: Vec<Excluded>, seq: Option<i64> },
}

/// A refusal: a stable code plus a message; nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct CommandError {
    pub code: Refusal,
    pub message: String,
}

impl CommandError {
    pub fn new(code: Refusal, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    /// The answer for a room the caller may not see: the same as for a room that does not exist.
    pub fn room_not_found() -> Self {
        Self::new(Refusal::RoomNotFound, "room not found")
    }

    /// A failure on the server's side; the cause is logged where it happened.
    pub fn internal() -> Self {
        Self::new(Refusal::Internal, "internal error")
    }
}

impl From<LimitError> for CommandError {
    fn from(err: LimitError) -> Self {
        Self::new(err.code(), err.to_string())
    }
}

pub type CommandOutcome = Result<CommandResult, CommandError>;

/// Everything a gateway node receives on its queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NodeMessage {
    Reply {
        correlation_id: String,
        outcome: CommandOutcome,
    },
    /// One per node per room event: the node pushes `frame` to the local sessions of
    /// `recipients`.
    Deliver {
        /// The room of the event; `None` for a notification that belongs to no room.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room_id: Option<RoomId>,
        recipients: Vec<UserId>,
        /// The event's seq in its room (`None` for a frame of no seq, e.g. a notification), so
        /// sessions need not parse the frame to keep a room's pushes in order.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<i64>,
        /// The serialized `ServerFrame`, encoded once by the room.
        frame: String,
        /// When the room committed the event, to measure delivery latency.
        committed_at_ms: i64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_round_trip() {
        let ok: CommandOutcome = Ok(CommandResult::Posted { message_id: "m".into(), seq: 3 });
        let refused: CommandOutcome = Err(CommandError::room_not_found());
        let json = serde_json::to_string(&refused).unwrap();
        assert!(json.contains(r#""code":"room_not_found""#), "{json}");
        let msg = NodeMessage::Reply { correlation_id: "c".into(), outcome: ok };
        let json = serde_json::to_string(&msg).unwrap();
        assert_eq!(serde_json::from_str::<NodeMessage>(&json).unwrap(), msg);
    }

    #[test]
    fn kinds_have_markers() {
        assert_eq!(RoomKind::LineGroup.markers(), vec!["line"]);
        assert_eq!(RoomKind::ExternalDirect.markers(), vec!["external"]);
        assert!(RoomKind::Group.markers().is_empty());
        for k in ["direct", "group", "external_direct", "external_group", "line_direct", "line_group"] {
            assert_eq!(RoomKind::try_from(k.to_owned()).unwrap().as_str(), k);
        }
    }

    #[test]
    fn stored_names_are_the_wire_names_and_unknown_ones_are_errors() {
        use strum::IntoEnumIterator;
        for kind in RoomKind::iter() {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
        for kind in MemberKind::iter() {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
        for reason in ExclusionReason::iter() {
            assert_eq!(serde_json::to_value(reason).unwrap(), reason.as_str());
        }
        for kind in crate::frames::NotificationKind::iter() {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
        assert!(MemberKind::try_from("owner".to_owned()).is_err());
        assert!(RoomKind::try_from(String::new()).is_err());
    }
}
