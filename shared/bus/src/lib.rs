//! The bus between services: room commands go to one queue per shard, replies and deliveries
//! go to one queue per gateway node. Two implementations with the same routing semantics:
//! RabbitMQ (production) and in-process (the standalone binary). No lapin type leaks out.

mod amqp;
mod inproc;
mod replies;
mod topology;
mod trace;

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::mpsc;

pub use amqp::AmqpBus;
pub use inproc::InProcBus;
pub use replies::{node_id, send_command, CommandClient, CommandFailed, Replies};
pub use topology::Topology;

/// RabbitMQ, or `inproc` for the standalone's in-process bus.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerSettings {
    pub url: String,
    /// Prefix of every exchange and queue name (isolates test runs).
    pub prefix: String,
    /// Room shards: fixed for a deployment (256 in production); each is a quorum queue.
    pub shards: u16,
    #[serde(default = "default_prefetch")]
    pub prefetch: u16,
    #[serde(default = "default_heartbeat")]
    pub heartbeat_secs: u16,
    #[serde(default = "default_delivery_limit")]
    pub delivery_limit: u32,
}

fn default_prefetch() -> u16 {
    64
}

fn default_heartbeat() -> u16 {
    10
}

fn default_delivery_limit() -> u32 {
    50
}

impl BrokerSettings {
    /// True for the standalone's in-process bus.
    pub fn is_in_process(&self) -> bool {
        self.url == "inproc"
    }
}

/// The bus these settings name: RabbitMQ, or the in-process bus for `url = "inproc"`.
pub async fn connect(settings: &BrokerSettings) -> Result<SharedBus, BusError> {
    if settings.is_in_process() {
        return Ok(Arc::new(InProcBus::new(settings.shards)));
    }
    Ok(Arc::new(AmqpBus::connect(settings).await?))
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("no queue is bound for routing key {routing_key}")]
    Unroutable { routing_key: String },
    #[error("the broker refused the message (nack)")]
    Nacked,
    #[error("broker: {0}")]
    Broker(String),
    #[error("the bus is closed")]
    Closed,
}

/// How a consumer settles a delivery.
#[async_trait]
pub trait Settle: Send + Sync {
    async fn ack(&self) -> Result<(), BusError>;
    /// Give the delivery back to the queue (it is redelivered, to this or another consumer).
    async fn requeue(&self) -> Result<(), BusError>;
    /// Refuse it for good: it goes to the dead-letter queue where there is one.
    async fn reject(&self) -> Result<(), BusError>;
}

/// One message taken from a queue. Settle it exactly once. Dropped unsettled (a bug, or a
/// task that died), it requeues itself: an unsettled delivery would otherwise hold one of its
/// consumer's prefetch slots until the channel closes, and enough of them stall the consumer.
///
/// A delivery of the in-process bus's node queues needs no settling: settling it does nothing
/// (and is no error), dropping it too.
pub struct Delivery {
    pub payload: Vec<u8>,
    /// A hint only: true when the broker delivered it before.
    pub redelivered: bool,
    /// The trace context the message came with (empty while tracing is off).
    pub trace: chat_telemetry::TraceParent,
    /// The queue it came from (for its span), when the bus names it.
    queue: Option<Arc<str>>,
    /// `None` once settled, or for a delivery that needs no settling.
    settle: Option<Box<dyn Settle>>,
}

impl Delivery {
    pub fn new(payload: Vec<u8>, redelivered: bool, settle: Box<dyn Settle>) -> Self {
        Self { payload, redelivered, trace: Default::default(), queue: None, settle: Some(settle) }
    }

    /// A delivery that needs no settling (the in-process node queues).
    pub fn unacked(payload: Vec<u8>) -> Self {
        Self { payload, redelivered: false, trace: Default::default(), queue: None, settle: None }
    }

    /// The same delivery, with the trace context it came with and the queue it came from.
    pub fn traced(mut self, trace: chat_telemetry::TraceParent, queue: &Arc<str>) -> Self {
        self.trace = trace;
        self.queue = Some(queue.clone());
        self
    }

    /// A consumer span (`process <queue>`) for handling this delivery, continuing the trace
    /// the message came with; a disabled span while tracing is off. Handle the delivery
    /// inside it (`Instrument::instrument`, or `entered()` around synchronous work).
    pub fn process_span(&self) -> tracing::Span {
        let queue = self.queue.as_deref().unwrap_or("in-process");
        trace::process(queue, &self.trace, self.payload.len(), self.redelivered)
    }

    fn take(mut self) -> Option<Box<dyn Settle>> {
        self.settle.take()
    }

