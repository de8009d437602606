//! The built-in kinds' own validation, as their registry strategies do it: Secrets,
//! events.k8s.io Events (with the internal field names the real messages use), Leases,
//! Namespaces and CRDs.

use serde_json::{Value, json};

use super::meta;
use crate::status::FieldError;

const SECRET_LIMIT: usize = 1024 * 1024;
const CONFIG_KEY_MSG: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn config_key(key: &str) -> Vec<String> {
    let mut msgs = Vec::new();
    if key.len() > 253 {
        msgs.push("must be no more than 253 characters".to_owned());
    }
    if key.is_empty()
        || !key
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
    {
        msgs.push(CONFIG_KEY_MSG.to_owned());
    }
    match key {
        "." => msgs.push("must not be '.'".to_owned()),
        ".." => msgs.push("must not be '..'".to_owned()),
        k if k.starts_with("..") => msgs.push("must not start with '..'".to_owned()),
        _ => {}
    }
    msgs
}

/// `ValidateSecret`: keys, total size, and the keys each well-known type needs.
pub fn secret(secret: &Value, errors: &mut Vec<FieldError>) {
    use base64::Engine as _;
    let data = secret.get("data").and_then(Value::as_object);
    let mut size = 0;
    for (k, v) in data.into_iter().flatten() {
        for m in config_key(k) {
            errors.push(FieldError::invalid(
                &format!("data[{k}]"),
                &Value::from(k.as_str()),
                &m,
            ));
        }
        size += base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .map_or(0, |b| b.len());
    }
    if size > SECRET_LIMIT {
        errors.push(FieldError::too_long("data", SECRET_LIMIT));
    }
    let has = |k: &str| data.is_some_and(|d| d.contains_key(k));
    let needs: &[&str] = match str_of(secret, "type") {
        "kubernetes.io/tls" => &["tls.crt", "tls.key"],
        "kubernetes.io/ssh-auth" => &["ssh-privatekey"],
        "kubernetes.io/dockerconfigjson" => &[".dockerconfigjson"],
        "kubernetes.io/dockercfg" => &[".dockercfg"],
        _ => &[],
    };
    for k in needs {
        if !has(k) {
            errors.push(FieldError::required(&format!("data[{k}]"), ""));
        }
    }
    if str_of(secret, "type") == "kubernetes.io/basic-auth" && !has("username") && !has("password")
    {
        errors.push(FieldError::required("data[username]", ""));
        errors.push(FieldError::required("data[password]", ""));
    }
}

/// `ValidateSecretUpdate`: the type never changes; an immutable Secret's data never does.
pub fn secret_update(new: &Value, old: &Value, errors: &mut Vec<FieldError>) {
    if new.get("type") != old.get("type") {
        errors.push(FieldError::invalid(
            "type",
            new.get("type").unwrap_or(&Value::Null),
            "field is immutable",
        ));
    }
    if old.get("immutable").and_then(Value::as_bool) == Some(true) {
        let forbidden = "field is immutable when `immutable` is set";
        if new.get("immutable").and_then(Value::as_bool) != Some(true) {
            errors.push(FieldError::forbidden("immutable", forbidden));
        }
        if new.get("data") != old.get("data") {
            errors.push(FieldError::forbidden("data", forbidden));
        }
    }
}

/// `ValidateEventCreate` for events.k8s.io/v1. The real messages name the internal fields
/// (`message` for `note`, `involvedObject` for `regarding`), and so do these.
pub fn event(event: &Value, namespace: &str, errors: &mut Vec<FieldError>) {
    let empty = json!("");
    if str_of(event, "eventTime").is_empty() {
        errors.push(FieldError::required("eventTime", ""));
    } else {
        let regarding_ns = event
            .pointer("/regarding/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if regarding_ns.is_empty() && !matches!(namespace, "default" | "kube-system") {
            errors.push(FieldError::invalid(
                "involvedObject.namespace",
                &empty,
                "does not match event.namespace",
            ));
        }
        let controller = str_of(event, "reportingController");
        if controller.is_empty() {
            errors.push(FieldError::required("reportingController", ""));
        }
        for m in meta::qualified_name(controller) {
            errors.push(FieldError::invalid(
                "reportingController",
                &Value::from(controller),
                &m,
            ));
        }
        for (field, json_field, limit) in [
            ("reportingInstance", "reportingInstance", 128),
            ("action", "action", 128),
            ("reason", "reason", 128),
        ] {
            let v = str_of(event, json_field);
            if v.is_empty() {
                errors.push(FieldError::required(field, ""));
            }
            if v.len() > limit {
                errors.push(FieldError::invalid(
                    field,
                    &empty,
                    &format!("can have at most {limit} characters"),
                ));
            }
        }
        if str_of(event, "note").len() > 1024 {
            errors.push(FieldError::invalid(
                "message",
                &empty,
                "can have at most 1024 characters",
            ));
        }
    }
    event_series(event, errors);
    let kind = str_of(event, "type");
    if kind != "Normal" && kind != "Warning" {
        errors.push(FieldError::invalid(
            "type",
            &empty,
            &format!("has invalid value: {kind}"),
        ));
    }
    for (field, label) in [
        ("deprecatedFirstTimestamp", "deprecatedFirstTimestamp"),
        ("deprecatedLastTimestamp", "deprecatedLastTimestamp"),
        ("deprecatedCount", "deprecatedCount"),
        ("deprecatedSource", "deprecatedSource"),
    ] {
        if event.get(field).is_some_and(|v| !v.is_null()) {
            errors.push(FieldError::invalid(label, &empty, "needs to be unset"));
        }
    }
}

