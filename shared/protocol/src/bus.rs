//! What travels on the bus: commands to rooms (`rooms.cmd`, one queue per shard) and messages
//! to gateway nodes (`gw.deliver`, routing key = node id): command replies and deliveries.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::body::Body;
use crate::call::{CallId, CallMedia, CallSignal, DeviceId};
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
    /// Calls (see `chat_protocol::call`). `device` is the sending connection, stamped by the
    /// session.
    CallStart {
        media: CallMedia,
        device: DeviceId,
    },
    /// Accept (ringing for the actor) or join (a call going on).
    CallAnswer {
        call_id: CallId,
        device: DeviceId,
        /// A join: if the actor is in the call on another device, the call moves to this one
        /// (an accept is refused then: the first device to answer wins).
        #[serde(default)]
        move_here: bool,
    },
    CallDecline {
        call_id: CallId,
    },
    CallCancel {
        call_id: CallId,
        device: DeviceId,
    },
    CallHangup {
        call_id: CallId,
        device: DeviceId,
    },
    /// Relayed to `to`'s device in the call; nothing is written.
    CallSignal {
        call_id: CallId,
        device: DeviceId,
        to: UserId,
        signal: CallSignal,
    },
    /// Sent when the call's ringing deadline passes: by the room's actor to itself, or by a
    /// node's sweep for a ring that outlived its actor.
    CallRingTimeout {
        call_id: CallId,
    },
    /// Sent by a node's sweep: this participant's device is gone (its session ended on a live
    /// node, or its node is no longer a cluster member) without hanging up.
    CallDeviceGone {
        call_id: CallId,
        device: DeviceId,
    },
}

impl RoomCommand {
    /// A command about the room's call (decided by the call rules).
    pub fn is_call(&self) -> bool {
        matches!(
            self,
            RoomCommand::CallStart { .. }
                | RoomCommand::CallAnswer { .. }
                | RoomCommand::CallDecline { .. }
                | RoomCommand::CallCancel { .. }
                | RoomCommand::CallHangup { .. }
                | RoomCommand::CallSignal { .. }
                | RoomCommand::CallRingTimeout { .. }
                | RoomCommand::CallDeviceGone { .. }
        )
    }

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
            RoomCommand::CallStart { .. } => "call_start",
            RoomCommand::CallAnswer { .. } => "call_answer",
            RoomCommand::CallDecline { .. } => "call_decline",
            RoomCommand::CallCancel { .. } => "call_cancel",
            RoomCommand::CallHangup { .. } => "call_hangup",
            RoomCommand::CallSignal { .. } => "call_signal",
            RoomCommand::CallRingTimeout { .. } => "call_ring_timeout",
            RoomCommand::CallDeviceGone { .. } => "call_device_gone",
        }
    }
}

/// A member left out of an invitation, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Excluded {
    pub user: UserId,
    pub reason: ExclusionReason,
}

/// The recorded answer to a command; re-sent as it is when the command comes again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum CommandResult {
    Created {
        room_id: RoomId,
        existed: bool,
    },
    Posted {
        message_id: MessageId,
        seq: i64,
    },
    Done {
        seq: i64,
    },
    MembersAdded {
        added: Vec<UserId>,
        excluded: Vec<Excluded>,
        seq: Option<i64>,
    },
    /// The device is in the call.
    CallJoined {
        call_id: CallId,
    },
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

/// Everything a gateway node receives on its queue. Consumers read a message with
/// [`NodeMessage::into_items`], which unrolls batches.
///
/// Serialized internally tagged (`"type"`); deserialized through a plain struct (`NodeWire`)
/// because serde buffers an internally tagged enum's fields, which a raw JSON value (the
/// delivered frame) does not survive.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
        /// The `ServerFrame`, encoded once by the room and embedded as it is (raw JSON: neither
        /// escaped into a string nor parsed back on the node).
        frame: RawFrame,
        /// When the room committed the event, to measure delivery latency.
        committed_at_ms: i64,
        /// Only this session of the recipients (a call's signaling goes to one device).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<u64>,
    },
    /// Several replies and deliveries for one node in one publish, handled in order.
    Batch {
        items: Vec<NodeMessage>,
    },
}

