//! Building and running the rooms service: backends, actors, HTTP server, ordered shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix_web::web;
use anyhow::Context as _;
use chat_auth::Verifier;
use chat_bus::SharedBus;
use chat_kit::{Health, HttpService, Readiness};
use chat_presence::{CacheConfig, CachedPresence, InProcPresence, RedisPresence, SharedPresence};
use secrecy::ExposeSecret;
use tracing::{info, warn};

use crate::access::RoomKinds;
use crate::actors::session::SessionContext;
use crate::actors::shard::{Own, Release, ShardActor};
use crate::actors::{RoomContext, ShardTable, SharedRoomContext};
use crate::api::cluster::Ops;
use crate::authz::AuthzClient;
use crate::call_sweep::{self, Liveness};
use crate::cluster::{self, Cluster, Leases};
use crate::dispatch::Dispatcher;
use crate::events::{self, EventContext};
use crate::hub::Hub;
use crate::metrics::metrics;
use crate::quota::Quotas;
use crate::settings::Settings;
use crate::store::Store;
use crate::turn::Turn;

/// The store, the bus and presence: real ones, or the standalone's in-process ones.
pub struct Backends {
    pub store: Store,
    pub bus: SharedBus,
    pub presence: SharedPresence,
    /// Token verification; `None` builds it from the settings (HS256 secret or JWKS URL).
    pub verifier: Option<Verifier>,
}

/// This node's id: the configured name (the pod name) or the host name, plus a boot id so a
/// restarted process never inherits the old one's queue or presence entries.
pub fn node_id(configured: &str) -> String {
    chat_bus::node_id(configured, None)
}

/// Connect the backends the settings name (`inproc` selects the in-process bus or presence).
pub async fn connect_backends(settings: &Settings, node_id: &str) -> anyhow::Result<Backends> {
    let store = Store::connect(&settings.database).await.context("connecting the store")?;
    let bus = chat_bus::connect(&settings.amqp).await.context("connecting the bus")?;
    let presence: SharedPresence = if settings.redis.url == "inproc" {
        Arc::new(InProcPresence::new(node_id))
    } else {
        let redis = RedisPresence::connect(&settings.redis.url, &settings.redis.prefix, node_id)
            .await
            .context("connecting Redis")?;
        if settings.presence.cache_users == 0 {
            Arc::new(redis)
        } else {
            // Fan-out's lookups from memory, kept fresh by the nodes' presence change events.
            let config = CacheConfig {
                max_users: settings.presence.cache_users,
                max_age: Duration::from_secs(settings.presence.cache_max_age_secs.max(1)),
            };
            Arc::new(
                CachedPresence::new(redis, &settings.redis.url, config)
                    .await
                    .context("subscribing to presence changes")?,
            )
        }
    };
    Ok(Backends { store, bus, presence, verifier: None })
}

/// The running parts of the service, independent of the HTTP server that exposes them (the
/// standalone binary mounts the routes next to the other services').
pub struct RoomsCore {
    shards: Vec<Addr<ShardActor>>,
    _arbiters: Vec<Arbiter>,
    store: Store,
    dispatcher: Dispatcher,
    verifier: Verifier,
    authz: Arc<AuthzClient>,
    session_context: Arc<SessionContext>,
    limits: chat_protocol::Limits,
    bus: SharedBus,
    presence: SharedPresence,
    node_id: String,
    table: ShardTable,
    /// `None` in the standalone: it owns every shard itself.
    cluster: Option<Cluster>,
    ops: web::Data<Ops>,
    handoff_drain: Duration,
}

