//! RabbitMQ through lapin: persistent commands in quorum queues with publisher confirms,
//! `mandatory` and manual acks; replies and deliveries to nodes without confirms or `mandatory`
//! (they can be rebuilt: callers retry, clients `sync`), so no publisher waits on them. Node
//! queues are still consumed with acks and a prefetch: that is their consumer's bound (lapin
//! buffers whatever the broker sends without one, and without acks the broker sends it all).
//!
//! Connection recovery is this module's own, not lapin's (`enable_auto_recover` can stay in
//! "Reconnecting" for good after a broker restart: amqp-rs/lapin#450, seen here too): a failed
//! connection is replaced as a whole (`Link`: connection, publishing channels, topology declared
//! again) by whoever notices first, with a capped backoff; consumers set themselves up again on
//! the newest link.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    BasicRejectOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind};
use tokio::sync::mpsc;
use tracing::{debug, warn, Instrument};

use crate::{BrokerSettings, Bus, BusError, Confirm, Delivery, Settle, Subscription, Topology};

pub struct AmqpBus {
    shared: Arc<Shared>,
    topology: Topology,
}

/// A live connection and its publishing channels, replaced as a whole when it fails.
struct Link {
    connection: Connection,
    /// Commands and change events: confirm mode, `mandatory`.
    publisher: Channel,
    /// Replies and deliveries to nodes: no confirm mode and no `mandatory`, so the broker
    /// neither confirms nor returns anything (an unroutable message is dropped) and nothing
    /// accumulates on the client waiting for either.
    deliverer: Channel,
    /// Which replacement this is (0: the first).
    generation: u64,
}

/// What the bus and its consumers share.
struct Shared {
    url: String,
    topology: Topology,
    /// Attempts at delivery before a command or a shared event is dead-lettered.
    delivery_limit: u32,
    healthy: AtomicBool,
    link: std::sync::RwLock<Arc<Link>>,
    /// One replacement at a time.
    relinking: tokio::sync::Mutex<()>,
}

