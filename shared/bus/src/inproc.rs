//! The in-process bus of the standalone binary: the same routing as the RabbitMQ topology
//! (one queue per shard with a single consumer, one bounded queue per node whose messages need
//! no settling: dropped when the node is gone, waited for when its queue is full), without
//! durability: a crash of the process loses what was queued, as nothing else runs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::mpsc;

use chat_telemetry::TraceParent;

use crate::{Bus, BusError, Confirm, Delivery, Settle, Subscription};

/// A queued message: the payload, how many times it was delivered already, and the trace
/// context it was sent in.
type Queued = (Vec<u8>, u32, TraceParent);
type Queue = (mpsc::UnboundedSender<Queued>, Option<mpsc::UnboundedReceiver<Queued>>);

/// Deliveries of one message at most, as the broker's `x-delivery-limit`: a message that keeps
/// coming back (a poison command) is dropped after that many, with a warning (there is no
/// dead-letter queue in process), instead of looping forever.
const DELIVERY_LIMIT: u32 = 50;

pub struct InProcBus {
    shards: u16,
    /// Event queues by name; every event goes to each of them.
    event_queues: Mutex<HashMap<String, mpsc::UnboundedSender<Queued>>>,
    /// Each shard's queue; its receiver is taken by the consumer and given back when the
    /// consumer goes (so a shard handed back and forth is consumed again).
    shard_queues: Arc<Mutex<Vec<Queue>>>,
    nodes: Mutex<HashMap<String, mpsc::Sender<Delivery>>>,
}

impl InProcBus {
    pub fn new(shards: u16) -> Self {
        let queues = (0..shards.max(1))
            .map(|_| {
                let (tx, rx) = mpsc::unbounded_channel();
                (tx, Some(rx))
            })
            .collect();
        Self {
            shards: shards.max(1),
            event_queues: Mutex::new(HashMap::new()),
            shard_queues: Arc::new(Mutex::new(queues)),
            nodes: Mutex::new(HashMap::new()),
        }
    }

    fn shard_sender(&self, shard: u16) -> Result<mpsc::UnboundedSender<Queued>, BusError> {
        let queues = self.shard_queues.lock().map_err(|_| BusError::Closed)?;
        queues
            .get(usize::from(shard))
            .map(|(tx, _)| tx.clone())
            .ok_or_else(|| BusError::Unroutable { routing_key: format!("s{shard:03}") })
    }
}

/// Settling in process: requeue puts the payload at the back of its queue, up to the limit.
struct InProcSettle {
    requeue_to: mpsc::UnboundedSender<Queued>,
    payload: Vec<u8>,
    /// Deliveries so far, this one included.
    deliveries: u32,
    trace: TraceParent,
}

#[async_trait]
impl Settle for InProcSettle {
    async fn ack(&self) -> Result<(), BusError> {
        Ok(())
    }

    async fn requeue(&self) -> Result<(), BusError> {
        if self.deliveries >= DELIVERY_LIMIT {
            tracing::warn!(
                deliveries = self.deliveries,
                "message past its delivery limit, dropped (no dead-letter queue in process)"
            );
            return Ok(());
        }
        self.requeue_to.send((self.payload.clone(), self.deliveries, self.trace.clone())).map_err(|_| BusError::Closed)
    }

    async fn reject(&self) -> Result<(), BusError> {
        tracing::warn!(bytes = self.payload.len(), "command rejected, dropped (no dead-letter queue in process)");
        Ok(())
    }
}

#[async_trait]
impl Bus for InProcBus {
    async fn send_command(&self, shard: u16, _command_id: &str, payload: Vec<u8>) -> Result<Confirm, BusError> {
        self.shard_sender(shard)?.send((payload, 0, TraceParent::current())).map_err(|_| BusError::Closed)?;
        Ok(Box::pin(std::future::ready(Ok(()))))
    }

    async fn publish_to_node(&self, node: &str, payload: Vec<u8>) -> Result<(), BusError> {
        let tx = {
            let nodes = self.nodes.lock().map_err(|_| BusError::Closed)?;
            match nodes.get(node) {
                Some(tx) => tx.clone(),
                None => {
                    tracing::debug!(node, "node message to a node that is gone, dropped");
                    return Ok(());
                }
            }
        };
        // In process there is no broker to keep what the node has not taken yet: wait for room
        // (the node's consumer is this process's own hub), instead of dropping.
        let delivery = Delivery::unacked(payload).traced(TraceParent::current(), &node_queue_name());
        if tx.send(delivery).await.is_err() {
            if let Ok(mut nodes) = self.nodes.lock() {
                nodes.remove(node);
            }
        }
        Ok(())
    }