impl RoomsCore {
    /// Start the shard actors, the node queue consumer and the background loops.
    pub async fn start(settings: &Settings, node_id: String, backends: Backends) -> anyhow::Result<Self> {
        let Backends { store, bus, presence, verifier } = backends;
        let verifier_given = verifier.is_some();
        if !verifier_given && settings.auth.jwks_url.is_empty() && settings.auth.jwt_secret.expose_secret().len() < 32 {
            anyhow::bail!("set auth.jwks_url (the authz JWKS) or auth.jwt_secret (at least 32 characters)");
        }
        let verifier = verifier.unwrap_or_else(|| Verifier::new(&settings.auth));
        settings.cluster.validate().map_err(anyhow::Error::msg)?;
        let (gave_up_tx, gave_up_rx) = tokio::sync::mpsc::channel(usize::from(bus.shards()) * 2);
        let rc = Arc::new(RoomContext {
            store: store.clone(),
            bus: bus.clone(),
            presence: presence.clone(),
            limits: settings.limits.clone(),
            dedup_window: settings.rooms.dedup_window,
            passivate_after: Duration::from_secs(settings.rooms.passivate_after_secs.max(1)),
            ring_timeout: Duration::from_secs(settings.calls.ring_timeout_secs.max(1)),
            shards: ShardTable::new(bus.shards()),
            gave_up: gave_up_tx,
        });
        let n_arbiters = match settings.rooms.arbiters {
            0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
            n => n,
        };
        let arbiters: Vec<Arbiter> = (0..n_arbiters).map(|_| Arbiter::new()).collect();
        // Each arbiter's room actors write through connections of their own (see
        // `Store::for_one_arbiter`), sharing the configured connection budget.
        let per_arbiter = (settings.database.max_connections / n_arbiters as u32).max(2);
        let contexts: Vec<SharedRoomContext> =
            arbiters.iter().map(|_| Arc::new(rc.with_store(rc.store.for_one_arbiter(per_arbiter)))).collect();
        let mut shards = Vec::new();
        for shard in 0..bus.shards() {
            let at = usize::from(shard) % arbiters.len();
            let (rc, prefetch) = (contexts[at].clone(), settings.amqp.prefetch);
            shards.push(ShardActor::start_in_arbiter(&arbiters[at].handle(), move |_| {
                ShardActor::new(shard, prefetch, rc)
            }));
        }
        let (cluster, leases) = own_shards(settings, &node_id, &store, &shards, rc.shards.clone(), gave_up_rx).await?;
        let sweep_leases = leases.clone();
        let ops = web::Data::new(Ops { leases, bus: bus.clone(), settings: settings.cluster.clone() });

        let hub = Arc::new(Hub::new(&node_id));
        let node_queue = bus.consume_node(&node_id).await.context("consuming the node queue")?;
        actix_web::rt::spawn(hub.clone().run(node_queue));
        let dispatcher =
            Dispatcher::new(bus.clone(), hub.clone(), Duration::from_millis(settings.rooms.command_timeout_ms));
        let authz = Arc::new(AuthzClient::new(settings.authz.clone()));
        let quotas = Arc::new(Quotas::new(&settings.quota));
        let session_context = Arc::new(SessionContext {
            authz: authz.clone(),
            kinds: Arc::new(RoomKinds::default()),
            hub,
            dispatcher: dispatcher.clone(),
            store: store.clone(),
            presence: presence.clone(),
            limits: settings.limits.clone(),
            ws: settings.ws.clone(),
            quotas: quotas.clone(),
            turn: Arc::new(Turn::new(&settings.calls)),
        });
        spawn_background(bus.clone(), presence.clone());
        let liveness = Liveness { hub: session_context.hub.clone(), leases: sweep_leases };
        let every = call_sweep::interval(Duration::from_secs(settings.calls.ring_timeout_secs.max(1)));
        actix_web::rt::spawn(call_sweep::run(store.clone(), dispatcher.clone(), liveness, every));
        actix_web::rt::spawn(quotas.run_housekeeping(Duration::from_secs(settings.quota.forget_idle_every_secs)));
        let sweep_every = Duration::from_secs(settings.presence.sweep_interval_secs);
        actix_web::rt::spawn(chat_presence::run_sweeper(presence.clone(), sweep_every, settings.presence.sweep_batch));
        let event_context = Arc::new(EventContext { rooms: rc.clone(), dispatcher: dispatcher.clone() });
        let shared_events = bus.consume_events("rooms", true).await.context("consuming change events")?;
        actix_web::rt::spawn(events::run_shared(event_context, shared_events));
        let node_events =
            bus.consume_events(&format!("rooms-node-{node_id}"), false).await.context("consuming change events")?;
        actix_web::rt::spawn(events::run_node(
            authz.clone(),
            verifier.clone(),
            session_context.hub.clone(),
            node_events,
        ));
        if authz.enabled() {
            // Users disabled before this node started, or while its broker link was down.
            let source = chat_auth::RevocationSource::new(&settings.authz.url, settings.authz.internal_token.clone());
            if !verifier_given {
                if let Err(err) = verifier.load_revocations(&source).await {
                    warn!(error = %err, "revocations not loaded at start; retried every 10 s");
                }
            }
            actix_web::rt::spawn(verifier.clone().keep_revocations_loaded(source, Duration::from_secs(10)));
        }
        info!(node_id = %node_id, shards = bus.shards(), "rooms started");
        Ok(Self {
            shards,
            _arbiters: arbiters,
            store,
            dispatcher,
            verifier,
            authz,
            session_context,
            limits: settings.limits.clone(),
            bus,
            presence,
            node_id,
            table: rc.shards.clone(),
            cluster,
            ops,
            handoff_drain: settings.cluster.handoff_drain(),
        })
    }