impl Shared {
    fn link(&self) -> Arc<Link> {
        match self.link.read() {
            Ok(link) => link.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The link of `generation` failed: replace it (unless that was done already), trying
    /// again with a capped backoff until the broker answers.
    async fn relink(&self, generation: u64) {
        let _one = self.relinking.lock().await;
        if self.link().generation != generation {
            return;
        }
        self.healthy.store(false, Ordering::Relaxed);
        let mut attempt = 0u32;
        loop {
            match open_link(&self.url, &self.topology, self.delivery_limit, generation + 1).await {
                Ok(link) => {
                    match self.link.write() {
                        Ok(mut current) => *current = Arc::new(link),
                        Err(poisoned) => *poisoned.into_inner() = Arc::new(link),
                    }
                    self.healthy.store(true, Ordering::Relaxed);
                    warn!(generation = generation + 1, "connected to the broker again");
                    return;
                }
                Err(err) => {
                    warn!(error = %err, attempt, "broker not reachable yet");
                    tokio::time::sleep(relink_backoff(attempt)).await;
                    attempt = attempt.saturating_add(1);
                }
            }
        }
    }

    /// Something failed on the link of `generation`: replace it in the background.
    fn link_failed(self: &Arc<Self>, generation: u64) {
        self.healthy.store(false, Ordering::Relaxed);
        let shared = self.clone();
        tokio::spawn(async move { shared.relink(generation).await });
    }
}

fn relink_backoff(attempt: u32) -> Duration {
    Duration::from_millis(100).saturating_mul(2u32.saturating_pow(attempt.min(5))).min(Duration::from_secs(2))
}

/// Connect, open the publishing channels (confirming, and not) and declare the whole topology.
async fn open_link(url: &str, topology: &Topology, delivery_limit: u32, generation: u64) -> Result<Link, lapin::Error> {
    let connection = Connection::connect(url, ConnectionProperties::default()).await?;
    let publisher = connection.create_channel().await?;
    publisher.confirm_select(ConfirmSelectOptions::default()).await?;
    let deliverer = connection.create_channel().await?;
    declare(&publisher, topology, delivery_limit).await?;
    Ok(Link { connection, publisher, deliverer, generation })
}

/// The exchanges, the dead-letter queue and every shard queue (idempotent).
async fn declare(ch: &Channel, t: &Topology, delivery_limit: u32) -> Result<(), lapin::Error> {
    let durable = ExchangeDeclareOptions { durable: true, ..Default::default() };
    for (name, kind) in [
        (t.command_exchange(), ExchangeKind::Direct),
        (t.dead_letter_exchange(), ExchangeKind::Fanout),
        (t.deliver_exchange(), ExchangeKind::Direct),
        (t.events_exchange(), ExchangeKind::Fanout),
    ] {
        ch.exchange_declare(name.as_str().into(), kind, durable, FieldTable::default()).await?;
    }
    let quorum = QueueDeclareOptions { durable: true, ..Default::default() };
    let mut dead_args = FieldTable::default();
    dead_args.insert("x-queue-type".into(), text("quorum"));
    ch.queue_declare(t.dead_letter_queue().as_str().into(), quorum, dead_args).await?;
    ch.queue_bind(
        t.dead_letter_queue().as_str().into(),
        t.dead_letter_exchange().as_str().into(),
        "".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await?;
    for shard in 0..t.shards() {
        Source::Shard(shard).declare(ch, t, delivery_limit).await?;
    }
    Ok(())
}

fn broker(err: lapin::Error) -> BusError {
    BusError::Broker(err.to_string())
}

fn text(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value.as_bytes().to_vec()))
}

fn url_with_heartbeat(url: &str, heartbeat: u16) -> String {
    if url.contains("heartbeat=") {
        return url.to_owned();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}heartbeat={heartbeat}")
}

impl AmqpBus {
    /// Connect, declare the whole topology and open the confirming publisher channel.
    pub async fn connect(settings: &BrokerSettings) -> Result<Self, BusError> {
        let topology = Topology::new(&settings.prefix, settings.shards);
        let url = url_with_heartbeat(&settings.url, settings.heartbeat_secs);
        let link = open_link(&url, &topology, settings.delivery_limit, 0).await.map_err(broker)?;
        let shared = Arc::new(Shared {
            url,
            topology: topology.clone(),
            delivery_limit: settings.delivery_limit,
            healthy: AtomicBool::new(true),
            link: std::sync::RwLock::new(Arc::new(link)),
            relinking: tokio::sync::Mutex::new(()),
        });
        Ok(Self { shared, topology })
    }

    /// Publish with `mandatory` and wait for the confirm; a returned message is unroutable.
    async fn publish_confirmed(
        &self,
        exchange: &str,
        routing_key: &str,
        payload: &[u8],
        properties: BasicProperties,
    ) -> Result<(), BusError> {
        self.publish_started(exchange, routing_key, payload, properties).await?.await
    }

    /// Put a publish with `mandatory` on the publishing channel (so publishes leave in the
    /// order of the calls) and return the wait for its confirm.
    async fn publish_started(
        &self,
        exchange: &str,
        routing_key: &str,
        payload: &[u8],
        properties: BasicProperties,
    ) -> Result<Confirm, BusError> {
        let options = BasicPublishOptions { mandatory: true, ..Default::default() };
        let link = self.shared.link();
        let started =
            link.publisher.basic_publish(exchange.into(), routing_key.into(), options, payload, properties).await;
        let pending = match started {
            Ok(pending) => pending,
            Err(err) => return Err(self.interrupted(&link, &err)),
        };
        let (shared, routing_key) = (self.shared.clone(), routing_key.to_owned());
        Ok(Box::pin(async move {
            match pending.await {
                Ok(Confirmation::Ack(None)) | Ok(Confirmation::NotRequested) => Ok(()),
                Ok(Confirmation::Ack(Some(_returned))) => Err(BusError::Unroutable { routing_key }),
                Ok(Confirmation::Nack(_)) => Err(BusError::Nacked),
                Err(err) => {
                    warn!(error = %err, "publish not confirmed: the connection failed");
                    shared.link_failed(link.generation);
                    Err(BusError::Broker("publish interrupted by a connection failure".into()))
                }
            }
        }))
    }

