//! Field ownership for server-side apply: which manager set which field, in the `f:`
//! notation of `metadata.managedFields`.
//!
//! Lists are atomic here (one field for the whole list), which is what the real server does
//! for lists without `x-kubernetes-list-type: map|set`; the map- and set-lists of metadata
//! are written by the operator with JSON patch or as a whole, so atomic ownership suffices.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

/// A field path: object keys from the root.
pub type Path = Vec<String>;

/// Fields the server owns itself, never a manager's.
fn server_owned(path: &[String]) -> bool {
    matches!(
        path.first().map(String::as_str),
        Some("apiVersion" | "kind")
    ) || (path.first().map(String::as_str) == Some("metadata")
        && matches!(
            path.get(1).map(String::as_str),
            Some(
                "name"
                    | "namespace"
                    | "uid"
                    | "resourceVersion"
                    | "generation"
                    | "creationTimestamp"
                    | "managedFields"
                    | "deletionTimestamp"
                    | "deletionGracePeriodSeconds"
                    | "selfLink"
            )
        ))
}

/// Every leaf field of `value` (objects are recursed into; lists and scalars are leaves).
pub fn leaves(value: &Value) -> BTreeSet<Path> {
    let mut out = BTreeSet::new();
    walk(value, &mut Vec::new(), &mut out);
    out.retain(|p| !server_owned(p));
    out
}

fn walk(value: &Value, path: &mut Path, out: &mut BTreeSet<Path>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                path.push(k.clone());
                walk(v, path, out);
                path.pop();
            }
        }
        _ => {
            if !path.is_empty() {
                out.insert(path.clone());
            }
        }
    }
}

pub fn get<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, k| v.get(k))
}

/// Removes a field, and any object left empty on the way up.
pub fn remove(value: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    if let Some(Value::Object(parent)) = parents.iter().try_fold(&mut *value, |v, k| v.get_mut(k)) {
        parent.remove(last);
    }
    if parents.is_empty() {
        return;
    }
    if get(value, parents).is_some_and(|v| v.as_object().is_some_and(Map::is_empty)) {
        remove(value, parents);
    }
}

/// Deep-merges `patch` into `target`: objects merge key by key, anything else replaces.
pub fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                match t.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => merge(existing, v),
                    _ => {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

/// One manager's fields, and whether it applied or updated them.
#[derive(Debug, Clone, Default)]
pub struct Owned {
    pub operation: String,
    pub fields: BTreeSet<Path>,
}

/// Ownership of one object's fields, by manager.
pub type Managers = BTreeMap<String, Owned>;

/// `metadata.managedFields` as the real server renders it.
pub fn render(managers: &Managers, api_version: &str, time: &str) -> Value {
    let entries: Vec<Value> = managers
        .iter()
        .filter(|(_, o)| !o.fields.is_empty())
        .map(|(manager, owned)| {
            let mut tree = json!({});
            for path in &owned.fields {
                let mut node = &mut tree;
                for key in path {
                    node = node
                        .as_object_mut()
                        .expect("built from objects")
                        .entry(format!("f:{key}"))
                        .or_insert_with(|| json!({}));
                }
            }
            json!({
                "manager": manager,
                "operation": owned.operation,
                "apiVersion": api_version,
                "time": time,
                "fieldsType": "FieldsV1",
                "fieldsV1": tree,
            })
        })
        .collect();
    Value::Array(entries)
}

/// The dotted form errors use: `.spec.x`.
pub fn dotted(path: &[String]) -> String {
    path.iter().map(|k| format!(".{k}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_skip_server_fields_and_treat_lists_as_one() {
        let v = json!({"apiVersion": "v1", "metadata": {"name": "x", "labels": {"a": "b"}}, "data": {"k": "v"}, "list": [1, 2]});
        let got: Vec<String> = leaves(&v).iter().map(|p| dotted(p)).collect();
        assert_eq!(got, [".data.k", ".list", ".metadata.labels.a"]);
    }

    #[test]
    fn removing_a_field_prunes_empty_parents() {
        let mut v = json!({"data": {"k": "v"}, "x": 1});
        remove(&mut v, &["data".into(), "k".into()]);
        assert_eq!(v, json!({"x": 1}));
    }
}
