//! LIST with selectors and `limit`/`continue` pagination.

use base64::Engine as _;
use serde_json::{Value, json};

use super::view::View;
use super::{Params, Shared};
use crate::resource::{ResourceType, Target};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::status::ApiError;
use crate::store::{Key, Store};

pub struct Selection {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Selection {
    pub fn parse(rt: &ResourceType, params: &Params) -> Result<Self, ApiError> {
        let get = |k: &str| params.get(k).map_or("", String::as_str);
        Ok(Self {
            labels: LabelSelector::parse(get("labelSelector"))?,
            fields: FieldSelector::parse(get("fieldSelector"), rt)?,
        })
    }

    pub fn matches(&self, object: &Value) -> bool {
        self.labels.matches(object) && self.fields.matches(object)
    }

    fn is_empty(params: &Params) -> bool {
        ["labelSelector", "fieldSelector"]
            .iter()
            .all(|k| params.get(*k).is_none_or(String::is_empty))
    }
}

fn namespace_of<'a>(rt: &ResourceType, target: &'a Target) -> Option<&'a str> {
    if rt.namespaced {
        target.namespace.as_deref()
    } else {
        None
    }
}

/// The keys of the objects a collection request selects.
pub fn matching_keys(
    store: &Store,
    rt: &ResourceType,
    target: &Target,
    params: &Params,
) -> Result<Vec<Key>, ApiError> {
    let selection = Selection::parse(rt, params)?;
    let resource = rt.qualified();
    Ok(store
        .list(&resource, namespace_of(rt, target))
        .filter(|(_, s)| selection.matches(&s.object))
        .map(|(k, _)| k.clone())
        .collect())
}

/// A continue token: the snapshot's revision and the key to start after, base64 JSON as the
/// real server's tokens are.
fn encode_token(rv: u64, key: &Key) -> String {
    let start = format!("{}/{}\u{0}", key.namespace, key.name);
    let token = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": start});
    base64::engine::general_purpose::URL_SAFE.encode(token.to_string())
}

fn decode_token(token: &str) -> Result<(u64, (String, String)), ApiError> {
    let invalid = || ApiError::bad_request(format!("continue key is not valid: {token}"));
    let bytes = base64::engine::general_purpose::URL_SAFE
        .decode(token)
        .map_err(|_| invalid())?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    let rv = v.get("rv").and_then(Value::as_u64).ok_or_else(invalid)?;
    let start = v.get("start").and_then(Value::as_str).ok_or_else(invalid)?;
    let (namespace, name) = start
        .trim_end_matches('\u{0}')
        .split_once('/')
        .ok_or_else(invalid)?;
    Ok((rv, (namespace.to_owned(), name.to_owned())))
}

/// LIST. A continued list starts after the last key of the previous page and reports the
/// first page's revision; objects changed in between show their current state (the real
/// server would serve the snapshot from etcd).
pub fn list(
    shared: &Shared,
    rt: &ResourceType,
    target: &Target,
    params: &Params,
    view: View,
) -> Result<Value, ApiError> {
    let selection = Selection::parse(rt, params)?;
    let (snapshot, after) = match params.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => {
            let (rv, start) = decode_token(token)?;
            (Some(rv), Some(start))
        }
        None => (None, None),
    };
    let limit: usize = params
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let store = shared.store.lock().unwrap();
    let rv = snapshot.unwrap_or_else(|| store.resource_version());
    let resource = rt.qualified();
    let namespace = namespace_of(rt, target);
    // A page starts where the last one ended and copies only its own objects: a list of
    // 10,000 in pages of 100 is then a hundred short walks, not a hundred long ones.
    let objects: Box<dyn Iterator<Item = (&Key, &crate::store::Stored)>> = match &after {
        Some((ns, name)) => Box::new(store.list_after(&resource, namespace, (ns, name))),
        None => Box::new(store.list(&resource, namespace)),
    };
    let mut matching = objects.filter(|(_, s)| selection.matches(&s.object));
    let mut page = Vec::new();
    let mut last = None;
    for (key, stored) in matching.by_ref().take(limit) {
        page.push(view.render(rt, &stored.object));
        last = Some(key);
    }
    let remaining = matching.count();
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if remaining > 0
        && let Some(last) = last
    {
        metadata["continue"] = Value::String(encode_token(rv, last));
        if Selection::is_empty(params) {
            metadata["remainingItemCount"] = json!(remaining);
        }
    }
    let (kind, api_version) = view.list_type(rt);
    Ok(json!({
        "apiVersion": api_version,
        "kind": kind,
        "metadata": metadata,
        "items": page,
    }))
}
