//! LINE's OpenAPI 3.0 documents as JSON Schema (draft 7) for the `jsonschema` crate.
//!
//! The whole document stays the root of every compiled schema, so `#/components/schemas/...`
//! references resolve as written. Two OpenAPI 3.0 dialect features are converted first:
//! - `nullable: true` becomes a type union with `"null"` (or `anyOf [.., {type: null}]` where
//!   the schema has no `type` of its own, such as a bare `$ref`).
//! - A `discriminator` with a `mapping` on a component schema (`Message`, `Event`, `Source`...)
//!   becomes effective: the schema turns into a dispatcher that checks the base constraints,
//!   requires the discriminating property to be one of the mapped values (an unknown value is
//!   invalid) and validates the object against the mapped subschema chosen by that value. A
//!   subschema written `allOf: [{$ref: base}, ...]` is pointed at a copy of the base without
//!   the discriminator (`<Base>__base`), so it does not dispatch again.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde_json::{json, Map, Value};

/// The suffix of the discriminator-free copy of a discriminator base schema.
const BASE_SUFFIX: &str = "__base";
const SCHEMAS_PREFIX: &str = "#/components/schemas/";

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("the spec is not valid YAML: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
    #[error("the spec has a non-JSON value at {0}")]
    NotJson(String),
    #[error("the schema does not compile: {0}")]
    Compile(String),
}

/// Parse a YAML document into JSON, every mapping key as a string (YAML allows `200:`).
pub fn yaml_to_json(text: &str) -> Result<Value, SchemaError> {
    let yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(text)?;
    convert_yaml(yaml, "")
}

fn convert_yaml(yaml: serde_yaml_ng::Value, at: &str) -> Result<Value, SchemaError> {
    use serde_yaml_ng::Value as Y;
    Ok(match yaml {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                let f = n.as_f64().ok_or_else(|| SchemaError::NotJson(at.to_owned()))?;
                serde_json::Number::from_f64(f).map(Value::Number).ok_or_else(|| SchemaError::NotJson(at.to_owned()))?
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| convert_yaml(item, &format!("{at}/{i}")))
                .collect::<Result<_, _>>()?,
        ),
        Y::Mapping(mapping) => {
            let mut out = Map::new();
            for (key, value) in mapping {
                let key = match key {
                    Y::String(s) => s,
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    _ => return Err(SchemaError::NotJson(at.to_owned())),
                };
                let value = convert_yaml(value, &format!("{at}/{key}"))?;
                out.insert(key, value);
            }
            Value::Object(out)
        }
        Y::Tagged(tagged) => convert_yaml(tagged.value, at)?,
    })
}

/// Rewrite an OpenAPI 3.0 document in place into the JSON Schema dialect described above.
pub fn convert_openapi(doc: &mut Value) {
    convert_nullable(doc);
    convert_discriminators(doc);
}

fn convert_nullable(value: &mut Value) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(convert_nullable),
        Value::Object(obj) => {
            obj.values_mut().for_each(convert_nullable);
            if obj.remove("nullable") != Some(Value::Bool(true)) {
                return;
            }
            if let Some(Value::String(t)) = obj.get("type").cloned() {
                obj.insert("type".into(), json!([t, "null"]));
                if let Some(Value::Array(options)) = obj.get_mut("enum") {
                    if !options.contains(&Value::Null) {
                        options.push(Value::Null);
                    }
                }
            } else {
                let inner = Value::Object(std::mem::take(obj));
                obj.insert("anyOf".into(), json!([inner, {"type": "null"}]));
            }
        }
        _ => {}
    }
}

fn schema_ref(target: &str) -> String {
    if target.starts_with('#') {
        target.to_owned()
    } else {
        format!("{SCHEMAS_PREFIX}{target}")
    }
}

fn convert_discriminators(doc: &mut Value) {
    let Some(Value::Object(schemas)) = doc.pointer_mut("/components/schemas") else {
        return;
    };
    // name -> (property, value -> subschema ref)
    let mut bases: BTreeMap<String, (String, BTreeMap<String, String>)> = BTreeMap::new();
    for (name, schema) in schemas.iter() {
        let Some(disc) = schema.get("discriminator") else { continue };
        let (Some(property), Some(Value::Object(mapping))) =
            (disc.get("propertyName").and_then(Value::as_str), disc.get("mapping"))
        else {
            continue;
        };
        let mapping =
            mapping.iter().filter_map(|(k, v)| Some((k.clone(), schema_ref(v.as_str()?)))).collect::<BTreeMap<_, _>>();
        bases.insert(name.clone(), (property.to_owned(), mapping));
    }
    // Subschemas that extend a base (allOf) extend the discriminator-free copy.
    let redirect: HashMap<String, String> = bases
        .keys()
        .map(|name| (format!("{SCHEMAS_PREFIX}{name}"), format!("{SCHEMAS_PREFIX}{name}{BASE_SUFFIX}")))
        .collect();
    for schema in schemas.values_mut() {
        redirect_all_of(schema, &redirect);
    }
    for (name, (property, mapping)) in bases {
        let Some(Value::Object(mut base)) = schemas.remove(&name) else { continue };
        base.remove("discriminator");
        schemas.insert(format!("{name}{BASE_SUFFIX}"), Value::Object(base));
        let values: Vec<&String> = mapping.keys().collect();
        let mut all_of = vec![
            json!({"$ref": format!("{SCHEMAS_PREFIX}{name}{BASE_SUFFIX}")}),
            json!({"required": [property], "properties": {&property: {"enum": values}}}),
        ];
        for (value, target) in &mapping {
            all_of.push(json!({
                "if": {"required": [property], "properties": {&property: {"const": value}}},
                "then": {"$ref": target}
            }));
        }
        schemas.insert(name, json!({ "allOf": all_of }));
    }
}

