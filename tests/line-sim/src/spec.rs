//! LINE's specs, embedded: `messaging-api.yml` (what a bot sends LINE, api.line.me and
//! api-data.line.me) and `webhook.yml` (what LINE sends a bot), and the check of one request
//! against the messaging API: the path and method exist, the parameters (path, query, header)
//! and the JSON body match their schemas. Authorization is the server's (it knows the tokens).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_json::{json, Value};

use crate::schema::{yaml_to_json, SchemaSet};

/// `messaging-api.yml` of line/line-openapi (see `spec/README.md`).
pub const MESSAGING_API_YML: &str = include_str!("../spec/messaging-api.yml");
/// `webhook.yml` of line/line-openapi (see `spec/README.md`).
pub const WEBHOOK_YML: &str = include_str!("../spec/webhook.yml");

/// Headers a bot may send on any operation without the spec naming them.
const TRANSPORT_HEADERS: &[&str] = &["x-line-retry-key"];

/// One parameter of an operation.
#[derive(Debug, Clone)]
pub struct Parameter {
    pub name: String,
    /// `path`, `query` or `header`.
    pub location: String,
    pub required: bool,
    pub schema: Value,
}

/// One operation of the spec.
#[derive(Debug, Clone)]
pub struct Operation {
    pub method: String,
    /// The path template, such as `/v2/bot/profile/{userId}`.
    pub path: String,
    pub operation_id: String,
    pub parameters: Vec<Parameter>,
    /// Content type -> schema (`None`: no schema, such as `*/*` uploads).
    pub body: Option<(bool, BTreeMap<String, Option<Value>>)>,
    /// False where the operation's `security` is empty.
    pub needs_auth: bool,
}

impl Operation {
    fn segments(&self) -> impl Iterator<Item = &str> {
        self.path.split('/').skip(1)
    }

    /// The path parameters when `path` matches this template, and how many segments were literal.
    fn matches(&self, path: &str) -> Option<(usize, BTreeMap<String, String>)> {
        let given: Vec<&str> = path.split('/').skip(1).collect();
        if given.len() != self.segments().count() {
            return None;
        }
        let mut params = BTreeMap::new();
        let mut literal = 0;
        for (template, actual) in self.segments().zip(given) {
            if let Some(name) = template.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                if actual.is_empty() {
                    return None;
                }
                params.insert(name.to_owned(), percent_decode(actual, false));
            } else if template == actual {
                literal += 1;
            } else {
                return None;
            }
        }
        Some((literal, params))
    }
}

/// `%XX` escapes decoded (and `+` as a space in a query).
fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Some(b) = s.get(i + 1..i + 3).and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(if plus_is_space && bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A request as the validator sees it.
#[derive(Debug, Clone, Default)]
pub struct RequestView {
    pub method: String,
    pub path: String,
    /// The raw query string (no `?`).
    pub query: String,
    /// Lowercase header names.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

/// What the validator found: the operation (if any), the parsed JSON body, the violations.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    pub operation: Option<Operation>,
    pub path_params: BTreeMap<String, String>,
    pub body: Option<Value>,
    pub violations: Vec<String>,
}

/// An OpenAPI document: its operations and schemas.
pub struct Spec {
    pub operations: Vec<Operation>,
    pub schemas: SchemaSet,
}

fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix('#')) {
        Some(pointer) => doc.pointer(pointer).unwrap_or(value),
        None => value,
    }
}

const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head", "options"];

