//! The outbox relay: publishes the change events that committed changes left in the outbox,
//! oldest first, each awaited for the broker's confirm before it is marked sent; on a failure
//! it backs off (100 ms doubling to 5 s) and starts again from the oldest unsent event, so
//! that events leave in order and none is skipped. A redelivery after a crash between the
//! confirm and the mark is harmless: consumers key their effects on the event id.
//!
//! One replica publishes at a time: the holder of the relay lease (renewed while it works,
//! given up when the outbox is empty or the broker fails, so that another replica with a
//! working connection can take over). The relay is woken by every commit of its own replica
//! and polls for the others'. Sent events are deleted a day later.

use std::sync::Arc;
use std::time::Duration;

use chat_bus::SharedBus;
use tokio::sync::Notify;
use tracing::{debug, warn};

use crate::metrics::metrics;
use crate::store::Store;

/// How many unsent events are read at a time.
const BATCH: i64 = 100;
/// How often the outbox is looked at without a wake-up (changes made by other replicas).
const POLL: Duration = Duration::from_secs(1);
/// How long one publish may take before it counts as failed (a broker that is down can hold
/// a publish until the connection recovers).
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);
/// The relay lease: long enough for a publish, renewed when half of it has passed.
const LEASE: Duration = Duration::from_secs(30);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Sent events are kept this long (for inspection), then deleted.
const KEEP_SENT: Duration = Duration::from_secs(24 * 3600);
/// How often sent events are purged.
const PURGE_EVERY: Duration = Duration::from_secs(600);

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Why a pass over the outbox stopped before it was empty.
enum Stop {
    /// Another replica holds the lease.
    NotOurs,
    /// The store or the broker failed: back off, then try again.
    Failed,
}

pub struct Relay {
    store: Store,
    bus: SharedBus,
    wake: Arc<Notify>,
    /// This replica's name on the lease.
    holder: String,
}

impl Relay {
    pub fn new(store: Store, bus: SharedBus, wake: Arc<Notify>) -> Self {
        Self { store, bus, wake, holder: uuid::Uuid::new_v4().to_string() }
    }

    /// Publish the outbox until the process ends.
    pub async fn run(self) {
        let mut backoff = FIRST_BACKOFF;
        let mut last_purge: Option<tokio::time::Instant> = None;
        loop {
            match self.pass().await {
                Ok(()) => {
                    backoff = FIRST_BACKOFF;
                    if last_purge.is_none_or(|at| at.elapsed() >= PURGE_EVERY) {
                        last_purge = Some(tokio::time::Instant::now());
                        self.purge().await;
                    }
                    self.idle(POLL).await;
                }
                Err(Stop::NotOurs) => self.idle(POLL).await,
                Err(Stop::Failed) => {
                    self.release().await;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Wait for a commit of this replica, or `poll`.
    async fn idle(&self, poll: Duration) {
        let _ = tokio::time::timeout(poll, self.wake.notified()).await;
    }

    /// Publish every unsent event, oldest first; Ok once the outbox is empty.
    async fn pass(&self) -> Result<(), Stop> {
        let mut lease_until: Option<tokio::time::Instant> = None;
        loop {
            let backlog = self.store.unsent_count().await.map_err(|err| {
                warn!(error = %err, "outbox not read");
                Stop::Failed
            })?;
            metrics().outbox_backlog.set(backlog);
            if backlog == 0 {
                if lease_until.is_some() {
                    self.release().await;
                }
                return Ok(());
            }
            self.hold(&mut lease_until).await?;
            let events = self.store.unsent_events(BATCH).await.map_err(|err| {
                warn!(error = %err, "outbox not read");
                Stop::Failed
            })?;
            for event in events {
                self.hold(&mut lease_until).await?;
                let published =
                    tokio::time::timeout(PUBLISH_TIMEOUT, self.bus.publish_event(event.payload.into_bytes()));
                match published.await {
                    Ok(Ok(())) => {}
                    Ok(Err(err)) => {
                        metrics().outbox_publish_failures.inc();
                        warn!(event_id = %event.event_id, error = %err, "change event not published; will retry");
                        return Err(Stop::Failed);
                    }
                    Err(_) => {
                        metrics().outbox_publish_failures.inc();
                        warn!(event_id = %event.event_id, "change event publish timed out; will retry");
                        return Err(Stop::Failed);
                    }
                }
                metrics().outbox_published.inc();
                let now = chat_protocol::now_ms();
                if let Err(err) = self.store.mark_sent(&event.event_id, now).await {
                    // Published but not marked: it goes again, and consumers ignore the repeat.
                    warn!(event_id = %event.event_id, error = %err, "published change event not marked sent");
                    return Err(Stop::Failed);
                }
                debug!(event_id = %event.event_id, "change event published");
            }
        }
    }

    /// Take the lease, or renew it when half of it has passed.
    async fn hold(&self, lease_until: &mut Option<tokio::time::Instant>) -> Result<(), Stop> {
        let now = tokio::time::Instant::now();
        if lease_until.is_some_and(|until| until > now + LEASE / 2) {
            return Ok(());
        }
        let now_ms = chat_protocol::now_ms();
        match self.store.take_relay_lease(&self.holder, now_ms, now_ms + millis(LEASE)).await {
            Ok(true) => {
                *lease_until = Some(now + LEASE);
                Ok(())
            }
            Ok(false) => Err(Stop::NotOurs),
            Err(err) => {
                warn!(error = %err, "relay lease not taken");
                Err(Stop::Failed)
            }
        }
    }

    async fn release(&self) {
        if let Err(err) = self.store.release_relay_lease(&self.holder).await {
            warn!(error = %err, "relay lease not released; it runs out by itself");
        }
    }

    async fn purge(&self) {
        let before = chat_protocol::now_ms() - millis(KEEP_SENT);
        match self.store.purge_sent(before).await {
            Ok(0) => {}
            Ok(purged) => debug!(purged, "sent change events deleted"),
            Err(err) => warn!(error = %err, "sent change events not deleted"),
        }
    }
}
