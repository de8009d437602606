//! What the real server does to a written object before validation: decoding (Secret
//! `stringData`, schema pruning, nulls and defaults) and each kind's registry strategy
//! (`PrepareForCreate`, `PrepareForUpdate`, generation, status isolation).

use serde_json::{Value, json};

use crate::resource::{Flavour, ResourceType};
use crate::status::ApiError;
use crate::validation::schema;

/// The finalizer the namespace controller removes once a Namespace is empty.
pub const NAMESPACE_FINALIZER: &str = "kubernetes";
/// The finalizer the CRD controller removes once a CRD's objects are gone.
pub const CRD_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

pub fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn remove(object: &mut Value, key: &str) -> Option<Value> {
    object.as_object_mut().and_then(|o| o.remove(key))
}

/// Decodes a written body into the stored shape; returns the unknown fields dropped.
/// Defaults are left out of an apply configuration, so the applier does not own them.
pub fn decode(
    rt: &ResourceType,
    object: &mut Value,
    fill_defaults: bool,
) -> Result<Vec<String>, ApiError> {
    if !object.is_object() {
        return Err(ApiError::bad_request(
            "Object 'Kind' is missing in the body: the body must be a JSON object",
        ));
    }
    if let Some(sent) = object.get("apiVersion").and_then(Value::as_str)
        && sent != rt.api_version()
        && !sent.is_empty()
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({sent}) does not match the expected API version ({})",
            rt.api_version()
        )));
    }
    if !object.get("metadata").is_some_and(Value::is_object) {
        object["metadata"] = json!({});
    }
    object["apiVersion"] = Value::String(rt.api_version());
    object["kind"] = Value::String(rt.kind.clone());
    let mut dropped = Vec::new();
    match rt.flavour {
        Flavour::Secret => {
            fold_string_data(object);
            if object.get("type").is_none_or(Value::is_null) {
                object["type"] = json!("Opaque");
            }
        }
        Flavour::Custom if fill_defaults => {
            if let Some(s) = &rt.schema {
                schema::prune(s, object, "", true, &mut dropped);
                let metadata = remove(object, "metadata");
                schema::default(s, object);
                if let Some(m) = metadata {
                    object["metadata"] = m;
                }
            }
        }
        Flavour::Custom => {
            if let Some(s) = &rt.schema {
                schema::prune(s, object, "", true, &mut dropped);
            }
        }
        _ => {}
    }
    Ok(dropped)
}

/// Secrets never store `stringData`: it is merged into base64 `data` on every write.
fn fold_string_data(object: &mut Value) {
    use base64::Engine as _;
    let Some(string_data) = remove(object, "stringData") else {
        return;
    };
    if !object.get("data").is_some_and(Value::is_object) {
        object["data"] = json!({});
    }
    for (k, v) in string_data.as_object().into_iter().flatten() {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(v.as_str().unwrap_or_default());
        object["data"][k] = Value::String(encoded);
    }
}

/// `BeforeCreate`: the system fields, then the kind's `PrepareForCreate`.
pub fn prepare_create(rt: &ResourceType, object: &mut Value, namespace: &str, name: &str) {
    let metadata = object["metadata"].as_object_mut().expect("decoded");
    metadata.insert("name".into(), name.into());
    if rt.namespaced {
        metadata.insert("namespace".into(), namespace.into());
    } else {
        metadata.remove("namespace");
    }
    metadata.insert("uid".into(), uuid::Uuid::new_v4().to_string().into());
    metadata.insert("creationTimestamp".into(), now().into());
    for k in [
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "managedFields",
        "selfLink",
    ] {
        metadata.remove(k);
    }
    if rt.tracks_generation() {
        metadata.insert("generation".into(), json!(1));
    }
    if rt.status_subresource {
        remove(object, "status");
    }
    match rt.flavour {
        Flavour::Namespace => {
            object["spec"] = json!({"finalizers": [NAMESPACE_FINALIZER]});
            object["status"] = json!({"phase": "Active"});
            let labels = object["metadata"]
                .as_object_mut()
                .expect("decoded")
                .entry("labels")
                .or_insert_with(|| json!({}));
            labels["kubernetes.io/metadata.name"] = Value::String(name.to_owned());
        }
        Flavour::Crd => {
            let finalizers = object["metadata"]
                .as_object_mut()
                .expect("decoded")
                .entry("finalizers")
                .or_insert_with(|| json!([]));
            if let Some(list) = finalizers.as_array_mut()
                && !list.contains(&json!(CRD_FINALIZER))
            {
                list.push(json!(CRD_FINALIZER));
            }
            object["status"] = crd_status(object);
        }
        _ => {}
    }
}

