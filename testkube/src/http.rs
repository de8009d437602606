//! The HTTP face: routes every `/api` and `/apis` request to the store, streams watches, and
//! counts requests by verb and resource.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{Value, json};

use crate::resource::{ResourceType, Target, parse_path};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::status::ApiError;
use crate::store::{Change, Key, Store};

/// Requests by (verb, resource), the resource with `/status` for the subresource.
pub type Counts = HashMap<(String, String), u64>;

pub struct Shared {
    pub store: Mutex<Store>,
    pub types: Vec<ResourceType>,
    pub counts: Mutex<Counts>,
}

type Params = HashMap<String, String>;

fn json_response(code: StatusCode, body: Value) -> Response {
    (code, axum::Json(body)).into_response()
}

pub async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    Query(params): Query<Params>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    if path == "/version" {
        return json_response(
            StatusCode::OK,
            json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0-testkube", "platform": "linux/amd64"}),
        );
    }
    let Some(target) = parse_path(path) else {
        return ApiError::bad_request(format!("unknown path {path}")).into_response();
    };
    let Some(rt) = shared
        .types
        .iter()
        .find(|t| {
            t.group == target.group && t.version == target.version && t.plural == target.plural
        })
        .cloned()
    else {
        return ApiError::not_found("resource", &target.plural).into_response();
    };
    let watching = params.get("watch").is_some_and(|w| w == "true" || w == "1");
    let verb = verb(&method, &target, watching);
    let counted = match &target.subresource {
        Some(sub) => format!("{}/{sub}", rt.plural),
        None => rt.plural.clone(),
    };
    *shared
        .counts
        .lock()
        .unwrap()
        .entry((verb.to_owned(), counted))
        .or_default() += 1;
    let result = match verb {
        "watch" => return watch(&shared, &rt, &target, &params),
        "list" => list(&shared, &rt, &target, &params),
        "get" => get(&shared, &rt, &target),
        "create" => create(&shared, &rt, &target, &params, &body),
        "update" => update(&shared, &rt, &target, &params, &body),
        "patch" => patch(&shared, &rt, &target, &params, &headers, &body),
        "delete" => delete(&shared, &rt, &target),
        _ => Err(ApiError::method_not_allowed()),
    };
    match result {
        Ok((code, value)) => json_response(code, value),
        Err(err) => err.into_response(),
    }
}

fn verb(method: &Method, target: &Target, watching: bool) -> &'static str {
    match (method.as_str(), target.name.is_some()) {
        ("GET", false) if watching => "watch",
        ("GET", false) => "list",
        ("GET", true) => "get",
        ("POST", false) => "create",
        ("PUT", true) => "update",
        ("PATCH", true) => "patch",
        ("DELETE", true) => "delete",
        _ => "unsupported",
    }
}

fn key(rt: &ResourceType, target: &Target, name: &str) -> Key {
    let ns = if rt.namespaced {
        target.namespace.clone().unwrap_or_default()
    } else {
        String::new()
    };
    (rt.qualified(), ns, name.to_owned())
}

fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .or_else(|_| serde_yaml::from_slice::<Value>(body))
        .map_err(|err| ApiError::bad_request(format!("the body could not be decoded: {err}")))
}

fn get(
    shared: &Shared,
    rt: &ResourceType,
    target: &Target,
) -> Result<(StatusCode, Value), ApiError> {
    let name = target.name.as_deref().unwrap_or_default();
    let store = shared.store.lock().unwrap();
    store
        .get(&key(rt, target, name))
        .cloned()
        .map(|v| (StatusCode::OK, v))
        .ok_or_else(|| ApiError::not_found(&rt.qualified(), name))
}

fn selected(
    shared: &Shared,
    rt: &ResourceType,
    target: &Target,
    params: &Params,
) -> Result<(Vec<Value>, u64), ApiError> {
    let labels = LabelSelector::parse(params.get("labelSelector").map_or("", String::as_str))?;
    let fields = FieldSelector::parse(params.get("fieldSelector").map_or("", String::as_str))?;
    let store = shared.store.lock().unwrap();
    let ns = if rt.namespaced {
        target.namespace.as_deref()
    } else {
        None
    };
    let items = store
        .list(&rt.qualified(), ns)
        .into_iter()
        .filter(|o| labels.matches(o) && fields.matches(o))
        .cloned()
        .collect();
    Ok((items, store.resource_version()))
}

fn list(
    shared: &Shared,
    rt: &ResourceType,
    target: &Target,
    params: &Params,
) -> Result<(StatusCode, Value), ApiError> {
    let (items, rv) = selected(shared, rt, target, params)?;
    // Pagination: `continue` is the index of the next item; the list is a snapshot in name
    // order, as etcd's key order gives.
    let start: usize = params
        .get("continue")
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let limit: usize = params
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let page: Vec<Value> = items.iter().skip(start).take(limit).cloned().collect();
    let next = start + page.len();
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if next < items.len() {
        metadata["continue"] = Value::String(next.to_string());
        metadata["remainingItemCount"] = json!(items.len() - next);
    }
    Ok((
        StatusCode::OK,
        json!({"apiVersion": rt.api_version(), "kind": format!("{}List", rt.kind), "metadata": metadata, "items": page}),
    ))
}

