//! What travels on the bus: commands to rooms (`rooms.cmd`, one queue per shard) and messages
//! to gateway nodes (`gw.deliver`, routing key = node id): command replies and deliveries.

use serde::{Deserialize, Serialize};

use crate::body::Body;

/// The kinds of room. External and LINE kinds carry markers in the room list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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

impl RoomKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RoomKind::Direct => "direct",
            RoomKind::Group => "group",
            RoomKind::ExternalDirect => "external_direct",
            RoomKind::ExternalGroup => "external_group",
            RoomKind::LineDirect => "line_direct",
            RoomKind::LineGroup => "line_group",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "direct" => RoomKind::Direct,
            "group" => RoomKind::Group,
            "external_direct" => RoomKind::ExternalDirect,
            "external_group" => RoomKind::ExternalGroup,
            "line_direct" => RoomKind::LineDirect,
            "line_group" => RoomKind::LineGroup,
            _ => return None,
        })
    }

    /// 1:1 kinds: exactly two participants, no rename, no invitations.
    pub fn is_one_to_one(self) -> bool {
        matches!(self, RoomKind::Direct | RoomKind::ExternalDirect | RoomKind::LineDirect)
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

/// Whether a participant is a member of a tenant or a LINE user reached through a gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MemberKind {
    #[default]
    Member,
    LineUser,
}

impl MemberKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberKind::Member => "member",
            MemberKind::LineUser => "line_user",
        }
    }
}

/// A participant to add: a user id with the tenant it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberSpec {
    pub user: String,
    pub tenant: String,
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
    pub room_id: String,
    /// Who asks, and on behalf of which tenant (from the verified token).
    pub actor: String,
    pub tenant: String,
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
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        description: Option<String>,
        #[serde(default)]
        photo_url: Option<String>,
    },
    Post {
        #[serde(default)]
        client_msg_id: Option<String>,
        body: Body,
    },
    Recall {
        message_id: String,
    },
    UpdateInfo {
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        description: Option<String>,
        #[serde(default)]
        photo_url: Option<String>,
    },
    AddMembers {
        users: Vec<MemberSpec>,
    },
    RemoveMember {
        user: String,
    },
    Leave,
    /// Sent by the authorization side when a permission or trust is withdrawn.
    Exclude {
        user: String,
        reason: String,
    },
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
        }
    }
}

/// A member left out of an invitation, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Excluded {
    pub user: String,
    pub reason: String,
}

/// The recorded answer to a command; re-sent as it is when the command comes again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum CommandResult {
    Created { room_id: String, existed: bool },
    Posted { message_id: String, seq: i64 },
    Done { seq: i64 },
    MembersAdded { added: Vec<String>, excluded: Vec<Excluded>, seq: Option<i64> },
}

/// A refusal: a stable code plus a message; nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandError {
    pub code: String,
    pub message: String,
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
        room_id: String,
        recipients: Vec<String>,
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
            assert_eq!(RoomKind::parse(k).unwrap().as_str(), k);
        }
    }
}
