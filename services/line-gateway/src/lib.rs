//! The LINE gateway: members' LINE Official Account bindings (channels, credentials encrypted
//! at rest) and LINE's inbound webhook: signed bodies are verified on their raw bytes, their
//! events stored once each (the inbox, keyed by LINE's `webhookEventId`) and answered at once;
//! inbox workers then turn follows, unfollows and messages of LINE users into room commands
//! and change events (a new friend's LINE profile asked of LINE). Members' messages in rooms
//! with LINE users come back as `room.line_message` events: they are stored in the outbox
//! once per LINE user and pushed to LINE by the sender workers, with retry keys, retries and a
//! per-channel rate limit; a message given up is kept and its sender notified. LINE users'
//! images, video, audio and files are downloaded at once into the media store (`media`,
//! `object_store`) and served to members (`GET /v1/line/media/{id}`); LINE's `unsend` recalls
//! the room message. Groups, outbound media and reply tokens are later slices.
//!
//! Modules depend one way: `api` (HTTP) -> `service` (the rules, on `LineCore`) -> `store`,
//! `authz` (decisions), `rooms` (room commands over the bus), `line_api` (LINE's Messaging
//! API), `secrets` (credentials at rest), `media` (the media store), `webhook` (LINE's payloads,
//! pure), `settings`;
//! `inbox` (the inbound workers), `outbox` (the outbound rule and the sender workers, over
//! `outbound`: LINE message objects, pure) and `events` (the change-event consumer) work on
//! the core; `app` starts it and serves; `metrics` names the metrics.

mod api;
mod app;
mod authz;
mod events;
mod inbox;
mod line_api;
pub mod media;
pub mod media_links;
mod membership;
mod metrics;
pub mod openapi;
pub mod outbound;
mod outbox;
mod preview;
mod rooms;
pub mod secrets;
pub mod service;
mod settings;
pub mod store;
pub mod webhook;

use std::future::Future;

pub use app::configure;
pub use service::{LineCore, LineError};
pub use settings::{AuthzSettings, LineSettings, Settings, DEFAULTS};

pub const SERVICE: &str = "line-gateway";

/// The API prefixes this service owns.
pub const PREFIXES: &[&str] = &["/v1/admin/line", "/v1/line/media", "/line/webhook", "/line/media"];

/// Serve until `shutdown`.
pub async fn run(settings: Settings, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    app::run(SERVICE, settings, shutdown).await
}

#[cfg(test)]
mod tests;
