//! The one error shape of the API: `{"error": {"code": "...", "message": "..."}}`, and the
//! extractor configs that turn bad JSON, paths and queries into it.

use actix_web::http::StatusCode;
use actix_web::{error, web, HttpResponse, ResponseError};
use serde::Serialize;

/// An API error: status, stable snake_case code and a message safe to show.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// A 5xx whose body says nothing of the cause; the cause goes to the log.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
    }

    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut builder = HttpResponse::build(self.status);
        if self.status == StatusCode::UNAUTHORIZED {
            builder.insert_header(("WWW-Authenticate", "Bearer"));
        }
        builder.json(Envelope { error: Inner { code: self.code, message: &self.message } })
    }
}

/// Classify a serde error into a stable code.
fn serde_code(message: &str) -> &'static str {
    if message.contains("unknown field") {
        "unknown_field"
    } else if message.contains("unknown variant") {
        "unknown_type"
    } else if message.contains("missing field") {
        "missing_field"
    } else if message.contains("invalid type") || message.contains("invalid value") {
        "invalid_field"
    } else {
        "malformed_json"
    }
}

/// JSON bodies: size limit, content type, and every failure in the error shape.
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default().limit(limit).error_handler(|err, _req| {
        let api = match &err {
            error::JsonPayloadError::OverflowKnownLength { .. } | error::JsonPayloadError::Overflow { .. } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", err.to_string())
            }
            error::JsonPayloadError::ContentType => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected Content-Type: application/json",
            ),
            error::JsonPayloadError::Deserialize(inner) => {
                let message = inner.to_string();
                let code = if inner.is_syntax() || inner.is_eof() { "malformed_json" } else { serde_code(&message) };
                ApiError::bad_request(code, message)
            }
            other => ApiError::bad_request("malformed_json", other.to_string()),
        };
        api.into()
    })
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err, _req| ApiError::bad_request("invalid_path", err.to_string()).into())
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| {
        let message = err.to_string();
        ApiError::bad_request(
            if message.contains("unknown field") { "unknown_field" } else { "invalid_query" },
            message,
        )
        .into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_errors_get_stable_codes() {
        assert_eq!(serde_code("unknown field `x`, expected one of"), "unknown_field");
        assert_eq!(serde_code("unknown variant `video`"), "unknown_type");
        assert_eq!(serde_code("missing field `body`"), "missing_field");
        assert_eq!(serde_code("invalid type: string, expected i64"), "invalid_field");
    }
}
