//! The HTTP face: routes `/api` and `/apis` requests to the store like the real server's
//! handler chain, counts them by verb and resource, and answers discovery and `/version`.

mod discovery;
mod list;
mod view;
mod watch;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::controllers;
use crate::delete::{self, DeleteOptions};
use crate::patch::PatchType;
use crate::resource::{Flavour, ResourceType, Target, parse_path};
use crate::status::ApiError;
use crate::store::Store;
use crate::write::{self, FieldValidation, Write};

use self::view::View;

/// Requests by (verb, resource), the resource with `/status` for the subresource.
pub type Counts = HashMap<(String, String), u64>;

pub struct Shared {
    pub store: Mutex<Store>,
    pub counts: Mutex<Counts>,
    /// Wakes the controllers after a write.
    pub work: Notify,
    pub bookmark_interval: Duration,
}

pub type Params = HashMap<String, String>;

fn respond(code: StatusCode, body: &Value, warnings: &[String]) -> Response {
    let mut response = (code, axum::Json(body)).into_response();
    for w in warnings {
        let text = format!("299 - {}", Value::String(w.clone()));
        if let Ok(v) = HeaderValue::from_str(&text) {
            response.headers_mut().append(header::WARNING, v);
        }
    }
    response
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
    if let Some(response) = discovery::answer(&shared, path, &headers) {
        return response;
    }
    let Some(target) = parse_path(path) else {
        return ApiError::no_route().into_response();
    };
    let found =
        shared
            .store
            .lock()
            .unwrap()
            .registry
            .find(&target.group, &target.version, &target.plural);
    let Some(rt) = found else {
        return ApiError::no_route().into_response();
    };
    if let Err(e) = routable(&rt, &target, &method) {
        return e.into_response();
    }
    let watching = params.get("watch").is_some_and(|w| w == "true" || w == "1");
    let verb = verb(&method, &target, watching);
    count(&shared, verb, &rt, &target);
    // Reads can be asked for metadata only; writes answer with the whole object.
    let view = match verb {
        "get" | "list" | "watch" => match View::of(&headers) {
            Ok(view) => view,
            Err(e) => return e.into_response(),
        },
        _ => View::Object,
    };
    if verb == "watch" {
        return watch::watch(&shared, &rt, &target, &params, view);
    }
    let ctx = Request {
        shared: &shared,
        rt: &rt,
        target: &target,
        params: &params,
        headers: &headers,
        body: &body,
        view,
    };
    let (code, value, warnings) = match ctx.dispatch(verb) {
        Ok(answer) => answer,
        Err(e) => return e.into_response(),
    };
    respond(code, &value, &warnings)
}

/// Paths that name a resource in a way the real server has no route for.
fn routable(rt: &ResourceType, target: &Target, method: &Method) -> Result<(), ApiError> {
    match target.subresource.as_deref() {
        None => {}
        Some("status") if rt.status_subresource => {}
        Some("finalize") if rt.flavour == Flavour::Namespace => {}
        Some(_) => return Err(ApiError::no_route()),
    }
    if !rt.namespaced && target.namespace.is_some() {
        return Err(ApiError::no_route());
    }
    if rt.namespaced && target.namespace.is_none() {
        if target.name.is_some() {
            return Err(ApiError::no_route());
        }
        if *method != Method::GET {
            return Err(ApiError::method_not_allowed());
        }
    }
    Ok(())
}

fn verb(method: &Method, target: &Target, watching: bool) -> &'static str {
    match (method.as_str(), target.name.is_some()) {
        ("GET", false) if watching => "watch",
        ("GET", false) => "list",
        ("GET", true) if watching => "watch",
        ("GET", true) => "get",
        ("POST", false) => "create",
        ("PUT", true) => "update",
        ("PATCH", true) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "unsupported",
    }
}

fn count(shared: &Shared, verb: &str, rt: &ResourceType, target: &Target) {
    let resource = match &target.subresource {
        Some(sub) => format!("{}/{sub}", rt.plural),
        None => rt.plural.clone(),
    };
    *shared
        .counts
        .lock()
        .unwrap()
        .entry((verb.to_owned(), resource))
        .or_default() += 1;
}

type Answer = (StatusCode, Value, Vec<String>);

struct Request<'a> {
    shared: &'a Shared,
    rt: &'a ResourceType,
    target: &'a Target,
    params: &'a Params,
    headers: &'a HeaderMap,
    body: &'a Bytes,
    view: View,
}

