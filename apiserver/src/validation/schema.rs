//! A custom resource against its CRD's structural schema, in the order the real server
//! handles a decoded object: drop unknown fields, drop non-nullable nulls, apply defaults,
//! then validate with kube-openapi's checks and wording.

use serde_json::{Map, Value};

use crate::status::FieldError;

fn flag(schema: &Value, key: &str) -> bool {
    schema.get(key).and_then(Value::as_bool) == Some(true)
}

fn child_schema<'a>(schema: &'a Value, key: &str) -> Option<&'a Value> {
    schema
        .get("properties")
        .and_then(|p| p.get(key))
        .or_else(|| schema.get("additionalProperties").filter(|a| a.is_object()))
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Drops fields the schema does not declare, returning their paths (for `fieldValidation`).
/// `apiVersion`, `kind` and `metadata` at the root, and of embedded resources, are kept:
/// ObjectMeta is the server's own business.
pub fn prune(schema: &Value, value: &mut Value, path: &str, root: bool, dropped: &mut Vec<String>) {
    if flag(schema, "x-kubernetes-preserve-unknown-fields")
        && !schema.get("properties").is_some_and(|p| p.is_object())
    {
        return;
    }
    match value {
        Value::Object(map) => {
            let keep_meta = root || flag(schema, "x-kubernetes-embedded-resource");
            let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields");
            let declared = |k: &str| child_schema(schema, k).is_some();
            let unknown: Vec<String> = map
                .keys()
                .filter(|k| !declared(k))
                .filter(|k| {
                    !(keep_meta && matches!(k.as_str(), "apiVersion" | "kind" | "metadata"))
                })
                .cloned()
                .collect();
            if !preserve {
                for k in unknown {
                    dropped.push(join(path, &k));
                    map.remove(&k);
                }
            }
            for (k, v) in map.iter_mut() {
                if let Some(child) = child_schema(schema, k) {
                    prune(child, v, &join(path, k), false, dropped);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    prune(item_schema, item, &format!("{path}[{i}]"), false, dropped);
                }
            }
        }
        _ => {}
    }
}

/// `PruneNonNullableNullsWithoutDefaults` then `Default`: a null where the schema allows
/// none is dropped, or replaced by the default; absent fields with a default get it.
pub fn default(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(map) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                let Some(child) = child_schema(schema, &k) else {
                    continue;
                };
                if map[&k].is_null() && !flag(child, "nullable") {
                    match child.get("default") {
                        Some(d) => {
                            map.insert(k.clone(), d.clone());
                        }
                        None => {
                            map.remove(&k);
                            continue;
                        }
                    }
                }
                if let Some(v) = map.get_mut(&k) {
                    default(child, v);
                }
            }
            for (k, child) in schema
                .get("properties")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                if let Some(d) = child.get("default")
                    && !map.contains_key(k)
                {
                    let mut d = d.clone();
                    default(child, &mut d);
                    map.insert(k.clone(), d);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                items.iter_mut().for_each(|i| default(item_schema, i));
            }
        }
        _ => {}
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(n) if n.as_f64().is_some_and(|f| f.fract() == 0.0) => "integer",
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

