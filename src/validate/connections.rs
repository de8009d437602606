//! Connection: its tenant, connector and auth option resolve; its merged connector
//! parameters and inline input satisfy the connector's schemas (with the validator the
//! reconcile uses); the Secrets `inputFrom` names hold their keys; and the API host its
//! parameters pick passes the host guard.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::api::{ConnectionSpec, ConnectorKind, ConnectorSpec};
use crate::controller::connection::gather::merge_parameters;
use crate::provider::hosts::AllowedHosts;
use crate::schemas;
use crate::templates::{self, Templates};

use super::catalog::{Catalog, DEFAULT_NAMESPACE, key};
use super::connectors::{secret_keys, spec_of};
use super::found::{Found, error, warning};
use super::lines::pointer_path;
use super::source::Document;

pub fn check(doc: &Document, catalog: &Catalog, allow_private: bool) -> Vec<Found> {
    let Some(spec) = doc
        .value
        .get("spec")
        .and_then(|s| serde_json::from_value::<ConnectionSpec>(s.clone()).ok())
    else {
        return Vec::new(); // the schema check has said why
    };
    let ns = doc.namespace().unwrap_or(DEFAULT_NAMESPACE);
    let mut found = Vec::new();
    let tenant = &spec.tenant_ref.name;
    if let Some(f) = missing(catalog, "Tenant", ns, tenant, "spec.tenantRef.name") {
        found.push(f);
    }
    for (i, from) in spec.input_from.iter().enumerate() {
        let r = &from.secret_key_ref;
        let at = format!("spec.inputFrom[{i}].secretKeyRef");
        found.extend(secret_keys(catalog, ns, &r.name, &[&r.key], &at));
    }
    let kind = spec.connector_ref.kind.unwrap_or_default();
    let kind = match kind {
        ConnectorKind::Connector => "Connector",
        ConnectorKind::ClusterConnector => "ClusterConnector",
    };
    let name = &spec.connector_ref.name;
    if let Some(f) = missing(catalog, kind, ns, name, "spec.connectorRef.name") {
        found.push(f);
        return found;
    }
    let connector = catalog
        .get(&key(kind, Some(ns), name))
        .and_then(|(_, v)| spec_of(v));
    let Some(connector) = connector else {
        return found; // its own check reports why it does not read
    };
    let label = format!("{kind} {name}");
    found.extend(auth_option(&spec, &connector, &label));
    found.extend(parameters(&spec, &connector, &label));
    found.extend(input(&spec, &connector, &label));
    found.extend(api_host(doc, &spec, &connector, allow_private));
    found
}

/// A reference that does not resolve: a warning when only the set was searched (the object
/// may already be in the cluster), an error when the cluster was asked too.
fn missing(catalog: &Catalog, kind: &str, ns: &str, name: &str, field: &str) -> Option<Found> {
    if catalog.get(&key(kind, Some(ns), name)).is_some() {
        return None;
    }
    let shown = if super::catalog::cluster_scoped(kind) {
        format!("{kind} {name}")
    } else {
        format!("{kind} {ns}/{name}")
    };
    Some(if catalog.cluster {
        error(
            field,
            format!(
                "names {shown}, which is neither in this set nor in the cluster; create it or fix the name"
            ),
        )
    } else {
        warning(
            field,
            format!(
                "names {shown}, which is not in this set; pass --cluster to look it up in the cluster"
            ),
        )
    })
}

/// `authOptionKey` is set exactly when the connector has `options`, and names one of them.
fn auth_option(spec: &ConnectionSpec, connector: &ConnectorSpec, label: &str) -> Option<Found> {
    let field = "spec.authOptionKey";
    let keys = |options: &std::collections::BTreeMap<String, _>| {
        options.keys().cloned().collect::<Vec<String>>().join(", ")
    };
    match (&connector.options, spec.auth_option_key.as_deref()) {
        (Some(options), Some(k)) if !options.contains_key(k) => Some(error(
            field,
            format!(
                "{k:?} is not an option of {label}; use one of {}",
                keys(options)
            ),
        )),
        (Some(options), None) => Some(error(
            "spec",
            format!(
                "{label} offers several auth options; set spec.authOptionKey to one of {}",
                keys(options)
            ),
        )),
        (None, Some(k)) => Some(error(
            field,
            format!("{k:?} is set, but {label} has a single auth method; remove it"),
        )),
        _ => None,
    }
}

