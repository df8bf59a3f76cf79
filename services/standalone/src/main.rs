//! The standalone binary: the composition root that runs every service in one process on one
//! port, with the in-process bus, in-process presence and SQLite, plus demo data so that a
//! newcomer can chat at once. It is the only crate that depends on the service crates.

mod demo;

use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer};
use anyhow::Context;
use chat_kit::Readiness;
use secrecy::{ExposeSecret, SecretString};

const DEFAULTS: &str = include_str!("../config/default.toml");

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let mut settings: rooms::Settings =
        chat_kit::load_layered(&[rooms::settings::DEFAULTS, DEFAULTS])?;
    let _telemetry = chat_telemetry::init("standalone", &settings.telemetry);
    if settings.auth.jwt_secret.expose_secret().is_empty() {
        // A fresh signing secret per start; the demo tokens written below are signed with it.
        let secret = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        settings.auth.jwt_secret = SecretString::from(secret);
    }
    let run_dir =
        std::path::PathBuf::from(std::env::var("CHAT_RUN_DIR").unwrap_or_else(|_| ".run".into()));
    std::fs::create_dir_all(run_dir.join("standalone")).context("creating the run directory")?;

    let node_id = rooms::node_id(&settings.node.id);
    let backends = rooms::connect_backends(&settings, &node_id).await?;
    let core = rooms::RoomsCore::start(&settings, node_id, backends).await?;
    let readiness = Readiness::default();
    let health = core.health("standalone", readiness.clone());
    let rooms_routes = core.configure(settings.http.body_limit_bytes);
    let server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(|req, next| {
                chat_kit::http_metrics::record("standalone", req, next)
            }))
            .configure(health.clone().configure())
            .configure(rooms_routes.clone())
            .configure(contacts::routes)
            .configure(line_gateway::routes)
            .configure(authz::routes)
    })
    .disable_signals()
    .shutdown_timeout(5)
    .bind((settings.http.host.as_str(), settings.http.port))?;
    let port = server
        .addrs()
        .first()
        .map(|a| a.port())
        .unwrap_or(settings.http.port);
    let server = server.run();
    let handle = server.handle();
    let server_task = actix_web::rt::spawn(server);

    let seeded = demo::seed(&core, &settings.auth)
        .await
        .context("seeding the demo data")?;
    demo::write_run_files(&run_dir, &settings.http.host, port, &seeded)?;
    readiness.set(true);
    demo::print_first_steps(&settings.http.host, port, &run_dir, &seeded);

    chat_kit::shutdown_signal().await;
    readiness.set(false);
    core.drain().await;
    handle.stop(true).await;
    let _ = server_task.await;
    Ok(())
}
