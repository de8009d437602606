//! `/version`, health endpoints, and discovery: the legacy documents (`/api`, `/apis`,
//! `/apis/<group>`, `/api/v1`, `/apis/<group>/<version>`) and aggregated discovery v2, which
//! clients ask for with an `Accept` header.

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::Shared;
use crate::resource::{Flavour, ResourceType};
use crate::status::ApiError;

const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

fn ok(body: Value) -> Response {
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// Answers the non-resource paths; `None` for resource paths.
pub fn answer(shared: &Arc<Shared>, path: &str, headers: &HeaderMap) -> Option<Response> {
    let path = path.trim_end_matches('/');
    if matches!(path, "/healthz" | "/livez" | "/readyz") {
        return Some("ok".into_response());
    }
    if path == "/version" {
        return Some(ok(json!({
            "major": "1", "minor": "33", "gitVersion": "v1.33.0+plugboard", "gitCommit": "plugboard-apiserver",
            "gitTreeState": "clean", "buildDate": "2025-04-23T00:00:00Z", "goVersion": "go1.24.2",
            "compiler": "gc", "platform": "linux/amd64",
        })));
    }
    let types: Vec<Arc<ResourceType>> = shared.store.lock().unwrap().registry.all().to_vec();
    let aggregated = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| {
            a.split(',')
                .next()
                .is_some_and(|first| first.contains("as=APIGroupDiscoveryList"))
        });
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let body = match parts.as_slice() {
        ["api"] if aggregated => return Some(aggregated_list(&types, true)),
        ["apis"] if aggregated => return Some(aggregated_list(&types, false)),
        ["api"] => {
            json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})
        }
        ["apis"] => {
            json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups(&types).iter().map(|g| group(&types, g)).collect::<Vec<_>>()})
        }
        ["apis", g] => {
            if !types.iter().any(|t| t.group == *g) {
                return Some(ApiError::no_route().into_response());
            }
            let mut doc = group(&types, g);
            doc["kind"] = json!("APIGroup");
            doc["apiVersion"] = json!("v1");
            doc
        }
        ["api", v] => resource_list(&types, "", v)?,
        ["apis", g, v] => resource_list(&types, g, v)?,
        _ => return None,
    };
    Some(ok(body))
}

fn groups(types: &[Arc<ResourceType>]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in types {
        if !t.group.is_empty() && !out.contains(&t.group) {
            out.push(t.group.clone());
        }
    }
    out
}

fn versions(types: &[Arc<ResourceType>], group: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in types.iter().filter(|t| t.group == group) {
        if !out.contains(&t.version) {
            out.push(t.version.clone());
        }
    }
    out
}

fn group(types: &[Arc<ResourceType>], name: &str) -> Value {
    let versions: Vec<Value> = versions(types, name)
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({"name": name, "versions": versions, "preferredVersion": versions[0]})
}

fn verbs(t: &ResourceType) -> Vec<&'static str> {
    let mut v = vec![
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    ];
    if t.flavour == Flavour::Namespace {
        v.retain(|x| *x != "deletecollection");
    }
    v
}

fn subresources(t: &ResourceType) -> Vec<&'static str> {
    let mut subs = Vec::new();
    if t.status_subresource {
        subs.push("status");
    }
    if t.flavour == Flavour::Namespace {
        subs.push("finalize");
    }
    subs
}

fn resource_list(types: &[Arc<ResourceType>], group: &str, version: &str) -> Option<Value> {
    let served: Vec<&Arc<ResourceType>> = types
        .iter()
        .filter(|t| t.group == group && t.version == version)
        .collect();
    if served.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for t in served {
        resources.push(json!({
            "name": t.plural, "singularName": t.singular, "namespaced": t.namespaced, "kind": t.kind,
            "verbs": verbs(t), "shortNames": t.short_names, "categories": t.categories,
        }));
        for sub in subresources(t) {
            let verbs = if sub == "finalize" {
                vec!["update"]
            } else {
                vec!["get", "patch", "update"]
            };
            resources.push(json!({"name": format!("{}/{sub}", t.plural), "singularName": "", "namespaced": t.namespaced, "kind": t.kind, "verbs": verbs}));
        }
    }
    let group_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}),
    )
}

fn aggregated_list(types: &[Arc<ResourceType>], core: bool) -> Response {
    let names: Vec<String> = if core {
        vec![String::new()]
    } else {
        groups(types)
    };
    let items: Vec<Value> = names
        .iter()
        .map(|g| {
            let versions: Vec<Value> = versions(types, g)
                .iter()
                .map(|v| {
                    let resources: Vec<Value> = types
                        .iter()
                        .filter(|t| t.group == *g && t.version == *v)
                        .map(|t| aggregated_resource(t))
                        .collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": g}, "versions": versions})
        })
        .collect();
    let body = json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items});
    let mut response = ok(body);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(AGGREGATED));
    response
}

fn aggregated_resource(t: &ResourceType) -> Value {
    let gvk = json!({"group": t.group, "version": t.version, "kind": t.kind});
    let subs: Vec<Value> = subresources(t)
        .into_iter()
        .map(|s| json!({"subresource": s, "responseKind": gvk, "verbs": if s == "finalize" { vec!["update"] } else { vec!["get", "patch", "update"] }}))
        .collect();
    json!({
        "resource": t.plural, "responseKind": gvk,
        "scope": if t.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": t.singular, "verbs": verbs(t), "shortNames": t.short_names,
        "categories": t.categories, "subresources": subs,
    })
}
