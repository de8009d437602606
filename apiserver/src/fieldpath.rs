//! Field sets as structured-merge-diff sees them: which fields of an object a manager owns,
//! how lists are keyed, how an applied configuration merges into a live object, and the
//! `f:`/`k:`/`v:` notation of `metadata.managedFields`.
//!
//! List and map semantics come from the schema, as on a real server: a list is atomic unless
//! its schema says `x-kubernetes-list-type: set` or `map` (with `x-kubernetes-list-map-keys`);
//! an object is granular unless `x-kubernetes-map-type: atomic`. Fields the schema does not
//! describe are granular objects and atomic lists. `metadata` follows ObjectMeta: `finalizers`
//! is a set, `ownerReferences` a map keyed by `uid`, `labels` and `annotations` granular maps.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use serde_json::{Map, Value, json};

/// One step of a field path.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Pe {
    Field(String),
    /// An item of a map-list, named by its key fields: (name, JSON value), sorted by name.
    Key(Vec<(String, String)>),
    /// An item of a set-list, named by its JSON value.
    Value(String),
}

pub type FieldPath = Vec<Pe>;
pub type FieldSet = BTreeSet<FieldPath>;

static META_SCHEMA: LazyLock<Value> = LazyLock::new(|| {
    json!({"type": "object", "properties": {
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "finalizers": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
        "ownerReferences": {"type": "array", "items": {"type": "object"},
            "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["uid"]},
    }})
});

/// A position in a schema; `None` where the schema says nothing (unknown fields).
#[derive(Debug, Clone, Copy)]
pub struct Schema<'a> {
    node: Option<&'a Value>,
    root: bool,
}

enum ListKind<'a> {
    Atomic,
    Set,
    Map(Vec<&'a str>),
}

impl<'a> Schema<'a> {
    /// The schema of a whole object; `metadata` is always ObjectMeta's.
    pub fn root(node: Option<&'a Value>) -> Self {
        Self { node, root: true }
    }

    pub fn child(self, key: &str) -> Schema<'a> {
        if self.root && key == "metadata" {
            return Schema {
                node: Some(&META_SCHEMA),
                root: false,
            };
        }
        let node = self.node.and_then(|n| {
            n.get("properties")
                .and_then(|p| p.get(key))
                .or_else(|| n.get("additionalProperties").filter(|a| a.is_object()))
        });
        Schema { node, root: false }
    }

    pub fn items(self) -> Schema<'a> {
        Schema {
            node: self.node.and_then(|n| n.get("items")),
            root: false,
        }
    }

    fn list_kind(self) -> ListKind<'a> {
        let ext = |k: &str| self.node.and_then(|n| n.get(k));
        match ext("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("set") => ListKind::Set,
            Some("map") => ListKind::Map(
                ext("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect(),
            ),
            _ => ListKind::Atomic,
        }
    }

    fn atomic_map(self) -> bool {
        self.node
            .and_then(|n| n.get("x-kubernetes-map-type"))
            .and_then(Value::as_str)
            == Some("atomic")
    }
}

/// Fields no manager owns: the server sets them, or they only identify the object.
fn unowned(path: &[Pe]) -> bool {
    let field = |i: usize| match path.get(i) {
        Some(Pe::Field(f)) => Some(f.as_str()),
        _ => None,
    };
    match (field(0), field(1)) {
        (Some("apiVersion" | "kind"), None) => true,
        (Some("metadata"), Some(f)) => matches!(
            f,
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
        ),
        _ => false,
    }
}

fn item_key(item: &Value, keys: &[&str]) -> Option<Pe> {
    let obj = item.as_object()?;
    let mut pairs: Vec<(String, String)> = keys
        .iter()
        .map(|k| obj.get(*k).map(|v| ((*k).to_owned(), v.to_string())))
        .collect::<Option<_>>()?;
    pairs.sort();
    Some(Pe::Key(pairs))
}

/// The fields `value` sets: leaves, atomic lists and maps, and the items of set- and
/// map-lists.
pub fn to_set(value: &Value, schema: Schema) -> FieldSet {
    let mut out = FieldSet::new();
    walk(value, schema, &mut Vec::new(), &mut out);
    out.retain(|p| !unowned(p));
    out
}