    async fn consume_shard(&self, shard: u16, prefetch: u16) -> Result<Subscription, BusError> {
        let (requeue_to, mut source) = {
            let mut queues = self.shard_queues.lock().map_err(|_| BusError::Closed)?;
            let queue = queues
                .get_mut(usize::from(shard))
                .ok_or_else(|| BusError::Unroutable { routing_key: format!("s{shard:03}") })?;
            let rx = queue.1.take().ok_or_else(|| BusError::Broker(format!("shard {shard} already has a consumer")))?;
            (queue.0.clone(), rx)
        };
        let (tx, rx) = mpsc::channel(usize::from(prefetch.max(1)));
        let queues = self.shard_queues.clone();
        let name: Arc<str> = format!("shard.{shard}").into();
        tokio::spawn(async move {
            loop {
                let payload = tokio::select! {
                    payload = source.recv() => payload,
                    () = tx.closed() => None,
                };
                let Some((payload, delivered, trace)) = payload else { break };
                let deliveries = delivered + 1;
                let settle = Box::new(InProcSettle {
                    requeue_to: requeue_to.clone(),
                    payload: payload.clone(),
                    deliveries,
                    trace: trace.clone(),
                });
                // Refused (the consumer went): the delivery requeues itself as it drops.
                if tx.send(Delivery::new(payload, delivered > 0, settle).traced(trace, &name)).await.is_err() {
                    break;
                }
            }
            if let Ok(mut queues) = queues.lock() {
                if let Some(queue) = queues.get_mut(usize::from(shard)) {
                    queue.1 = Some(source);
                }
            }
        });
        Ok(rx)
    }

    async fn consume_node(&self, node: &str) -> Result<Subscription, BusError> {
        let (tx, rx) = mpsc::channel(usize::from(crate::NODE_BUFFER));
        self.nodes.lock().map_err(|_| BusError::Closed)?.insert(node.to_owned(), tx);
        Ok(rx)
    }

    async fn publish_event(&self, payload: Vec<u8>) -> Result<(), BusError> {
        let queues = self.event_queues.lock().map_err(|_| BusError::Closed)?;
        let trace = TraceParent::current();
        for tx in queues.values() {
            let _ = tx.send((payload.clone(), 0, trace.clone()));
        }
        Ok(())
    }

    async fn consume_events(&self, queue: &str, _shared: bool) -> Result<Subscription, BusError> {
        let (source_tx, mut source) = mpsc::unbounded_channel::<Queued>();
        self.event_queues.lock().map_err(|_| BusError::Closed)?.insert(queue.to_owned(), source_tx.clone());
        let (tx, rx) = mpsc::channel(32);
        let name: Arc<str> = format!("events.{queue}").into();
        tokio::spawn(async move {
            while let Some((payload, delivered, trace)) = source.recv().await {
                let deliveries = delivered + 1;
                let settle = Box::new(InProcSettle {
                    requeue_to: source_tx.clone(),
                    payload: payload.clone(),
                    deliveries,
                    trace: trace.clone(),
                });
                if tx.send(Delivery::new(payload, delivered > 0, settle).traced(trace, &name)).await.is_err() {
                    break;
                }
            }
        });
        Ok(rx)
    }

    async fn shard_depths(&self) -> Result<Vec<(u16, u64)>, BusError> {
        Ok(Vec::new())
    }

    async fn dead_letter_depth(&self) -> Result<u64, BusError> {
        Ok(0)
    }

    fn is_healthy(&self) -> bool {
        true
    }

    fn shards(&self) -> u16 {
        self.shards
    }
}