    /// A publish failed with the connection: replace it (in the background), report the failure
    /// (callers retry; a command id makes a repeat harmless).
    fn interrupted(&self, link: &Link, err: &lapin::Error) -> BusError {
        warn!(error = %err, "publish failed: the connection failed");
        self.shared.link_failed(link.generation);
        BusError::Broker("publish interrupted by a connection failure".into())
    }

    /// Consume a queue into a bounded stream, declaring it (and its binding) first on the
    /// consumer's own channel. Dropping the stream cancels the consumer (`basic.cancel`: the
    /// broker sends no more, and with single-active-consumer hands the queue to the next
    /// consumer); the channel stays open until every delivery taken from it is settled or
    /// dropped (a dropped one requeues itself), then closes, so in-flight work can still be
    /// acknowledged after the cancel and whatever the broker had sent on is requeued.
    ///
    /// A consumer the connection's recovery cannot bring back (the broker restarted and lost
    /// the queue: a node's exclusive queue; the queue was deleted) is set up again, queue
    /// declared anew, with a capped backoff, for as long as the stream is held.
    async fn consume(&self, source: Source, prefetch: u16) -> Result<Subscription, BusError> {
        // Shard queues were declared with the connection: a shard handed over subscribes with
        // fewer round trips. One set up again declares its queue (it may have been deleted).
        let declare = !matches!(source, Source::Shard(_));
        let setup = Setup { shared: self.shared.clone(), source, prefetch };
        let mut current = Some(setup.open(declare).await.map_err(broker)?);
        let (tx, rx) = mpsc::channel(usize::from(prefetch.max(1)));
        tokio::spawn(async move {
            let mut failures = 0u32;
            loop {
                let (channel, consumer, generation) = match current.take() {
                    Some(open) => open,
                    None => match setup.reopen(&tx, &mut failures).await {
                        Some(open) => open,
                        None => break, // nobody listens any more
                    },
                };
                if forward(&setup, channel, consumer, &tx).await == Ended::Cancelled {
                    break;
                }
                setup.broke(generation);
            }
            debug!(queue = %setup.queue(), "consumer ended");
        });
        Ok(rx)
    }

    async fn depth(&self, queue: &str) -> Result<u64, BusError> {
        let options = QueueDeclareOptions { passive: true, ..Default::default() };
        let link = self.shared.link();
        let q = link.publisher.queue_declare(queue.into(), options, FieldTable::default()).await.map_err(broker)?;
        Ok(u64::from(q.message_count()))
    }
}

struct AmqpSettle {
    acker: lapin::Acker,
    /// Keeps the consumer's channel open until the delivery is settled.
    _channel: Arc<ChannelGuard>,
}

/// Closes a consumer's channel once the consumer and every delivery taken from it are gone
/// (the broker requeues what was sent on it and never settled).
struct ChannelGuard {
    channel: Channel,
}

impl Drop for ChannelGuard {
    fn drop(&mut self) {
        let channel = self.channel.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = channel.close(200, "consumer ended".into()).await;
            });
        }
    }
}

#[async_trait]
impl Settle for AmqpSettle {
    async fn ack(&self) -> Result<(), BusError> {
        self.acker.ack(BasicAckOptions::default()).await.map(|_| ()).map_err(broker)
    }

    async fn requeue(&self) -> Result<(), BusError> {
        let options = BasicNackOptions { requeue: true, ..Default::default() };
        self.acker.nack(options).await.map(|_| ()).map_err(broker)
    }

    async fn reject(&self) -> Result<(), BusError> {
        let options = BasicRejectOptions { requeue: false };
        self.acker.reject(options).await.map(|_| ()).map_err(broker)
    }
}