impl Spec {
    /// Parse an OpenAPI 3.0 YAML document. Panics on a broken embedded spec (a build invariant).
    pub fn parse(yml: &str) -> Self {
        let doc = yaml_to_json(yml).unwrap_or_else(|e| panic!("an embedded LINE spec parses: {e}"));
        let global_auth = doc.get("security").and_then(Value::as_array).is_some_and(|s| !s.is_empty());
        let mut operations = Vec::new();
        if let Some(Value::Object(paths)) = doc.get("paths") {
            for (path, item) in paths {
                let shared: Vec<Value> = item.get("parameters").and_then(Value::as_array).cloned().unwrap_or_default();
                for method in METHODS {
                    let Some(op) = item.get(*method) else { continue };
                    let mut parameters: Vec<Parameter> = Vec::new();
                    let own = op.get("parameters").and_then(Value::as_array).cloned().unwrap_or_default();
                    for raw in shared.iter().chain(own.iter()) {
                        let p = resolve(&doc, raw);
                        let (Some(name), Some(location)) =
                            (p.get("name").and_then(Value::as_str), p.get("in").and_then(Value::as_str))
                        else {
                            continue;
                        };
                        parameters.retain(|q| !(q.name == name && q.location == location));
                        parameters.push(Parameter {
                            name: name.to_owned(),
                            location: location.to_owned(),
                            required: p.get("required").and_then(Value::as_bool).unwrap_or(location == "path"),
                            schema: p.get("schema").cloned().unwrap_or_else(|| json!({})),
                        });
                    }
                    let body = op.get("requestBody").map(|rb| {
                        let rb = resolve(&doc, rb);
                        let required = rb.get("required").and_then(Value::as_bool).unwrap_or(false);
                        let content = rb
                            .get("content")
                            .and_then(Value::as_object)
                            .map(|c| {
                                c.iter()
                                    .map(|(ct, media)| (ct.to_ascii_lowercase(), media.get("schema").cloned()))
                                    .collect::<BTreeMap<_, _>>()
                            })
                            .unwrap_or_default();
                        (required, content)
                    });
                    let needs_auth = match op.get("security").and_then(Value::as_array) {
                        Some(s) => !s.is_empty(),
                        None => global_auth,
                    };
                    operations.push(Operation {
                        method: method.to_ascii_uppercase(),
                        path: path.clone(),
                        operation_id: op.get("operationId").and_then(Value::as_str).unwrap_or(path).to_owned(),
                        parameters,
                        body,
                        needs_auth,
                    });
                }
            }
        }
        Spec { operations, schemas: SchemaSet::new(doc) }
    }

    /// The operations whose template matches `path`, the most literal template first.
    fn find(&self, path: &str) -> Vec<(&Operation, BTreeMap<String, String>)> {
        let mut found: Vec<(usize, &Operation, BTreeMap<String, String>)> = self
            .operations
            .iter()
            .filter_map(|op| op.matches(path).map(|(literal, params)| (literal, op, params)))
            .collect();
        found.sort_by_key(|f| std::cmp::Reverse(f.0));
        let best = found.first().map(|f| f.0);
        found.into_iter().filter(|f| Some(f.0) == best).map(|(_, op, params)| (op, params)).collect()
    }

    /// Check `req` against the operation its method and path name.
    pub fn check(&self, req: &RequestView) -> Checked {
        let mut checked = Checked::default();
        let candidates = self.find(&req.path);
        if candidates.is_empty() {
            checked.violations.push(format!("no path of the spec matches {}", req.path));
            return checked;
        }
        let Some((op, path_params)) = candidates.iter().find(|(op, _)| op.method == req.method) else {
            let allowed: Vec<&str> = candidates.iter().map(|(op, _)| op.method.as_str()).collect();
            checked.violations.push(format!(
                "{} {}: the spec allows only {}",
                req.method,
                req.path,
                allowed.join(", ")
            ));
            return checked;
        };
        let query = parse_query(&req.query);
        for p in &op.parameters {
            let given = match p.location.as_str() {
                "path" => path_params.get(&p.name).cloned(),
                "query" => query.get(&p.name).cloned(),
                "header" => req.headers.get(&p.name.to_ascii_lowercase()).cloned(),
                _ => continue,
            };
            let Some(given) = given else {
                if p.required {
                    checked.violations.push(format!("the required {} parameter {} is missing", p.location, p.name));
                }
                continue;
            };
            let value = coerce(&given, &p.schema);
            let key = format!("param:{}:{}:{}", op.operation_id, p.location, p.name);
            for v in self.schemas.validate(&key, &p.schema, &value) {
                checked.violations.push(format!("{} parameter {}: {v}", p.location, p.name));
            }
        }
        for header in TRANSPORT_HEADERS {
            let declared = op.parameters.iter().any(|p| p.location == "header" && p.name.eq_ignore_ascii_case(header));
            if !declared && req.headers.contains_key(*header) {
                checked.violations.push(format!("{} does not accept the {header} header", op.operation_id));
            }
        }
        if let Some((required, content)) = &op.body {
            self.check_body(op, *required, content, req, &mut checked);
        }
        checked.path_params = path_params.clone();
        checked.operation = Some((*op).clone());
        checked
    }

