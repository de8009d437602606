//! Create, replace and patch (apply included), in the order the real server's handlers and
//! generic registry take them: decode, preconditions, field ownership, strategy,
//! validation, admission, and a write that is skipped when nothing changed.

use serde_json::Value;

use crate::fieldpath::Schema;
use crate::ownership::{self, ManagerId, Managers, Operation};
use crate::patch::{self, PatchType};
use crate::resource::{Flavour, ResourceType};
use crate::status::{ApiError, FieldError, GroupResource};
use crate::store::{Key, Store, Stored};
use crate::strategy::{self, now};
use crate::validation;

/// `fieldValidation`: what to do about fields the schema does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    Strict,
    Warn,
    Ignore,
}

/// One write request.
pub struct Write<'a> {
    pub rt: &'a ResourceType,
    /// `""` for cluster-scoped resources.
    pub namespace: String,
    pub subresource: Option<String>,
    /// `fieldManager`, or the User-Agent's product as the real server falls back to.
    pub manager: String,
    pub dry_run: bool,
    pub field_validation: FieldValidation,
    /// `Warning` headers for the response.
    pub warnings: Vec<String>,
}

impl Write<'_> {
    pub fn key(&self, name: &str) -> Key {
        Key {
            resource: self.rt.qualified(),
            namespace: self.namespace.clone(),
            name: name.to_owned(),
        }
    }

    fn schema(&self) -> Schema<'_> {
        Schema::root(self.rt.schema.as_deref())
    }

    fn id(&self, operation: Operation) -> ManagerId {
        ManagerId::new(
            &self.manager,
            operation,
            self.subresource.as_deref(),
            &self.rt.api_version(),
        )
    }

    /// Decodes a body; unknown fields fail a Strict request and warn otherwise.
    fn decode(&mut self, object: &mut Value, fill_defaults: bool) -> Result<(), ApiError> {
        let dropped = strategy::decode(self.rt, object, fill_defaults)?;
        let messages: Vec<String> = dropped
            .iter()
            .map(|f| format!("unknown field \"{f}\""))
            .collect();
        match self.field_validation {
            FieldValidation::Strict if !messages.is_empty() => Err(ApiError::bad_request(format!(
                "strict decoding error: {}",
                messages.join(", ")
            ))),
            FieldValidation::Ignore => Ok(()),
            _ => {
                self.warnings.extend(messages);
                Ok(())
            }
        }
    }

    fn invalid(&self, name: &str, errors: &[FieldError]) -> ApiError {
        ApiError::invalid(&self.rt.kind, &self.rt.group, name, errors)
    }

    fn validate(&self, object: &Value, old: Option<&Value>) -> Result<(), ApiError> {
        let errors = validation::check(self.rt, object, old);
        if errors.is_empty() {
            return Ok(());
        }
        Err(self.invalid(meta_str(object, "name"), &errors))
    }

    /// The NamespaceLifecycle admission plugin: content goes only into a Namespace that
    /// exists and is not being deleted.
    fn admit_namespace(&self, store: &Store, name: &str) -> Result<(), ApiError> {
        if !self.rt.namespaced {
            return Ok(());
        }
        let key = Key {
            resource: "namespaces".into(),
            namespace: String::new(),
            name: self.namespace.clone(),
        };
        let Some(ns) = store.get(&key) else {
            return Err(ApiError::not_found(
                &GroupResource::new("", "namespaces"),
                &self.namespace,
            ));
        };
        if ns.object.pointer("/metadata/deletionTimestamp").is_some() {
            let why = format!(
                "unable to create new content in namespace {} because it is being terminated",
                self.namespace
            );
            let cause = serde_json::json!({"reason": "NamespaceTerminating", "message": format!("namespace {} is being terminated", self.namespace), "field": "metadata.namespace"});
            return Err(ApiError::forbidden(&self.rt.gr(), name, &why, Some(cause)));
        }
        Ok(())
    }

    fn check_identity(&self, object: &Value, name: Option<&str>) -> Result<(), ApiError> {
        if let Some(url_name) = name {
            let sent = meta_str(object, "name");
            if !sent.is_empty() && sent != url_name {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({sent}) does not match the name on the URL ({url_name})"
                )));
            }
        }
        let sent_ns = meta_str(object, "namespace");
        if self.rt.namespaced && !sent_ns.is_empty() && sent_ns != self.namespace {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        Ok(())
    }
}

