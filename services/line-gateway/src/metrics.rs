//! The LINE gateway's metrics. Names are constants here, units in the names.

use std::sync::OnceLock;

use prometheus::{Histogram, IntCounter, IntCounterVec, IntGauge};

pub struct Metrics {
    /// Webhook requests, by outcome (`accepted`, `duplicate`, `bad_signature`, `too_large`,
    /// `malformed`, `unknown_channel`, `connectivity_check`).
    pub webhooks: IntCounterVec,
    /// Inbox events handled, by LINE event type and outcome.
    pub events: IntCounterVec,
    /// Change events consumed, by kind and outcome.
    pub change_events: IntCounterVec,
    /// Inbox events not processed yet.
    pub backlog: IntGauge,
    /// From the webhook's arrival to the room's answer.
    pub webhook_to_room: Histogram,
    /// Messaging API calls, by endpoint (`push`, `profile`, `content`) and HTTP status (or `timeout`,
    /// `error` when no answer came).
    pub api_calls: IntCounterVec,
    /// Outbound messages by outcome: per push request `sent`, `already_accepted`, `retried`;
    /// per message and LINE user `failed`, `quota`, `no_channel`, `suspended`.
    pub outbound: IntCounterVec,
    /// Outbound messages given up (they stay `failed` in the store).
    pub outbound_dead: IntCounter,
    /// Outbound messages not sent yet.
    pub outbound_backlog: IntGauge,
    /// LINE users' media, by outcome (`stored`, `too_large`, `gone`, `external`).
    pub media: IntCounterVec,
    /// Bytes of LINE users' media stored.
    pub media_bytes: IntCounter,
}

fn startup<T>(r: prometheus::Result<T>) -> T {
    r.unwrap_or_else(|e| panic!("metric registration is a startup invariant: {e}"))
}

pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| Metrics {
        webhooks: startup(prometheus::register_int_counter_vec!(
            "line_webhooks_total",
            "LINE webhook requests, by outcome",
            &["outcome"]
        )),
        events: startup(prometheus::register_int_counter_vec!(
            "line_events_total",
            "LINE webhook events processed from the inbox, by type and outcome",
            &["type", "outcome"]
        )),
        change_events: startup(prometheus::register_int_counter_vec!(
            "line_change_events_total",
            "change events consumed by the LINE gateway, by kind and outcome",
            &["kind", "outcome"]
        )),
        backlog: startup(prometheus::register_int_gauge!(
            "line_inbox_backlog",
            "LINE webhook events received and not processed yet"
        )),
        webhook_to_room: startup(prometheus::register_histogram!(
            "line_webhook_to_room_seconds",
            "time from a LINE webhook's arrival to the room's answer to its event",
            vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]
        )),
        api_calls: startup(prometheus::register_int_counter_vec!(
            "line_api_calls_total",
            "calls to LINE's Messaging API, by endpoint and HTTP status",
            &["endpoint", "status"]
        )),
        outbound: startup(prometheus::register_int_counter_vec!(
            "line_outbound_total",
            "outbound messages to LINE users, by outcome",
            &["outcome"]
        )),
        outbound_dead: startup(prometheus::register_int_counter!(
            "line_outbound_dead_total",
            "outbound messages to LINE users given up"
        )),
        outbound_backlog: startup(prometheus::register_int_gauge!(
            "line_outbound_backlog",
            "outbound messages to LINE users not sent yet"
        )),
        media: startup(prometheus::register_int_counter_vec!(
            "line_media_total",
            "media of LINE users' messages, by outcome",
            &["outcome"]
        )),
        media_bytes: startup(prometheus::register_int_counter!(
            "line_media_bytes_total",
            "bytes of LINE users' media stored"
        )),
    })
}
