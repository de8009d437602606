//! The non-apply patch kinds, applied to the stored JSON as the real server's patcher does.

use serde_json::{Map, Value};

use crate::status::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    Strategic,
    Apply,
}

impl PatchType {
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        match content_type {
            "application/json-patch+json" => Some(Self::Json),
            "application/merge-patch+json" => Some(Self::Merge),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Some(Self::Apply),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json-patch+json",
            Self::Merge => "application/merge-patch+json",
            Self::Strategic => "application/strategic-merge-patch+json",
            Self::Apply => "application/apply-patch+yaml",
        }
    }
}

/// Applies a JSON, merge or strategic-merge patch to `doc`.
pub fn apply(kind: PatchType, doc: &mut Value, body: &[u8]) -> Result<(), ApiError> {
    let bad = |e: serde_json::Error| ApiError::bad_request(e.to_string());
    match kind {
        PatchType::Merge => json_patch::merge(doc, &serde_json::from_slice(body).map_err(bad)?),
        PatchType::Strategic => strategic(doc, &serde_json::from_slice(body).map_err(bad)?),
        PatchType::Json => json(doc, serde_json::from_slice(body).map_err(bad)?)?,
        PatchType::Apply => unreachable!("apply is not a patch of the stored JSON"),
    }
    Ok(())
}

fn parent_exists(doc: &Value, path: &str) -> bool {
    match path.rsplit_once('/') {
        Some(("", _)) | None => true,
        Some((parent, _)) => doc
            .pointer(parent)
            .is_some_and(|p| p.is_object() || p.is_array()),
    }
}

/// RFC 6902, with `test` as evanphx/json-patch (the real server's library) does it: a test
/// of a missing member against `null` passes when its parent exists; a failed test is 422.
fn json(doc: &mut Value, ops: json_patch::Patch) -> Result<(), ApiError> {
    for op in ops.0 {
        if let json_patch::PatchOperation::Test(test) = &op {
            let path = test.path.as_str();
            if !parent_exists(doc, path) {
                return Err(ApiError::unprocessable(&format!(
                    "test operation does not apply: is missing path: {path}: missing value"
                )));
            }
            let actual = doc.pointer(path).filter(|v| !v.is_null());
            let passes = match actual {
                None => test.value.is_null(),
                Some(v) => *v == test.value,
            };
            if !passes {
                return Err(ApiError::unprocessable(&format!(
                    "testing value {path} failed: test failed"
                )));
            }
            continue;
        }
        json_patch::patch(doc, std::slice::from_ref(&op))
            .map_err(|e| ApiError::unprocessable(&e.to_string()))?;
    }
    Ok(())
}

/// The list fields of the built-in kinds served here that strategic merge merges instead of
/// replacing (`patchStrategy: merge`), with their merge key; `None` for a list of scalars.
fn merge_key(path: &[&str]) -> Option<Option<&'static str>> {
    match path {
        ["metadata", "finalizers"] => Some(None),
        ["metadata", "ownerReferences"] => Some(Some("uid")),
        _ => None,
    }
}

/// Strategic merge patch for the built-in kinds: a merge patch, except for ObjectMeta's
/// merge lists and the `$patch`/`$deleteFromPrimitiveList` directives.
fn strategic(doc: &mut Value, patch: &Value) {
    strategic_at(doc, patch, &mut Vec::new());
}

fn strategic_at(doc: &mut Value, patch: &Value, path: &mut Vec<String>) {
    let Some(patch) = patch.as_object() else {
        *doc = patch.clone();
        return;
    };
    if patch.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut clean = patch.clone();
        clean.remove("$patch");
        *doc = Value::Object(clean);
        return;
    }
    if !doc.is_object() {
        *doc = Value::Object(Map::new());
    }
    for (key, value) in patch {
        if let Some(list) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(items), Some(gone)) = (
                doc.get_mut(list).and_then(Value::as_array_mut),
                value.as_array(),
            ) {
                items.retain(|i| !gone.contains(i));
            }
            continue;
        }
        if key.starts_with('$') {
            continue;
        }
        let map = doc.as_object_mut().expect("made an object above");
        if value.is_null() {
            map.remove(key);
            continue;
        }
        let refs: Vec<&str> = path
            .iter()
            .map(String::as_str)
            .chain([key.as_str()])
            .collect();
        match (merge_key(&refs), map.get_mut(key), value) {
            (Some(k), Some(Value::Array(existing)), Value::Array(items)) => {
                merge_list(existing, items, k)
            }
            (_, Some(existing), Value::Object(_)) if existing.is_object() => {
                path.push(key.clone());
                strategic_at(existing, value, path);
                path.pop();
            }
            _ => {
                map.insert(key.clone(), value.clone());
            }
        }
    }
}

fn merge_list(existing: &mut Vec<Value>, items: &[Value], key: Option<&str>) {
    for item in items {
        let position = match key {
            None => existing.iter().position(|e| e == item),
            Some(k) => existing
                .iter()
                .position(|e| e.get(k).is_some() && e.get(k) == item.get(k)),
        };
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (position, delete) {
            (Some(i), true) => {
                existing.remove(i);
            }
            (Some(i), false) => existing[i] = item.clone(),
            (None, false) => existing.push(item.clone()),
            (None, true) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_null_test_passes_for_a_missing_member_as_the_real_server_does() {
        let mut doc = json!({"metadata": {"name": "a"}});
        let ops = json!([{"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": ["x/y"]}]);
        apply(PatchType::Json, &mut doc, ops.to_string().as_bytes()).unwrap();
        assert_eq!(
            doc,
            json!({"metadata": {"name": "a", "finalizers": ["x/y"]}})
        );
        let failing = json!([{"op": "test", "path": "/metadata/finalizers/0", "value": "other"}]);
        let err = apply(PatchType::Json, &mut doc, failing.to_string().as_bytes()).unwrap_err();
        assert_eq!((err.code, err.reason), (422, "Invalid"));
    }

    #[test]
    fn strategic_merge_unions_finalizers_and_replaces_other_lists() {
        let mut doc = json!({"metadata": {"finalizers": ["a"]}, "spec": {"list": [1]}});
        let patch = json!({"metadata": {"finalizers": ["b"]}, "spec": {"list": [2]}});
        apply(PatchType::Strategic, &mut doc, patch.to_string().as_bytes()).unwrap();
        assert_eq!(
            doc,
            json!({"metadata": {"finalizers": ["a", "b"]}, "spec": {"list": [2]}})
        );
        let remove = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}});
        apply(
            PatchType::Strategic,
            &mut doc,
            remove.to_string().as_bytes(),
        )
        .unwrap();
        assert_eq!(doc["metadata"]["finalizers"], json!(["b"]));
    }
}