/// A CRD's status once the real server has accepted its names and established it.
pub fn crd_status(crd: &Value) -> Value {
    let now = now();
    let condition = |kind: &str, reason: &str, message: &str| json!({"type": kind, "status": "True", "lastTransitionTime": now, "reason": reason, "message": message});
    let stored: Vec<Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .filter_map(|v| v.get("name").cloned())
        .collect();
    json!({
        "acceptedNames": crd.pointer("/spec/names").cloned().unwrap_or_default(),
        "conditions": [
            condition("NamesAccepted", "NoConflicts", "no conflicts found"),
            condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
        "storedVersions": stored,
    })
}

/// `BeforeUpdate`: what an update may not change, the kind's `PrepareForUpdate`, and the
/// generation.
pub fn prepare_update(rt: &ResourceType, new: &mut Value, old: &Value, subresource: Option<&str>) {
    if subresource == Some("status") {
        // Only status changes through /status; everything else stays as stored.
        let status = remove(new, "status");
        *new = old.clone();
        match status {
            Some(s) => new["status"] = s,
            None => drop(remove(new, "status")),
        }
    } else if rt.status_subresource {
        match old.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => drop(remove(new, "status")),
        }
    }
    if rt.flavour == Flavour::Namespace && subresource != Some("finalize") {
        new["spec"] = old.get("spec").cloned().unwrap_or_else(|| json!({}));
    }
    let (meta_new, meta_old) = (&mut new["metadata"], &old["metadata"]);
    for kept in [
        "name",
        "namespace",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ] {
        match meta_old.get(kept) {
            Some(v) => meta_new[kept] = v.clone(),
            None => drop(meta_new.as_object_mut().and_then(|m| m.remove(kept))),
        }
    }
    if meta_new
        .get("uid")
        .is_none_or(|u| u.as_str().is_none_or(str::is_empty))
    {
        meta_new["uid"] = meta_old["uid"].clone();
    }
    if rt.tracks_generation() && subresource.is_none() && generation_changes(rt, new, old) {
        let generation = meta_old
            .get("generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        new["metadata"]["generation"] = json!(generation + 1);
    }
}

/// Custom resources bump on any change outside metadata (status included when it has no
/// subresource of its own); CRDs on a spec change.
fn generation_changes(rt: &ResourceType, new: &Value, old: &Value) -> bool {
    let part = |v: &Value| {
        let mut copy = v.clone();
        match rt.flavour {
            Flavour::Crd => copy.get("spec").cloned().unwrap_or_default(),
            _ => {
                remove(&mut copy, "metadata");
                copy
            }
        }
    };
    part(new) != part(old)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::builtins;

    #[test]
    fn string_data_is_folded_into_data_and_the_type_defaulted() {
        let secret = builtins()
            .into_iter()
            .find(|t| t.plural == "secrets")
            .unwrap();
        let mut s = json!({"data": {"a": "YQ=="}, "stringData": {"b": "b"}});
        decode(&secret, &mut s, true).unwrap();
        assert_eq!(s["data"], json!({"a": "YQ==", "b": "Yg=="}));
        assert_eq!(s["type"], "Opaque");
        assert!(s.get("stringData").is_none());
    }
}
