//! The contacts service: members' external contacts (Clients/Partners: workspace users of
//! trusted companies, with their 1:1 room; LINE friends), blocks, the profile LINE users see,
//! and the LINE invite (My ID, add-friend URL, QR code and profile card).
//!
//! Modules depend one way: `api` (HTTP) -> `service` (the rules, on `ContactsCore`) ->
//! `store`, `authz` (decisions), `rooms` (1:1 rooms over the bus), `invite` (images),
//! `settings`; `events` consumes the change events; `app` starts the core and serves;
//! `metrics` names the metrics.

mod api;
mod app;
mod authz;
mod events;
pub mod invite;
mod metrics;
pub mod openapi;
mod rooms;
pub mod service;
mod settings;
pub mod store;

use std::future::Future;

pub use app::configure;
pub use service::{ContactsCore, ContactsError};
pub use settings::{AuthzSettings, ContactsSettings, InviteSettings, Settings, DEFAULTS};

pub const SERVICE: &str = "contacts";

/// The API prefixes this service owns.
pub const PREFIXES: &[&str] = &["/v1/contacts", "/v1/me/line-profile", "/v1/me/line-invite"];

/// Serve until `shutdown`.
pub async fn run(settings: Settings, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    app::run(SERVICE, settings, shutdown).await
}
#[cfg(test)]
mod tests;