pub fn meta_str<'v>(object: &'v Value, field: &str) -> &'v str {
    object
        .get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Characters `generateName` suffixes are made of (no vowels, no look-alikes).
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn generated(prefix: &str) -> String {
    let suffix: String = (0..5)
        .map(|_| NAME_ALPHABET[rand::random_range(0..NAME_ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{suffix}")
}

/// POST: a new object.
pub fn create(store: &mut Store, w: &mut Write, mut object: Value) -> Result<Value, ApiError> {
    w.decode(&mut object, true)?;
    w.check_identity(&object, None)?;
    let name = match (meta_str(&object, "name"), meta_str(&object, "generateName")) {
        ("", "") => {
            let e = FieldError::required("metadata.name", "name or generateName is required");
            return Err(w.invalid("", &[e]));
        }
        ("", prefix) => generated(prefix),
        (name, _) => name.to_owned(),
    };
    if !meta_str(&object, "resourceVersion").is_empty() {
        return Err(ApiError::internal(
            "resourceVersion should not be set on objects to be created",
        ));
    }
    let mut managers = Managers::default();
    let mut owned = object.clone();
    if w.rt.status_subresource
        && let Some(o) = owned.as_object_mut()
    {
        o.remove("status");
    }
    managers.record_update(
        &w.id(Operation::Update),
        &Value::Null,
        &owned,
        w.schema(),
        &now(),
    );
    finish_create(store, w, &name, object, managers)
}

/// The part of a create shared with apply: strategy, validation, admission, storage.
fn finish_create(
    store: &mut Store,
    w: &Write,
    name: &str,
    mut object: Value,
    mut managers: Managers,
) -> Result<Value, ApiError> {
    strategy::prepare_create(w.rt, &mut object, &w.namespace, name);
    managers.retain_present(&object, w.schema());
    w.validate(&object, None)?;
    w.admit_namespace(store, name)?;
    let key = w.key(name);
    if store.get(&key).is_some() {
        return Err(ApiError::already_exists(&w.rt.gr(), name));
    }
    if w.dry_run {
        return Ok(object);
    }
    Ok(store.put(&key, object, managers))
}

/// PUT: replaces an object (or its status), conditionally on the resourceVersion it names.
pub fn replace(
    store: &mut Store,
    w: &mut Write,
    name: &str,
    mut object: Value,
) -> Result<(Value, bool), ApiError> {
    let key = w.key(name);
    w.check_identity(&object, Some(name))?;
    let Some(current) = store.get(&key).cloned() else {
        if w.rt.create_on_update() && w.subresource.is_none() {
            object["metadata"]["name"] = Value::String(name.to_owned());
            return create(store, w, object).map(|o| (o, true));
        }
        return Err(ApiError::not_found(&w.rt.gr(), name));
    };
    let sent = meta_str(&object, "resourceVersion");
    if sent.is_empty() && !w.rt.unconditional_update() {
        let e = FieldError {
            value: Some("0x0".into()),
            ..FieldError::invalid(
                "metadata.resourceVersion",
                &Value::Null,
                "must be specified for an update",
            )
        };
        return Err(w.invalid(name, &[e]));
    }
    if !sent.is_empty() && sent != meta_str(&current.object, "resourceVersion") {
        return Err(ApiError::stale(&w.rt.gr(), name));
    }
    w.decode(&mut object, true)?;
    let mut managers = current.managers.clone();
    update(
        store,
        w,
        &key,
        &current,
        object,
        &mut managers,
        Some(w.id(Operation::Update)),
    )
    .map(|o| (o, false))
}

/// PATCH with a JSON, merge or strategic-merge patch, or a server-side apply.
pub fn patch(
    store: &mut Store,
    w: &mut Write,
    name: &str,
    kind: PatchType,
    body: &[u8],
    force: bool,
) -> Result<(Value, bool), ApiError> {
    if !w.rt.patch_types().contains(&kind.content_type()) {
        return Err(ApiError::unsupported_media_type(&w.rt.patch_types()));
    }
    if kind == PatchType::Apply {
        return apply(store, w, name, body, force);
    }
    if force {
        let e = FieldError::forbidden("force", "may not be specified for non-apply patch");
        return Err(ApiError::invalid("PatchOptions", "meta.k8s.io", "", &[e]));
    }
    let key = w.key(name);
    let current = store
        .get(&key)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&w.rt.gr(), name))?;
    let mut object = current.object.clone();
    patch::apply(kind, &mut object, body)?;
    // A patch is unconditional unless it names a resourceVersion itself.
    let sent = meta_str(&object, "resourceVersion");
    if !sent.is_empty() && sent != meta_str(&current.object, "resourceVersion") {
        return Err(ApiError::stale(&w.rt.gr(), name));
    }
    w.check_identity(&object, Some(name))?;
    w.decode(&mut object, true)?;
    let mut managers = current.managers.clone();
    update(
        store,
        w,
        &key,
        &current,
        object,
        &mut managers,
        Some(w.id(Operation::Update)),
    )
    .map(|o| (o, false))
}

fn parse_apply_body(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .or_else(|_| serde_yaml::from_slice::<Value>(body))
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))
}

