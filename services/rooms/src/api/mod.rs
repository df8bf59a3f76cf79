//! The HTTP API of the rooms service (API.md, rooms section) and the WebSocket endpoint.
//! Handlers parse, check at the edge, send commands through the dispatcher or read the store,
//! and serialise; refusals come back as `CommandError`s and become `ApiError`s with the status
//! of their code (`Refusal::http_status`, the one mapping).

pub mod cluster;
mod idempotency;
mod rooms;
mod ws;

use actix_web::web;
use chat_kit::ApiError;
use chat_protocol::bus::CommandError;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::dispatch::DispatchError;

/// Mount the routes. App data (store, dispatcher, verifier, limits) is added by the caller;
/// `/v1/openapi.json` too (the standalone serves one merged document).
pub fn routes(cfg: &mut web::ServiceConfig) {
    register(&mut ServiceConfig::new(cfg));
}

/// Every route, each registered with its OpenAPI operation (`crate::openapi` collects them).
pub fn register(cfg: &mut ServiceConfig) {
    cfg.service(ws::connect)
        .service(rooms::create)
        .service(rooms::list)
        .service(rooms::show)
        .service(rooms::update)
        .service(rooms::add_members)
        .service(rooms::remove_member)
        .service(rooms::leave)
        .service(rooms::post_message)
        .service(rooms::history)
        .service(rooms::recall)
        .service(rooms::read)
        .service(rooms::notifications)
        .service(cluster::show)
        .service(cluster::drain);
}

/// A command that failed on its way, or was refused by its room.
impl From<DispatchError> for ApiError {
    fn from(err: DispatchError) -> Self {
        ApiError::from(CommandError::from(err))
    }
}