/// Prints a schema bound the way Go's `%v` prints a float64 (`0`, `599`, `1.5`).
fn bound(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e21 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

/// Checks `value` at `path` against `schema`, appending one error per failure.
pub fn validate(schema: &Value, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let in_body = |what: String| format!("{path} in body {what}");
    if value.is_null() {
        if !flag(schema, "nullable")
            && let Some(want) = schema.get("type").and_then(Value::as_str)
        {
            let detail = in_body(format!("must be of type {want}: \"null\""));
            errors.push(FieldError::type_invalid(
                path,
                &Value::from("null"),
                &detail,
            ));
        }
        return;
    }
    let int_or_string = flag(schema, "x-kubernetes-int-or-string");
    if int_or_string && !matches!(value, Value::String(_) | Value::Number(_)) {
        let got = type_name(value);
        let detail = in_body(format!("must be of type integer or string: \"{got}\""));
        errors.push(FieldError::type_invalid(path, &Value::from(got), &detail));
        return;
    }
    if let Some(want) = schema.get("type").and_then(Value::as_str)
        && !int_or_string
        && !type_ok(want, value)
    {
        let got = type_name(value);
        let detail = in_body(format!("must be of type {want}: \"{got}\""));
        errors.push(FieldError::type_invalid(path, &Value::from(got), &detail));
        return;
    }
    combinators(schema, value, path, errors);
    match value {
        Value::String(s) => string_checks(schema, s, path, errors),
        Value::Number(n) => {
            number_checks(schema, n.as_f64().unwrap_or_default(), value, path, errors)
        }
        _ => {}
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.contains(value)
    {
        let listed: Vec<String> = options
            .iter()
            .map(|o| o.as_str().map_or_else(|| o.to_string(), str::to_owned))
            .collect();
        errors.push(FieldError::not_supported(path, value, &listed));
    }
    match value {
        Value::Object(map) => object_checks(schema, map, path, errors),
        Value::Array(items) => array_checks(schema, items, path, errors),
        _ => {}
    }
}

fn combinators(schema: &Value, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let passes = |s: &Value| {
        let mut errs = Vec::new();
        validate(s, value, path, &mut errs);
        errs.is_empty()
    };
    let list = |key: &str| {
        schema
            .get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    for s in list("allOf") {
        validate(&s, value, path, errors);
    }
    let any = list("anyOf");
    if !any.is_empty() && !any.iter().any(passes) {
        let detail = format!("{path} in body must validate at least one schema (anyOf)");
        errors.push(FieldError::invalid(path, &Value::from(""), &detail));
    }
    let one = list("oneOf");
    if !one.is_empty() && one.iter().filter(|s| passes(s)).count() != 1 {
        let detail = format!("{path} in body must validate one and only one schema (oneOf)");
        errors.push(FieldError::invalid(path, &Value::from(""), &detail));
    }
    if let Some(not) = schema.get("not")
        && passes(not)
    {
        let detail = format!("{path} in body must not validate the schema (not)");
        errors.push(FieldError::invalid(path, &Value::from(""), &detail));
    }
}

fn string_checks(schema: &Value, s: &str, path: &str, errors: &mut Vec<FieldError>) {
    let value = Value::from(s);
    let chars = s.chars().count() as u64;
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
        && chars > max
    {
        errors.push(FieldError::too_long(path, max as usize));
    }
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
        && chars < min
    {
        let detail = format!("{path} in body should be at least {min} chars long");
        errors.push(FieldError::invalid(path, &value, &detail));
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
        && regex::Regex::new(pattern).is_ok_and(|re| !re.is_match(s))
    {
        let detail = format!("{path} in body should match '{pattern}'");
        errors.push(FieldError::invalid(path, &value, &detail));
    }
    if let Some(format) = schema.get("format").and_then(Value::as_str)
        && !format_ok(format, s)
    {
        let detail = format!("{path} in body must be of type {format}: {value}");
        errors.push(FieldError::type_invalid(path, &value, &detail));
    }
}

/// The string formats the real server checks; others (`int32`, `uint32`, ...) pass.
fn format_ok(format: &str, s: &str) -> bool {
    use base64::Engine as _;
    match format {
        "date-time" | "datetime" => chrono::DateTime::parse_from_rfc3339(s).is_ok(),
        "date" => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok(),
        "byte" => base64::engine::general_purpose::STANDARD.decode(s).is_ok(),
        "uuid" => uuid::Uuid::try_parse(s).is_ok(),
        "ipv4" => s.parse::<std::net::Ipv4Addr>().is_ok(),
        "ipv6" => s.parse::<std::net::Ipv6Addr>().is_ok(),
        _ => true,
    }
}

fn number_checks(schema: &Value, n: f64, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let num = |k: &str| schema.get(k).and_then(Value::as_f64);
    if let Some(max) = num("maximum") {
        let exclusive = flag(schema, "exclusiveMaximum");
        if n > max || (exclusive && n == max) {
            let op = if exclusive {
                "less than"
            } else {
                "less than or equal to"
            };
            let detail = format!("{path} in body should be {op} {}", bound(max));
            errors.push(FieldError::invalid(path, value, &detail));
        }
    }
    if let Some(min) = num("minimum") {
        let exclusive = flag(schema, "exclusiveMinimum");
        if n < min || (exclusive && n == min) {
            let op = if exclusive {
                "greater than"
            } else {
                "greater than or equal to"
            };
            let detail = format!("{path} in body should be {op} {}", bound(min));
            errors.push(FieldError::invalid(path, value, &detail));
        }
    }
    if let Some(factor) = num("multipleOf")
        && factor > 0.0
        && (n / factor).fract() != 0.0
    {
        let detail = format!("{path} in body should be a multiple of {}", bound(factor));
        errors.push(FieldError::invalid(path, value, &detail));
    }
}

fn object_checks(
    schema: &Value,
    map: &Map<String, Value>,
    path: &str,
    errors: &mut Vec<FieldError>,
) {
    if let Some(max) = schema.get("maxProperties").and_then(Value::as_u64)
        && map.len() as u64 > max
    {
        errors.push(FieldError::too_many(path, map.len(), max as usize));
    }
    if let Some(min) = schema.get("minProperties").and_then(Value::as_u64)
        && (map.len() as u64) < min
    {
        let detail = format!("{path} in body should have at least {min} properties");
        errors.push(FieldError::invalid(path, &Value::from(map.len()), &detail));
    }
    for required in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(key) = required.as_str()
            && !map.contains_key(key)
        {
            errors.push(FieldError::required(&join(path, key), ""));
        }
    }
    for (key, child) in map {
        if let Some(child_schema) = child_schema(schema, key) {
            validate(child_schema, child, &join(path, key), errors);
        }
    }
}

fn array_checks(schema: &Value, items: &[Value], path: &str, errors: &mut Vec<FieldError>) {
    if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
        && items.len() as u64 > max
    {
        errors.push(FieldError::too_many(path, items.len(), max as usize));
    }
    if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
        && (items.len() as u64) < min
    {
        let detail = format!("{path} in body should have at least {min} items");
        errors.push(FieldError::invalid(
            path,
            &Value::from(items.len()),
            &detail,
        ));
    }
    if let Some(item_schema) = schema.get("items") {
        for (i, item) in items.iter().enumerate() {
            validate(item_schema, item, &format!("{path}[{i}]"), errors);
        }
    }
    list_type_checks(schema, items, path, errors);
}

/// Set items and map-list keys must be unique.
fn list_type_checks(schema: &Value, items: &[Value], path: &str, errors: &mut Vec<FieldError>) {
    let keys: Vec<&str> = schema
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let identity = |item: &Value| -> Value {
        match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("map") => Value::Object(
                keys.iter()
                    .filter_map(|k| item.get(*k).map(|v| ((*k).to_owned(), v.clone())))
                    .collect(),
            ),
            _ => item.clone(),
        }
    };
    if !matches!(
        schema.get("x-kubernetes-list-type").and_then(Value::as_str),
        Some("set" | "map")
    ) {
        return;
    }
    let mut seen: Vec<Value> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let id = identity(item);
        if seen.contains(&id) {
            errors.push(FieldError::duplicate(&format!("{path}[{i}]"), &id));
        } else {
            seen.push(id);
        }
    }
}

/// Validates an object: the schema governs everything but `apiVersion`, `kind` and
/// `metadata`, which the server checks itself.
pub fn check_object(schema: &Value, object: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut rest = object.clone();
    if let Some(map) = rest.as_object_mut() {
        for k in ["apiVersion", "kind", "metadata"] {
            map.remove(k);
        }
    }
    let mut root = schema.clone();
    if let Some(props) = root.get_mut("properties").and_then(Value::as_object_mut) {
        for k in ["apiVersion", "kind", "metadata"] {
            props.remove(k);
        }
    }
    validate(&root, &rest, "", &mut errors);
    errors
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> Value {
        json!({"type": "object", "properties": {"spec": {"type": "object", "required": ["tenantRef"], "properties": {
            "tenantRef": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 5}}},
            "input": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "kind": {"type": "string", "enum": ["A", "B"]},
            "code": {"type": "integer", "minimum": 100.0, "maximum": 599.0},
            "at": {"type": "string", "format": "date-time"},
            "mode": {"type": "string", "default": "auto"},
            "opt": {"type": "string"},
        }}}, "required": ["spec"]})
    }

    fn messages(object: Value) -> Vec<String> {
        check_object(&schema(), &object)
            .iter()
            .map(FieldError::message)
            .collect()
    }

    #[test]
    fn wrong_types_missing_fields_and_enums_are_named_like_the_real_server() {
        let text = messages(json!({"spec": {"input": "x", "kind": "C"}}));
        assert!(
            text.contains(&"spec.tenantRef: Required value".to_owned()),
            "{text:?}"
        );
        assert!(text.contains(&"spec.input: Invalid value: \"string\": spec.input in body must be of type object: \"string\"".to_owned()), "{text:?}");
        assert!(
            text.contains(
                &"spec.kind: Unsupported value: \"C\": supported values: \"A\", \"B\"".to_owned()
            ),
            "{text:?}"
        );
    }

    #[test]
    fn bounds_lengths_and_formats_are_checked() {
        let text = messages(
            json!({"spec": {"tenantRef": {"name": "toolong"}, "code": 700, "at": "yesterday"}}),
        );
        assert_eq!(
            text,
            [
                "spec.at: Invalid value: \"yesterday\": spec.at in body must be of type date-time: \"yesterday\"",
                "spec.code: Invalid value: 700: spec.code in body should be less than or equal to 599",
                "spec.tenantRef.name: Too long: may not be more than 5 bytes",
            ]
        );
    }

    #[test]
    fn unknown_fields_are_pruned_except_where_preserved() {
        let mut v = json!({"apiVersion": "x/v1", "metadata": {"name": "n"}, "spec": {"tenantRef": {"name": "a", "typo": 1}, "input": {"free": 1}, "extra": true}});
        let mut dropped = Vec::new();
        prune(&schema(), &mut v, "", true, &mut dropped);
        assert_eq!(
            v,
            json!({"apiVersion": "x/v1", "metadata": {"name": "n"}, "spec": {"tenantRef": {"name": "a"}, "input": {"free": 1}}})
        );
        assert_eq!(dropped, ["spec.extra", "spec.tenantRef.typo"]);
    }

    #[test]
    fn nulls_are_dropped_or_defaulted_and_defaults_fill_gaps() {
        let mut v = json!({"spec": {"tenantRef": {"name": "a"}, "opt": null, "kind": null}});
        default(&schema(), &mut v);
        assert_eq!(
            v,
            json!({"spec": {"tenantRef": {"name": "a"}, "mode": "auto"}})
        );
    }
}
