//! An HTTP service with health, metrics and the given routes, run until a shutdown signal.
//! The services that do not own actors yet (contacts, line-gateway, authz) are built on it.

use std::future::Future;

use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};

use crate::{Health, HttpSettings, Readiness};

/// Bind, serve and stop gracefully (readiness false first) when `shutdown` resolves.
pub async fn run_basic_service<F>(
    service: &'static str,
    http: &HttpSettings,
    routes: F,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()>
where
    F: Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
{
    let readiness = Readiness::default();
    let health = Health::new(service, readiness.clone());
    let body_limit = http.body_limit_bytes;
    let mut server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(move |req, next| crate::http_metrics::record(service, req, next)))
            .app_data(crate::json_config(body_limit))
            .app_data(crate::path_config())
            .app_data(crate::query_config())
            .configure(health.clone().configure())
            .configure(routes.clone())
    })
    .tcp_nodelay(true)
    .disable_signals()
    .shutdown_timeout(10);
    if http.workers > 0 {
        server = server.workers(http.workers);
    }
    let server = server.bind((http.host.as_str(), http.port))?;
    let port = server.addrs().first().map(|a| a.port()).unwrap_or(http.port);
    tracing::info!(service, port, "listening");
    let server = server.run();
    let handle = server.handle();
    readiness.set(true);
    // The server future must keep being polled for `stop` to complete: run it as a task.
    let mut server = actix_web::rt::spawn(server);
    tokio::select! {
        result = &mut server => return result.map_err(std::io::Error::other)?,
        () = shutdown => {}
    }
    readiness.set(false);
    handle.stop(true).await;
    server.await.map_err(std::io::Error::other)?
}
