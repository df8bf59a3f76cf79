//! The request side of a room command: publish it to its shard queue with this node as
//! `reply_to`, and hand the room's answer, which arrives on this node's queue, to the caller
//! waiting for it (by correlation id). Used by every service that sends room commands.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use chat_protocol::bus::{
    CommandEnvelope, CommandError, CommandOutcome, CommandResult, NodeMessage, ReplyTo, RoomCommand,
};
use chat_protocol::{new_id, now_ms, shard_of, RoomId, TenantId, UserId};
use tokio::sync::oneshot;
use tracing::{debug, warn};

use crate::{Bus, BusError, Confirm, SharedBus, Subscription};

/// The callers of this node waiting for a command's answer, by correlation id.
#[derive(Default)]
pub struct Replies {
    pending: Mutex<HashMap<String, oneshot::Sender<CommandOutcome>>>,
}

impl Replies {
    /// Register interest in a command's answer before publishing the command.
    pub fn expect(&self, correlation_id: &str) -> oneshot::Receiver<CommandOutcome> {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut pending) = self.pending.lock() {
            pending.insert(correlation_id.to_owned(), tx);
        }
        rx
    }

    /// The caller stopped waiting (answered, timed out, or the publish failed).
    pub fn forget(&self, correlation_id: &str) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.remove(correlation_id);
        }
    }

    /// An answer arrived on this node's queue: give it to its caller, if one still waits.
    pub fn resolve(&self, correlation_id: &str, outcome: CommandOutcome) {
        let waiter = self.pending.lock().ok().and_then(|mut pending| pending.remove(correlation_id));
        match waiter {
            Some(tx) => {
                let _ = tx.send(outcome);
            }
            None => debug!(correlation_id, "reply for a caller that stopped waiting"),
        }
    }

    /// Callers waiting now (for tests and metrics).
    pub fn waiting(&self) -> usize {
        self.pending.lock().map(|p| p.len()).unwrap_or(0)
    }
}

/// Put a command on its way to its shard queue, trying again with a short backoff when the
/// connection fails before the broker took it (the command id makes a repeat harmless). Returns
/// the broker's confirm to await.
pub async fn send_command(bus: &dyn Bus, shard: u16, command_id: &str, payload: &[u8]) -> Result<Confirm, BusError> {
    let send = || async { bus.send_command(shard, command_id, payload.to_vec()).await };
    send.retry(ExponentialBuilder::default().with_min_delay(Duration::from_millis(20)).with_max_times(4))
        .when(|e| matches!(e, BusError::Broker(_)))
        .await
}

/// Why a room command sent by `CommandClient` has no result.
#[derive(Debug, thiserror::Error)]
pub enum CommandFailed {
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

/// Room commands from a service that hosts no sessions (contacts, the LINE gateway): each
/// command is published with this node as `reply_to`, safely queued (confirmed), and answered on
/// this node's queue, which the client consumes. (rooms' own dispatcher also delivers to
/// sessions and keeps one sender's commands in order, so it has its own loop over `Replies`.)
pub struct CommandClient {
    bus: SharedBus,
    node_id: String,
    timeout: Duration,
    replies: Replies,
    /// False once this node's queue stopped being consumed.
    consuming: AtomicBool,
}

impl CommandClient {
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

    /// True while this node's queue is consumed (answers can arrive).
    pub fn is_consuming(&self) -> bool {
        self.consuming.load(Ordering::SeqCst)
    }

    /// Run `command` (idempotency key `command_id`) in `room_id` on behalf of (`actor`,
    /// `tenant`) and wait for the room's answer.
    pub async fn execute(
        &self,
        room_id: &RoomId,
        command_id: String,
        actor: &UserId,
        tenant: &TenantId,
        command: RoomCommand,
    ) -> Result<CommandResult, CommandFailed> {
        let correlation_id = new_id();
        let envelope = CommandEnvelope {
            command_id,
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
        let sent = match send_command(self.bus.as_ref(), shard, &envelope.command_id, &payload).await {
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
            Ok(Ok(Err(refusal))) => Err(CommandFailed::Refused(refusal)),
            Ok(Err(_)) | Err(_) => Err(CommandFailed::Timeout),
        }
    }

    /// Consume this node's queue until it ends: answers go to their waiting callers; anything
    /// else (deliveries are for session nodes) is dropped.
    async fn run(self: Arc<Self>, mut queue: Subscription) {
        while let Some(delivery) = queue.recv().await {
            match serde_json::from_slice::<NodeMessage>(&delivery.payload) {
                Ok(message) => {
                    for item in message.into_items() {
                        match item {
                            NodeMessage::Reply { correlation_id, outcome } => {
                                self.replies.resolve(&correlation_id, outcome)
                            }
                            NodeMessage::Deliver { .. } => debug!("delivery on a node without sessions dropped"),
                            NodeMessage::Batch { .. } => {} // unrolled by `into_items`
                        }
                    }
                }
                Err(err) => warn!(error = %err, "undecodable node message dropped"),
            }
            // A no-op (node queues are consumed without acks), for any bus that acks them.
            let _ = delivery.ack().await;
        }
        self.consuming.store(false, Ordering::SeqCst);
        warn!(node_id = %self.node_id, "node queue ended; answers from rooms no longer arrive");
    }
}

/// This process's node id: the configured one (the pod name), or the host name followed by
/// `role` when there is none, then a boot id, so a restarted process never takes over the old
/// one's queue (or presence entries).
pub fn node_id(configured: &str, role: Option<&str>) -> String {
    let base = if configured.is_empty() {
        let host =
            std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).unwrap_or_else(|_| "node".into());
        match role {
            Some(role) => format!("{host}-{role}"),
            None => host,
        }
    } else {
        configured.to_owned()
    };
    let boot = uuid::Uuid::new_v4().simple().to_string();
    format!("{base}-{}", &boot[..8])
}

#[cfg(test)]
mod tests {
    use chat_protocol::bus::{CommandError, CommandResult};

    use super::*;

    #[tokio::test]
    async fn an_answer_reaches_its_caller_once_and_a_forgotten_caller_none() {
        let replies = Replies::default();
        let first = replies.expect("c1");
        let second = replies.expect("c2");
        replies.forget("c2");
        replies.resolve("c1", Ok(CommandResult::Done { seq: 3 }));
        replies.resolve("c1", Err(CommandError::room_not_found()));
        replies.resolve("c2", Ok(CommandResult::Done { seq: 4 }));
        assert_eq!(first.await.unwrap(), Ok(CommandResult::Done { seq: 3 }));
        assert!(second.await.is_err(), "a forgotten caller gets nothing");
        assert_eq!(replies.waiting(), 0);
    }

    #[test]
    fn node_ids_carry_a_boot_id() {
        let first = node_id("standalone-contacts", Some("contacts"));
        assert!(first.starts_with("standalone-contacts-") && first.len() == "standalone-contacts-".len() + 8);
        assert_ne!(first, node_id("standalone-contacts", Some("contacts")));
        assert!(node_id("", Some("contacts")).contains("-contacts-"));
    }
}