fn create(
    shared: &Shared,
    rt: &ResourceType,
    target: &Target,
    params: &Params,
    body: &[u8],
) -> Result<(StatusCode, Value), ApiError> {
    let object = parse_body(body)?;
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| {
            ApiError::invalid(
                &rt.kind,
                &rt.group,
                "",
                vec![(
                    "metadata.name".into(),
                    "Required value: name or generateName is required".into(),
                )],
            )
        })?;
    let manager = params
        .get("fieldManager")
        .cloned()
        .unwrap_or_else(|| "testkube-client".to_owned());
    let mut store = shared.store.lock().unwrap();
    store
        .create(
            rt,
            &key(rt, target, &name),
            object,
            Some((&manager, "Update")),
        )
        .map(|v| (StatusCode::CREATED, v))
}

fn update(
    shared: &Shared,
    rt: &ResourceType,
    target: &Target,
    params: &Params,
    body: &[u8],
) -> Result<(StatusCode, Value), ApiError> {
    let object = parse_body(body)?;
    let name = target.name.as_deref().unwrap_or_default();
    let manager = params
        .get("fieldManager")
        .cloned()
        .unwrap_or_else(|| "testkube-client".to_owned());
    let status_only = target.subresource.as_deref() == Some("status");
    let mut store = shared.store.lock().unwrap();
    store
        .update(
            rt,
            &key(rt, target, name),
            object,
            status_only,
            &manager,
            "Update",
        )
        .map(|v| (StatusCode::OK, v))
}

fn patch(
    shared: &Shared,
    rt: &ResourceType,
    target: &Target,
    params: &Params,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(StatusCode, Value), ApiError> {
    let name = target.name.as_deref().unwrap_or_default();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_owned();
    let status_only = target.subresource.as_deref() == Some("status");
    let key = key(rt, target, name);
    let mut store = shared.store.lock().unwrap();
    let manager = params.get("fieldManager").cloned();
    if content_type == "application/apply-patch+yaml" {
        let manager = manager.ok_or_else(|| {
            ApiError::bad_request("PATCH, application/apply-patch+yaml requires fieldManager")
        })?;
        let force = params.get("force").is_some_and(|f| f == "true");
        let applied = parse_body(body)?;
        let existed = store.get(&key).is_some();
        return store
            .apply(rt, &key, applied, &manager, force, status_only)
            .map(|v| {
                (
                    if existed {
                        StatusCode::OK
                    } else {
                        StatusCode::CREATED
                    },
                    v,
                )
            });
    }
    let current = store
        .get(&key)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&rt.qualified(), name))?;
    let mut patched = current.clone();
    match content_type.as_str() {
        "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
            json_patch::merge(&mut patched, &parse_body(body)?);
        }
        "application/json-patch+json" => {
            let mut ops: json_patch::Patch =
                serde_json::from_slice(body).map_err(|e| ApiError::bad_request(e.to_string()))?;
            // The real server (evanphx/json-patch) treats a missing path as null in `test`;
            // kube-runtime's finalizer helper relies on it when it adds the first finalizer.
            ops.0.retain(|op| match op {
                json_patch::PatchOperation::Test(t) => {
                    !(t.value.is_null() && patched.pointer(t.path.as_str()).is_none())
                }
                _ => true,
            });
            json_patch::patch(&mut patched, &ops).map_err(|err| {
                ApiError::invalid(
                    &rt.kind,
                    &rt.group,
                    name,
                    vec![(
                        "".into(),
                        format!(
                            "the server rejected our request due to an error in our request: {err}"
                        ),
                    )],
                )
            })?;
        }
        other => return Err(ApiError::unsupported_media_type(other)),
    }
    // A patch carries the current version unless it names one itself.
    if patched.pointer("/metadata/resourceVersion") == current.pointer("/metadata/resourceVersion")
    {
        patched["metadata"]["resourceVersion"] = Value::Null;
    }
    store
        .update(
            rt,
            &key,
            patched,
            status_only,
            manager.as_deref().unwrap_or("testkube-client"),
            "Update",
        )
        .map(|v| (StatusCode::OK, v))
}

fn delete(
    shared: &Shared,
    rt: &ResourceType,
    target: &Target,
) -> Result<(StatusCode, Value), ApiError> {
    let name = target.name.as_deref().unwrap_or_default();
    let mut store = shared.store.lock().unwrap();
    let key = key(rt, target, name);
    let gone = store
        .mark_deleted(&key)
        .ok_or_else(|| ApiError::not_found(&rt.qualified(), name))?;
    if store.get(&key).is_some() {
        return Ok((StatusCode::OK, gone));
    }
    Ok((
        StatusCode::OK,
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": {"name": name, "group": rt.group, "kind": rt.plural, "uid": gone.pointer("/metadata/uid")},
        }),
    ))
}

