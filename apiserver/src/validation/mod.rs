//! What the real server checks before it stores an object: ObjectMeta, the built-in kinds'
//! own rules, and for custom resources the CRD's structural schema and its CEL rules
//! (`x-kubernetes-validations`, evaluated with kube-cel), with validation ratcheting on
//! update: an error on a value the update did not change is not reported.

pub mod builtin;
pub mod meta;
pub mod schema;

use serde_json::Value;

use crate::resource::{Flavour, ResourceType};
use crate::status::{FieldError, FieldErrorKind};

/// Every error the object has; `old` is the stored object on an update.
pub fn check(rt: &ResourceType, object: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let metadata = object.get("metadata").cloned().unwrap_or_default();
    let rule = if rt.flavour == Flavour::Namespace {
        meta::NameRule::Label
    } else {
        meta::NameRule::Subdomain
    };
    meta::validate(&metadata, rule, &mut errors);
    if let Some(old) = old {
        meta::validate_update(&metadata, &old["metadata"], &mut errors);
    }
    let namespace = metadata
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match (rt.flavour, old) {
        (Flavour::Secret, old) => {
            builtin::secret(object, &mut errors);
            if let Some(old) = old {
                builtin::secret_update(object, old, &mut errors);
            }
        }
        (Flavour::Event, None) => builtin::event(object, namespace, &mut errors),
        (Flavour::Event, Some(old)) => builtin::event_update(object, old, &mut errors),
        (Flavour::Lease, _) => builtin::lease(object, &mut errors),
        (Flavour::Namespace, _) => builtin::namespace(object, &mut errors),
        (Flavour::Crd, _) => builtin::crd(object, &mut errors),
        (Flavour::Custom, _) => {}
    }
    if let Some(schema) = &rt.schema {
        let mut found = schema::check_object(schema, object);
        found.extend(cel(schema, object, old));
        if let Some(old) = old {
            found.retain(|e| !unchanged(e, object, old));
        }
        errors.extend(found);
    }
    errors
}

/// CEL rules, as the real server reports a failed one: `Invalid value: "<type>": <message>`
/// (or the rule's `reason`). Rules kube-cel cannot evaluate are skipped with a warning: a
/// real cluster would evaluate them, so rejecting here would be a false failure.
fn cel(schema: &Value, object: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let Err(failures) = kube_cel::validate(schema, object, old) else {
        return Vec::new();
    };
    let mut errors = Vec::new();
    for failure in failures.iter() {
        let path = failure.field_path.as_str();
        match failure.kind {
            kube_cel::ErrorKind::ValidationFailure | kube_cel::ErrorKind::InvalidResult => {
                let message = failure.message.as_str();
                errors.push(match failure.reason.as_deref() {
                    Some("FieldValueForbidden") => FieldError::forbidden(path, message),
                    Some("FieldValueRequired") => FieldError::required(path, message),
                    Some("FieldValueDuplicate") => FieldError {
                        detail: message.to_owned(),
                        ..FieldError::duplicate(path, &Value::from(schema_type(schema, path)))
                    },
                    _ => {
                        FieldError::invalid(path, &Value::from(schema_type(schema, path)), message)
                    }
                });
            }
            _ => {
                tracing::warn!(rule = %failure.rule, error = %failure.message, "plugboard-apiserver cannot evaluate this CEL rule; a real cluster would")
            }
        }
    }
    errors
}

/// Splits `spec.items[0].name` (or `data[tls.crt]`) into keys and indexes.
fn segments(field: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        match c {
            '.' => out.push(std::mem::take(&mut current)),
            '[' => {
                out.push(std::mem::take(&mut current));
                out.push(chars.by_ref().take_while(|c| *c != ']').collect());
            }
            c => current.push(c),
        }
    }
    out.push(current);
    out.retain(|s| !s.is_empty());
    out
}

fn lookup<'v>(value: &'v Value, path: &[String]) -> Option<&'v Value> {
    path.iter().try_fold(value, |v, seg| match v {
        Value::Array(items) => seg.parse::<usize>().ok().and_then(|i| items.get(i)),
        other => other.get(seg),
    })
}

/// Ratcheting: the value an error is about (its parent for a missing field) is the same
/// before and after the update.
fn unchanged(error: &FieldError, new: &Value, old: &Value) -> bool {
    let mut path = segments(&error.field);
    if error.kind == FieldErrorKind::Required {
        path.pop();
    }
    if path.is_empty() {
        return false;
    }
    let before = lookup(old, &path);
    before.is_some() && before == lookup(new, &path)
}

/// The schema `type` at a field path, as CEL failures print it.
fn schema_type(schema: &Value, field: &str) -> String {
    let mut node = schema;
    for seg in segments(field) {
        let next = if seg.parse::<usize>().is_ok() {
            node.get("items")
        } else {
            node.get("properties")
                .and_then(|p| p.get(&seg))
                .or_else(|| node.get("additionalProperties"))
        };
        match next {
            Some(n) => node = n,
            None => return "object".to_owned(),
        }
    }
    node.get("type")
        .and_then(Value::as_str)
        .unwrap_or("object")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn paths_split_into_keys_and_indexes() {
        assert_eq!(
            segments("spec.items[0].name"),
            ["spec", "items", "0", "name"]
        );
        assert_eq!(segments("data[tls.crt]"), ["data", "tls.crt"]);
    }

    #[test]
    fn cel_rules_fail_like_the_real_server_and_transition_rules_see_the_old_object() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "ref": {"type": "object", "properties": {"name": {"type": "string"}},
                "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "ref is immutable"}]},
        }}}});
        let old = json!({"spec": {"ref": {"name": "a"}}});
        assert!(cel(&schema, &old, None).is_empty());
        let new = json!({"spec": {"ref": {"name": "b"}}});
        let errors: Vec<String> = cel(&schema, &new, Some(&old))
            .iter()
            .map(FieldError::message)
            .collect();
        assert_eq!(
            errors,
            ["spec.ref: Invalid value: \"object\": ref is immutable"]
        );
    }
}
