//! The one error shape of the API: `{"error": {"code": "...", "message": "..."}}`, and the
//! extractor configs that turn bad JSON, paths and queries into it.

use actix_web::http::StatusCode;
use actix_web::{error, web, HttpResponse, ResponseError};
use chat_protocol::bus::CommandError;
use chat_protocol::{LimitError, Refusal};
use serde::Serialize;

/// An API error: a refusal code (which fixes the status) and a message safe to show.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: Refusal,
    pub message: String,
    /// Seconds until a retry may succeed (`Retry-After`, with `rate_limited`).
    pub retry_after_secs: Option<u64>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: Refusal,
    message: &'a str,
}

impl ApiError {
    pub fn new(code: Refusal, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), retry_after_secs: None }
    }

    /// The HTTP status of the code (`Refusal::http_status`, the one mapping).
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(Refusal::Unauthorized, message)
    }

    /// A 5xx whose body says nothing of the cause; the cause goes to the log.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(Refusal::Internal, "internal error")
    }

    /// 429 with `Retry-After`.
    pub fn rate_limited(wait: std::time::Duration) -> Self {
        let secs = wait.as_secs().max(1);
        Self {
            code: Refusal::RateLimited,
            message: format!("too many attempts; retry in {secs} s"),
            retry_after_secs: Some(secs),
        }
    }
}

impl From<CommandError> for ApiError {
    fn from(err: CommandError) -> Self {
        if err.code == Refusal::Internal {
            return Self::internal(&err.message);
        }
        Self::new(err.code, err.message)
    }
}

impl From<LimitError> for ApiError {
    fn from(err: LimitError) -> Self {
        Self::new(err.code(), err.to_string())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.code.http_status(), self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status();
        let mut builder = HttpResponse::build(status);
        if status == StatusCode::UNAUTHORIZED {
            builder.insert_header(("WWW-Authenticate", "Bearer"));
        }
        if let Some(secs) = self.retry_after_secs {
            builder.insert_header(("Retry-After", secs.to_string()));
        }
        builder.json(Envelope { error: Inner { code: self.code, message: &self.message } })
    }
}

/// Classify a serde error into a stable code (HTTP bodies and WebSocket frames alike).
pub fn serde_code(err: &serde_json::Error) -> Refusal {
    if err.is_syntax() || err.is_eof() {
        return Refusal::MalformedJson;
    }
    serde_message_code(&err.to_string())
}

fn serde_message_code(message: &str) -> Refusal {
    if message.contains("unknown field") {
        Refusal::UnknownField
    } else if message.contains("unknown variant") {
        Refusal::UnknownType
    } else if message.contains("missing field") {
        Refusal::MissingField
    } else if message.contains("invalid type") || message.contains("invalid value") {
        Refusal::InvalidField
    } else {
        Refusal::MalformedJson
    }
}

/// JSON bodies: size limit, content type, and every failure in the error shape.
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default().limit(limit).error_handler(|err, _req| {
        let api = match &err {
            error::JsonPayloadError::OverflowKnownLength { .. } | error::JsonPayloadError::Overflow { .. } => {
                ApiError::new(Refusal::PayloadTooLarge, err.to_string())
            }
            error::JsonPayloadError::ContentType => {
                ApiError::new(Refusal::UnsupportedMediaType, "expected Content-Type: application/json")
            }
            error::JsonPayloadError::Deserialize(inner) => ApiError::new(serde_code(inner), inner.to_string()),
            other => ApiError::new(Refusal::MalformedJson, other.to_string()),
        };
        api.into()
    })
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err, _req| ApiError::new(Refusal::InvalidPath, err.to_string()).into())
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| {
        let message = err.to_string();
        let code = if message.contains("unknown field") { Refusal::UnknownField } else { Refusal::InvalidQuery };
        ApiError::new(code, message).into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_errors_get_stable_codes() {
        assert_eq!(serde_message_code("unknown field `x`, expected one of"), Refusal::UnknownField);
        assert_eq!(serde_message_code("unknown variant `video`"), Refusal::UnknownType);
        assert_eq!(serde_message_code("missing field `body`"), Refusal::MissingField);
        assert_eq!(serde_message_code("invalid type: string, expected i64"), Refusal::InvalidField);
        let syntax = serde_json::from_str::<serde_json::Value>("{").unwrap_err();
        assert_eq!(serde_code(&syntax), Refusal::MalformedJson);
    }

    #[test]
    fn errors_take_their_status_from_the_code() {
        assert_eq!(ApiError::new(Refusal::RoomNotFound, "x").status(), StatusCode::NOT_FOUND);
        assert_eq!(
            ApiError::from(CommandError::new(Refusal::MessageTooLong, "x")).status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        let limited = ApiError::rate_limited(std::time::Duration::from_millis(10));
        let response = limited.error_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers().get("Retry-After").unwrap(), "1");
    }
}
