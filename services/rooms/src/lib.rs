//! The rooms service: one actix actor per room behind a registry per shard, commands through
//! RabbitMQ (one quorum queue per shard), presence in Redis, history in PostgreSQL, and
//! WebSocket sessions as actors. See `docs/architecture.md`.

pub mod access;
pub mod actors;
pub(crate) mod api;
mod app;
pub mod authz;
mod call_sweep;
pub mod calls;
pub mod cli;
pub mod cluster;
pub mod dispatch;
pub mod domain;
mod events;
pub mod hub;
pub mod metrics;
pub mod openapi;
pub mod quota;
pub mod settings;
pub mod store;
pub mod turn;
mod views;

pub use app::{connect_backends, node_id, Application, Backends, RoomsCore};
pub use settings::Settings;
