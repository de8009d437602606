//! Field ownership (`metadata.managedFields`): which manager set which field, how an update
//! moves ownership, and server-side apply with its conflicts, removals and `force`.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::fieldpath::{self, FieldSet, Schema};
use crate::status::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Operation {
    Apply,
    Update,
}

/// Who wrote: the real server keeps one entry per manager, operation and subresource (and,
/// for updates, API version).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagerId {
    pub manager: String,
    pub operation: Operation,
    pub subresource: String,
    pub api_version: String,
}

impl ManagerId {
    pub fn new(
        manager: &str,
        operation: Operation,
        subresource: Option<&str>,
        api_version: &str,
    ) -> Self {
        Self {
            manager: manager.to_owned(),
            operation,
            subresource: subresource.unwrap_or_default().to_owned(),
            api_version: api_version.to_owned(),
        }
    }

    fn same(&self, other: &ManagerId) -> bool {
        self.manager == other.manager
            && self.operation == other.operation
            && self.subresource == other.subresource
            && (self.operation == Operation::Apply || self.api_version == other.api_version)
    }

    /// As conflict messages print a manager: `"name"`, with the subresource and, for an
    /// update, the API version it wrote with.
    pub fn printed(&self) -> String {
        let mut s = Value::String(self.manager.clone()).to_string();
        if !self.subresource.is_empty() {
            s = format!(
                "{s} with subresource {}",
                Value::String(self.subresource.clone())
            );
        }
        if self.operation == Operation::Update {
            s = format!("{s} using {}", self.api_version);
        }
        s
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub id: ManagerId,
    pub time: String,
    pub fields: FieldSet,
}

/// All of one object's managers.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Managers(pub Vec<Entry>);

impl Managers {
    fn entry(&mut self, id: &ManagerId, now: &str) -> &mut Entry {
        let i = match self.0.iter().position(|e| e.id.same(id)) {
            Some(i) => i,
            None => {
                self.0.push(Entry {
                    id: id.clone(),
                    time: now.to_owned(),
                    fields: FieldSet::new(),
                });
                self.0.len() - 1
            }
        };
        &mut self.0[i]
    }

    /// An update (create, PUT, merge or JSON patch): the fields whose values it changed now
    /// belong to `id` alone; fields it removed belong to nobody.
    pub fn record_update(
        &mut self,
        id: &ManagerId,
        before: &Value,
        after: &Value,
        schema: Schema,
        now: &str,
    ) {
        let old = fieldpath::to_set(before, schema);
        let new = fieldpath::to_set(after, schema);
        let changed: FieldSet = new
            .iter()
            .filter(|p| {
                !old.contains(*p)
                    || (!fieldpath::is_member(p)
                        && fieldpath::get(before, p) != fieldpath::get(after, p))
            })
            .cloned()
            .collect();
        for entry in &mut self.0 {
            entry
                .fields
                .retain(|p| new.contains(p) && !changed.contains(p));
        }
        if !changed.is_empty() {
            let entry = self.entry(id, now);
            entry.fields.extend(changed);
            entry.time = now.to_owned();
        }
        self.0.retain(|e| !e.fields.is_empty());
    }

    /// Drops ownership of fields the object no longer has.
    pub fn retain_present(&mut self, object: &Value, schema: Schema) {
        let present = fieldpath::to_set(object, schema);
        for entry in &mut self.0 {
            entry.fields.retain(|p| present.contains(p));
        }
        self.0.retain(|e| !e.fields.is_empty());
    }

