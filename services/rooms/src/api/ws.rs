//! `GET /v1/ws`: authenticate before the upgrade (401 otherwise), then hand the connection
//! to a `SessionActor`, which closes itself when the token expires.

use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use chat_auth::Verifier;
use chat_kit::ApiError;
use chat_protocol::Refusal;

use crate::actors::session::{self, SessionContext};

pub async fn connect(
    req: HttpRequest,
    body: web::Payload,
    verifier: web::Data<Verifier>,
    sc: web::Data<Arc<SessionContext>>,
) -> Result<HttpResponse, ApiError> {
    let principal = verifier.authenticate(&req).await.map_err(ApiError::from)?;
    let expires_at_secs = Some(principal.expires_at_secs);
    let (response, ws, stream) =
        actix_ws::handle(&req, body).map_err(|e| ApiError::new(Refusal::NotAWebsocket, e.to_string()))?;
    let max = sc.ws.max_frame_bytes;
    let stream = stream.max_frame_size(max).aggregate_continuations().max_continuation_size(max);
    session::start(principal, expires_at_secs, sc.get_ref().clone(), ws, stream);
    Ok(response)
}