    fn check_body(
        &self,
        op: &Operation,
        required: bool,
        content: &BTreeMap<String, Option<Value>>,
        req: &RequestView,
        checked: &mut Checked,
    ) {
        if req.body.is_empty() {
            if required {
                checked.violations.push("the request body is required".to_owned());
            }
            return;
        }
        let given = req.headers.get("content-type").map(|ct| media_type(ct)).unwrap_or_default();
        let Some(schema) =
            content.get(&given).or_else(|| content.get("*/*")).or_else(|| content.get(&wildcard_of(&given)))
        else {
            let accepted: Vec<&str> = content.keys().map(String::as_str).collect();
            checked.violations.push(format!(
                "the content type {:?} is not one the spec accepts ({})",
                given,
                accepted.join(", ")
            ));
            return;
        };
        if given != "application/json" {
            return;
        }
        let body: Value = match serde_json::from_slice(&req.body) {
            Ok(v) => v,
            Err(e) => {
                checked.violations.push(format!("the request body is not JSON: {e}"));
                return;
            }
        };
        if let Some(schema) = schema {
            let key = format!("body:{}", op.operation_id);
            checked
                .violations
                .extend(self.schemas.validate(&key, schema, &body).into_iter().map(|v| format!("body {v}")));
        }
        checked.body = Some(body);
    }
}

fn media_type(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

fn wildcard_of(media: &str) -> String {
    format!("{}/*", media.split('/').next().unwrap_or(""))
}

/// `a=1&b=x` -> map (the last value of a repeated name wins).
pub fn parse_query(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

/// A parameter's text as the JSON value its schema's type says.
fn coerce(text: &str, schema: &Value) -> Value {
    match schema.get("type").and_then(Value::as_str) {
        Some("integer") => text.parse::<i64>().map(Value::from).unwrap_or_else(|_| Value::String(text.to_owned())),
        Some("number") => text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or_else(|| Value::String(text.to_owned()), Value::Number),
        Some("boolean") => match text {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(text.to_owned()),
        },
        Some("array") => {
            let items = schema.get("items").cloned().unwrap_or_else(|| json!({}));
            Value::Array(text.split(',').map(|t| coerce(t, &items)).collect())
        }
        _ => Value::String(text.to_owned()),
    }
}

/// The messaging API spec, parsed once.
pub fn messaging_api() -> &'static Spec {
    static SPEC: OnceLock<Spec> = OnceLock::new();
    SPEC.get_or_init(|| Spec::parse(MESSAGING_API_YML))
}

/// The webhook spec, parsed once.
pub fn webhook() -> &'static Spec {
    static SPEC: OnceLock<Spec> = OnceLock::new();
    SPEC.get_or_init(|| Spec::parse(WEBHOOK_YML))
}

/// Violations of one webhook event against `webhook.yml`'s `Event` (empty when valid).
pub fn validate_event(event: &Value) -> Vec<String> {
    webhook().schemas.validate_component("Event", event)
}

/// Violations of a webhook body against `webhook.yml`'s `CallbackRequest`.
pub fn validate_callback(body: &Value) -> Vec<String> {
    webhook().schemas.validate_component("CallbackRequest", body)
}