    /// Routes and their app data, to mount in an `App` (the kit's server adds the JSON, path
    /// and query error shapes).
    pub fn configure(&self) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
        let store = web::Data::new(self.store.clone());
        let dispatcher = web::Data::new(self.dispatcher.clone());
        let verifier = web::Data::new(self.verifier.clone());
        let sessions = web::Data::new(self.session_context.clone());
        let limits = web::Data::new(self.limits.clone());
        let authz = web::Data::from(self.authz.clone());
        let kinds = web::Data::from(self.session_context.kinds.clone());
        let ops = self.ops.clone();
        move |cfg: &mut web::ServiceConfig| {
            cfg.app_data(store.clone())
                .app_data(ops.clone())
                .app_data(dispatcher.clone())
                .app_data(verifier.clone())
                .app_data(sessions.clone())
                .app_data(limits.clone())
                .app_data(authz.clone())
                .app_data(kinds.clone())
                .configure(crate::api::routes);
        }
    }

    /// Readiness checks of this service's dependencies.
    pub fn health(&self, service: &'static str, readiness: Readiness) -> Health {
        let bus = self.bus.clone();
        let table = self.table.clone();
        let reconciled = self.cluster.as_ref().map(|c| c.readiness());
        Health::new(service, readiness)
            .with_check(
                "bus",
                Arc::new(move || if bus.is_healthy() { Ok(()) } else { Err("broker connection down".into()) }),
            )
            .with_check(
                "shards",
                // A member: its first reconcile is done (it owns what it should, or nothing yet);
                // alone: every shard consumes.
                Arc::new(move || match &reconciled {
                    Some(reconciled) if reconciled.load(std::sync::atomic::Ordering::Relaxed) => Ok(()),
                    Some(_) => Err("no shard reconcile done yet".into()),
                    None => match table.idle().as_slice() {
                        [] => Ok(()),
                        idle => Err(format!("{} shard(s) not consuming (first: {})", idle.len(), idle[0])),
                    },
                }),
            )
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Send commands to rooms (the standalone's demo seed uses it).
    pub fn dispatcher(&self) -> &Dispatcher {
        &self.dispatcher
    }

    /// Hand the shards over (stop consuming, finish in-flight commands within the drain bound,
    /// requeue the rest, release the leases: the next owner takes over without waiting for
    /// expiry), close the sessions (their clients reconnect elsewhere and sync) and leave
    /// presence.
    pub async fn drain(&self) {
        match &self.cluster {
            Some(cluster) => cluster.shutdown().await,
            None => {
                let drain = self.handoff_drain;
                let releases = self.shards.iter().map(|shard| shard.send(Release { drain }));
                futures_util::future::join_all(releases).await;
            }
        }
        self.session_context.hub.close_all();
        if let Err(err) = self.presence.leave().await {
            warn!(error = %err, "presence not cleaned up");
        }
    }
}

/// Who owns the shards: the cluster (leases in Redis, over every replica), or, in the
/// standalone (in-process presence), this process alone, every shard with an epoch above every
/// fence in the store. The cluster's second Redis connection serves the ops view.
async fn own_shards(
    settings: &Settings,
    node_id: &str,
    store: &Store,
    shards: &[Addr<ShardActor>],
    table: ShardTable,
    gave_up: tokio::sync::mpsc::Receiver<crate::actors::GaveUp>,
) -> anyhow::Result<(Option<Cluster>, Option<Leases>)> {
    if settings.redis.url == "inproc" {
        let epoch = store.max_fence().await.context("reading the fence")? + 1;
        for shard in shards {
            shard.do_send(Own { epoch });
        }
        info!(epoch, "owning every shard (no cluster)");
        return Ok((None, None));
    }
    let count = u16::try_from(shards.len()).unwrap_or(u16::MAX);
    let connect =
        || Leases::connect(&settings.redis.url, &settings.redis.prefix, count, settings.cluster.redis_timeout());
    let leases = connect().await.context("connecting Redis for leases")?;
    let view_leases = connect().await.context("connecting Redis for leases")?;
    let cluster = Cluster::start(cluster::Start {
        settings: settings.cluster.clone(),
        node_id: node_id.to_owned(),
        leases,
        store: store.clone(),
        shard_actors: shards.to_vec(),
        table,
        gave_up,
    })
    .context("starting the cluster loop")?;
    info!(member = cluster.member(), "joined the cluster");
    Ok((Some(cluster), Some(view_leases)))
}

fn spawn_background(bus: SharedBus, presence: SharedPresence) {
    actix_web::rt::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            if let Err(err) = presence.heartbeat().await {
                warn!(error = %err, "presence heartbeat failed");
            }
            if let Ok(depths) = bus.shard_depths().await {
                for (shard, depth) in depths {
                    metrics().shard_queue_depth.with_label_values(&[&format!("{shard:03}")]).set(depth as i64);
                }
            }
            if let Ok(depth) = bus.dead_letter_depth().await {
                metrics().dead_letter_depth.set(depth as i64);
            }
        }
    });
}

/// The rooms service as its own process.
pub struct Application {
    server: HttpService,
    core: Arc<RoomsCore>,
    readiness: Readiness,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let node_id = node_id(&settings.node.id);
        let backends = connect_backends(&settings, &node_id).await?;
        let core = Arc::new(RoomsCore::start(&settings, node_id, backends).await?);
        let readiness = Readiness::default();
        let routes = core.configure();
        let routes = move |cfg: &mut web::ServiceConfig| {
            routes(cfg);
            chat_kit::openapi::serve(cfg, crate::openapi::document);
        };
        let server = HttpService::bind(&settings.http, core.health("rooms", readiness.clone()), routes)?;
        info!(port = server.port(), node_id = %core.node_id(), "rooms started");
        readiness.set(true);
        Ok(Self { server, core, readiness })
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// Serve until `shutdown` resolves, then: not ready, stop consuming, drain HTTP, exit.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let Self { server, core, readiness } = self;
        let drain = async move {
            info!("draining");
            readiness.set(false);
            core.drain().await;
        };
        server.run_until_stopped(shutdown, drain).await?;
        info!("stopped");
        Ok(())
    }
}
