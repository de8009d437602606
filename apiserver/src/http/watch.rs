//! WATCH: newline-delimited JSON events in a chunked response, resumable from a
//! resourceVersion within the history kept (410 Expired as an ERROR event beyond it), with
//! bookmarks, `timeoutSeconds`, `sendInitialEvents`, and selectors applied to both the old
//! and the new state of an object, as the real watch cache does.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio::time::Instant;

use super::list::Selection;
use super::view::View;
use super::{Params, Shared};
use crate::resource::{ResourceType, Target};
use crate::status::{ApiError, FieldError};
use crate::store::{Change, Event, Key};

/// Which events a watch sees.
struct Filter {
    rt: ResourceType,
    namespace: Option<String>,
    name: Option<String>,
    selection: Selection,
    view: View,
}

impl Filter {
    fn passes(&self, key: &Key, object: &Value) -> bool {
        self.namespace
            .as_ref()
            .is_none_or(|ns| *ns == key.namespace)
            && self.name.as_ref().is_none_or(|n| *n == key.name)
            && self.selection.matches(object)
    }

    /// The event this watch gets for a change, if any: an object that stops matching the
    /// selectors is DELETED for it, one that starts matching is ADDED.
    fn convert(&self, event: &Event) -> Option<Bytes> {
        if event.key.resource != self.rt.qualified() {
            return None;
        }
        let now = event.change != Change::Deleted && self.passes(&event.key, &event.object);
        let before = event
            .prev
            .as_ref()
            .is_some_and(|p| self.passes(&event.key, p));
        let (kind, object) = match (now, before) {
            (true, false) => ("ADDED", event.object.clone()),
            (true, true) => ("MODIFIED", event.object.clone()),
            (false, true) if event.change == Change::Deleted => ("DELETED", event.object.clone()),
            (false, true) => {
                let mut last = event.prev.clone().expect("before implies a previous state");
                last["metadata"]["resourceVersion"] = Value::String(event.rv.to_string());
                ("DELETED", last)
            }
            (false, false) => return None,
        };
        Some(line(kind, &self.view.render(&self.rt, &object)))
    }

    fn bookmark(&self, rv: u64, initial_events_end: bool) -> Bytes {
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if initial_events_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let (kind, api_version) = self.view.item_type(&self.rt);
        let object = json!({"kind": kind, "apiVersion": api_version, "metadata": metadata});
        line("BOOKMARK", &object)
    }
}

fn line(kind: &str, object: &Value) -> Bytes {
    Bytes::from(format!("{}\n", json!({"type": kind, "object": object})))
}

fn streamed(body: Body) -> Response {
    Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .expect("a valid response")
}

pub fn watch(
    shared: &Arc<Shared>,
    rt: &ResourceType,
    target: &Target,
    params: &Params,
    view: View,
) -> Response {
    match start(shared, rt, target, params, view) {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

/// `ValidateListOptions` for a watch that asks for initial events.
fn check_initial_events(params: &Params) -> Result<bool, ApiError> {
    let Some(send) = params.get("sendInitialEvents") else {
        return Ok(false);
    };
    let mut errors = Vec::new();
    if params.get("resourceVersionMatch").map(String::as_str) != Some("NotOlderThan") {
        errors.push(FieldError::forbidden(
            "resourceVersionMatch",
            "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
        ));
    }
    if params.get("allowWatchBookmarks").map(String::as_str) != Some("true") {
        errors.push(FieldError::forbidden(
            "allowWatchBookmarks",
            "sendInitialEvents requires setting allowWatchBookmarks to true",
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid("ListOptions", "meta.k8s.io", "", &errors));
    }
    Ok(send == "true")
}

struct Live {
    receiver: broadcast::Receiver<Arc<Event>>,
    last_rv: u64,
    deadline: Instant,
    filter: Arc<Filter>,
    bookmarks: bool,
    every: Duration,
}

fn start(
    shared: &Arc<Shared>,
    rt: &ResourceType,
    target: &Target,
    params: &Params,
    view: View,
) -> Result<Response, ApiError> {
    let initial_events = check_initial_events(params)?;
    let from: Option<u64> = match params.get("resourceVersion").map(String::as_str) {
        None | Some("" | "0") => None,
        Some(v) => Some(
            v.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {v}")))?,
        ),
    };
    let filter = Arc::new(Filter {
        rt: rt.clone(),
        namespace: if rt.namespaced {
            target.namespace.clone()
        } else {
            None
        },
        name: target.name.clone(),
        selection: Selection::parse(rt, params)?,
        view,
    });
    let timeout = params
        .get("timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .map_or(Duration::from_secs(1800), Duration::from_secs);
    let store = shared.store.lock().unwrap();
    let receiver = store.subscribe();
    let start_rv = store.resource_version();
    let mut first = Vec::new();
    match from {
        Some(rv) if !initial_events => match store.since(rv) {
            Ok(events) => first.extend(events.iter().filter_map(|e| filter.convert(e))),
            Err(oldest) => {
                let gone = ApiError::expired(format!("too old resource version: {rv} ({oldest})"));
                return Ok(streamed(Body::from(line("ERROR", &gone.body()))));
            }
        },
        _ => {
            let resource = rt.qualified();
            let current = store
                .list(&resource, filter.namespace.as_deref())
                .filter(|(k, s)| filter.passes(k, &s.object));
            first.extend(current.map(|(_, s)| line("ADDED", &view.render(rt, &s.object))));
            if initial_events {
                first.push(filter.bookmark(start_rv, true));
            }
        }
    }
    drop(store);
    let live = Live {
        receiver,
        last_rv: start_rv,
        deadline: Instant::now() + timeout,
        filter,
        bookmarks: params
            .get("allowWatchBookmarks")
            .is_some_and(|b| b == "true"),
        every: shared.bookmark_interval,
    };
    let stream = futures::stream::iter(first)
        .chain(futures::stream::unfold(live, next))
        .map(Ok::<_, Infallible>);
    Ok(streamed(Body::from_stream(stream)))
}

/// The next line of a live watch; `None` ends it (timeout, or a watcher too slow to keep
/// up, which the real server also disconnects).
async fn next(mut live: Live) -> Option<(Bytes, Live)> {
    loop {
        let now = Instant::now();
        if now >= live.deadline {
            return None;
        }
        let wait = live.every.min(live.deadline - now);
        match tokio::time::timeout(wait, live.receiver.recv()).await {
            Ok(Ok(event)) => {
                live.last_rv = live.last_rv.max(event.rv);
                if let Some(bytes) = live.filter.convert(&event) {
                    return Some((bytes, live));
                }
            }
            Ok(Err(_)) => return None,
            Err(_) if live.bookmarks && Instant::now() < live.deadline => {
                let bytes = live.filter.bookmark(live.last_rv, false);
                return Some((bytes, live));
            }
            Err(_) => {}
        }
    }
}
