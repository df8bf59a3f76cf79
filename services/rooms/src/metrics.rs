//! The rooms service's metrics. Names are constants here, units in the names.

use std::sync::OnceLock;

use chat_protocol::call::{CallEndReason, CallMedia};
use prometheus::{Histogram, IntCounter, IntCounterVec, IntGauge, IntGaugeVec};
use strum::IntoEnumIterator;

pub struct Metrics {
    pub rooms_active: IntGauge,
    pub commands_accepted: IntCounterVec,
    pub commands_rejected: IntCounterVec,
    pub dedup_hits: IntCounter,
    pub delivery_latency: Histogram,
    pub command_latency: Histogram,
    pub activation_seconds: Histogram,
    pub commit_batch_size: Histogram,
    pub sessions: IntGauge,
    pub sessions_dropped_slow: IntCounter,
    pub shard_queue_depth: IntGaugeVec,
    pub dead_letter_depth: IntGauge,
    pub stale_epoch_rejections: IntCounter,
    pub fanout_publishes: IntCounter,
    pub events_rejected: IntCounter,
    pub block_changes: IntCounterVec,
    pub dead_lettered: IntCounter,
    pub handoff_seconds: Histogram,
    pub shards_owned: IntGauge,
    pub shards_unowned: IntGauge,
    pub cluster_members: IntGauge,
    pub lease_renew_seconds: Histogram,
    pub leases_lost: IntCounter,
    pub shard_acquisitions: IntCounter,
    pub calls_started: IntCounterVec,
    pub calls_answered: IntCounter,
    pub calls_missed: IntCounter,
    pub calls_ended: IntCounterVec,
    pub call_duration: Histogram,
    pub call_signals: IntCounter,
}

/// A counter family with each of its known label values exported from the start (at 0), so a
/// dashboard's rate has a series before the first event.
fn labelled<'a>(family: IntCounterVec, values: impl Iterator<Item = &'a str>) -> IntCounterVec {
    for value in values {
        family.with_label_values(&[value]);
    }
    family
}

fn startup<T>(r: prometheus::Result<T>) -> T {
    r.unwrap_or_else(|e| panic!("metric registration is a startup invariant: {e}"))
}

const LATENCY_BUCKETS: &[f64] = &[0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0];

pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| Metrics {
        rooms_active: startup(prometheus::register_int_gauge!("rooms_active", "room actors alive on this node")),
        commands_accepted: startup(prometheus::register_int_counter_vec!(
            "rooms_commands_accepted_total",
            "room commands applied and committed",
            &["command"]
        )),
        commands_rejected: startup(prometheus::register_int_counter_vec!(
            "rooms_commands_rejected_total",
            "room commands refused (nothing changed)",
            &["code"]
        )),
        dedup_hits: startup(prometheus::register_int_counter!(
            "rooms_dedupe_hits_total",
            "commands answered from their recorded result instead of being applied again"
        )),
        delivery_latency: startup(prometheus::register_histogram!(
            "rooms_delivery_latency_seconds",
            "from the room's commit to the push into a local session",
            LATENCY_BUCKETS.to_vec()
        )),
        command_latency: startup(prometheus::register_histogram!(
            "rooms_command_latency_seconds",
            "from publishing a command to receiving its result",
            LATENCY_BUCKETS.to_vec()
        )),
        activation_seconds: startup(prometheus::register_histogram!(
            "rooms_activation_seconds",
            "loading a room actor's state from the store",
            LATENCY_BUCKETS.to_vec()
        )),
        commit_batch_size: startup(prometheus::register_histogram!(
            "rooms_commit_batch_size",
            "posts a room actor committed together in one transaction (batches of two or more)",
            vec![2.0, 4.0, 8.0, 16.0, 32.0, 64.0]
        )),
        sessions: startup(prometheus::register_int_gauge!("rooms_ws_sessions", "open WebSocket sessions on this node")),
        sessions_dropped_slow: startup(prometheus::register_int_counter!(
            "rooms_ws_slow_consumer_closes_total",
            "sessions closed because their outbound queue was full"
        )),
        shard_queue_depth: startup(prometheus::register_int_gauge_vec!(
            "rooms_shard_queue_depth",
            "commands waiting in each shard queue",
            &["shard"]
        )),
        dead_letter_depth: startup(prometheus::register_int_gauge!(
            "rooms_dead_letter_depth",
            "commands in the dead-letter queue"
        )),
        stale_epoch_rejections: startup(prometheus::register_int_counter!(
            "rooms_stale_epoch_rejections_total",
            "writes refused because a newer owner fenced the room"
        )),
        events_rejected: startup(prometheus::register_int_counter!(
            "rooms_events_rejected_total",
            "change events that could not be decoded, dead-lettered"
        )),
        fanout_publishes: startup(prometheus::register_int_counter!(
            "rooms_fanout_publishes_total",
            "deliveries published to gateway nodes"
        )),
        block_changes: startup(prometheus::register_int_counter_vec!(
            "rooms_block_changes_total",
            "blocks and unblocks applied (stored, and the rooms the two users share told)",
            &["change"]
        )),
        dead_lettered: startup(prometheus::register_int_counter!(
            "rooms_dead_lettered_total",
            "commands this node sent to the dead-letter queue (undecodable, or on the wrong shard)"
        )),
        handoff_seconds: startup(prometheus::register_histogram!(
            "rooms_handoff_seconds",
            "graceful release of one shard: consumer cancelled to room actors stopped",
            HANDOFF_BUCKETS.to_vec()
        )),
        shards_owned: startup(prometheus::register_int_gauge!(
            "rooms_shards_owned",
            "shards this node holds the lease of"
        )),
        shards_unowned: startup(prometheus::register_int_gauge!(
            "rooms_shards_unowned",
            "shards with no lease at this node's last reconcile"
        )),
        cluster_members: startup(prometheus::register_int_gauge!(
            "rooms_cluster_members",
            "live rooms members this node sees (draining ones included)"
        )),
        lease_renew_seconds: startup(prometheus::register_histogram!(
            "rooms_lease_renew_seconds",
            "one renewal round trip of all this node's leases",
            LATENCY_BUCKETS.to_vec()
        )),
        leases_lost: startup(prometheus::register_int_counter!(
            "rooms_leases_lost_total",
            "shards this node lost without releasing them (self-fenced, taken, or Redis lost them)"
        )),
        shard_acquisitions: startup(prometheus::register_int_counter!(
            "rooms_shard_acquisitions_total",
            "shard leases this node acquired"
        )),
        calls_started: labelled(
            startup(prometheus::register_int_counter_vec!(
                "rooms_calls_started_total",
                "calls started, by media (audio, video)",
                &["media"]
            )),
            CallMedia::iter().map(CallMedia::as_str),
        ),
        calls_answered: startup(prometheus::register_int_counter!(
            "rooms_calls_answered_total",
            "calls a second participant joined"
        )),
        calls_missed: startup(prometheus::register_int_counter!(
            "rooms_calls_missed_total",
            "calls that rang out with nobody answering"
        )),
        calls_ended: labelled(
            startup(prometheus::register_int_counter_vec!(
                "rooms_calls_ended_total",
                "calls ended, by reason (completed, missed, declined, cancelled, revoked)",
                &["reason"]
            )),
            CallEndReason::iter().map(CallEndReason::as_str),
        ),
        call_duration: startup(prometheus::register_histogram!(
            "rooms_call_duration_seconds",
            "answered calls, from the answer to the end",
            CALL_DURATION_BUCKETS.to_vec()
        )),
        call_signals: startup(prometheus::register_int_counter!(
            "rooms_call_signals_total",
            "WebRTC signals (offers, answers, ICE candidates) relayed between call participants"
        )),
    })
}

const CALL_DURATION_BUCKETS: &[f64] = &[5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0];

const HANDOFF_BUCKETS: &[f64] = &[0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0];
