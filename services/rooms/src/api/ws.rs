//! `GET /v1/ws`: authenticate before the upgrade (401 otherwise), then hand the connection
//! to a `SessionActor`, which closes itself when the token expires.

use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine as _;
use chat_auth::Verifier;
use chat_kit::ApiError;
use chat_protocol::Refusal;
use serde::Deserialize;

use crate::actors::session::{self, SessionContext};

pub async fn connect(
    req: HttpRequest,
    body: web::Payload,
    verifier: web::Data<Verifier>,
    sc: web::Data<Arc<SessionContext>>,
) -> Result<HttpResponse, ApiError> {
    let principal = verifier.authenticate(&req).await.map_err(ApiError::from)?;
    let expires_at_secs = token_expiry(&req);
    if expires_at_secs.is_none() {
        tracing::warn!(user = %principal.user_id, "the token's exp is not readable; the session will not expire");
    }
    let (response, ws, stream) =
        actix_ws::handle(&req, body).map_err(|e| ApiError::new(Refusal::NotAWebsocket, e.to_string()))?;
    let max = sc.ws.max_frame_bytes;
    let stream = stream.max_frame_size(max).aggregate_continuations().max_continuation_size(max);
    session::start(principal, expires_at_secs, sc.get_ref().clone(), ws, stream);
    Ok(response)
}

/// The `exp` claim (Unix seconds) of the request's token, which the verifier has just accepted
/// (it requires `exp`): the bearer header, or the `access_token` query parameter, as
/// `Verifier::authenticate` reads them.
fn token_expiry(req: &HttpRequest) -> Option<u64> {
    let header = req.headers().get(actix_web::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let bearer = header
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let token = bearer.or_else(|| req.query_string().split('&').find_map(|pair| pair.strip_prefix("access_token=")))?;
    expiry_of(token)
}

fn expiry_of(token: &str) -> Option<u64> {
    #[derive(Deserialize)]
    struct Expiry {
        exp: u64,
    }
    let payload = token.split('.').nth(1)?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice::<Expiry>(&json).ok().map(|claims| claims.exp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expiry_is_read_from_the_tokens_claims() {
        // {"alg":"HS256"} . {"sub":"u","exp":1700000000} . signature
        let token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1IiwiZXhwIjoxNzAwMDAwMDAwfQ.c2ln";
        assert_eq!(expiry_of(token), Some(1_700_000_000));
        assert_eq!(expiry_of("not-a-token"), None);
        assert_eq!(expiry_of("a.!!!.c"), None);
    }
}
