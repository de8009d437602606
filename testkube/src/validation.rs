//! Validation and pruning of custom resources against their CRD's structural schema, with
//! the real server's wording. CEL rules (`x-kubernetes-validations`) are not evaluated: only
//! a real cluster enforces them.

use serde_json::Value;

/// Causes, as (field path, message).
pub type Causes = Vec<(String, String)>;

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_ok(want: &str, value: &Value) -> bool {
    match (want, value) {
        ("number", Value::Number(_)) => true,
        (want, value) => want == type_name(value),
    }
}

/// Checks `value` at `path` against `schema`.
pub fn validate(schema: &Value, value: &Value, path: &str, causes: &mut Causes) {
    if value.is_null() {
        if !schema
            .get("nullable")
            .and_then(Value::as_bool)
            .unwrap_or(false)
            && schema.get("type").is_some()
        {
            causes.push((
                path.to_owned(),
                format!(
                    "Invalid value: \"null\": {path} in body must be of type {}: \"null\"",
                    schema["type"].as_str().unwrap_or("object")
                ),
            ));
        }
        return;
    }
    let int_or_string = schema
        .get("x-kubernetes-int-or-string")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if let Some(want) = schema.get("type").and_then(Value::as_str)
        && !(int_or_string && matches!(value, Value::String(_) | Value::Number(_)))
        && !type_ok(want, value)
    {
        let got = type_name(value);
        causes.push((
            path.to_owned(),
            format!("Invalid value: \"{got}\": {path} in body must be of type {want}: \"{got}\""),
        ));
        return;
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.contains(value)
    {
        let listed: Vec<String> = options.iter().map(|o| o.to_string()).collect();
        causes.push((
            path.to_owned(),
            format!(
                "Unsupported value: {value}: supported values: {}",
                listed.join(", ")
            ),
        ));
    }
    match value {
        Value::Object(map) => {
            for required in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(key) = required.as_str()
                    && !map.contains_key(key)
                {
                    causes.push((format!("{path}.{key}"), "Required value".to_owned()));
                }
            }
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (key, child) in map {
                let child_path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                if let Some(child_schema) = properties.and_then(|p| p.get(key)).or(additional) {
                    validate(child_schema, child, &child_path, causes);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    validate(item_schema, item, &format!("{path}[{i}]"), causes);
                }
            }
        }
        _ => {}
    }
}

/// Drops fields the schema does not know, as the real server prunes structural schemas.
pub fn prune(schema: &Value, value: &mut Value) {
    if schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true)
    {
        return;
    }
    match value {
        Value::Object(map) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            if properties.is_none() && additional.is_none() {
                return;
            }
            map.retain(|k, _| {
                properties.is_some_and(|p| p.contains_key(k)) || additional.is_some()
            });
            for (k, v) in map.iter_mut() {
                if let Some(child) = properties.and_then(|p| p.get(k)).or(additional) {
                    prune(child, v);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                items.iter_mut().for_each(|i| prune(item_schema, i));
            }
        }
        _ => {}
    }
}

/// Validates the parts of an object a schema governs (everything but apiVersion, kind and
/// metadata, which the server checks itself).
pub fn check_object(schema: &Value, object: &Value) -> Causes {
    let mut causes = Vec::new();
    let Some(map) = object.as_object() else {
        return causes;
    };
    let properties = schema.get("properties").and_then(Value::as_object);
    for required in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(key) = required.as_str()
            && !map.contains_key(key)
        {
            causes.push((key.to_owned(), "Required value".to_owned()));
        }
    }
    for (key, value) in map {
        if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        if let Some(child) = properties.and_then(|p| p.get(key)) {
            validate(child, value, key, &mut causes);
        }
    }
    causes
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> Value {
        json!({"type": "object", "properties": {"spec": {"type": "object", "required": ["tenantRef"], "properties": {
            "tenantRef": {"type": "object", "properties": {"name": {"type": "string"}}},
            "input": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "kind": {"type": "string", "enum": ["A", "B"]},
        }}}, "required": ["spec"]})
    }

    #[test]
    fn wrong_types_missing_fields_and_enums_are_named_like_the_real_server() {
        let causes = check_object(&schema(), &json!({"spec": {"input": "x", "kind": "C"}}));
        let text: Vec<String> = causes.iter().map(|(f, m)| format!("{f}: {m}")).collect();
        assert!(
            text.contains(&"spec.tenantRef: Required value".to_owned()),
            "{text:?}"
        );
        assert!(text.contains(&"spec.input: Invalid value: \"string\": spec.input in body must be of type object: \"string\"".to_owned()), "{text:?}");
        assert!(
            text.iter()
                .any(|t| t.starts_with("spec.kind: Unsupported value: \"C\"")),
            "{text:?}"
        );
    }

    #[test]
    fn unknown_fields_are_pruned_except_where_preserved() {
        let mut v = json!({"spec": {"tenantRef": {"name": "a", "typo": 1}, "input": {"free": 1}, "extra": true}});
        prune(&schema(), &mut v);
        assert_eq!(
            v,
            json!({"spec": {"tenantRef": {"name": "a"}, "input": {"free": 1}}})
        );
    }
}
