//! The standalone binary: the composition root that runs every service in one process on one
//! port, with the in-process bus, in-process presence and SQLite, plus demo data so that a
//! newcomer can chat at once. It is the only crate that depends on the service crates.

mod demo;
mod line_user;
mod openapi;

use std::sync::Arc;

use anyhow::Context;
use chat_bus::{InProcBus, SharedBus};
use chat_kit::{HttpService, Readiness};
use chat_presence::InProcPresence;
use secrecy::SecretString;

const DEFAULTS: &str = include_str!("../config/default.toml");

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let mut settings: rooms::Settings = chat_kit::load_layered(&[rooms::settings::DEFAULTS, DEFAULTS])?;
    let _telemetry = chat_telemetry::init("standalone", &settings.telemetry);
    let run_dir = std::path::PathBuf::from(std::env::var("CHAT_RUN_DIR").unwrap_or_else(|_| ".run".into()));
    std::fs::create_dir_all(run_dir.join("standalone")).context("creating the run directory")?;

    // Bind first: rooms asks authz for decisions over this same port.
    let listener = std::net::TcpListener::bind((settings.http.host.as_str(), settings.http.port))?;
    let port = listener.local_addr()?.port();
    let base = format!("http://{}:{port}", settings.http.host);

    let node_id = rooms::node_id(&settings.node.id);
    let bus: SharedBus = Arc::new(InProcBus::new(settings.amqp.shards));
    let internal_token = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());

    // authz, in process: its own SQLite file, the shared bus.
    let authz_db = run_dir.join("standalone").join("authz.sqlite");
    let authz_layer = format!(
        "[database]\nurl = \"sqlite://{}?mode=rwc\"\nmax_connections = 4\n[amqp]\nurl = \"inproc\"\n[internal]\ntoken = \"{internal_token}\"\n",
        authz_db.display()
    );
    let authz_settings: authz::Settings = chat_kit::parse_layers(&[authz::DEFAULTS, &authz_layer])?;
    let authz_store = authz::store::Store::connect(&authz_settings.database).await?;
    let authz_core = authz::AuthzCore::start(authz_settings, authz_store, bus.clone()).await?;
    authz_core.seed_demo().await.context("seeding the demo tenants")?;

    // rooms, verifying tokens with authz's keys and asking it for decisions.
    settings.authz.url = base.clone();
    settings.authz.internal_token = SecretString::from(internal_token.clone());
    let verifier = chat_auth::Verifier::local(authz_core.key_provider(), &settings.auth);
    let verifier_for_others = verifier.clone();
    let backends = rooms::Backends {
        store: rooms::store::Store::connect(&settings.database).await?,
        bus: bus.clone(),
        presence: Arc::new(InProcPresence::new(&node_id)),
        verifier: Some(verifier),
    };
    let core = rooms::RoomsCore::start(&settings, node_id, backends).await?;

    // contacts: its own SQLite file, the shared bus, authz's decisions over this same port.
    let contacts_db = run_dir.join("standalone").join("contacts.sqlite");
    let contacts_layer = format!(
        "[database]\nurl = \"sqlite://{}?mode=rwc\"\nmax_connections = 4\n[amqp]\nurl = \"inproc\"\nshards = {}\n\
         [authz]\nurl = \"{base}\"\ninternal_token = \"{internal_token}\"\n[contacts]\nnode_id = \"standalone-contacts\"\n",
        contacts_db.display(),
        settings.amqp.shards
    );
    let contacts_settings: contacts::Settings = chat_kit::parse_layers(&[contacts::DEFAULTS, &contacts_layer])?;
    let contacts_store = contacts::store::Store::connect(&contacts_settings.database).await?;
    let contacts_core = contacts::ContactsCore::start_with_verifier(
        contacts_settings,
        contacts_store,
        bus.clone(),
        verifier_for_others.clone(),
    )
    .await?;

    // line-gateway: its own SQLite file and secrets key (made once per run directory), the
    // shared bus, authz's decisions over this same port.
    let line_db = run_dir.join("standalone").join("line.sqlite");
    let secrets_key = demo::line_secrets_key(&run_dir.join("standalone").join("line-secrets.key"))?;
    // The LINE platform: LINE's real hosts, or what `CHAT_LINE_API_BASE_URL` names (`make run`
    // points it at the LINE platform simulator, which serves both of LINE's hosts).
    let line_api = std::env::var("CHAT_LINE_API_BASE_URL").ok().filter(|url| !url.is_empty());
    let line_hosts = line_api
        .as_deref()
        .map(|url| format!("api_base_url = \"{url}\"\ndata_api_base_url = \"{url}\"\n"))
        .unwrap_or_default();
    let line_layer = format!(
        "[database]\nurl = \"sqlite://{}?mode=rwc\"\nmax_connections = 4\n[amqp]\nurl = \"inproc\"\nshards = {}\n\
         [redis]\nurl = \"inproc\"\n[authz]\nurl = \"{base}\"\ninternal_token = \"{internal_token}\"\n\
         [rooms]\nurl = \"{base}\"\n[line]\nnode_id = \"standalone-line\"\nsecrets_key = \"{secrets_key}\"\n{line_hosts}\
         [media]\npath = \"{}\"\npublic_base_url = \"{base}\"\n",
        line_db.display(),
        settings.amqp.shards,
        run_dir.join("standalone").join("line-media").display()
    );
    let line_settings: line_gateway::Settings = chat_kit::parse_layers(&[line_gateway::DEFAULTS, &line_layer])?;
    let line_store = line_gateway::store::Store::connect(&line_settings.database).await?;
    let line_core = line_gateway::LineCore::start_with_verifier(
        line_settings,
        line_store,
        bus.clone(),
        verifier_for_others.clone(),
    )
    .await?;

    let readiness = Readiness::default();
    let health = core.health("standalone", readiness.clone());
    let rooms_routes = core.configure();
    let authz_routes = authz::configure(&authz_core);
    let contacts_routes = contacts::configure(&contacts_core);
    let line_routes = line_gateway::configure(&line_core);
    // The web client's LINE-user panel, when the LINE platform simulator plays LINE.
    let line_user_routes = line_api.as_deref().map(|sim| line_user::configure(line_user::Panel::new(sim, &base)));
    let routes = move |cfg: &mut actix_web::web::ServiceConfig| {
        if let Some(panel) = &line_user_routes {
            cfg.configure(panel.clone());
        }
        cfg.configure(rooms_routes.clone())
            .configure(authz_routes.clone())
            .configure(contacts_routes.clone())
            .configure(line_routes.clone())
            // One document for every service's paths (after them: it answers 405 to the methods
            // they do not route).
            .configure(|cfg| chat_kit::openapi::serve(cfg, openapi::document))
            // The web client at `/` (the demo's way in for a person).
            .configure(web_client::configure);
    };
    let server = HttpService::listen(&settings.http, listener, health, routes)?;

    let seeded = demo::seed(&core, &authz_core).await.context("seeding the demo data")?;
    // Binding alice's LINE channel asks authz over this port: once the server runs.
    actix_web::rt::spawn(demo::seed_line_when_serving(authz_core.clone(), line_core.clone()));
    demo::write_run_files(&run_dir, &base, &seeded)?;
    readiness.set(true);
    demo::print_first_steps(&base, &run_dir, &seeded, line_api.as_deref());

    let drain = async move {
        readiness.set(false);
        core.drain().await;
    };
    server.run_until_stopped(chat_kit::shutdown_signal(), drain).await?;
    Ok(())
}