/// The name node deliveries carry in process (one node: this process).
fn node_queue_name() -> Arc<str> {
    static NAME: std::sync::OnceLock<Arc<str>> = std::sync::OnceLock::new();
    NAME.get_or_init(|| Arc::from("node")).clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn commands_reach_their_shard_in_order_and_requeue_goes_back() {
        let bus = InProcBus::new(4);
        for i in 0..3u8 {
            bus.publish_command(2, "c", vec![i]).await.unwrap();
        }
        let mut sub = bus.consume_shard(2, 8).await.unwrap();
        let first = sub.recv().await.unwrap();
        assert_eq!(first.payload, vec![0]);
        first.requeue().await.unwrap();
        assert_eq!(sub.recv().await.unwrap().payload, vec![1]);
        assert_eq!(sub.recv().await.unwrap().payload, vec![2]);
        assert_eq!(sub.recv().await.unwrap().payload, vec![0]);
        assert!(bus.consume_shard(2, 8).await.is_err(), "a shard has a single consumer");
        drop(sub);
        let again = async {
            loop {
                match bus.consume_shard(2, 8).await {
                    Ok(sub) => return sub,
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
                }
            }
        };
        let mut sub = tokio::time::timeout(std::time::Duration::from_secs(5), again).await.expect("consumed again");
        bus.publish_command(2, "c", vec![3]).await.unwrap();
        // The deliveries above were dropped unsettled: they came back, before the new one.
        let mut seen = Vec::new();
        for _ in 0..4 {
            let delivery = sub.recv().await.unwrap();
            seen.push(delivery.payload.clone());
            delivery.ack().await.unwrap();
        }
        assert_eq!(seen.last(), Some(&vec![3]), "a shard given up is consumed again");
        seen.sort();
        assert_eq!(seen, vec![vec![0], vec![1], vec![2], vec![3]]);
    }

    #[tokio::test]
    async fn a_message_requeued_past_the_delivery_limit_is_dropped_not_looped() {
        let bus = InProcBus::new(1);
        bus.publish_command(0, "poison", vec![6]).await.unwrap();
        let mut sub = bus.consume_shard(0, 8).await.unwrap();
        for n in 1..=DELIVERY_LIMIT {
            let next = tokio::time::timeout(std::time::Duration::from_secs(5), sub.recv()).await;
            let delivery = next.expect("a delivery in time").expect("open");
            assert_eq!((delivery.payload.as_slice(), delivery.redelivered), (&[6u8][..], n > 1), "delivery {n}");
            delivery.requeue().await.unwrap();
        }
        bus.publish_command(0, "after", vec![8]).await.unwrap();
        let next = tokio::time::timeout(std::time::Duration::from_secs(5), sub.recv()).await;
        assert_eq!(next.unwrap().unwrap().payload, vec![8], "the poison message is gone");
    }

    #[tokio::test]
    async fn a_delivery_dropped_unsettled_comes_back() {
        let bus = InProcBus::new(1);
        bus.publish_command(0, "c", vec![9]).await.unwrap();
        let mut sub = bus.consume_shard(0, 8).await.unwrap();
        let first = sub.recv().await.unwrap();
        drop(first);
        let again = tokio::time::timeout(std::time::Duration::from_secs(5), sub.recv()).await;
        let again = again.expect("redelivered in time").expect("a delivery");
        assert_eq!(again.payload, vec![9]);
        again.ack().await.unwrap();
        let more = tokio::time::timeout(std::time::Duration::from_millis(200), sub.recv()).await;
        assert!(more.is_err(), "a settled delivery does not come back");
    }

    #[tokio::test]
    async fn node_messages_to_a_node_that_is_gone_are_dropped_and_a_full_node_queue_makes_its_publisher_wait() {
        let bus = std::sync::Arc::new(InProcBus::new(1));
        bus.publish_to_node("nobody", vec![1]).await.expect("dropped, not an error");
        let mut sub = bus.consume_node("n1").await.unwrap();
        let capacity = usize::from(crate::NODE_BUFFER);
        for i in 0..capacity {
            bus.publish_to_node("n1", (i as u32).to_be_bytes().to_vec()).await.expect("room for it");
        }
        // The queue is full: the next publish waits until the node takes one.
        let waiting = {
            let bus = bus.clone();
            tokio::spawn(async move { bus.publish_to_node("n1", vec![0xff]).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(!waiting.is_finished(), "the publisher waits while the node's queue is full");
        for i in 0..capacity {
            let delivery = sub.recv().await.unwrap();
            assert_eq!(delivery.payload, (i as u32).to_be_bytes().to_vec(), "in publish order");
            delivery.requeue().await.expect("settling a node message does nothing");
        }
        waiting.await.unwrap().expect("published once there was room");
        assert_eq!(sub.recv().await.unwrap().payload, vec![0xff], "nothing dropped");
        drop(sub);
        bus.publish_to_node("n1", vec![2]).await.expect("a node that went: dropped");
        assert!(bus.nodes.lock().unwrap().is_empty(), "forgotten");
    }
}
