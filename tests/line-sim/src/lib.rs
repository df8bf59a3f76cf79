//! The LINE platform simulator: it stands in for `api.line.me` and `api-data.line.me` (one
//! server serves both) in end-to-end tests and the standalone demo.
//!
//! - Every request outside `/_sim/` is checked against LINE's `messaging-api.yml` (path and
//!   method, bearer token of a registered channel, parameters, JSON body with discriminators
//!   made effective) and recorded; an invalid one is answered 400 (401 for a bad token) with
//!   the violations. Tests assert `GET /_sim/invalid` is empty.
//! - Valid requests get LINE's behaviour: push with retry keys (409 on a second use), reply
//!   (a reply token works once), profiles, message content, bot info.
//! - `/_sim/` scripts it (channels, profiles, content, scripted failures and delays), shows what
//!   it received, and delivers signed webhooks built with [`events`].
//!
//! Start it in-process with [`start`] (port 0) or as the `line-sim` binary (`--port N`; it logs
//! a JSON `listening` line with the port).

pub mod client;
pub mod events;
pub mod model;
pub mod schema;
pub mod server;
pub mod signature;
pub mod spec;
pub mod state;

pub use client::Client;
pub use model::{Channel, Group, Profile, RecordedRequest, Script, ScriptedResponse, WebhookRequest, WebhookResult};
pub use server::{start, Handle, Running};
pub use state::Sim;