    /// `metadata.managedFields`, ordered as the real server orders it.
    pub fn render(&self) -> Value {
        let mut entries: Vec<&Entry> = self.0.iter().filter(|e| !e.fields.is_empty()).collect();
        entries.sort_by(|a, b| {
            (
                a.id.operation,
                &a.time,
                &a.id.manager,
                &a.id.api_version,
                &a.id.subresource,
            )
                .cmp(&(
                    b.id.operation,
                    &b.time,
                    &b.id.manager,
                    &b.id.api_version,
                    &b.id.subresource,
                ))
        });
        let rendered: Vec<Value> = entries
            .into_iter()
            .map(|e| {
                let mut v = json!({
                    "manager": e.id.manager,
                    "operation": match e.id.operation { Operation::Apply => "Apply", Operation::Update => "Update" },
                    "apiVersion": e.id.api_version,
                    "time": e.time,
                    "fieldsType": "FieldsV1",
                    "fieldsV1": fieldpath::render(&e.fields),
                });
                if !e.id.subresource.is_empty() {
                    v["subresource"] = Value::String(e.id.subresource.clone());
                }
                v
            })
            .collect();
        Value::Array(rendered)
    }
}

/// Server-side apply of `config` by `id` onto `live`: conflicts with other managers' fields
/// set to other values (taken over with `force`), removal of fields `id` applied before
/// and now omits (unless someone else owns them too), then a merge.
pub fn apply(
    live: &Value,
    managers: &mut Managers,
    config: &Value,
    id: &ManagerId,
    force: bool,
    schema: Schema,
    now: &str,
) -> Result<Value, ApiError> {
    let applied = fieldpath::to_set(config, schema);
    let mut conflicts = Vec::new();
    for entry in managers.0.iter_mut().filter(|e| !e.id.same(id)) {
        let clashing: Vec<_> = entry
            .fields
            .iter()
            .filter(|p| applied.contains(*p) && !fieldpath::is_member(p))
            .filter(|p| fieldpath::get(live, p) != fieldpath::get(config, p))
            .cloned()
            .collect();
        for p in &clashing {
            conflicts.push((entry.id.printed(), fieldpath::dotted(p)));
            if force {
                entry.fields.remove(p);
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(ApiError::apply_conflicts(&conflicts));
    }
    let previous = managers
        .0
        .iter()
        .find(|e| e.id.same(id))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let is_new = !managers.0.iter().any(|e| e.id.same(id));
    managers.entry(id, now).fields = applied.clone();
    let mut object = live.clone();
    for dropped in previous.difference(&applied) {
        if !owned_under(managers, dropped, Some(id)) {
            fieldpath::remove(&mut object, dropped);
            remove_unowned_parents(&mut object, managers, dropped);
        }
    }
    fieldpath::merge(&mut object, config, schema);
    if object != *live || is_new {
        managers.entry(id, now).time = now.to_owned();
    }
    managers.retain_present(&object, schema);
    Ok(object)
}

/// Whether a manager (other than `except`) owns `path` or anything under it.
fn owned_under(managers: &Managers, path: &[fieldpath::Pe], except: Option<&ManagerId>) -> bool {
    managers
        .0
        .iter()
        .filter(|e| except.is_none_or(|x| !e.id.same(x)))
        .any(|e| e.fields.iter().any(|p| p.starts_with(path)))
}

/// Structured-merge-diff prunes the struct fields that held a removed field when nobody
/// owns anything under them any more: a status sub-object whose last owned field went goes
/// with it, rather than staying behind empty (and failing its schema's `required`).
fn remove_unowned_parents(object: &mut Value, managers: &Managers, removed: &[fieldpath::Pe]) {
    let mut parent = removed[..removed.len().saturating_sub(1)].to_vec();
    while let Some(fieldpath::Pe::Field(name)) = parent.last() {
        let top_level_meta =
            parent.len() == 1 && matches!(name.as_str(), "metadata" | "apiVersion" | "kind");
        if top_level_meta || owned_under(managers, &parent, None) {
            return;
        }
        fieldpath::remove(object, &parent);
        parent.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(name: &str, op: Operation) -> ManagerId {
        ManagerId::new(name, op, None, "example.dev/v1")
    }

    #[test]
    fn updates_move_ownership_of_changed_fields() {
        let schema = Schema::root(None);
        let mut m = Managers::default();
        let a = json!({"spec": {"x": 1, "y": 1}});
        m.record_update(
            &id("alice", Operation::Update),
            &Value::Null,
            &a,
            schema,
            "t1",
        );
        let b = json!({"spec": {"x": 2, "y": 1}});
        m.record_update(&id("bob", Operation::Update), &a, &b, schema, "t2");
        let owners: Vec<(String, usize)> =
            m.0.iter()
                .map(|e| (e.id.manager.clone(), e.fields.len()))
                .collect();
        assert_eq!(owners, [("alice".to_owned(), 1), ("bob".to_owned(), 1)]);
    }

    #[test]
    fn apply_conflicts_name_the_other_manager_like_the_real_server() {
        let schema = Schema::root(None);
        let mut m = Managers::default();
        let live = json!({"spec": {"x": 1}});
        m.record_update(
            &id("editor", Operation::Update),
            &Value::Null,
            &live,
            schema,
            "t1",
        );
        let err = apply(
            &live,
            &mut m,
            &json!({"spec": {"x": 2}}),
            &id("ci", Operation::Apply),
            false,
            schema,
            "t2",
        )
        .unwrap_err();
        assert_eq!(
            err.message,
            "Apply failed with 1 conflict: conflict with \"editor\" using example.dev/v1: .spec.x"
        );
        let forced = apply(
            &live,
            &mut m,
            &json!({"spec": {"x": 2}}),
            &id("ci", Operation::Apply),
            true,
            schema,
            "t2",
        )
        .unwrap();
        assert_eq!(forced, json!({"spec": {"x": 2}}));
        assert_eq!(m.0.len(), 1, "the editor lost its only field");
    }
}