/// Violations of one message object against `messaging-api.yml`'s `Message`.
pub fn validate_message(message: &Value) -> Vec<String> {
    messaging_api().schemas.validate_component("Message", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(body: Value) -> RequestView {
        RequestView {
            method: "POST".into(),
            path: "/v2/bot/message/push".into(),
            headers: [("content-type".to_owned(), "application/json".to_owned())].into_iter().collect(),
            body: serde_json::to_vec(&body).unwrap(),
            ..RequestView::default()
        }
    }

    #[test]
    fn the_spec_has_the_operations_the_gateway_uses() {
        let ids: Vec<&str> = messaging_api().operations.iter().map(|o| o.operation_id.as_str()).collect();
        for id in ["pushMessage", "replyMessage", "getProfile", "getMessageContent", "getBotInfo"] {
            assert!(ids.contains(&id), "{id} missing from {ids:?}");
        }
    }

    #[test]
    fn every_body_and_parameter_schema_of_both_specs_compiles() {
        for spec in [messaging_api(), webhook()] {
            for op in &spec.operations {
                for (ct, schema) in op.body.iter().flat_map(|(_, c)| c.iter()) {
                    let Some(schema) = schema else { continue };
                    let found = spec.schemas.validate(&format!("body:{}", op.operation_id), schema, &json!(null));
                    assert!(
                        found.iter().all(|v| !v.contains("does not compile")),
                        "{} {ct}: {found:?}",
                        op.operation_id
                    );
                }
                for p in &op.parameters {
                    let found = spec.schemas.validate(
                        &format!("check:{}:{}", op.operation_id, p.name),
                        &p.schema,
                        &json!(null),
                    );
                    assert!(
                        found.iter().all(|v| !v.contains("does not compile")),
                        "{} {}: {found:?}",
                        op.operation_id,
                        p.name
                    );
                }
            }
        }
    }

    #[test]
    fn message_subtypes_validate_through_the_discriminator() {
        for message in [
            json!({"type": "text", "text": "hi"}),
            json!({"type": "sticker", "packageId": "446", "stickerId": "1988"}),
            json!({"type": "image", "originalContentUrl": "https://example.com/a.png", "previewImageUrl": "https://example.com/p.png"}),
        ] {
            assert_eq!(validate_message(&message), Vec::<String>::new(), "{message}");
        }
        assert!(!validate_message(&json!({"type": "text"})).is_empty());
        assert!(!validate_message(&json!({"type": "sticker", "packageId": "446"})).is_empty());
        assert!(
            !validate_message(&json!({"type": "image", "originalContentUrl": "https://example.com/a.png"})).is_empty()
        );
        assert!(!validate_message(&json!({"type": "file", "fileName": "a.txt"})).is_empty());
    }

    #[test]
    fn a_valid_push_has_no_violations() {
        let checked = messaging_api().check(&push(json!({"to": "U1", "messages": [{"type": "text", "text": "hi"}]})));
        assert_eq!(checked.violations, Vec::<String>::new());
        assert_eq!(checked.operation.unwrap().operation_id, "pushMessage");
    }

    #[test]
    fn six_messages_are_too_many() {
        let message = json!({"type": "text", "text": "hi"});
        let checked = messaging_api().check(&push(json!({"to": "U1", "messages": vec![message; 6]})));
        assert!(!checked.violations.is_empty());
    }

    #[test]
    fn a_templated_path_matches_and_a_retry_key_must_be_a_uuid() {
        let mut req = push(json!({"to": "U1", "messages": [{"type": "text", "text": "hi"}]}));
        req.headers.insert("x-line-retry-key".into(), "not-a-uuid".into());
        assert!(!messaging_api().check(&req).violations.is_empty());
        req.headers.insert("x-line-retry-key".into(), "123e4567-e89b-12d3-a456-426614174000".into());
        assert!(messaging_api().check(&req).violations.is_empty());

        let profile =
            RequestView { method: "GET".into(), path: "/v2/bot/profile/Uabc".into(), ..RequestView::default() };
        let checked = messaging_api().check(&profile);
        assert!(checked.violations.is_empty(), "{:?}", checked.violations);
        assert_eq!(checked.path_params.get("userId").map(String::as_str), Some("Uabc"));
    }

    #[test]
    fn a_retry_key_on_reply_is_a_violation() {
        let mut req = push(json!({"replyToken": "t", "messages": [{"type": "text", "text": "hi"}]}));
        req.path = "/v2/bot/message/reply".into();
        assert!(messaging_api().check(&req).violations.is_empty());
        req.headers.insert("x-line-retry-key".into(), "123e4567-e89b-12d3-a456-426614174000".into());
        assert!(!messaging_api().check(&req).violations.is_empty());
    }
}