#[async_trait]
impl Bus for AmqpBus {
    async fn send_command(&self, shard: u16, command_id: &str, payload: Vec<u8>) -> Result<Confirm, BusError> {
        let exchange = self.topology.command_exchange();
        let key = self.topology.shard_key(shard);
        let (span, trace) = crate::trace::send(&exchange, &key, Some(command_id), payload.len());
        let properties = with_trace(
            BasicProperties::default()
                .with_delivery_mode(2)
                .with_content_type("application/json".into())
                .with_message_id(command_id.into()),
            &trace,
        );
        self.publish_started(&exchange, &key, &payload, properties).instrument(span).await
    }

    async fn publish_to_node(&self, node: &str, payload: Vec<u8>) -> Result<(), BusError> {
        // Replies and deliveries can be rebuilt (callers retry, clients sync): not persistent,
        // not confirmed, not `mandatory` (a node that is gone: the broker drops it).
        let exchange = self.topology.deliver_exchange();
        let (span, trace) = crate::trace::send(&exchange, node, None, payload.len());
        let properties = with_trace(
            BasicProperties::default().with_delivery_mode(1).with_content_type("application/json".into()),
            &trace,
        );
        let link = self.shared.link();
        let options = BasicPublishOptions::default();
        // Returns once the frames are written to the connection (the deliverer channel keeps
        // the calls' order).
        let published = async {
            // Not in confirm mode: resolves at once to `NotRequested`. Awaited rather than
            // dropped, as lapin keeps a dropped confirm for `wait_for_confirms`.
            link.deliverer
                .basic_publish(exchange.as_str().into(), node.into(), options, &payload, properties)
                .await?
                .await
        };
        match published.instrument(span).await {
            Ok(_) => Ok(()),
            Err(err) => Err(self.interrupted(&link, &err)),
        }
    }

    async fn consume_shard(&self, shard: u16, prefetch: u16) -> Result<Subscription, BusError> {
        self.consume(Source::Shard(shard), prefetch).await
    }

    async fn consume_node(&self, node: &str) -> Result<Subscription, BusError> {
        // A large prefetch: the hub handles a message in microseconds and acks it at once.
        self.consume(Source::Node(node.to_owned()), crate::NODE_BUFFER).await
    }

    async fn publish_event(&self, payload: Vec<u8>) -> Result<(), BusError> {
        let exchange = self.topology.events_exchange();
        let (span, trace) = crate::trace::send(&exchange, "", None, payload.len());
        let properties = with_trace(
            BasicProperties::default().with_delivery_mode(2).with_content_type("application/json".into()),
            &trace,
        );
        // An event nobody subscribes to yet is not an error: fanout returns it as unroutable.
        match self.publish_confirmed(&exchange, "", &payload, properties).instrument(span).await {
            Err(BusError::Unroutable { .. }) => Ok(()),
            other => other,
        }
    }

    async fn consume_events(&self, queue: &str, shared: bool) -> Result<Subscription, BusError> {
        self.consume(Source::Events { queue: queue.to_owned(), shared }, 32).await
    }

    async fn shard_depths(&self) -> Result<Vec<(u16, u64)>, BusError> {
        let mut depths = Vec::with_capacity(usize::from(self.topology.shards()));
        for shard in 0..self.topology.shards() {
            depths.push((shard, self.depth(&self.topology.shard_queue(shard)).await?));
        }
        Ok(depths)
    }

    async fn dead_letter_depth(&self) -> Result<u64, BusError> {
        self.depth(&self.topology.dead_letter_queue()).await
    }

    fn is_healthy(&self) -> bool {
        self.shared.healthy.load(Ordering::Relaxed) && self.shared.link().connection.status().connected()
    }