fn walk(value: &Value, schema: Schema, path: &mut FieldPath, out: &mut FieldSet) {
    match value {
        Value::Object(map) if !schema.atomic_map() => {
            for (k, v) in map {
                path.push(Pe::Field(k.clone()));
                walk(v, schema.child(k), path, out);
                path.pop();
            }
        }
        Value::Array(items) => match schema.list_kind() {
            ListKind::Set => {
                for item in items {
                    path.push(Pe::Value(item.to_string()));
                    out.insert(path.clone());
                    path.pop();
                }
            }
            ListKind::Map(keys) if items.iter().all(|i| item_key(i, &keys).is_some()) => {
                for item in items {
                    path.push(item_key(item, &keys).expect("checked above"));
                    out.insert(path.clone());
                    walk(item, schema.items(), path, out);
                    path.pop();
                }
            }
            _ => {
                out.insert(path.clone());
            }
        },
        _ => {
            if !path.is_empty() {
                out.insert(path.clone());
            }
        }
    }
}

/// Whether a JSON value is the one a key or set element was encoded from.
fn encodes(value: &Value, text: &str) -> bool {
    serde_json::from_str::<Value>(text).is_ok_and(|v| v == *value)
}

fn matches(item: &Value, pe: &Pe) -> bool {
    match pe {
        Pe::Key(pairs) => pairs
            .iter()
            .all(|(k, v)| item.get(k).is_some_and(|x| encodes(x, v))),
        Pe::Value(v) => encodes(item, v),
        Pe::Field(_) => false,
    }
}

fn step<'v>(value: &'v Value, pe: &Pe) -> Option<&'v Value> {
    match pe {
        Pe::Field(f) => value.get(f),
        other => value.as_array()?.iter().find(|i| matches(i, other)),
    }
}

pub fn get<'v>(value: &'v Value, path: &[Pe]) -> Option<&'v Value> {
    path.iter().try_fold(value, step)
}

/// Whether the path names a list item (present or not) rather than a value.
pub fn is_member(path: &[Pe]) -> bool {
    matches!(path.last(), Some(Pe::Key(_) | Pe::Value(_)))
}

/// Removes the field or list item `path` names. Maps emptied under `metadata` go too, as
/// ObjectMeta does not keep empty label or annotation maps.
pub fn remove(value: &mut Value, path: &[Pe]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = &mut *value;
    for pe in parents {
        let next = match pe {
            Pe::Field(f) => node.get_mut(f),
            other => node
                .as_array_mut()
                .and_then(|a| a.iter_mut().find(|i| matches(i, other))),
        };
        match next {
            Some(n) => node = n,
            None => return,
        }
    }
    match (last, node) {
        (Pe::Field(f), Value::Object(map)) => {
            map.remove(f);
        }
        (other, Value::Array(items)) => items.retain(|i| !matches(i, other)),
        _ => return,
    }
    let in_metadata = matches!(path.first(), Some(Pe::Field(f)) if f == "metadata");
    let emptied = get(value, parents).is_some_and(|p| {
        p.as_object().is_some_and(Map::is_empty) || p.as_array().is_some_and(Vec::is_empty)
    });
    if in_metadata && parents.len() > 1 && emptied {
        remove(value, parents);
    }
}

