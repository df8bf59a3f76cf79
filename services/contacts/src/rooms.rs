//! Asking rooms for a member's 1:1 room with an external user: a `Create` command on the
//! room's shard queue with this node as `reply_to`, and the wait for the reply on this node's
//! queue (`gw.node.<node>`), which this module consumes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chat_bus::{BusError, Replies, SharedBus, Subscription};
use chat_protocol::bus::{
    CommandEnvelope, CommandError, CommandResult, MemberKind, MemberSpec, NodeMessage, ReplyTo, RoomCommand, RoomInfo,
    RoomKind,
};
use chat_protocol::{new_id, now_ms, shard_of, RoomId, TenantId, UserId};
use tracing::{debug, warn};

/// The namespace of the ids of external 1:1 rooms opened from contacts.
const DIRECT_ROOM_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x3f6a_91c2_5d7e_4b08_a3c1_7e52_d09b_64f1);

#[derive(Debug, thiserror::Error)]
pub enum RoomsError {
    #[error("{}", .0.message)]
    Refused(CommandError),
    #[error("the room did not answer in time")]
    Timeout,
    #[error("bus: {0}")]
    Bus(#[from] BusError),
    #[error("encoding the command: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("unexpected answer from the room")]
    Unexpected,
}

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

/// Commands to rooms and their replies.
pub struct RoomsClient {
    bus: SharedBus,
    node_id: String,
    timeout: Duration,
    /// Callers waiting for a reply.
    replies: Replies,
    /// False once this node's queue stopped being consumed.
    consuming: AtomicBool,
}

impl RoomsClient {
    /// Consume this node's queue and return the client.
    pub async fn start(bus: SharedBus, node_id: String, timeout: Duration) -> Result<Arc<Self>, BusError> {
        let queue = bus.consume_node(&node_id).await?;
        let client =
            Arc::new(Self { bus, node_id, timeout, replies: Replies::default(), consuming: AtomicBool::new(true) });
        tokio::spawn(Arc::clone(&client).run(queue));
        Ok(client)
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// True while this node's queue is consumed (replies can arrive).
    pub fn is_consuming(&self) -> bool {
        self.consuming.load(Ordering::SeqCst)
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
        let correlation_id = new_id();
        let envelope = CommandEnvelope {
            command_id: new_id(),
            room_id: room_id.clone(),
            actor: actor.clone(),
            tenant: tenant.clone(),
            reply_to: Some(ReplyTo { node: self.node_id.clone(), correlation_id: correlation_id.clone() }),
            issued_at_ms: now_ms(),
            command,
        };
        let payload = serde_json::to_vec(&envelope)?;
        let shard = shard_of(room_id, self.bus.shards());
        let reply = self.replies.expect(&correlation_id);
        let sent = match chat_bus::send_command(self.bus.as_ref(), shard, &envelope.command_id, &payload).await {
            Ok(confirm) => confirm.await,
            Err(err) => Err(err),
        };
        if let Err(err) = sent {
            self.replies.forget(&correlation_id);
            return Err(err.into());
        }
        let outcome = tokio::time::timeout(self.timeout, reply).await;
        self.replies.forget(&correlation_id);
        match outcome {
            Ok(Ok(Ok(result))) => Ok(result),
            Ok(Ok(Err(refusal))) => Err(RoomsError::Refused(refusal)),
            Ok(Err(_)) | Err(_) => Err(RoomsError::Timeout),
        }
    }

    /// Consume this node's queue until it ends: replies go to their waiting callers; anything
    /// else (deliveries are for session nodes) is dropped.
    async fn run(self: Arc<Self>, mut queue: Subscription) {
        while let Some(delivery) = queue.recv().await {
            match serde_json::from_slice::<NodeMessage>(&delivery.payload) {
                Ok(NodeMessage::Reply { correlation_id, outcome }) => self.replies.resolve(&correlation_id, outcome),
                Ok(NodeMessage::Deliver { .. }) => debug!("delivery on a contacts node dropped"),
                Err(err) => warn!(error = %err, "undecodable node message dropped"),
            }
            if let Err(err) = delivery.ack().await {
                warn!(error = %err, "node message not acknowledged");
            }
        }
        self.consuming.store(false, Ordering::SeqCst);
        warn!(node_id = %self.node_id, "node queue ended; replies from rooms no longer arrive");
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
