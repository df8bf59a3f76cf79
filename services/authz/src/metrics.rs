//! The authz service's metrics. Names are constants here, units in the names.

use std::sync::OnceLock;

use prometheus::{IntCounter, IntGauge};

pub struct Metrics {
    /// Change events in the outbox not yet confirmed by the broker.
    pub outbox_backlog: IntGauge,
    pub outbox_published: IntCounter,
    pub outbox_publish_failures: IntCounter,
}

fn startup<T>(r: prometheus::Result<T>) -> T {
    r.unwrap_or_else(|e| panic!("metric registration is a startup invariant: {e}"))
}

pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| Metrics {
        outbox_backlog: startup(prometheus::register_int_gauge!(
            "authz_outbox_backlog",
            "change events waiting in the outbox for the broker's confirm"
        )),
        outbox_published: startup(prometheus::register_int_counter!(
            "authz_outbox_published_total",
            "change events published from the outbox and confirmed by the broker"
        )),
        outbox_publish_failures: startup(prometheus::register_int_counter!(
            "authz_outbox_publish_failures_total",
            "attempts to publish an outbox event that failed or timed out (retried with backoff)"
        )),
    })
}