/// Merges an applied configuration into the live object: granular objects key by key,
/// set- and map-lists item by item (live order first, new items after), anything else
/// replaced.
pub fn merge(live: &mut Value, applied: &Value, schema: Schema) {
    match (live, applied) {
        (Value::Object(l), Value::Object(a)) if !schema.atomic_map() => {
            for (k, v) in a {
                match l.get_mut(k) {
                    Some(existing) => merge(existing, v, schema.child(k)),
                    None => {
                        l.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (Value::Array(l), Value::Array(a)) => match schema.list_kind() {
            ListKind::Set => {
                for item in a {
                    if !l.contains(item) {
                        l.push(item.clone());
                    }
                }
            }
            ListKind::Map(keys) => {
                for item in a {
                    let Some(key) = item_key(item, &keys) else {
                        continue;
                    };
                    match l.iter_mut().find(|i| matches(i, &key)) {
                        Some(existing) => merge(existing, item, schema.items()),
                        None => l.push(item.clone()),
                    }
                }
            }
            ListKind::Atomic => *l = a.clone(),
        },
        (l, a) => *l = a.clone(),
    }
}

fn encode(pe: &Pe) -> String {
    match pe {
        Pe::Field(f) => format!("f:{f}"),
        Pe::Key(pairs) => {
            let inner: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{}:{v}", Value::String(k.clone())))
                .collect();
            format!("k:{{{}}}", inner.join(","))
        }
        Pe::Value(v) => format!("v:{v}"),
    }
}

/// A field set in the FieldsV1 notation; a node that is itself a member and has children
/// carries `".": {}`.
pub fn render(set: &FieldSet) -> Value {
    let mut tree = json!({});
    for path in set {
        let mut node = &mut tree;
        for pe in path {
            node = node
                .as_object_mut()
                .expect("built from objects")
                .entry(encode(pe))
                .or_insert_with(|| json!({}));
        }
    }
    for path in set {
        let node = path
            .iter()
            .try_fold(&mut tree, |n, pe| n.get_mut(encode(pe)));
        if let Some(Value::Object(children)) = node
            && !children.is_empty()
        {
            children.insert(".".into(), json!({}));
        }
    }
    tree
}

/// A path as structured-merge-diff prints it in conflicts: `.spec.x`,
/// `.status.conditions[type="Ready"]`, `.metadata.finalizers[="a"]`.
pub fn dotted(path: &[Pe]) -> String {
    path.iter()
        .map(|pe| match pe {
            Pe::Field(f) => format!(".{f}"),
            Pe::Key(pairs) => {
                let inner: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("[{}]", inner.join(","))
            }
            Pe::Value(v) => format!("[={v}]"),
        })
        .collect()
}

/// The path of a plain field (`["spec", "x"]`).
#[cfg(test)]
pub fn field_path(fields: &[&str]) -> FieldPath {
    fields.iter().map(|f| Pe::Field((*f).to_owned())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conditions_schema() -> Value {
        json!({"type": "object", "properties": {"status": {"type": "object", "properties": {
            "conditions": {"type": "array", "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"], "items": {"type": "object"}},
            "tags": {"type": "array", "items": {"type": "string"}},
        }}}})
    }

    #[test]
    fn sets_skip_server_fields_and_key_list_items_by_schema() {
        let schema = conditions_schema();
        let v = json!({"apiVersion": "v1", "metadata": {"name": "x", "labels": {"a": "b"}, "finalizers": ["f/g"]},
            "status": {"tags": [1, 2], "conditions": [{"type": "Ready", "status": "True"}]}});
        let got: Vec<String> = to_set(&v, Schema::root(Some(&schema)))
            .iter()
            .map(|p| dotted(p))
            .collect();
        assert_eq!(
            got,
            [
                ".metadata.finalizers[=\"f/g\"]",
                ".metadata.labels.a",
                ".status.conditions[type=\"Ready\"]",
                ".status.conditions[type=\"Ready\"].status",
                ".status.conditions[type=\"Ready\"].type",
                ".status.tags",
            ]
        );
    }

    #[test]
    fn rendering_uses_the_fields_v1_notation() {
        let schema = conditions_schema();
        let v = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}, "metadata": {"finalizers": ["a"]}});
        let rendered = render(&to_set(&v, Schema::root(Some(&schema))));
        assert_eq!(
            rendered,
            json!({
                "f:metadata": {"f:finalizers": {"v:\"a\"": {}}},
                "f:status": {"f:conditions": {"k:{\"type\":\"Ready\"}": {".": {}, "f:status": {}, "f:type": {}}}},
            })
        );
    }

    #[test]
    fn merging_keeps_other_items_of_keyed_lists() {
        let schema = conditions_schema();
        let mut live =
            json!({"status": {"conditions": [{"type": "A", "status": "True"}], "tags": [1]}});
        let applied =
            json!({"status": {"conditions": [{"type": "B", "status": "False"}], "tags": [2]}});
        merge(&mut live, &applied, Schema::root(Some(&schema)));
        assert_eq!(
            live,
            json!({"status": {"conditions": [{"type": "A", "status": "True"}, {"type": "B", "status": "False"}], "tags": [2]}})
        );
    }

    #[test]
    fn removing_an_item_or_a_label_leaves_no_empty_metadata_map() {
        let mut v = json!({"metadata": {"labels": {"a": "b"}, "finalizers": ["x", "y"]}});
        remove(&mut v, &field_path(&["metadata", "labels", "a"]));
        remove(
            &mut v,
            &[
                Pe::Field("metadata".into()),
                Pe::Field("finalizers".into()),
                Pe::Value("\"x\"".into()),
            ],
        );
        assert_eq!(v, json!({"metadata": {"finalizers": ["y"]}}));
    }
}
