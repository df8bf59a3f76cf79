//! Names of exchanges and queues, in one place. A prefix isolates deployments and test runs.

/// The RabbitMQ topology (ARCHITECTURE.md section 2).
#[derive(Debug, Clone)]
pub struct Topology {
    prefix: String,
    shards: u16,
}

impl Topology {
    pub fn new(prefix: &str, shards: u16) -> Self {
        Self { prefix: prefix.to_owned(), shards: shards.max(1) }
    }

    pub fn shards(&self) -> u16 {
        self.shards
    }

    /// Direct exchange for room commands.
    pub fn command_exchange(&self) -> String {
        format!("{}rooms.cmd", self.prefix)
    }

    /// Routing key of a shard on the command exchange.
    pub fn shard_key(&self, shard: u16) -> String {
        format!("s{shard:03}")
    }

    /// Durable quorum queue of a shard (single active consumer, delivery limit, DLX).
    pub fn shard_queue(&self, shard: u16) -> String {
        format!("{}rooms.cmd.s{shard:03}", self.prefix)
    }

    pub fn dead_letter_exchange(&self) -> String {
        format!("{}rooms.cmd.dlx", self.prefix)
    }

    pub fn dead_letter_queue(&self) -> String {
        format!("{}rooms.cmd.dead", self.prefix)
    }

    /// Direct exchange for replies and deliveries; routing key = node id.
    pub fn deliver_exchange(&self) -> String {
        format!("{}gw.deliver", self.prefix)
    }

    /// Fanout exchange of change events (authorization changes).
    pub fn events_exchange(&self) -> String {
        format!("{}events", self.prefix)
    }

    pub fn events_queue(&self, name: &str) -> String {
        format!("{}events.{name}", self.prefix)
    }

    pub fn node_queue(&self, node: &str) -> String {
        format!("{}gw.node.{node}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_prefix_and_padded_shard() {
        let t = Topology::new("t1.", 256);
        assert_eq!(t.shard_queue(7), "t1.rooms.cmd.s007");
        assert_eq!(t.shard_key(255), "s255");
        assert_eq!(t.node_queue("pod-a"), "t1.gw.node.pod-a");
    }
}
