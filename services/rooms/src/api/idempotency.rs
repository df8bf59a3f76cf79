//! `Idempotency-Key` on the room endpoints other than posting (posts have `client_msg_id`): a
//! client that retries a request after a timeout with the same key gets the same command, so
//! it is applied once and answered from its record.

use actix_web::HttpRequest;
use chat_kit::ApiError;
use chat_protocol::{is_valid_client_id, keyed_command_id, Refusal, UserId};

pub const HEADER: &str = "Idempotency-Key";

/// The command id for this request: derived from the caller, the kind of command and the key
/// when the request carries one; `None` (a fresh id) without.
pub fn command_id(req: &HttpRequest, caller: &UserId, command: &str) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get(HEADER) else { return Ok(None) };
    let key = value
        .to_str()
        .ok()
        .filter(|k| is_valid_client_id(k))
        .ok_or_else(|| ApiError::new(Refusal::InvalidField, "Idempotency-Key must be 1-64 of [A-Za-z0-9._@-]"))?;
    Ok(Some(keyed_command_id(caller, command, key)))
}