    pub async fn ack(self) -> Result<(), BusError> {
        match self.take() {
            Some(settle) => settle.ack().await,
            None => Ok(()),
        }
    }

    /// Give it back to its queue. Does nothing for a delivery that needs no settling.
    pub async fn requeue(self) -> Result<(), BusError> {
        match self.take() {
            Some(settle) => settle.requeue().await,
            None => Ok(()),
        }
    }

    pub async fn reject(self) -> Result<(), BusError> {
        match self.take() {
            Some(settle) => settle.reject().await,
            None => Ok(()),
        }
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        let Some(settle) = self.settle.take() else { return };
        tracing::warn!(bytes = self.payload.len(), "delivery dropped unsettled, requeued");
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if let Err(err) = settle.requeue().await {
                        tracing::warn!(error = %err, "requeueing a dropped delivery failed");
                    }
                });
            }
            Err(_) => tracing::warn!("no runtime to requeue a dropped delivery; the broker redelivers it later"),
        }
    }
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery").field("bytes", &self.payload.len()).field("redelivered", &self.redelivered).finish()
    }
}

/// Node messages a node's consumer holds at most (`Bus::consume_node`): the prefetch of its
/// RabbitMQ consumer, the capacity of its in-process queue. Past it, publishers wait (in
/// process) or the broker keeps them, within the node queue's own bound.
pub(crate) const NODE_BUFFER: u16 = 1024;

/// The broker's confirm of a publish that is already on its way.
pub type Confirm = futures_util::future::BoxFuture<'static, Result<(), BusError>>;

/// A stream of deliveries from one queue. It ends when the consumer is cancelled.
pub type Subscription = mpsc::Receiver<Delivery>;

#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Publish a room command to its shard queue; returns once the broker has it safely
    /// (confirmed and routed). Retries on a lost connection are the caller's choice: the
    /// command id makes a repeat harmless.
    async fn publish_command(&self, shard: u16, command_id: &str, payload: Vec<u8>) -> Result<(), BusError> {
        self.send_command(shard, command_id, payload).await?.await
    }

    /// Publish a room command and return once it is on its way, in the order of the calls
    /// (one publishing channel); the returned future resolves when the broker has it safely.
    /// A caller that must keep its commands in order sends the next one after this returns,
    /// without waiting for the confirm of the previous.
    async fn send_command(&self, shard: u16, command_id: &str, payload: Vec<u8>) -> Result<Confirm, BusError>;

    /// Publish a reply or a delivery (a `NodeMessage`) to one gateway node's queue, without
    /// waiting for the broker: no publisher confirm, no `mandatory`. Returns once the publish
    /// is handed to the connection; one caller's publishes reach the node in the order of the
    /// calls (one publishing channel). What is lost on the way (a node that is gone, a
    /// connection that fails, a node queue at its bound) is dropped without an error: replies
    /// and deliveries can be rebuilt (callers time out and retry, clients `sync`). An error
    /// only means the publish could not be handed over (the connection is down). In process,
    /// it waits while the node's queue is full (backpressure instead of a drop).
    async fn publish_to_node(&self, node: &str, payload: Vec<u8>) -> Result<(), BusError>;

    /// Consume a shard's command queue (single active consumer; manual settle).
    async fn consume_shard(&self, shard: u16, prefetch: u16) -> Result<Subscription, BusError>;

    /// Create this node's queue and consume it (at most `NODE_BUFFER` unsettled; the consumer
    /// acks each message once handled). The queue lives as long as the node and is bounded:
    /// past its bound the broker drops the oldest.
    async fn consume_node(&self, node: &str) -> Result<Subscription, BusError>;

    /// Messages waiting in each shard queue (ready, not yet delivered), for metrics.
    async fn shard_depths(&self) -> Result<Vec<(u16, u64)>, BusError>;

    /// Messages in the dead-letter queue of room commands.
    async fn dead_letter_depth(&self) -> Result<u64, BusError>;

    /// Publish a change event to every subscribed queue (fanout `events` exchange).
    async fn publish_event(&self, payload: Vec<u8>) -> Result<(), BusError>;

    /// Consume change events. A `shared` queue is durable and its events are spread over
    /// its consumers (work done once per cluster), with the delivery limit and the dead-letter
    /// queue of commands; otherwise the queue is this node's own.
    async fn consume_events(&self, queue: &str, shared: bool) -> Result<Subscription, BusError>;

    /// False while the connection is down or recovering.
    fn is_healthy(&self) -> bool;

    /// The number of shards commands are spread over.
    fn shards(&self) -> u16;
}

pub type SharedBus = Arc<dyn Bus>;