    fn shards(&self) -> u16 {
        self.topology.shards()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_is_added_once() {
        assert_eq!(url_with_heartbeat("amqp://h/%2f", 10), "amqp://h/%2f?heartbeat=10");
        assert_eq!(url_with_heartbeat("amqp://h/?a=b", 10), "amqp://h/?a=b&heartbeat=10");
        assert_eq!(url_with_heartbeat("amqp://h/?heartbeat=5", 10), "amqp://h/?heartbeat=5");
    }
}

/// The bound of a node's queue, in messages and in bytes of their bodies.
const NODE_QUEUE_MAX_LENGTH: i32 = 100_000;
const NODE_QUEUE_MAX_BYTES: i32 = 256 * 1024 * 1024;

/// What a consumer reads, and so how its queue is declared.
#[derive(Debug, Clone)]
enum Source {
    /// A shard's quorum queue (single active consumer, delivery limit, dead-letter exchange).
    Shard(u16),
    /// A node's queue: exclusive, so it goes with the node's connection and a crashed node
    /// leaves nothing. Bounded (`NODE_QUEUE_MAX_*`, oldest dropped).
    Node(String),
    /// Change events: `shared` is one durable quorum queue for the whole service (with the
    /// delivery limit of commands), otherwise the consumer's own exclusive queue.
    Events { queue: String, shared: bool },
}

impl Source {
    fn queue(&self, t: &Topology) -> String {
        match self {
            Source::Shard(shard) => t.shard_queue(*shard),
            Source::Node(node) => t.node_queue(node),
            Source::Events { queue, .. } => t.events_queue(queue),
        }
    }

    /// Declare the queue and its binding on `channel` (idempotent); its name.
    async fn declare(&self, channel: &Channel, t: &Topology, delivery_limit: u32) -> Result<String, lapin::Error> {
        let queue = self.queue(t);
        let durable = QueueDeclareOptions { durable: true, ..Default::default() };
        let exclusive = QueueDeclareOptions { exclusive: true, auto_delete: true, ..Default::default() };
        let mut args = FieldTable::default();
        let (options, exchange, key) = match self {
            Source::Shard(shard) => {
                args.insert("x-queue-type".into(), text("quorum"));
                args.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
                args.insert("x-delivery-limit".into(), AMQPValue::LongInt(delivery_limit as i32));
                args.insert("x-dead-letter-exchange".into(), text(&t.dead_letter_exchange()));
                (durable, t.command_exchange(), t.shard_key(*shard))
            }
            Source::Node(node) => {
                // It holds messages only while its node's consumer is behind (past its prefetch):
                // bounded all the same, the oldest dropped first (they can be rebuilt, and the
                // newest matter most). Safe to
                // change: an exclusive queue never outlives its connection (and node ids carry a
                // boot id), so no broker holds one declared with other arguments.
                args.insert("x-max-length".into(), AMQPValue::LongInt(NODE_QUEUE_MAX_LENGTH));
                args.insert("x-max-length-bytes".into(), AMQPValue::LongInt(NODE_QUEUE_MAX_BYTES));
                args.insert("x-overflow".into(), text("drop-head"));
                (exclusive, t.deliver_exchange(), node.clone())
            }
            Source::Events { shared: true, .. } => {
                // A poison event (one that keeps failing) goes to the dead-letter queue after
                // `delivery_limit` attempts instead of looping forever.
                args.insert("x-queue-type".into(), text("quorum"));
                args.insert("x-delivery-limit".into(), AMQPValue::LongInt(delivery_limit as i32));
                args.insert("x-dead-letter-exchange".into(), text(&t.dead_letter_exchange()));
                (durable, t.events_exchange(), String::new())
            }
            Source::Events { shared: false, .. } => (exclusive, t.events_exchange(), String::new()),
        };
        channel.queue_declare(queue.as_str().into(), options, args).await?;
        channel
            .queue_bind(
                queue.as_str().into(),
                exchange.as_str().into(),
                key.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(queue)
    }
}

/// How to (re)establish one consumer, on the bus's newest link.
struct Setup {
    shared: Arc<Shared>,
    source: Source,
    prefetch: u16,
}

/// A consumer's channel, the consumer, and the generation of the link it is on.
type Opened = (Channel, lapin::Consumer, u64);

impl Setup {
    fn queue(&self) -> String {
        self.source.queue(&self.shared.topology)
    }

    /// A channel on the newest link with the queue declared and bound (unless `declare` is
    /// false: shard queues are declared with each link), and the consumer on it.
    async fn open(&self, declare: bool) -> Result<Opened, lapin::Error> {
        let link = self.shared.link();
        let channel = link.connection.create_channel().await?;
        let queue = match declare {
            true => self.source.declare(&channel, &self.shared.topology, self.shared.delivery_limit).await?,
            false => self.queue(),
        };
        channel.basic_qos(self.prefetch, BasicQosOptions::default()).await?;
        let options = BasicConsumeOptions::default();
        let consumer =
            channel.basic_consume(queue.as_str().into(), ShortString::from(""), options, FieldTable::default()).await?;
        Ok((channel, consumer, link.generation))
    }

