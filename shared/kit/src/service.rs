//! The HTTP server every service runs, set up in one place: request metrics, the JSON, path and
//! query error shapes, health and metrics endpoints, then the service's routes; `TCP_NODELAY`
//! (Nagle would hold a session's second small frame for the peer's delayed ACK); no signal
//! handling of its own, because shutdown is ordered by the caller.

use std::future::Future;
use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};

use crate::{Health, HttpSettings};

/// How long in-flight requests get to finish once the server stops (below a pod's grace).
const SHUTDOWN_TIMEOUT_SECS: u64 = 10;

/// A bound, running HTTP server and its port.
pub struct HttpService {
    server: Server,
    port: u16,
}

impl HttpService {
    /// Bind `http.host:http.port` (port 0 picks a free one; `port()` tells which) and start
    /// serving `routes` next to health and metrics.
    pub fn bind<F>(http: &HttpSettings, health: Health, routes: F) -> std::io::Result<Self>
    where
        F: Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
    {
        let listener = TcpListener::bind((http.host.as_str(), http.port))?;
        Self::listen(http, listener, health, routes)
    }

    /// Serve on a listener bound by the caller (the standalone binds first: its services call
    /// each other over that port).
    pub fn listen<F>(http: &HttpSettings, listener: TcpListener, health: Health, routes: F) -> std::io::Result<Self>
    where
        F: Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
    {
        let service = health.service;
        let body_limit = http.body_limit_bytes;
        let port = listener.local_addr()?.port();
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
        .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS);
        if http.workers > 0 {
            server = server.workers(http.workers);
        }
        let server = server.listen(listener)?.run();
        tracing::info!(service, port, "listening");
        Ok(Self { server, port })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serve until `shutdown` resolves; then run `drain` (readiness false, stop consuming, close
    /// sessions: the caller's order) and stop the server, letting in-flight requests finish.
    pub async fn run_until_stopped<D>(self, shutdown: impl Future<Output = ()>, drain: D) -> std::io::Result<()>
    where
        D: Future<Output = ()>,
    {
        let handle = self.server.handle();
        // The server future must keep being polled for `stop` to complete: run it as a task.
        let mut server = actix_web::rt::spawn(self.server);
        tokio::select! {
            result = &mut server => return result.map_err(std::io::Error::other)?,
            () = shutdown => {}
        }
        drain.await;
        handle.stop(true).await;
        server.await.map_err(std::io::Error::other)?
    }
}

/// A service with nothing to drain: serve `routes` until `shutdown`, readiness false first.
pub async fn run_basic_service<F>(
    service: &'static str,
    http: &HttpSettings,
    routes: F,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()>
where
    F: Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
{
    let readiness = crate::Readiness::default();
    let server = HttpService::bind(http, Health::new(service, readiness.clone()), routes)?;
    readiness.set(true);
    server.run_until_stopped(shutdown, async move { readiness.set(false) }).await
}