/// The connector's `parameters` overridden by `connectorParameters` satisfy
/// `parametersSchema`.
fn parameters(spec: &ConnectionSpec, connector: &ConnectorSpec, label: &str) -> Vec<Found> {
    let overrides = spec.connector_parameters.as_ref().map(|p| &p.0);
    let merged = merge_parameters(connector, overrides);
    let Some(schema) = &connector.parameters_schema else {
        return Vec::new();
    };
    let Ok(validator) = schemas::compile(&schema.to_value()) else {
        return Vec::new(); // reported on the connector
    };
    let merged = Value::Object(merged);
    schemas::violations(&validator, &merged)
        .into_iter()
        .map(|v| {
            let top = v.pointer.split('/').nth(1).unwrap_or_default();
            let given = overrides.is_some_and(|o| o.contains_key(top));
            let field = if given {
                pointer_path("spec.connectorParameters", &v.pointer, &merged)
            } else {
                "spec.connectorParameters".to_owned()
            };
            let whose = if given {
                ""
            } else {
                " (the connector's default)"
            };
            error(
                field,
                format!(
                    "{}{whose}: {}; give a value {label} spec.parametersSchema accepts",
                    if v.pointer.is_empty() {
                        "/"
                    } else {
                        &v.pointer
                    },
                    v.message
                ),
            )
        })
        .collect()
}

/// Inline `input` satisfies the input schema (the auth option's, else the connector's); keys
/// `inputFrom` gives are not required inline, but the schema must declare them.
fn input(spec: &ConnectionSpec, connector: &ConnectorSpec, label: &str) -> Vec<Found> {
    let compiled = schemas::Compiled::default();
    let view = schemas::ConnectorSchemas {
        connector,
        label,
        owner: None,
        compiled: &compiled,
        option: spec.auth_option_key.as_deref(),
    };
    let Some((which, mut schema)) = view.input_schema() else {
        return Vec::new();
    };
    let from: BTreeSet<&str> = spec.input_from.iter().map(|f| f.field.as_str()).collect();
    let mut found = Vec::new();
    if let Some(Value::Object(properties)) = schema.get("properties") {
        for (i, f) in spec.input_from.iter().enumerate() {
            if !properties.contains_key(&f.field) {
                found.push(error(
                    format!("spec.inputFrom[{i}].field"),
                    format!(
                        "{:?} is not declared by {label} spec.{which}; use one of its properties",
                        f.field
                    ),
                ));
            }
        }
    }
    if let Some(Value::Array(required)) = schema.get_mut("required") {
        required.retain(|k| !k.as_str().is_some_and(|k| from.contains(k)));
    }
    let Ok(validator) = schemas::compile(&schema) else {
        return found; // reported on the connector
    };
    let inline = spec
        .input
        .as_ref()
        .map(|i| i.to_value())
        .unwrap_or_else(|| json!({}));
    for v in schemas::violations(&validator, &inline) {
        found.push(error(
            pointer_path("spec.input", &v.pointer, &inline),
            format!(
                "{}: {}; give it in spec.input or spec.inputFrom as {label} spec.{which} says",
                if v.pointer.is_empty() {
                    "/"
                } else {
                    &v.pointer
                },
                v.message
            ),
        ));
    }
    found
}

/// The API client's base URI, rendered with this Connection's parameters, passes the host
/// guard. A base URI that needs input or credentials to render is left to the reconcile.
fn api_host(
    doc: &Document,
    spec: &ConnectionSpec,
    connector: &ConnectorSpec,
    allow_private: bool,
) -> Option<Found> {
    let client = connector.api_client.as_ref()?;
    let merged = merge_parameters(connector, spec.connector_parameters.as_ref().map(|p| &p.0));
    let context = json!({
        "parameters": merged,
        "input": spec.input.as_ref().map(|i| i.to_value()).unwrap_or_else(|| Value::Object(Map::new())),
        "connection": {"name": doc.name(), "namespace": doc.namespace()},
    });
    let rendered = Templates::default()
        .render(&client.base_uri, &templates::to_value(&context))
        .ok()?;
    let verdict = url::Url::parse(&rendered)
        .map_err(|err| format!("renders to {rendered:?}, which is not a URL: {err}"))
        .and_then(|url| {
            let hosts =
                AllowedHosts::new(&client.base_uri, &client.allowed_hosts).map_err(|e| e.reason)?;
            hosts.check(&url, allow_private).map_err(|e| e.reason)?;
            crate::connector_check::endpoint(&rendered, allow_private)
        });
    let why = verdict.err()?;
    let field = if spec.connector_parameters.is_some() {
        "spec.connectorParameters"
    } else {
        "spec.connectorRef"
    };
    Some(error(
        field,
        format!("the API base URI, rendered for this Connection, is blocked: {why}"),
    ))
}
