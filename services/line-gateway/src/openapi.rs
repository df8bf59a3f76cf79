//! The line-gateway OpenAPI document (`GET /v1/openapi.json`): the shared base (error shape,
//! security schemes, health, metrics), the LINE webhook's signature scheme, and the operations
//! of the handlers `api::register` mounts.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::openapi::OpenApi;

/// The document, built from the same registration that mounts the routes.
pub fn document() -> OpenApi {
    let signature = SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
        crate::webhook::SIGNATURE_HEADER,
        "base64 HMAC-SHA256 of the request body with the channel secret (LINE signs its webhooks)",
    )));
    let base = chat_kit::openapi::base(
        "line-gateway",
        "LINE Official Account bindings, the LINE webhook, media, LINE profiles and dead letters.",
        vec![("line_signature", signature)],
    );
    // The webhook's body limit is the routes' concern, not the document's.
    chat_kit::openapi::collect(base, |cfg| crate::api::register(cfg, 1 << 20))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn the_document_is_sound_routed_and_served_as_generated() {
        let problems = chat_kit::openapi::verify(document, |cfg| crate::api::register(cfg, 1 << 20), 13).await;
        assert_eq!(problems, Vec::<String>::new());
    }
}
