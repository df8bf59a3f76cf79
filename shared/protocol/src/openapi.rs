//! OpenAPI schemas of the wire types (utoipa), so each service's `/v1/openapi.json` describes
//! the same ids, bodies and refusal codes the code serialises. Structs and enums derive
//! `utoipa::ToSchema`; the enums kept as text (`text_enum!`) get theirs here, as a string enum
//! of their snake_case names, so the crates declaring them need no utoipa dependency.

use utoipa::openapi::schema::{Schema, SchemaType, Type};
use utoipa::openapi::{ObjectBuilder, RefOr};

#[doc(hidden)]
pub use utoipa;

/// A `string` schema restricted to `values` (a `text_enum!`'s names), with its description.
pub fn string_enum(description: &str, values: impl IntoIterator<Item = &'static str>) -> RefOr<Schema> {
    let values: Vec<&'static str> = values.into_iter().collect();
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .description(Some(description))
        .enum_values(Some(values))
        .into()
}

/// An id's schema: a string without U+0000.
pub fn id_string(name: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .description(Some(format!("{name}: an opaque string id")))
        .pattern(Some(NO_NUL))
        .into()
}

/// Text without U+0000 (PostgreSQL refuses it in text columns).
pub const NO_NUL: &str = "^[^\\u0000]*$";

#[cfg(test)]
mod tests {
    use utoipa::PartialSchema;

    use crate::Refusal;

    #[test]
    fn refusals_are_a_string_enum_of_every_code() {
        let schema = serde_json::to_value(Refusal::schema()).unwrap();
        let values = schema["enum"].as_array().unwrap();
        assert!(values.contains(&serde_json::json!("room_not_found")));
        assert_eq!(values.len(), <Refusal as strum::IntoEnumIterator>::iter().count());
    }
}
