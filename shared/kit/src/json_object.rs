//! JSON request bodies that must be objects. serde's derived structs also take an array of their
//! fields in order (`[null, null]` for `{"about": null, "phone": null}`), which no client means
//! and the API documents do not allow: `Object<T>` refuses anything but an object (400
//! `invalid_field`), then reads `T` from it with `T`'s own errors (unknown, missing, invalid).

use serde::de::{DeserializeOwned, Error, Unexpected};
use serde::{Deserialize, Deserializer};

/// A `T` read from a JSON object only: `web::Json<Object<T>>`.
#[derive(Debug)]
pub struct Object<T>(pub T);

impl<'de, T: DeserializeOwned> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        let unexpected = match &value {
            serde_json::Value::Object(_) => return T::deserialize(value).map(Object).map_err(D::Error::custom),
            serde_json::Value::Array(_) => Unexpected::Seq,
            serde_json::Value::String(text) => Unexpected::Str(text),
            serde_json::Value::Bool(flag) => Unexpected::Bool(*flag),
            serde_json::Value::Number(_) => Unexpected::Other("a number"),
            serde_json::Value::Null => Unexpected::Unit,
        };
        Err(D::Error::invalid_type(unexpected, &"a JSON object"))
    }
}

#[cfg(test)]
mod tests {
    use chat_protocol::Refusal;
    use serde::Deserialize;

    use super::Object;

    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Patch {
        about: Option<String>,
        phone: Option<String>,
    }

    fn code(json: &str) -> Refusal {
        crate::serde_code(&serde_json::from_str::<Object<Patch>>(json).unwrap_err())
    }

    #[test]
    fn an_object_is_read_and_an_array_of_the_fields_is_refused() {
        let Object(patch) = serde_json::from_str::<Object<Patch>>(r#"{"about": "hi"}"#).unwrap();
        assert_eq!(patch, Patch { about: Some("hi".into()), phone: None });
        assert!(serde_json::from_str::<Patch>("[null, null]").is_ok(), "serde's derive takes arrays");
        assert_eq!(code("[null, null]"), Refusal::InvalidField);
        assert_eq!(code("7"), Refusal::InvalidField);
    }

    #[test]
    fn the_fields_keep_their_codes() {
        assert_eq!(code(r#"{"about": "x", "colour": 1}"#), Refusal::UnknownField);
        assert_eq!(code(r#"{"about": 7}"#), Refusal::InvalidField);
        assert_eq!(code("{"), Refusal::MalformedJson);
    }
}