fn event_series(event: &Value, errors: &mut Vec<FieldError>) {
    let Some(series) = event.get("series").filter(|s| !s.is_null()) else {
        return;
    };
    if series.get("count").and_then(Value::as_i64).unwrap_or(0) < 2 {
        errors.push(FieldError::invalid(
            "series.count",
            &json!(""),
            "should be at least 2",
        ));
    }
    if str_of(series, "lastObservedTime").is_empty() {
        errors.push(FieldError::required("series.lastObservedTime", ""));
    }
}

/// `ValidateEventUpdate` for events.k8s.io/v1: only the series (and metadata) may change.
pub fn event_update(new: &Value, old: &Value, errors: &mut Vec<FieldError>) {
    if new.get("series") != old.get("series") {
        event_series(new, errors);
    }
    for (json_field, field) in [
        ("regarding", "involvedObject"),
        ("reason", "reason"),
        ("note", "message"),
        ("deprecatedSource", "source"),
        ("deprecatedFirstTimestamp", "firstTimestamp"),
        ("deprecatedLastTimestamp", "lastTimestamp"),
        ("deprecatedCount", "count"),
        ("type", "type"),
        ("eventTime", "eventTime"),
        ("action", "action"),
        ("related", "related"),
        ("reportingController", "reportingController"),
        ("reportingInstance", "reportingInstance"),
    ] {
        if new.get(json_field) != old.get(json_field) {
            let value = new.get(json_field).cloned().unwrap_or(Value::Null);
            errors.push(FieldError::invalid(field, &value, "field is immutable"));
        }
    }
}

/// `ValidateLease`.
pub fn lease(lease: &Value, errors: &mut Vec<FieldError>) {
    if let Some(d) = lease
        .pointer("/spec/leaseDurationSeconds")
        .and_then(Value::as_i64)
        && d <= 0
    {
        errors.push(FieldError::invalid(
            "spec.leaseDurationSeconds",
            &json!(d),
            "must be greater than 0",
        ));
    }
    if let Some(t) = lease
        .pointer("/spec/leaseTransitions")
        .and_then(Value::as_i64)
        && t < 0
    {
        errors.push(FieldError::invalid(
            "spec.leaseTransitions",
            &json!(t),
            "must be greater than or equal to 0",
        ));
    }
}

/// Namespace `spec.finalizers` must be qualified names.
pub fn namespace(ns: &Value, errors: &mut Vec<FieldError>) {
    let finalizers = ns.pointer("/spec/finalizers").and_then(Value::as_array);
    for (i, f) in finalizers.into_iter().flatten().enumerate() {
        let name = f.as_str().unwrap_or_default();
        for m in meta::qualified_name(name) {
            errors.push(FieldError::invalid(&format!("spec.finalizers[{i}]"), f, &m));
        }
    }
}

/// The parts of `ValidateCustomResourceDefinition` a CRD written here needs to be served.
pub fn crd(crd: &Value, errors: &mut Vec<FieldError>) {
    let group = crd
        .pointer("/spec/group")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let plural = crd
        .pointer("/spec/names/plural")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let name = crd
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if name != format!("{plural}.{group}") {
        errors.push(FieldError::invalid(
            "metadata.name",
            &Value::from(name),
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    if group.is_empty() {
        errors.push(FieldError::required("spec.group", ""));
    }
    for (pointer, field) in [
        ("/spec/names/plural", "spec.names.plural"),
        ("/spec/names/kind", "spec.names.kind"),
    ] {
        if crd
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .is_empty()
        {
            errors.push(FieldError::required(field, ""));
        }
    }
    let scope = crd
        .pointer("/spec/scope")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !matches!(scope, "Namespaced" | "Cluster") {
        errors.push(FieldError::not_supported(
            "spec.scope",
            &Value::from(scope),
            &["Cluster".into(), "Namespaced".into()],
        ));
    }
    let versions = crd.pointer("/spec/versions").and_then(Value::as_array);
    let storage = versions
        .into_iter()
        .flatten()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .count();
    if versions.is_none_or(Vec::is_empty) {
        errors.push(FieldError::invalid(
            "spec.versions",
            &json!([]),
            "must have exactly one version marked as storage version",
        ));
    } else if storage != 1 {
        errors.push(FieldError::invalid(
            "spec.storedVersions",
            &json!([]),
            "must have exactly one version marked as storage version",
        ));
    }
}
