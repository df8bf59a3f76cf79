//! The contacts service's metrics. Names are constants here, units in the names.

use std::sync::OnceLock;

use prometheus::{IntCounterVec, IntGaugeVec};

pub struct Metrics {
    /// Contacts put in Clients/Partners, by kind (`external`, `line`).
    pub saved: IntCounterVec,
    /// Block changes, by action (`block`, `unblock`).
    pub blocks: IntCounterVec,
    /// LINE invites served, by format (`json`, `qr`, `card`).
    pub invites_served: IntCounterVec,
    /// Change events consumed, by kind and outcome (`applied`, `ignored`, `requeued`, `rejected`).
    pub events: IntCounterVec,
    /// Saved contacts per kind, over every member (refreshed every minute).
    pub stored: IntGaugeVec,
}

fn startup<T>(r: prometheus::Result<T>) -> T {
    r.unwrap_or_else(|e| panic!("metric registration is a startup invariant: {e}"))
}

pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| Metrics {
        saved: startup(prometheus::register_int_counter_vec!(
            "contacts_saved_total",
            "contacts put in Clients/Partners (added, or saved again)",
            &["kind"]
        )),
        blocks: startup(prometheus::register_int_counter_vec!(
            "contacts_blocks_total",
            "block periods opened (block) and closed (unblock)",
            &["action"]
        )),
        invites_served: startup(prometheus::register_int_counter_vec!(
            "contacts_invites_served_total",
            "LINE add-friend invites served, by format",
            &["format"]
        )),
        events: startup(prometheus::register_int_counter_vec!(
            "contacts_events_total",
            "change events consumed, by kind and outcome",
            &["kind", "outcome"]
        )),
        stored: startup(prometheus::register_int_gauge_vec!(
            "contacts_stored",
            "saved contacts (Clients/Partners) per kind, over every member",
            &["kind"]
        )),
    })
}
