//! The HTTP API of the rooms service (API.md, rooms section) and the WebSocket endpoint.

pub(crate) mod guard;
mod rooms;
mod ws;

use actix_web::http::StatusCode;
use actix_web::web;
use chat_kit::ApiError;

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
        .route("/v1/notifications", web::get().to(rooms::notifications));
}

/// The HTTP status of a room's refusal code.
pub fn status_of(code: &str) -> StatusCode {
    match code {
        "room_not_found" | "member_not_found" | "message_not_found" => StatusCode::NOT_FOUND,
        "not_group_master" | "recall_not_allowed" => StatusCode::FORBIDDEN,
        "not_allowed_for_kind" | "already_recalled" => StatusCode::CONFLICT,
        "message_too_long" => StatusCode::PAYLOAD_TOO_LARGE,
        "internal" => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// Codes are `&'static str` in `ApiError`; room refusals come over the bus as strings.
fn static_code(code: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "room_not_found",
        "member_not_found",
        "message_not_found",
        "not_group_master",
        "recall_not_allowed",
        "not_allowed_for_kind",
        "already_recalled",
        "message_too_long",
        "message_empty",
        "name_too_long",
        "description_too_long",
        "invalid_url",
        "invalid_field",
        "invalid_members",
        "too_many_members",
        "internal",
    ];
    KNOWN.iter().copied().find(|k| *k == code).unwrap_or("refused")
}

impl From<DispatchError> for ApiError {
    fn from(err: DispatchError) -> Self {
        match err {
            DispatchError::Refused(e) => ApiError::new(status_of(&e.code), static_code(&e.code), e.message),
            DispatchError::Timeout => ApiError::unavailable(
                "command_timeout",
                "the room did not answer in time; retrying with the same idempotency key is safe",
            ),
            DispatchError::Bus(e) => {
                tracing::warn!(error = %e, "bus unavailable");
                ApiError::unavailable("unavailable", "the service is temporarily unavailable")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_codes_map_to_statuses() {
        assert_eq!(status_of("room_not_found"), StatusCode::NOT_FOUND);
        assert_eq!(status_of("message_too_long"), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(status_of("name_too_long"), StatusCode::BAD_REQUEST);
        assert_eq!(static_code("name_too_long"), "name_too_long");
        assert_eq!(static_code("something_new"), "refused");
    }
}
