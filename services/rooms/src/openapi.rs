//! The rooms OpenAPI document (`GET /v1/openapi.json`): the shared base (error shape, security
//! schemes, health, metrics), the cluster admin's bearer scheme, and the operations of the
//! handlers `api::register` mounts.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi;

/// The document, built from the same registration that mounts the routes.
pub fn document() -> OpenApi {
    let cluster_admin = SecurityScheme::Http(
        HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some("the cluster admin token (`cluster.admin_token`), not a user's JWT"))
            .build(),
    );
    let base = chat_kit::openapi::base(
        "rooms",
        "Rooms, members, messages, read markers, notifications, the WebSocket, and the cluster ops view.",
        vec![("cluster_admin", cluster_admin)],
    );
    chat_kit::openapi::collect(base, crate::api::register)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn the_document_is_sound_routed_and_served_as_generated() {
        let problems = chat_kit::openapi::verify(document, crate::api::register, 17).await;
        assert_eq!(problems, Vec::<String>::new());
    }
}