impl NodeMessage {
    /// The replies and deliveries this message carries, in order: itself, or a batch's items
    /// (nested batches unrolled too).
    pub fn into_items(self) -> NodeItems {
        NodeItems { first: Some(self), rest: Vec::new() }
    }
}

/// The replies and deliveries of one [`NodeMessage`], batches unrolled, in order.
#[derive(Debug)]
pub struct NodeItems {
    first: Option<NodeMessage>,
    /// The batches being unrolled, innermost last.
    rest: Vec<std::vec::IntoIter<NodeMessage>>,
}

impl Iterator for NodeItems {
    type Item = NodeMessage;

    fn next(&mut self) -> Option<NodeMessage> {
        loop {
            let next = match self.first.take() {
                Some(message) => message,
                None => {
                    let batch = self.rest.last_mut()?;
                    match batch.next() {
                        Some(message) => message,
                        None => {
                            self.rest.pop();
                            continue;
                        }
                    }
                }
            };
            match next {
                NodeMessage::Batch { items } => self.rest.push(items.into_iter()),
                message => return Some(message),
            }
        }
    }
}

/// A serialized `ServerFrame` carried as raw JSON: serialized as the JSON it holds, deserialized
/// without building anything from it.
#[derive(Debug, Clone)]
pub struct RawFrame(Box<RawValue>);

impl RawFrame {
    /// A frame already serialized (`serde_json::to_string` of a `ServerFrame`). The text is
    /// checked to be one JSON value (a scan, nothing is built); an error if it is not.
    pub fn from_json(json: String) -> Result<Self, serde_json::Error> {
        RawValue::from_string(json).map(Self)
    }

    /// Serialize `frame` straight into a raw frame (nothing to check).
    pub fn encode<T: Serialize + ?Sized>(frame: &T) -> Result<Self, serde_json::Error> {
        serde_json::value::to_raw_value(frame).map(Self)
    }

    /// The frame's JSON text, as it goes to a client.
    pub fn get(&self) -> &str {
        self.0.get()
    }
}

impl PartialEq for RawFrame {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl From<RawFrame> for std::sync::Arc<str> {
    fn from(frame: RawFrame) -> Self {
        std::sync::Arc::from(frame.get())
    }
}

impl Serialize for RawFrame {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for RawFrame {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        if raw.get().starts_with('"') {
            // The former format (a frame is an object): its JSON escaped in a string, from a
            // room not yet upgraded. Read once, rather than push a string to clients.
            let json: String = serde_json::from_str(raw.get()).map_err(D::Error::custom)?;
            return Self::from_json(json).map_err(D::Error::custom);
        }
        Ok(Self(raw))
    }
}

/// Which `NodeMessage` a `NodeWire` is.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum NodeKind {
    Reply,
    Deliver,
    Batch,
}

/// Every field of every `NodeMessage`, read straight from the JSON (no buffering, so the raw
/// frame survives), then checked against the `type`.
#[derive(Deserialize)]
struct NodeWire {
    #[serde(rename = "type")]
    kind: NodeKind,
    correlation_id: Option<String>,
    outcome: Option<CommandOutcome>,
    room_id: Option<RoomId>,
    recipients: Option<Vec<UserId>>,
    seq: Option<i64>,
    frame: Option<RawFrame>,
    committed_at_ms: Option<i64>,
    session: Option<u64>,
    items: Option<Vec<NodeMessage>>,
}

