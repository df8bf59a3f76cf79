//! The authz service: tenants, users and admins, login and tokens (EdDSA JWTs, JWKS, key
//! rotation), LINE permission per member, bilateral trust between tenants, the audit trail,
//! decisions at the point of use (`/internal/v1/decide`) and change events on the bus.
//!
//! Modules depend one way: `api` (HTTP) -> `service` (the rules, on `AuthzCore`) -> `keys`,
//! `store`, `password`, `settings`; `app` starts the core, the outbox `relay` and runs the
//! administrative commands; `metrics` names the metrics.

mod api;
mod app;
mod keys;
mod metrics;
pub mod openapi;
mod password;
mod relay;
pub mod service;
mod settings;
pub mod store;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::Arc;

pub use api::configure;
pub use app::{demo_password, DEMO_USERS};
pub use keys::{KeyError, KeyRing};
pub use service::{AuthzCore, AuthzError};
pub use settings::{InternalSettings, LoginSettings, Settings, TokenSettings, DEFAULTS};

pub const SERVICE: &str = "authz";

/// Connect the store and the bus named by the settings.
pub async fn connect(settings: &Settings) -> anyhow::Result<(store::Store, chat_bus::SharedBus)> {
    let store = store::Store::connect(&settings.database).await?;
    let bus = chat_bus::connect(&settings.amqp).await?;
    Ok((store, bus))
}

/// Serve until `shutdown`.
pub async fn run(settings: Settings, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let (store, bus) = connect(&settings).await?;
    let http = settings.http.clone();
    let core = AuthzCore::start(settings, store, bus).await?;
    let routes = configure(&core);
    let routes = move |cfg: &mut actix_web::web::ServiceConfig| {
        routes(cfg);
        chat_kit::openapi::serve(cfg, openapi::document);
    };
    chat_kit::run_basic_service(SERVICE, &http, routes, shutdown).await?;
    Ok(())
}

/// Run one administrative command against the store.
pub async fn command<F, Fut>(settings: Settings, f: F) -> anyhow::Result<()>
where
    F: FnOnce(Arc<AuthzCore>) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let (store, bus) = connect(&settings).await?;
    let core = AuthzCore::start(settings, store, bus).await?;
    f(core).await
}