/// Server-side apply: create if absent, else merge with ownership and conflicts.
fn apply(
    store: &mut Store,
    w: &mut Write,
    name: &str,
    body: &[u8],
    force: bool,
) -> Result<(Value, bool), ApiError> {
    if w.manager.is_empty() {
        let e = FieldError::required("fieldManager", "is required for apply patch");
        return Err(ApiError::invalid("PatchOptions", "meta.k8s.io", "", &[e]));
    }
    let mut config = parse_apply_body(body)?;
    if config
        .pointer("/metadata/managedFields")
        .is_some_and(|m| !m.is_null())
    {
        return Err(ApiError::bad_request("metadata.managedFields must be nil"));
    }
    w.check_identity(&config, Some(name))?;
    w.decode(&mut config, false)?;
    config["metadata"]["name"] = Value::String(name.to_owned());
    reset_fields(w.rt, &mut config, w.subresource.as_deref());
    let key = w.key(name);
    let schema = w.schema();
    let id = w.id(Operation::Apply);
    let Some(current) = store.get(&key).cloned() else {
        if w.subresource.is_some() {
            return Err(ApiError::not_found(&w.rt.gr(), name));
        }
        let mut managers = Managers::default();
        ownership::apply(
            &Value::Null,
            &mut managers,
            &config,
            &id,
            force,
            schema,
            &now(),
        )?;
        let mut object = config;
        strategy::decode(w.rt, &mut object, true)?;
        if !meta_str(&object, "resourceVersion").is_empty() {
            return Err(ApiError::not_found(&w.rt.gr(), name));
        }
        return finish_create(store, w, name, object, managers).map(|o| (o, true));
    };
    let sent = meta_str(&config, "resourceVersion");
    if !sent.is_empty() && sent != meta_str(&current.object, "resourceVersion") {
        return Err(ApiError::stale(&w.rt.gr(), name));
    }
    let mut managers = current.managers.clone();
    let mut merged = ownership::apply(
        &current.object,
        &mut managers,
        &config,
        &id,
        force,
        schema,
        &now(),
    )?;
    strategy::decode(w.rt, &mut merged, true)?;
    update(store, w, &key, &current, merged, &mut managers, None).map(|o| (o, false))
}

/// Fields an endpoint does not write (`GetResetFields`): status on the main resource of a
/// kind with a status subresource, everything but status on `/status`.
fn reset_fields(rt: &ResourceType, config: &mut Value, subresource: Option<&str>) {
    let Some(map) = config.as_object_mut() else {
        return;
    };
    if subresource == Some("status") {
        map.retain(|k, _| matches!(k.as_str(), "apiVersion" | "kind" | "metadata" | "status"));
        if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.retain(|k, _| matches!(k.as_str(), "name" | "namespace" | "resourceVersion"));
        }
    } else if rt.status_subresource {
        map.remove("status");
    }
}

/// Whether nothing holds a deleting object any more.
pub fn finalized(rt: &ResourceType, object: &Value) -> bool {
    let empty = |p: &str| {
        object
            .pointer(p)
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
    };
    empty("/metadata/finalizers") && (rt.flavour != Flavour::Namespace || empty("/spec/finalizers"))
}

/// The tail every update shares: strategy, ownership, validation, then a write unless the
/// object is unchanged, or a deletion when the update removed the last finalizer.
pub fn update(
    store: &mut Store,
    w: &Write,
    key: &Key,
    current: &Stored,
    mut object: Value,
    managers: &mut Managers,
    updater: Option<ManagerId>,
) -> Result<Value, ApiError> {
    strategy::prepare_update(w.rt, &mut object, &current.object, w.subresource.as_deref());
    match updater {
        Some(id) => managers.record_update(&id, &current.object, &object, w.schema(), &now()),
        None => managers.retain_present(&object, w.schema()),
    }
    w.validate(&object, Some(&current.object))?;
    let mut candidate = object.clone();
    candidate["metadata"]["resourceVersion"] =
        current.object["metadata"]["resourceVersion"].clone();
    let rendered = managers.render();
    match rendered.as_array().is_some_and(Vec::is_empty) {
        true => drop(
            candidate["metadata"]
                .as_object_mut()
                .and_then(|m| m.remove("managedFields")),
        ),
        false => candidate["metadata"]["managedFields"] = rendered,
    }
    if candidate == current.object || w.dry_run {
        return Ok(candidate);
    }
    let deleting = current
        .object
        .pointer("/metadata/deletionTimestamp")
        .is_some();
    if deleting && finalized(w.rt, &object) {
        // The real registry does not store such an update: it deletes the object as stored.
        return Ok(store.remove(key).expect("the object is stored"));
    }
    Ok(store.put(key, object, managers.clone()))
}
