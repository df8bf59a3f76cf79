//! Room commands for LINE users' events: the member's LINE 1:1 room (`Create`, created or
//! reopened on behalf of the member), the LINE user's posts into it and their recalls (LINE's
//! `unsend`), each a command on the
//! room's shard queue with this node as `reply_to`, and the wait for the reply on this node's
//! queue (`gw.node.<node>`), which this module consumes. Command ids derive from the webhook
//! event, so an event processed twice is answered from the room's record, never applied twice.

use std::sync::Arc;
use std::time::Duration;

use chat_bus::{BusError, CommandClient, SharedBus};
use chat_protocol::bus::{CommandResult, MemberKind, MemberSpec, RoomCommand, RoomInfo, RoomKind};
use chat_protocol::{is_valid_client_id, keyed_command_id, post_command_id, Body};
use chat_protocol::{MessageId, RoomId, TenantId, UserId};

/// The namespace of the ids of LINE 1:1 rooms opened by the gateway.
const LINE_DIRECT_ROOM_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x8b2e_5c14_7a90_4d3f_b621_0e9c_47d5_a318);

/// The namespace of the ids of rooms connected to LINE groups.
const LINE_GROUP_ROOM_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x5d1f_0a37_c2e8_4b96_9e04_71a3_d8c5_2f60);

/// The namespace of client message ids made from webhook event ids that are not valid ids.
const CLIENT_MSG_ID_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x1c7d_93a0_4e2b_4f65_8d19_b3e0_5a72_c846);

/// Why rooms did not do what was asked.
pub type RoomsError = chat_bus::CommandFailed;

/// The room every event of this (member, LINE user) pair targets first.
pub fn line_direct_room_id(member: &UserId, line_user: &UserId) -> RoomId {
    let name = format!("line_direct:{member}:{line_user}");
    RoomId::new(uuid::Uuid::new_v5(&LINE_DIRECT_ROOM_NAMESPACE, name.as_bytes()).to_string())
}

/// The room connected to a channel's LINE group.
pub fn line_group_room_id(channel_id: &str, group_id: &str) -> RoomId {
    let name = format!("line_group:{channel_id}:{group_id}");
    RoomId::new(uuid::Uuid::new_v5(&LINE_GROUP_ROOM_NAMESPACE, name.as_bytes()).to_string())
}

/// The client message id of the post of a webhook event: `line.<webhookEventId>`, or, if that
/// is not a valid client id, `line.` and a UUID derived from it.
pub fn client_msg_id(webhook_event_id: &str) -> String {
    let direct = format!("line.{webhook_event_id}");
    if is_valid_client_id(&direct) {
        return direct;
    }
    format!("line.{}", uuid::Uuid::new_v5(&CLIENT_MSG_ID_NAMESPACE, webhook_event_id.as_bytes()).simple())
}

/// The configured id, or the host name and `line`, followed by a boot id: a restarted process
/// never takes the old one's replies.
pub fn node_id(configured: &str) -> String {
    chat_bus::node_id(configured, Some("line"))
}

/// Commands to rooms and their answers (this node's queue).
pub struct RoomsClient {
    client: Arc<CommandClient>,
}

impl RoomsClient {
    /// Consume this node's queue and return the client.
    pub async fn start(bus: SharedBus, node_id: String, timeout: Duration) -> Result<Arc<Self>, BusError> {
        Ok(Arc::new(Self { client: CommandClient::start(bus, node_id, timeout).await? }))
    }

    /// True while this node's queue is consumed (replies can arrive).
    pub fn is_consuming(&self) -> bool {
        self.client.is_consuming()
    }

    /// The LINE 1:1 room of (`member`, `line_user`), created or reopened on behalf of the
    /// member; `key` (the webhook event id) makes the commands' ids.
    pub async fn open_line_direct(
        &self,
        member: &UserId,
        tenant: &TenantId,
        line_user: &UserId,
        key: &str,
    ) -> Result<RoomId, RoomsError> {
        let mut members = vec![
            MemberSpec { user: member.clone(), tenant: tenant.clone(), kind: MemberKind::Member },
            MemberSpec { user: line_user.clone(), tenant: TenantId::line(), kind: MemberKind::LineUser },
        ];
        members.sort_by(|a, b| a.user.cmp(&b.user));
        let command = RoomCommand::Create { kind: RoomKind::LineDirect, members, info: RoomInfo::default() };
        let target = line_direct_room_id(member, line_user);
        let command_id = keyed_command_id(member, "create", key);
        let result = self.execute(&target, &command_id, member, tenant, command.clone()).await?;
        let CommandResult::Created { room_id, existed } = result else { return Err(RoomsError::Unexpected) };
        if !existed || room_id == target {
            return Ok(room_id);
        }
        // The pair's room exists under another id: the same create there takes back a
        // participant who had left it.
        let command_id = keyed_command_id(member, "create_existing", key);
        match self.execute(&room_id, &command_id, member, tenant, command).await? {
            CommandResult::Created { room_id, .. } => Ok(room_id),
            _ => Err(RoomsError::Unexpected),
        }
    }