impl<'de> Deserialize<'de> for NodeMessage {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let wire = NodeWire::deserialize(deserializer)?;
        let missing = |field: &'static str| D::Error::missing_field(field);
        Ok(match wire.kind {
            NodeKind::Reply => NodeMessage::Reply {
                correlation_id: wire.correlation_id.ok_or_else(|| missing("correlation_id"))?,
                outcome: wire.outcome.ok_or_else(|| missing("outcome"))?,
            },
            NodeKind::Deliver => NodeMessage::Deliver {
                room_id: wire.room_id,
                recipients: wire.recipients.ok_or_else(|| missing("recipients"))?,
                seq: wire.seq,
                frame: wire.frame.ok_or_else(|| missing("frame"))?,
                committed_at_ms: wire.committed_at_ms.ok_or_else(|| missing("committed_at_ms"))?,
                session: wire.session,
            },
            NodeKind::Batch => NodeMessage::Batch { items: wire.items.ok_or_else(|| missing("items"))? },
        })
    }
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

    fn deliver(seq: i64) -> NodeMessage {
        NodeMessage::Deliver {
            room_id: Some("r1".into()),
            recipients: vec!["u1@acme".into()],
            seq: Some(seq),
            frame: RawFrame::from_json(format!(r#"{{"type":"event","seq":{seq},"text":"a \"quote\""}}"#)).unwrap(),
            committed_at_ms: 5,
            session: None,
        }
    }

    #[test]
    fn a_delivered_frame_is_embedded_as_raw_json() {
        let msg = deliver(7);
        let json = serde_json::to_string(&msg).unwrap();
        assert!(json.contains(r#""frame":{"type":"event","seq":7,"text":"a \"quote\""}"#), "{json}");
        assert!(json.starts_with(r#"{"type":"deliver","#), "{json}");
        let back = serde_json::from_slice::<NodeMessage>(json.as_bytes()).unwrap();
        assert_eq!(back, msg);
        let NodeMessage::Deliver { frame, .. } = back else { panic!("a delivery") };
        assert_eq!(&*std::sync::Arc::<str>::from(frame), r#"{"type":"event","seq":7,"text":"a \"quote\""}"#);
        // The new format as a node reads it off the wire, frame as an object.
        let wire = r#"{"type":"deliver","recipients":["u2@acme"],"frame":{"type":"notice"},"committed_at_ms":1}"#;
        let NodeMessage::Deliver { frame, room_id, seq, .. } = serde_json::from_str(wire).unwrap() else {
            panic!("a delivery")
        };
        assert_eq!((frame.get(), room_id, seq), (r#"{"type":"notice"}"#, None, None));
        // The former format, the frame's JSON in a string, still reads as the frame.
        let former = r#"{"type":"deliver","recipients":[],"frame":"{\"type\":\"notice\"}","committed_at_ms":1}"#;
        let NodeMessage::Deliver { frame, .. } = serde_json::from_str(former).unwrap() else { panic!("a delivery") };
        assert_eq!(frame.get(), r#"{"type":"notice"}"#);
        assert!(RawFrame::from_json("not json".into()).is_err());
        assert!(serde_json::from_str::<NodeMessage>(r#"{"type":"deliver","recipients":[]}"#).is_err());
    }

    #[test]
    fn a_batch_round_trips_and_unrolls_in_order() {
        let reply =
            |c: &str| NodeMessage::Reply { correlation_id: c.into(), outcome: Ok(CommandResult::Done { seq: 1 }) };
        let batch = NodeMessage::Batch {
            items: vec![
                reply("c1"),
                deliver(1),
                NodeMessage::Batch { items: vec![deliver(2), NodeMessage::Batch { items: vec![] }, reply("c2")] },
                deliver(3),
            ],
        };
        let json = serde_json::to_vec(&batch).unwrap();
        let back: NodeMessage = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, batch);
        let items: Vec<NodeMessage> = back.into_items().collect();
        assert_eq!(items, vec![reply("c1"), deliver(1), deliver(2), reply("c2"), deliver(3)]);
        assert_eq!(deliver(9).into_items().collect::<Vec<_>>(), vec![deliver(9)]);
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
