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

use crate::dispatch::DispatchError;

/// Mount the routes. App data (store, dispatcher, verifier, limits) is added by the caller.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/ws", web::get().to(ws::connect))
        .route("/v1/rooms", web::post().to(rooms::create))
        .route("/v1/rooms", web::get().to(rooms::list))
        .route("/v1/rooms/{room_id}", web::get().to(rooms::get))
        .route("/v1/rooms/{room_id}", web::patch().to(rooms::update))
        .route("/v1/rooms/{room_id}/members", web::post().to(rooms::add_members))
        .route("/v1/rooms/{room_id}/members/{user}", web::delete().to(rooms::remove_member))
        .route("/v1/rooms/{room_id}/leave", web::post().to(rooms::leave))
        .route("/v1/rooms/{room_id}/messages", web::post().to(rooms::post_message))
        .route("/v1/rooms/{room_id}/messages", web::get().to(rooms::history))
        .route("/v1/rooms/{room_id}/messages/{message_id}", web::delete().to(rooms::recall))
        .route("/v1/rooms/{room_id}/read", web::post().to(rooms::read))
        .route("/v1/notifications", web::get().to(rooms::notifications))
        .route("/internal/v1/cluster", web::get().to(cluster::show))
        .route("/internal/v1/cluster/members/{pod}/drain", web::post().to(cluster::drain));
}

/// A command that failed on its way, or was refused by its room.
impl From<DispatchError> for ApiError {
    fn from(err: DispatchError) -> Self {
        ApiError::from(CommandError::from(err))
    }
}
