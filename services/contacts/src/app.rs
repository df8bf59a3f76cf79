//! Starting the contacts service: its clients of authz and rooms (and this node's reply
//! queue), the fonts of the profile card, the event consumer, the store's health probe and
//! the `contacts_stored` gauge; the routes and readiness checks; and serving until shutdown.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use anyhow::Context;
use chat_auth::Verifier;
use chat_bus::SharedBus;
use chat_kit::{Health, HttpService, Readiness};
use tracing::warn;

use crate::authz::AuthzClient;
use crate::invite::Fonts;
use crate::metrics::metrics;
use crate::rooms::{node_id, RoomsClient};
use crate::service::ContactsCore;
use crate::settings::Settings;
use crate::store::{ContactKind, Store};

/// How often the store is probed for readiness.
const STORE_PROBE_TICK: Duration = Duration::from_secs(5);

/// How often the `contacts_stored` gauge is counted again.
const STORED_GAUGE_TICK: Duration = Duration::from_secs(60);

/// The contacts routes and the app data they need (the core, and the verifier of bearer
/// tokens), for `App::configure`.
pub fn configure(core: &Arc<ContactsCore>) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
    let verifier = web::Data::new(core.verifier.clone());
    let shared_core = web::Data::from(Arc::clone(core));
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(shared_core.clone()).app_data(verifier.clone()).configure(crate::api::routes);
    }
}

impl ContactsCore {
    /// Start the service with a verifier of tokens made from `settings.auth`.
    pub async fn start(settings: Settings, store: Store, bus: SharedBus) -> anyhow::Result<Arc<Self>> {
        let verifier = Verifier::new(&settings.auth);
        Self::start_with_verifier(settings, store, bus, verifier).await
    }

    /// Start the service with the given verifier (the standalone passes one reading authz's
    /// keys in the same process): consume this node's reply queue and the change events, and
    /// start the background tasks. Must run inside an actix system (the event consumer asks
    /// authz with actix's HTTP client).
    pub async fn start_with_verifier(
        settings: Settings,
        store: Store,
        bus: SharedBus,
        verifier: Verifier,
    ) -> anyhow::Result<Arc<Self>> {
        let fonts = Fonts::with_fallbacks(&settings.invite.fonts).context("loading the fonts of invite.fonts")?;
        let timeout = Duration::from_millis(settings.contacts.command_timeout_ms);
        let rooms = RoomsClient::start(bus.clone(), node_id(&settings.contacts.node_id), timeout)
            .await
            .context("consuming this node's queue")?;
        let authz = AuthzClient::new(settings.authz.clone());
        let events = bus.consume_events("contacts", true).await.context("consuming the change events")?;
        let core = Arc::new(Self { store, bus, settings, verifier, authz, rooms, fonts: Arc::new(fonts) });
        actix_web::rt::spawn(crate::events::run(Arc::clone(&core), events));
        tokio::spawn(refresh_stored_gauge(core.store.clone()));
        Ok(core)
    }

    /// Readiness checks of this service's dependencies: the store (probed every few seconds),
    /// the bus and this node's reply queue.
    pub fn health(self: &Arc<Self>, service: &'static str, readiness: Readiness) -> Health {
        let store_up = Arc::new(AtomicBool::new(true));
        tokio::spawn(probe_store(self.store.clone(), Arc::clone(&store_up)));
        let bus = self.bus.clone();
        let rooms = Arc::clone(&self.rooms);
        Health::new(service, readiness)
            .with_check(
                "store",
                Arc::new(
                    move || if store_up.load(Ordering::SeqCst) { Ok(()) } else { Err("store unreachable".into()) },
                ),
            )
            .with_check(
                "bus",
                Arc::new(move || if bus.is_healthy() { Ok(()) } else { Err("broker connection down".into()) }),
            )
            .with_check(
                "replies",
                Arc::new(move || {
                    if rooms.is_consuming() {
                        Ok(())
                    } else {
                        Err("this node's reply queue is not consumed".into())
                    }
                }),
            )
    }
}

/// Keep `up` true while the store answers a ping.
async fn probe_store(store: Store, up: Arc<AtomicBool>) {
    let mut tick = tokio::time::interval(STORE_PROBE_TICK);
    loop {
        tick.tick().await;
        let answered = tokio::time::timeout(STORE_PROBE_TICK, store.ping()).await;
        let ok = matches!(answered, Ok(Ok(())));
        if !ok && up.load(Ordering::SeqCst) {
            warn!("the store does not answer; not ready");
        }
        up.store(ok, Ordering::SeqCst);
    }
}

/// Count the saved contacts per kind every minute.
async fn refresh_stored_gauge(store: Store) {
    let mut tick = tokio::time::interval(STORED_GAUGE_TICK);
    loop {
        tick.tick().await;
        match store.saved_counts().await {
            Ok(counts) => {
                for kind in [ContactKind::External, ContactKind::Line] {
                    let n = counts.iter().find(|(k, _)| *k == kind).map_or(0, |(_, n)| *n);
                    metrics().stored.with_label_values(&[kind.as_str()]).set(n);
                }
            }
            Err(err) => warn!(error = %err, "saved contacts not counted"),
        }
    }
}

/// Connect the store and the bus named by the settings, start the service and serve until
/// `shutdown` (readiness goes false first).
pub async fn run(service: &'static str, settings: Settings, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let store = Store::connect(&settings.database).await.context("connecting the store")?;
    let bus = chat_bus::connect(&settings.amqp).await.context("connecting the bus")?;
    let http = settings.http.clone();
    let core = ContactsCore::start(settings, store, bus).await?;
    let readiness = Readiness::default();
    let routes = configure(&core);
    let routes = move |cfg: &mut web::ServiceConfig| {
        routes(cfg);
        chat_kit::openapi::serve(cfg, crate::openapi::document);
    };
    let server = HttpService::bind(&http, core.health(service, readiness.clone()), routes)?;
    readiness.set(true);
    server.run_until_stopped(shutdown, async move { readiness.set(false) }).await?;
    Ok(())
}
