//! DELETE and deletecollection: preconditions, propagation policy, finalizers (an object
//! that has any gets a deletionTimestamp and stays), and the response the real server
//! sends for each kind.

use serde_json::{Value, json};

use crate::resource::{Flavour, ResourceType};
use crate::status::ApiError;
use crate::store::{Key, Store};
use crate::strategy::now;
use crate::write::{Write, finalized, meta_str};

pub const ORPHAN: &str = "orphan";
pub const FOREGROUND: &str = "foregroundDeletion";

/// `DeleteOptions`, from the body (kube sends them there) or the query.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub propagation: Option<String>,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
}

impl DeleteOptions {
    pub fn parse(body: &[u8], query_policy: Option<&String>) -> Result<Self, ApiError> {
        let v: Value = if body.iter().all(u8::is_ascii_whitespace) {
            json!({})
        } else {
            serde_json::from_slice(body).map_err(|e| ApiError::bad_request(e.to_string()))?
        };
        let s = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_owned);
        let orphan = v.get("orphanDependents").and_then(Value::as_bool);
        let propagation = s("/propagationPolicy")
            .or_else(|| query_policy.cloned())
            .or_else(|| orphan.map(|o| if o { "Orphan" } else { "Background" }.to_owned()));
        if let Some(p) = &propagation
            && !matches!(p.as_str(), "Orphan" | "Background" | "Foreground")
        {
            let e = crate::status::FieldError::not_supported(
                "propagationPolicy",
                &Value::from(p.as_str()),
                &["Foreground".into(), "Background".into(), "Orphan".into()],
            );
            return Err(ApiError::invalid("DeleteOptions", "meta.k8s.io", "", &[e]));
        }
        Ok(Self {
            propagation,
            uid: s("/preconditions/uid"),
            resource_version: s("/preconditions/resourceVersion"),
        })
    }
}

fn finalizers(object: &Value) -> Vec<String> {
    object
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

/// The finalizers the propagation policy asks for, as the real registry sets them.
fn with_policy(mut list: Vec<String>, policy: Option<&str>) -> Vec<String> {
    let (add, drop): (Option<&str>, &[&str]) = match policy {
        Some("Orphan") => (Some(ORPHAN), &[FOREGROUND]),
        Some("Foreground") => (Some(FOREGROUND), &[ORPHAN]),
        Some("Background") => (None, &[ORPHAN, FOREGROUND]),
        _ => (None, &[]),
    };
    list.retain(|f| !drop.contains(&f.as_str()));
    if let Some(add) = add
        && !list.iter().any(|f| f == add)
    {
        list.push(add.to_owned());
    }
    list
}

/// The response to a DELETE that removed the object at once.
fn deleted_response(rt: &ResourceType, object: Value) -> Value {
    if rt.returns_deleted_object() {
        return object;
    }
    let mut details = json!({"name": meta_str(&object, "name"), "kind": rt.plural, "uid": meta_str(&object, "uid")});
    if !rt.group.is_empty() {
        details["group"] = Value::String(rt.group.clone());
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

/// DELETE of one object. The response is the object when it stays (finalizers), else what
/// the kind returns for an object gone.
pub fn delete(
    store: &mut Store,
    w: &Write,
    name: &str,
    opts: &DeleteOptions,
) -> Result<Value, ApiError> {
    let key = w.key(name);
    let current = store
        .get(&key)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&w.rt.gr(), name))?;
    let object = &current.object;
    if let Some(uid) = &opts.uid
        && uid != meta_str(object, "uid")
    {
        let why = format!(
            "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
            meta_str(object, "uid")
        );
        return Err(ApiError::conflict(&w.rt.gr(), name, &why));
    }
    if let Some(rv) = &opts.resource_version
        && rv != meta_str(object, "resourceVersion")
    {
        let why = format!(
            "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
            meta_str(object, "resourceVersion")
        );
        return Err(ApiError::conflict(&w.rt.gr(), name, &why));
    }
    let before = finalizers(object);
    let after = with_policy(before.clone(), opts.propagation.as_deref());
    let deleting = object.pointer("/metadata/deletionTimestamp").is_some();
    let mut next = object.clone();
    if after.is_empty() {
        drop(
            next["metadata"]
                .as_object_mut()
                .and_then(|m| m.remove("finalizers")),
        );
    } else {
        next["metadata"]["finalizers"] = json!(after);
    }
    if deleting {
        if before == after || w.dry_run {
            return Ok(next);
        }
        if finalized(w.rt, &next) {
            return Ok(store.remove(&key).expect("the object is stored"));
        }
        return Ok(store.put(&key, next, current.managers.clone()));
    }
    if w.rt.flavour == Flavour::Namespace {
        next["status"]["phase"] = json!("Terminating");
    }
    if finalized(w.rt, &next) {
        if w.dry_run {
            return Ok(deleted_response(w.rt, next));
        }
        let gone = store.remove(&key).expect("the object is stored");
        return Ok(deleted_response(w.rt, gone));
    }
    next["metadata"]["deletionTimestamp"] = Value::String(now());
    next["metadata"]["deletionGracePeriodSeconds"] = json!(0);
    if w.dry_run {
        return Ok(next);
    }
    Ok(store.put(&key, next, current.managers.clone()))
}

/// Marks an object deleted on behalf of a controller (garbage collector, namespace or CRD
/// cleanup), with the given propagation policy.
pub fn delete_as_controller(store: &mut Store, key: &Key, policy: Option<&str>) {
    let Some(rt) = store.registry.by_qualified(&key.resource) else {
        return;
    };
    let w = Write {
        rt: &rt,
        namespace: key.namespace.clone(),
        subresource: None,
        manager: String::new(),
        dry_run: false,
        field_validation: crate::write::FieldValidation::Ignore,
        warnings: Vec::new(),
    };
    let opts = DeleteOptions {
        propagation: policy.map(str::to_owned),
        ..DeleteOptions::default()
    };
    let _ = delete(store, &w, &key.name, &opts);
}