impl Request<'_> {
    fn dispatch(&self, verb: &str) -> Result<Answer, ApiError> {
        let name = self.target.name.as_deref().unwrap_or_default();
        match verb {
            "get" => {
                let store = self.shared.store.lock().unwrap();
                let key = self.write().key(name);
                let stored = store
                    .get(&key)
                    .ok_or_else(|| ApiError::not_found(&self.rt.gr(), name))?;
                Ok((
                    StatusCode::OK,
                    self.view.render(self.rt, &stored.object),
                    Vec::new(),
                ))
            }
            "list" => list::list(self.shared, self.rt, self.target, self.params, self.view)
                .map(|v| (StatusCode::OK, v, Vec::new())),
            "create" | "update" | "patch" | "delete" | "deletecollection" => {
                self.write_verb(verb, name)
            }
            _ => Err(ApiError::method_not_allowed()),
        }
    }

    fn write(&self) -> Write<'_> {
        let manager = self.params.get("fieldManager").cloned().unwrap_or_else(|| {
            // The real server names a manager after the User-Agent's product when none is given.
            let agent = self
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            agent
                .split('/')
                .next()
                .unwrap_or_default()
                .chars()
                .filter(|c| !c.is_control())
                .take(128)
                .collect()
        });
        let field_validation = match self.params.get("fieldValidation").map(String::as_str) {
            Some("Strict") => FieldValidation::Strict,
            Some("Ignore") => FieldValidation::Ignore,
            _ => FieldValidation::Warn,
        };
        Write {
            rt: self.rt,
            namespace: if self.rt.namespaced {
                self.target.namespace.clone().unwrap_or_default()
            } else {
                String::new()
            },
            subresource: self.target.subresource.clone(),
            manager,
            dry_run: self.params.get("dryRun").is_some_and(|d| d == "All"),
            field_validation,
            warnings: Vec::new(),
        }
    }

    /// The request's `Content-Type` without its parameters.
    fn media_type(&self) -> &str {
        let content_type = self
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        content_type.split(';').next().unwrap_or_default().trim()
    }

    /// The body of a create or update, in JSON or YAML. Protobuf (which kubectl sends for
    /// built-in kinds) is answered 415, as a server that does not serve it would be; clients
    /// built on client-go then send JSON.
    fn body_json(&self) -> Result<Value, ApiError> {
        let base = self.media_type();
        let decoded = match base {
            "" | "application/json" | "*/*" => {
                serde_json::from_slice(self.body).map_err(|e| e.to_string())
            }
            "application/yaml" => serde_yaml::from_slice(self.body).map_err(|e| e.to_string()),
            _ => {
                return Err(ApiError::unsupported_media_type(&[
                    "application/json",
                    "application/yaml",
                ]));
            }
        };
        decoded.map_err(|e| {
            ApiError::bad_request(format!("the body of the request could not be decoded: {e}"))
        })
    }

    fn write_verb(&self, verb: &str, name: &str) -> Result<Answer, ApiError> {
        let mut w = self.write();
        let mut store = self.shared.store.lock().unwrap();
        let result = match verb {
            "create" => write::create(&mut store, &mut w, self.body_json()?)
                .map(|v| (StatusCode::CREATED, v)),
            "update" => {
                let (v, created) = write::replace(&mut store, &mut w, name, self.body_json()?)?;
                Ok((
                    if created {
                        StatusCode::CREATED
                    } else {
                        StatusCode::OK
                    },
                    v,
                ))
            }
            "patch" => {
                let base = self.media_type();
                let kind = PatchType::from_content_type(base)
                    .ok_or_else(|| ApiError::unsupported_media_type(&self.rt.patch_types()))?;
                let force = self.params.get("force").is_some_and(|f| f == "true");
                let (v, created) = write::patch(&mut store, &mut w, name, kind, self.body, force)?;
                Ok((
                    if created {
                        StatusCode::CREATED
                    } else {
                        StatusCode::OK
                    },
                    v,
                ))
            }
            "delete" => {
                let opts = DeleteOptions::parse(self.body, self.params.get("propagationPolicy"))?;
                delete::delete(&mut store, &w, name, &opts).map(|v| (StatusCode::OK, v))
            }
            _ => self
                .delete_collection(&mut store, &w)
                .map(|v| (StatusCode::OK, v)),
        };
        let (code, value) = result?;
        if self.rt.flavour == Flavour::Crd {
            controllers::sync_crds(&mut store);
        }
        drop(store);
        self.shared.work.notify_one();
        let value = if value.get("kind").and_then(Value::as_str) == Some("Status") {
            value
        } else {
            View::Object.render(self.rt, &value)
        };
        Ok((code, value, w.warnings))
    }

    fn delete_collection(&self, store: &mut Store, w: &Write) -> Result<Value, ApiError> {
        let opts = DeleteOptions::parse(self.body, self.params.get("propagationPolicy"))?;
        let keys = list::matching_keys(store, self.rt, self.target, self.params)?;
        let mut items = Vec::new();
        for key in keys {
            if let Ok(v) = delete::delete(store, w, &key.name, &opts) {
                items.push(View::Object.render(self.rt, &v));
            }
        }
        Ok(
            json!({"apiVersion": self.rt.api_version(), "kind": format!("{}List", self.rt.kind), "metadata": {"resourceVersion": store.resource_version().to_string()}, "items": items}),
        )
    }
}
