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
    use utoipa_actix_web::service_config::ServiceConfig;

    use super::*;

    #[test]
    fn the_document_is_sound() {
        assert_eq!(chat_kit::openapi::problems(&document()), Vec::<String>::new());
    }

    #[actix_web::test]
    async fn every_documented_operation_is_routed() {
        let doc = document();
        assert!(chat_kit::openapi::operations(&doc).len() > 12);
        let missing = chat_kit::openapi::unrouted(&doc, |cfg| {
            crate::api::register(&mut ServiceConfig::new(cfg), 1 << 20);
            chat_kit::openapi::serve(cfg, document);
        })
        .await;
        assert_eq!(missing, Vec::<String>::new());
    }

    #[actix_web::test]
    async fn the_served_document_is_the_generated_one() {
        let app = actix_web::test::init_service(
            actix_web::App::new().configure(|cfg| chat_kit::openapi::serve(cfg, document)),
        )
        .await;
        let request = actix_web::test::TestRequest::get().uri("/v1/openapi.json").to_request();
        let served: serde_json::Value = actix_web::test::call_and_read_body_json(&app, request).await;
        assert_eq!(served, serde_json::to_value(document()).unwrap());
    }
}
