//! The standalone's OpenAPI document (`GET /v1/openapi.json`): the four services' documents
//! merged, as the one port serves all their paths. (The demo's `/demo/...` panel and the web
//! client at `/` are not part of the API, and are not in it.)

use utoipa::openapi::OpenApi;

/// Each service's document, as that service serves it.
fn parts() -> [(&'static str, OpenApi); 4] {
    [
        ("rooms", rooms::openapi::document()),
        ("authz", authz::openapi::document()),
        ("contacts", contacts::openapi::document()),
        ("line-gateway", line_gateway::openapi::document()),
    ]
}

/// The merged document.
pub fn document() -> OpenApi {
    let [(_, mut doc), others @ ..] = parts();
    for (_, other) in others {
        doc.merge(other);
    }
    doc.info.title = "chat engine (standalone)".to_owned();
    doc.info.description =
        Some("Every service's API on one port: rooms, authz, contacts and the LINE gateway.".to_owned());
    doc
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn the_merged_document_is_sound() {
        assert_eq!(chat_kit::openapi::problems(&document()), Vec::<String>::new());
    }

    #[test]
    fn the_merged_document_has_every_operation_of_every_service() {
        let merged = chat_kit::openapi::operations(&document());
        let mut union = BTreeSet::new();
        for (_, part) in parts() {
            union.extend(chat_kit::openapi::operations(&part));
        }
        assert_eq!(merged, union);
    }

    #[test]
    fn no_two_services_give_one_schema_name_different_meanings() {
        let schemas = |doc: &OpenApi| {
            serde_json::to_value(doc).unwrap()["components"]["schemas"].as_object().cloned().unwrap_or_default()
        };
        let mut seen: Vec<(&str, serde_json::Map<String, serde_json::Value>)> = Vec::new();
        for (service, part) in parts() {
            let mine = schemas(&part);
            for (other, theirs) in &seen {
                for (name, schema) in &mine {
                    if let Some(their) = theirs.get(name) {
                        assert_eq!(schema, their, "{service} and {other} both define {name}, differently");
                    }
                }
            }
            seen.push((service, mine));
        }
    }
}
