//! Starting the LINE gateway: the key of the stored credentials (refused at boot when missing
//! or invalid), its clients of authz and rooms (and this node's reply queue), the event
//! consumer, the inbox workers and their housekeeping, the store's health probe; the routes and
//! readiness checks; and serving until shutdown.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use anyhow::Context;
use chat_auth::Verifier;
use chat_bus::SharedBus;
use chat_kit::{Health, HttpService, Readiness};
use tokio::sync::Notify;
use tracing::warn;

use crate::authz::AuthzClient;
use crate::line_api::LineApi;
use crate::media::MediaStore;
use crate::media_links::MediaLinks;
use crate::rooms::{node_id, RoomsClient};
use crate::secrets::SecretsKey;
use crate::service::{push_limiter, LineCore};
use crate::settings::Settings;
use crate::store::Store;

/// How often the store is probed for readiness.
const STORE_PROBE_TICK: Duration = Duration::from_secs(5);

/// The shared queue of change events of this service (`events.line-gateway`).
const EVENTS_QUEUE: &str = "line-gateway";

/// Preview images made at once (each decodes a whole image of up to LINE's 10 MB).
const PREVIEWS_AT_ONCE: usize = 2;

/// The LINE gateway's routes and the app data they need (the core, and the verifier of bearer
/// tokens), for `App::configure`.
pub fn configure(core: &Arc<LineCore>) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
    let verifier = web::Data::new(core.verifier.clone());
    let shared_core = web::Data::from(Arc::clone(core));
    let webhook_max_bytes = core.settings.line.webhook_max_bytes;
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(shared_core.clone()).app_data(verifier.clone());
        crate::api::routes(cfg, webhook_max_bytes);
    }
}

impl LineCore {
    /// Start the service with a verifier of tokens made from `settings.auth`.
    pub async fn start(settings: Settings, store: Store, bus: SharedBus) -> anyhow::Result<Arc<Self>> {
        let verifier = Verifier::new(&settings.auth);
        Self::start_with_verifier(settings, store, bus, verifier).await
    }

    /// Start the service with the given verifier (the standalone passes one reading authz's
    /// keys in the same process): check the secrets key, consume this node's reply queue and
    /// the change events, and start the inbox and sender workers. Must run inside an actix
    /// system (authz and LINE are called with actix's HTTP client, the workers are actix's
    /// local tasks).
    pub async fn start_with_verifier(
        settings: Settings,
        store: Store,
        bus: SharedBus,
        verifier: Verifier,
    ) -> anyhow::Result<Arc<Self>> {
        let secrets = SecretsKey::from_base64(&settings.line.secrets_key)?;
        let timeout = Duration::from_millis(settings.line.command_timeout_ms);
        let rooms = RoomsClient::start(bus.clone(), node_id(&settings.line.node_id), timeout)
            .await
            .context("consuming this node's queue")?;
        let authz = AuthzClient::new(settings.authz.clone());
        let events = bus.consume_events(EVENTS_QUEUE, true).await.context("consuming the change events")?;
        let workers = settings.line.workers.max(1);
        let line_api = LineApi::new(&settings.line.api_base_url, Duration::from_millis(settings.line.push_timeout_ms))
            .with_data_api(&settings.line.data_api_base_url);
        let media = MediaStore::from_settings(&settings.media).context("opening the media store")?;
        let membership = crate::membership::RoomMembership::new(&settings.rooms.url);
        let push_limiter = push_limiter(settings.line.push_per_second);
        let links =
            MediaLinks::new(secrets.media_links_key(), settings.media.line_base_url(), settings.media.link_ttl_days);
        let core = Arc::new(Self {
            store,
            bus,
            settings,
            verifier,
            authz,
            rooms,
            secrets,
            inbox_wake: Arc::new(Notify::new()),
            line_api,
            outbox_wake: Arc::new(Notify::new()),
            push_limiter,
            membership,
            media,
            links,
            previews: Arc::new(tokio::sync::Semaphore::new(PREVIEWS_AT_ONCE)),
        });
        // The events consumer (it asks authz for senders' names), the inbox and sender workers
        // call out with awc (not `Send`): actix's local tasks.
        actix_web::rt::spawn(crate::events::run(Arc::clone(&core), events));
        for _ in 0..workers {
            actix_web::rt::spawn(crate::inbox::run_worker(Arc::clone(&core)));
            actix_web::rt::spawn(crate::outbox::run_worker(Arc::clone(&core)));
        }
        tokio::spawn(crate::inbox::run_housekeeping(core.store.clone()));
        tokio::spawn(crate::outbox::run_housekeeping(Arc::clone(&core)));
        Ok(core)
    }

    /// Readiness checks of this service's dependencies: the store (probed every few seconds),
    /// the bus and this node's reply queue. The webhook needs only the store; the other two
    /// delay the inbox's processing, not LINE's answers.
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

/// Check the secrets key, connect the store and the bus named by the settings, start the
/// service and serve until `shutdown` (readiness goes false first).
pub async fn run(service: &'static str, settings: Settings, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    // Refuse a missing or invalid key before touching any backend.
    SecretsKey::from_base64(&settings.line.secrets_key)?;
    let store = Store::connect(&settings.database).await.context("connecting the store")?;
    let bus = chat_bus::connect(&settings.amqp).await.context("connecting the bus")?;
    let http = settings.http.clone();
    let core = LineCore::start(settings, store, bus).await?;
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
