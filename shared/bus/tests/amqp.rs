//! The RabbitMQ bus against a real broker (`BUS_TEST_AMQP_URL`, by default the local one), each
//! test under its own prefix, removing what it declared when it passes.

use std::time::Duration;

use chat_bus::{AmqpBus, BrokerSettings, Bus, Topology};
use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
use lapin::{Connection, ConnectionProperties};

const TIMEOUT: Duration = Duration::from_secs(10);

fn url() -> String {
    std::env::var("BUS_TEST_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

fn unique(tag: &str) -> String {
    format!("bus-test-{tag}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// A bus of one shard under a prefix of its own.
async fn bus(tag: &str) -> (AmqpBus, Topology) {
    let prefix = format!("{}.", unique(tag));
    let settings = BrokerSettings {
        url: url(),
        prefix: prefix.clone(),
        shards: 1,
        prefetch: 8,
        heartbeat_secs: 10,
        delivery_limit: 5,
    };
    let bus = AmqpBus::connect(&settings).await.expect("connecting to the test broker");
    (bus, Topology::new(&prefix, 1))
}

/// Delete the durable exchanges and queues a bus of `topology` declared (node queues are
/// exclusive: they went with the bus's connection).
async fn clean_up(topology: &Topology) {
    let connection = Connection::connect(&url(), ConnectionProperties::default()).await.expect("connecting");
    let channel = connection.create_channel().await.expect("a channel");
    for queue in [topology.shard_queue(0), topology.dead_letter_queue()] {
        channel.queue_delete(queue.as_str().into(), QueueDeleteOptions::default()).await.expect("queue deleted");
    }
    for exchange in [
        topology.command_exchange(),
        topology.dead_letter_exchange(),
        topology.deliver_exchange(),
        topology.events_exchange(),
    ] {
        channel
            .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
            .await
            .expect("exchange deleted");
    }
    let _ = connection.close(200, "done".into()).await;
}

#[tokio::test]
async fn a_publish_to_a_node_that_does_not_exist_is_dropped_not_an_error() {
    let (bus, topology) = bus("gone").await;
    for i in 0..100u32 {
        let published = tokio::time::timeout(TIMEOUT, bus.publish_to_node("nobody", i.to_be_bytes().to_vec())).await;
        published.expect("returns without waiting for the broker").expect("dropped by the broker, not an error");
    }
    // Nothing broke on the way: the publishing channel and the connection are still good.
    let mut queue = bus.consume_node("somebody").await.expect("a node queue");
    bus.publish_to_node("somebody", b"after".to_vec()).await.expect("published");
    let delivery = tokio::time::timeout(TIMEOUT, queue.recv()).await.expect("in time").expect("a delivery");
    assert_eq!(delivery.payload, b"after");
    assert!(bus.is_healthy());
    bus.publish_command(0, "c1", b"{}".to_vec()).await.expect("commands keep their confirms");
    drop(queue);
    clean_up(&topology).await;
}

#[tokio::test]
async fn node_messages_arrive_in_publish_order_and_need_no_settling() {
    let (bus, topology) = bus("order").await;
    let mut queue = bus.consume_node("n1").await.expect("a node queue");
    const N: u32 = 1_000;
    for i in 0..N {
        bus.publish_to_node("n1", i.to_be_bytes().to_vec()).await.expect("published");
    }
    for i in 0..N {
        let delivery = tokio::time::timeout(TIMEOUT, queue.recv()).await.expect("in time").expect("a delivery");
        assert_eq!(delivery.payload, i.to_be_bytes().to_vec(), "message {i} in publish order");
        delivery.ack().await.expect("acked");
    }
    let more = tokio::time::timeout(Duration::from_millis(300), queue.recv()).await;
    assert!(more.is_err(), "nothing comes back once acked");
    drop(queue);
    clean_up(&topology).await;
}