    /// The room connected to a LINE group (`group`: the group as a participant, `line:<id>`),
    /// created on behalf of the member with the group in it, or the group brought back into it
    /// (the account was invited again); `key` (the webhook event id) makes the commands' ids.
    #[allow(clippy::too_many_arguments)]
    pub async fn open_line_group(
        &self,
        room_id: &RoomId,
        member: &UserId,
        tenant: &TenantId,
        group: &UserId,
        name: &str,
        key: &str,
    ) -> Result<(), RoomsError> {
        let members = vec![
            MemberSpec { user: member.clone(), tenant: tenant.clone(), kind: MemberKind::Member },
            MemberSpec { user: group.clone(), tenant: TenantId::line(), kind: MemberKind::LineUser },
        ];
        let info = RoomInfo { name: Some(name.to_owned()), ..RoomInfo::default() };
        let command = RoomCommand::Create { kind: RoomKind::LineGroup, members: members.clone(), info };
        let command_id = keyed_command_id(member, "create_group", key);
        match self.execute(room_id, &command_id, member, tenant, command).await? {
            CommandResult::Created { existed: false, .. } => Ok(()),
            CommandResult::Created { existed: true, .. } => {
                let command = RoomCommand::AddMembers { users: vec![members[1].clone()] };
                let command_id = keyed_command_id(member, "rejoin_group", key);
                self.execute(room_id, &command_id, member, tenant, command).await.map(drop)
            }
            _ => Err(RoomsError::Unexpected),
        }
    }

    /// Add LINE users to a LINE group's room, on behalf of the group (a participant of it).
    pub async fn add_line_users(
        &self,
        room_id: &RoomId,
        group: &UserId,
        line_users: &[UserId],
        key: &str,
    ) -> Result<(), RoomsError> {
        let users = line_users
            .iter()
            .map(|user| MemberSpec { user: user.clone(), tenant: TenantId::line(), kind: MemberKind::LineUser })
            .collect();
        let command_id = keyed_command_id(group, "add_line_users", key);
        let command = RoomCommand::AddMembers { users };
        self.execute(room_id, &command_id, group, &TenantId::line(), command).await.map(drop)
    }

    /// The LINE user (or group) leaves the room; one already gone changes nothing.
    pub async fn leave_as_line_user(&self, room_id: &RoomId, line_user: &UserId, key: &str) -> Result<(), RoomsError> {
        let command_id = keyed_command_id(line_user, "leave", key);
        match self.execute(room_id, &command_id, line_user, &TenantId::line(), RoomCommand::Leave).await {
            Ok(_) => Ok(()),
            // Not (or no longer) in the room: it is answered as if the room did not exist.
            Err(RoomsError::Refused(refusal)) if refusal.code == chat_protocol::Refusal::RoomNotFound => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// Post `body` into `room_id` as the LINE user, once per `client_msg_id`: the room
    /// message's id.
    pub async fn post_as_line_user(
        &self,
        room_id: &RoomId,
        line_user: &UserId,
        client_msg_id: String,
        body: Body,
    ) -> Result<MessageId, RoomsError> {
        let command_id = post_command_id(line_user, &client_msg_id);
        let command = RoomCommand::Post { client_msg_id: Some(client_msg_id), body };
        match self.execute(room_id, &command_id, line_user, &TenantId::line(), command).await? {
            CommandResult::Posted { message_id, .. } => Ok(message_id),
            _ => Err(RoomsError::Unexpected),
        }
    }

    /// Recall (hide) the LINE user's message `message_id` in `room_id`; `key` (the webhook
    /// event id) makes the command's id.
    pub async fn recall_as_line_user(
        &self,
        room_id: &RoomId,
        line_user: &UserId,
        message_id: &MessageId,
        key: &str,
    ) -> Result<(), RoomsError> {
        let command_id = keyed_command_id(line_user, "recall", key);
        let command = RoomCommand::Recall { message_id: message_id.clone() };
        self.execute(room_id, &command_id, line_user, &TenantId::line(), command).await.map(drop)
    }

    /// Run `command` in `room_id` and wait for the room's answer.
    async fn execute(
        &self,
        room_id: &RoomId,
        command_id: &str,
        actor: &UserId,
        tenant: &TenantId,
        command: RoomCommand,
    ) -> Result<CommandResult, RoomsError> {
        self.client.execute(room_id, command_id.to_owned(), actor, tenant, command).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_always_targets_the_same_room() {
        let alice = UserId::new("alice@acme");
        let taro = UserId::new("line:U1");
        assert_eq!(line_direct_room_id(&alice, &taro), line_direct_room_id(&alice, &taro));
        assert_ne!(line_direct_room_id(&alice, &taro), line_direct_room_id(&alice, &UserId::new("line:U2")));
        assert!(uuid::Uuid::parse_str(line_direct_room_id(&alice, &taro).as_str()).is_ok());
    }

    #[test]
    fn client_message_ids_are_valid_and_stable() {
        assert_eq!(client_msg_id("01FZ74A0TDDPYRVKNK77XKC3ZR"), "line.01FZ74A0TDDPYRVKNK77XKC3ZR");
        let odd = client_msg_id("a b/c");
        assert!(is_valid_client_id(&odd), "{odd}");
        assert_eq!(odd, client_msg_id("a b/c"));
        assert_ne!(odd, client_msg_id("a b/d"));
        assert!(is_valid_client_id(&client_msg_id(&"x".repeat(128))));
    }
}
