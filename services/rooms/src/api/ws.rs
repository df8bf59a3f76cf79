//! `GET /v1/ws`: authenticate before the upgrade (401 otherwise), then answer the handshake with
//! the body of a new session (its task reads the request's payload), which closes itself when
//! the token expires.

use std::sync::Arc;

use actix_web::{get, web, HttpRequest, HttpResponse};
use chat_auth::Verifier;
use chat_kit::openapi::ErrorBody;
use chat_kit::ApiError;
use chat_protocol::Refusal;

use crate::actors::session::{self, SessionContext};

#[utoipa::path(
    tag = "websocket",
    summary = "the WebSocket of live frames (see API.md): authenticated before the upgrade",
    responses(
        (status = 101, description = "switched to the WebSocket protocol"),
        (status = 400, description = "not a WebSocket handshake (not_a_websocket)", body = ErrorBody),
        (status = 401, description = "no valid bearer token (unauthorized, token_expired, invalid_token)", body = ErrorBody, headers(("WWW-Authenticate" = String, description = "Bearer"))),
    ),
    security(("bearer" = [])),
)]
#[get("/v1/ws")]
pub async fn connect(
    req: HttpRequest,
    body: web::Payload,
    verifier: web::Data<Verifier>,
    sc: web::Data<Arc<SessionContext>>,
) -> Result<HttpResponse, ApiError> {
    let principal = verifier.authenticate(&req).await.map_err(ApiError::from)?;
    let expires_at_secs = Some(principal.expires_at_secs);
    let mut handshake =
        actix_http::ws::handshake(req.head()).map_err(|e| ApiError::new(Refusal::NotAWebsocket, e.to_string()))?;
    let body = session::start(principal, expires_at_secs, sc.get_ref().clone(), body.into_inner());
    let response = handshake.message_body(body).map_err(|e| ApiError::new(Refusal::Internal, e.to_string()))?;
    Ok(HttpResponse::from(response))
}