    /// After a consumer broke: if its link is the newest and no longer connected, replace it.
    fn broke(&self, generation: u64) {
        let link = self.shared.link();
        if link.generation == generation && !link.connection.status().connected() {
            self.shared.link_failed(generation);
        }
    }

    /// Open again after a backoff (100 ms doubling to 5 s) until it works; `None` once the
    /// stream is dropped.
    async fn reopen(&self, tx: &mpsc::Sender<Delivery>, failures: &mut u32) -> Option<Opened> {
        loop {
            let delay = Duration::from_millis(100).saturating_mul(2u32.saturating_pow((*failures).min(6)));
            tokio::select! {
                () = tokio::time::sleep(delay.min(Duration::from_secs(5))) => {}
                () = tx.closed() => return None,
            }
            match self.open(true).await {
                Ok(open) => {
                    warn!(queue = %self.queue(), "consumer set up again");
                    *failures = 0;
                    return Some(open);
                }
                Err(err) => {
                    *failures = failures.saturating_add(1);
                    warn!(queue = %self.queue(), error = %err, "consumer not set up again yet");
                }
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Ended {
    /// The stream was dropped: the consumer was cancelled.
    Cancelled,
    /// The consumer is gone (connection lost, channel closed, queue deleted).
    Broken,
}

/// Hand the consumer's deliveries to the stream until one of them ends.
async fn forward(setup: &Setup, channel: Channel, mut consumer: lapin::Consumer, tx: &mpsc::Sender<Delivery>) -> Ended {
    let guard = Arc::new(ChannelGuard { channel: channel.clone() });
    let queue: Arc<str> = setup.queue().into();
    loop {
        let next = tokio::select! {
            next = consumer.next() => next,
            () = tx.closed() => {
                let tag = consumer.tag();
                if let Err(err) = channel.basic_cancel(tag.as_str().into(), BasicCancelOptions::default()).await {
                    debug!(queue = %setup.queue(), error = %err, "cancelling the consumer failed");
                }
                return Ended::Cancelled;
            }
        };
        match next {
            None => {
                warn!(queue = %setup.queue(), "consumer ended by the broker");
                return Ended::Broken;
            }
            Some(Ok(delivery)) => {
                let redelivered = delivery.redelivered;
                let trace = trace_of(&delivery.properties);
                let settle = Box::new(AmqpSettle { acker: delivery.acker, _channel: guard.clone() });
                let delivery = Delivery::new(delivery.data, redelivered, settle).traced(trace, &queue);
                if tx.send(delivery).await.is_err() {
                    return Ended::Cancelled; // nobody listens any more; the delivery requeued itself
                }
            }
            Some(Err(err)) => {
                warn!(queue = %setup.queue(), error = %err, "consumer interrupted");
                return Ended::Broken;
            }
        }
    }
}

/// The message properties with the trace context in their headers (unchanged when empty).
fn with_trace(properties: BasicProperties, trace: &chat_telemetry::TraceParent) -> BasicProperties {
    if trace.is_empty() {
        return properties;
    }
    let mut headers = FieldTable::default();
    for (name, value) in trace.headers() {
        headers.insert(name.into(), AMQPValue::LongString(value.into()));
    }
    properties.with_headers(headers)
}

/// The trace context a message came with (empty while tracing is off, or without one).
fn trace_of(properties: &BasicProperties) -> chat_telemetry::TraceParent {
    let Some(headers) = properties.headers() else { return chat_telemetry::TraceParent::default() };
    chat_telemetry::TraceParent::from_headers(|name| match headers.inner().get(name) {
        Some(AMQPValue::LongString(value)) => std::str::from_utf8(value.as_bytes()).ok(),
        _ => None,
    })
}