/// How often an idle watch gets a BOOKMARK when it asked for them.
const BOOKMARK_EVERY: Duration = Duration::from_secs(1);

fn watch(shared: &Arc<Shared>, rt: &ResourceType, target: &Target, params: &Params) -> Response {
    let labels = match LabelSelector::parse(params.get("labelSelector").map_or("", String::as_str))
    {
        Ok(l) => l,
        Err(e) => return e.into_response(),
    };
    let fields = match FieldSelector::parse(params.get("fieldSelector").map_or("", String::as_str))
    {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    let from: u64 = params
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let bookmarks = params
        .get("allowWatchBookmarks")
        .is_some_and(|b| b == "true");
    let timeout = params
        .get("timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(1800));
    let resource = rt.qualified();
    let namespace = if rt.namespaced {
        target.namespace.clone()
    } else {
        None
    };
    let (backlog, receiver, start_rv) = {
        let store = shared.store.lock().unwrap();
        let backlog = if from == 0 {
            // No version: the current state as ADDED events, as the real server does.
            store
                .list(&resource, namespace.as_deref())
                .into_iter()
                .map(|o| (Change::Added, o.clone()))
                .collect()
        } else {
            match store.since(from) {
                Ok(events) => events
                    .iter()
                    .filter(|e| e.resource == resource)
                    .map(|e| (e.change, e.object.clone()))
                    .collect(),
                Err(gone) => {
                    let line = format!("{}\n", json!({"type": "ERROR", "object": gone.body()}));
                    return Response::builder()
                        .status(200)
                        .header(header::CONTENT_TYPE, "application/json")
                        .body(Body::from(line))
                        .unwrap();
                }
            }
        };
        (backlog, store.events.subscribe(), store.resource_version())
    };
    let matches = move |object: &Value| {
        labels.matches(object)
            && fields.matches(object)
            && namespace.as_deref().is_none_or(|ns| {
                object
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    == Some(ns)
            })
    };
    let api_version = rt.api_version();
    let kind = rt.kind.clone();
    let stream = async_stream(
        backlog,
        start_rv,
        resource,
        matches,
        bookmarks,
        api_version,
        kind,
        receiver,
        timeout,
    );
    Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .unwrap()
}

#[allow(clippy::too_many_arguments)]
fn async_stream(
    backlog: Vec<(Change, Value)>,
    start_rv: u64,
    resource: String,
    matches: impl Fn(&Value) -> bool + Send + Sync + 'static,
    bookmarks: bool,
    api_version: String,
    kind: String,
    receiver: tokio::sync::broadcast::Receiver<Arc<crate::store::Event>>,
    timeout: Duration,
) -> impl futures::Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    let line = |change: &str, object: &Value| {
        Bytes::from(format!("{}\n", json!({"type": change, "object": object})))
    };
    let first: Vec<Bytes> = backlog
        .iter()
        .filter(|(_, o)| matches(o))
        .map(|(c, o)| line(c.as_str(), o))
        .collect();
    let state = (receiver, start_rv, tokio::time::Instant::now() + timeout);
    let live = futures::stream::unfold(state, move |(mut receiver, mut last_rv, deadline)| {
        let resource = resource.clone();
        let (api_version, kind) = (api_version.clone(), kind.clone());
        async move {
            loop {
                let next = tokio::time::timeout(BOOKMARK_EVERY, receiver.recv());
                if tokio::time::Instant::now() >= deadline {
                    return None;
                }
                match next.await {
                    Ok(Ok(event)) => {
                        last_rv = event.rv;
                        if event.resource == resource && event.rv > start_rv {
                            return Some((
                                Some((event.change.as_str(), event.object.clone())),
                                (receiver, last_rv, deadline),
                            ));
                        }
                    }
                    Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => return None,
                    Ok(Err(_)) => return None,
                    Err(_) if bookmarks => {
                        let mark = json!({"apiVersion": api_version, "kind": kind, "metadata": {"resourceVersion": last_rv.to_string()}});
                        return Some((Some(("BOOKMARK", mark)), (receiver, last_rv, deadline)));
                    }
                    Err(_) => {}
                }
            }
        }
    });
    let matches = Arc::new(matches);
    futures::stream::iter(first.into_iter().map(Ok)).chain(live.filter_map(move |item| {
        let matches = matches.clone();
        async move {
            let (change, object) = item?;
            (change == "BOOKMARK" || matches(&object)).then(|| {
                Ok(Bytes::from(format!(
                    "{}\n",
                    json!({"type": change, "object": object})
                )))
            })
        }
    }))
}
