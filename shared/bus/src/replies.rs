//! The request side of a room command: publish it to its shard queue with this node as
//! `reply_to`, and hand the room's answer, which arrives on this node's queue, to the caller
//! waiting for it (by correlation id). Used by every service that sends room commands.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use chat_protocol::bus::CommandOutcome;
use tokio::sync::oneshot;
use tracing::debug;

use crate::{Bus, BusError, Confirm};

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
