//! `/health/live`, `/health/ready` and `/metrics`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use actix_web::{web, HttpResponse};

/// Readiness: false until the service is wired up, and again while it drains.
#[derive(Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::SeqCst);
    }

    pub fn get(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Extra readiness checks (a broker connection, a database pool).
pub type Check = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

#[derive(Clone)]
pub struct Health {
    pub service: &'static str,
    pub readiness: Readiness,
    pub checks: Vec<(&'static str, Check)>,
}

impl Health {
    pub fn new(service: &'static str, readiness: Readiness) -> Self {
        Self { service, readiness, checks: Vec::new() }
    }

    pub fn with_check(mut self, name: &'static str, check: Check) -> Self {
        self.checks.push((name, check));
        self
    }

    /// Mount the three endpoints.
    pub fn configure(self) -> impl FnOnce(&mut web::ServiceConfig) {
        move |cfg: &mut web::ServiceConfig| {
            cfg.app_data(web::Data::new(self))
                .route("/health/live", web::get().to(live))
                .route("/health/ready", web::get().to(ready))
                .route("/metrics", web::get().to(metrics));
        }
    }
}

async fn live(health: web::Data<Health>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "live", "service": health.service}))
}

async fn ready(health: web::Data<Health>) -> HttpResponse {
    if !health.readiness.get() {
        return HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({"status": "not_ready", "service": health.service}));
    }
    let failing: Vec<serde_json::Value> = health
        .checks
        .iter()
        .filter_map(|(name, check)| check().err().map(|why| serde_json::json!({"check": name, "error": why})))
        .collect();
    if failing.is_empty() {
        HttpResponse::Ok().json(serde_json::json!({"status": "ready", "service": health.service}))
    } else {
        HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({"status": "not_ready", "service": health.service, "failing": failing}))
    }
}

async fn metrics() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(chat_telemetry::render_metrics())
}