fn redirect_all_of(value: &mut Value, redirect: &HashMap<String, String>) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(|v| redirect_all_of(v, redirect)),
        Value::Object(obj) => {
            if let Some(Value::Array(parts)) = obj.get_mut("allOf") {
                for part in parts.iter_mut() {
                    if let Some(Value::String(target)) = part.get_mut("$ref") {
                        if let Some(copy) = redirect.get(target.as_str()) {
                            *target = copy.clone();
                        }
                    }
                }
            }
            obj.values_mut().for_each(|v| redirect_all_of(v, redirect));
        }
        _ => {}
    }
}

fn is_uuid(s: &str) -> bool {
    let bytes = s.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// A converted OpenAPI document and the validators compiled from it (cached by key).
pub struct SchemaSet {
    /// Only `components` of the converted document: the root of every compiled schema.
    root: Value,
    cache: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

impl SchemaSet {
    /// Convert an OpenAPI document already parsed to JSON.
    pub fn new(mut doc: Value) -> Self {
        convert_openapi(&mut doc);
        let components = doc.get("components").cloned().unwrap_or_else(|| json!({}));
        Self { root: json!({ "components": components }), cache: Mutex::new(HashMap::new()) }
    }

    /// A converted component schema (`Message`, `Event`...), for inspection.
    pub fn component(&self, name: &str) -> Option<&Value> {
        self.root.pointer(&format!("/components/schemas/{name}"))
    }

    fn compile(&self, key: &str, schema: &Value) -> Result<Arc<jsonschema::Validator>, SchemaError> {
        if let Some(found) = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(key) {
            return Ok(found.clone());
        }
        let mut root = self.root.clone();
        if let Value::Object(obj) = &mut root {
            obj.insert("allOf".into(), json!([schema]));
        }
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft7)
            .should_validate_formats(true)
            .with_format("uuid", is_uuid)
            .build(&root)
            .map_err(|e| SchemaError::Compile(e.to_string()))?;
        let validator = Arc::new(validator);
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).insert(key.to_owned(), validator.clone());
        Ok(validator)
    }

    /// Validate `instance` against `schema` (any schema of this document: inline, or a `$ref`);
    /// `key` names it for the cache. Each violation reads `<where>: <what>`.
    pub fn validate(&self, key: &str, schema: &Value, instance: &Value) -> Vec<String> {
        match self.compile(key, schema) {
            Ok(validator) => {
                // A subschema and its dispatcher both check the base: report each finding once.
                let mut found: Vec<String> = Vec::new();
                for e in validator.iter_errors(instance) {
                    let at = e.instance_path().to_string();
                    let violation = format!("{}: {e}", if at.is_empty() { "/" } else { at.as_str() });
                    if !found.contains(&violation) {
                        found.push(violation);
                    }
                }
                found
            }
            Err(e) => vec![e.to_string()],
        }
    }

    /// Validate `instance` against the component schema `name`.
    pub fn validate_component(&self, name: &str, instance: &Value) -> Vec<String> {
        let schema = json!({"$ref": format!("{SCHEMAS_PREFIX}{name}")});
        self.validate(&format!("component:{name}"), &schema, instance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> SchemaSet {
        let doc = yaml_to_json(
            r##"
components:
  schemas:
    Pet:
      type: object
      required: [kind]
      properties:
        kind: {type: string}
        nickname: {type: string, nullable: true}
      discriminator:
        propertyName: kind
        mapping:
          cat: "#/components/schemas/Cat"
          dog: Dog
    Cat:
      allOf:
        - $ref: "#/components/schemas/Pet"
        - type: object
          required: [lives]
          properties:
            lives: {type: integer}
    Dog:
      allOf:
        - $ref: "#/components/schemas/Pet"
        - type: object
          required: [bark]
          properties:
            bark: {type: string}
"##,
        )
        .unwrap();
        SchemaSet::new(doc)
    }

    #[test]
    fn a_discriminator_validates_against_the_mapped_subschema() {
        let set = set();
        assert!(set.validate_component("Pet", &json!({"kind": "cat", "lives": 9})).is_empty());
        assert!(set.validate_component("Pet", &json!({"kind": "dog", "bark": "woof"})).is_empty());
        assert!(!set.validate_component("Pet", &json!({"kind": "cat", "bark": "woof"})).is_empty());
        assert!(!set.validate_component("Pet", &json!({"kind": "dog"})).is_empty());
    }

    #[test]
    fn an_unknown_or_missing_discriminator_value_is_invalid() {
        let set = set();
        assert!(!set.validate_component("Pet", &json!({"kind": "cow"})).is_empty());
        assert!(!set.validate_component("Pet", &json!({"lives": 9})).is_empty());
        assert!(!set.validate_component("Pet", &json!("cat")).is_empty());
    }

    #[test]
    fn a_subschema_is_valid_on_its_own_without_dispatching_again() {
        let set = set();
        assert!(set.validate_component("Cat", &json!({"kind": "cat", "lives": 1})).is_empty());
        assert!(!set.validate_component("Cat", &json!({"kind": "cat"})).is_empty());
    }

    #[test]
    fn nullable_admits_null() {
        let set = set();
        assert!(set.validate_component("Pet", &json!({"kind": "cat", "lives": 9, "nickname": null})).is_empty());
        assert!(!set.validate_component("Pet", &json!({"kind": "cat", "lives": 9, "nickname": 3})).is_empty());
    }
}
