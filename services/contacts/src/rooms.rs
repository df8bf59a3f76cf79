//! Asking rooms for a member's 1:1 room with an external user: a `Create` command on the
//! room's shard queue with this node as `reply_to`, and the wait for the reply on this node's
//! queue (`gw.node.<node>`), which this module consumes.

use std::sync::Arc;
use std::time::Duration;

use chat_bus::{BusError, CommandClient, SharedBus};
use chat_protocol::bus::{CommandResult, MemberKind, MemberSpec, RoomCommand, RoomInfo, RoomKind};
use chat_protocol::{new_id, RoomId, TenantId, UserId};

/// The namespace of the ids of external 1:1 rooms opened from contacts.
const DIRECT_ROOM_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x3f6a_91c2_5d7e_4b08_a3c1_7e52_d09b_64f1);

/// Why rooms gave no room.
pub type RoomsError = chat_bus::CommandFailed;

/// The room every add of this pair targets: the same id whoever adds whom.
pub fn external_direct_room_id(a: &UserId, b: &UserId) -> RoomId {
    let (x, y) = if a <= b { (a, b) } else { (b, a) };
    let name = format!("{}:{x}:{y}", RoomKind::ExternalDirect.as_str());
    RoomId::new(uuid::Uuid::new_v5(&DIRECT_ROOM_NAMESPACE, name.as_bytes()).to_string())
}

/// The configured id, or the host name and `contacts`, followed by a boot id: a restarted
/// process never takes the old one's replies.
pub fn node_id(configured: &str) -> String {
    chat_bus::node_id(configured, Some("contacts"))
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

    pub fn node_id(&self) -> &str {
        self.client.node_id()
    }

    /// True while this node's queue is consumed (replies can arrive).
    pub fn is_consuming(&self) -> bool {
        self.client.is_consuming()
    }

    /// The 1:1 room of (`actor`, `peer`), created or reopened on behalf of `actor`.
    pub async fn open_external_direct(
        &self,
        actor: &UserId,
        tenant: &TenantId,
        peer: &UserId,
        peer_tenant: &TenantId,
    ) -> Result<RoomId, RoomsError> {
        let mut members = vec![
            MemberSpec { user: actor.clone(), tenant: tenant.clone(), kind: MemberKind::Member },
            MemberSpec { user: peer.clone(), tenant: peer_tenant.clone(), kind: MemberKind::Member },
        ];
        members.sort_by(|a, b| a.user.cmp(&b.user));
        let command = RoomCommand::Create { kind: RoomKind::ExternalDirect, members, info: RoomInfo::default() };
        let target = external_direct_room_id(actor, peer);
        let result = self.execute(&target, actor, tenant, command.clone()).await?;
        let CommandResult::Created { room_id, existed } = result else { return Err(RoomsError::Unexpected) };
        if !existed || room_id == target {
            return Ok(room_id);
        }
        // The pair's room exists under another id: the same create there takes back a
        // participant who had left it.
        match self.execute(&room_id, actor, tenant, command).await? {
            CommandResult::Created { room_id, .. } => Ok(room_id),
            _ => Err(RoomsError::Unexpected),
        }
    }

    /// Run `command` in `room_id` (a fresh command id) and wait for the room's answer.
    async fn execute(
        &self,
        room_id: &RoomId,
        actor: &UserId,
        tenant: &TenantId,
        command: RoomCommand,
    ) -> Result<CommandResult, RoomsError> {
        self.client.execute(room_id, new_id(), actor, tenant, command).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sides_of_a_pair_target_the_same_room() {
        let a = UserId::new("alice@acme");
        let c = UserId::new("carol@globex");
        assert_eq!(external_direct_room_id(&a, &c), external_direct_room_id(&c, &a));
        assert_ne!(external_direct_room_id(&a, &c), external_direct_room_id(&a, &UserId::new("dave@globex")));
        assert!(uuid::Uuid::parse_str(external_direct_room_id(&a, &c).as_str()).is_ok());
    }
}
