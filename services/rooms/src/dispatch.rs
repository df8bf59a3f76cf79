//! Sending a command to its room and waiting for the result: publish to the shard queue with
//! this node as `reply_to`, then wait for the reply on this node's queue.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_bus::{BusError, SharedBus};
use chat_protocol::bus::{CommandEnvelope, CommandError, CommandResult, ReplyTo, RoomCommand};
use chat_protocol::{new_id, now_ms, shard_of, Refusal, RoomId, TenantId, UserId};

use crate::hub::Hub;
use crate::metrics::metrics;

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("{}", .0.message)]
    Refused(CommandError),
    #[error("the room did not answer in time")]
    Timeout,
    #[error("bus: {0}")]
    Bus(#[from] BusError),
    #[error("encoding the command: {0}")]
    Encode(#[from] serde_json::Error),
}

/// How a caller (HTTP or WebSocket) sees a failed command: the room's refusal as it is, the
/// rest as the stable codes of a server-side failure.
impl From<DispatchError> for CommandError {
    fn from(err: DispatchError) -> Self {
        match err {
            DispatchError::Refused(refusal) => refusal,
            DispatchError::Timeout => CommandError::new(
                Refusal::CommandTimeout,
                "the room did not answer in time; retrying with the same idempotency key is safe",
            ),
            DispatchError::Bus(e) => {
                tracing::warn!(error = %e, "bus unavailable");
                CommandError::new(Refusal::Unavailable, "the service is temporarily unavailable")
            }
            DispatchError::Encode(e) => {
                tracing::error!(error = %e, "command not encodable");
                CommandError::internal()
            }
        }
    }
}

#[derive(Clone)]
pub struct Dispatcher {
    bus: SharedBus,
    hub: Arc<Hub>,
    timeout: Duration,
}

impl Dispatcher {
    pub fn new(bus: SharedBus, hub: Arc<Hub>, timeout: Duration) -> Self {
        Self { bus, hub, timeout }
    }

    /// Run `command` in `room_id` on behalf of (`actor`, `tenant`). `command_id` is the
    /// idempotency key; a fresh one is made when the caller has none.
    pub async fn execute(
        &self,
        room_id: &RoomId,
        actor: &UserId,
        tenant: &TenantId,
        command_id: Option<String>,
        command: RoomCommand,
    ) -> Result<CommandResult, DispatchError> {
        self.submit(room_id, actor, tenant, command_id, command).await?.answer().await
    }

    /// Put `command` on its way to its room (in the order of the calls) and hand back the wait
    /// for the broker's confirm and the room's answer. A caller that submits commands one after
    /// the other has them in its room's queue in that order, without waiting for each confirm
    /// or answer.
    pub async fn submit(
        &self,
        room_id: &RoomId,
        actor: &UserId,
        tenant: &TenantId,
        command_id: Option<String>,
        command: RoomCommand,
    ) -> Result<Submitted, DispatchError> {
        let correlation_id = new_id();
        let envelope = CommandEnvelope {
            command_id: command_id.unwrap_or_else(new_id),
            room_id: room_id.clone(),
            actor: actor.clone(),
            tenant: tenant.clone(),
            reply_to: Some(ReplyTo { node: self.hub.node_id().to_owned(), correlation_id: correlation_id.clone() }),
            issued_at_ms: now_ms(),
            command,
        };
        let payload = serde_json::to_vec(&envelope)?;
        let shard = shard_of(room_id, self.bus.shards());
        let started = Instant::now();
        let reply = self.hub.replies().expect(&correlation_id);
        // Put on its way; a connection failure before that retries (the command id makes a
        // repeat harmless, and nothing of this caller's was sent after it yet).
        let confirm = match chat_bus::send_command(self.bus.as_ref(), shard, &envelope.command_id, &payload).await {
            Ok(confirm) => confirm,
            Err(err) => {
                self.hub.replies().forget(&correlation_id);
                return Err(err.into());
            }
        };
        Ok(Submitted { hub: self.hub.clone(), correlation_id, confirm, reply, started, timeout: self.timeout })
    }
}

/// A command on its way to its room, waiting for the broker's confirm and the room's answer.
pub struct Submitted {
    hub: Arc<Hub>,
    correlation_id: String,
    confirm: chat_bus::Confirm,
    reply: tokio::sync::oneshot::Receiver<chat_protocol::bus::CommandOutcome>,
    started: Instant,
    timeout: Duration,
}

impl Submitted {
    /// The room's answer, or `Timeout` (the command may still be applied: repeat it with the
    /// same idempotency key to learn its result).
    pub async fn answer(self) -> Result<CommandResult, DispatchError> {
        if let Err(err) = self.confirm.await {
            // Not safely queued: the caller may repeat it with the same idempotency key.
            self.hub.replies().forget(&self.correlation_id);
            return Err(err.into());
        }
        let outcome = tokio::time::timeout(self.timeout, self.reply).await;
        self.hub.replies().forget(&self.correlation_id);
        metrics().command_latency.observe(self.started.elapsed().as_secs_f64());
        match outcome {
            Ok(Ok(Ok(result))) => Ok(result),
            Ok(Ok(Err(refusal))) => Err(DispatchError::Refused(refusal)),
            Ok(Err(_)) | Err(_) => Err(DispatchError::Timeout),
        }
    }
}
