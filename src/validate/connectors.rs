//! Connector and ClusterConnector: the controller's own checks (schemas, templates, host
//! patterns), the host guard on literal endpoints, and the Secrets they name.

use serde_json::{Map, Value};

use crate::api::{ConnectorSpec, SecretReference};
use crate::connector_check;
use crate::schemas;
use crate::templates::Templates;

use super::catalog::{Catalog, Origin};
use super::found::{Found, error, warning};
use super::source::Document;

pub fn check(doc: &Document, catalog: &Catalog, allow_private: bool) -> Vec<Found> {
    let Some(spec) = spec_of(&doc.value) else {
        return Vec::new(); // the schema check has said why
    };
    let templates = Templates::default();
    let mut found: Vec<Found> = connector_check::problems(&spec, &templates)
        .into_iter()
        .chain(connector_check::blocked_endpoints(&spec, allow_private))
        .map(|p| error(p.field, p.message))
        .collect();
    let cluster_scoped = doc.kind() == "ClusterConnector";
    for (at, method) in connector_check::auth_methods(&spec) {
        if let Some(secret) = &method.client_secret_ref {
            let at = format!("{at}.clientSecretRef");
            found.extend(app_secret(doc, catalog, &spec, secret, cluster_scoped, &at));
        }
        if let Some(key) = &method.signing_key_ref {
            let at = format!("{at}.signingKeyRef");
            match secret_namespace(doc, key.namespace.as_deref(), cluster_scoped, &at) {
                Err(f) => found.push(f),
                Ok(ns) => found.extend(secret_keys(catalog, &ns, &key.name, &[&key.key], &at)),
            }
        }
    }
    found
}

/// The connector spec of a Connector or ClusterConnector object, if it reads as one.
pub fn spec_of(value: &Value) -> Option<ConnectorSpec> {
    serde_json::from_value(value.get("spec")?.clone()).ok()
}

fn app_secret(
    doc: &Document,
    catalog: &Catalog,
    spec: &ConnectorSpec,
    secret: &SecretReference,
    cluster_scoped: bool,
    at: &str,
) -> Vec<Found> {
    let ns = match secret_namespace(doc, secret.namespace.as_deref(), cluster_scoped, at) {
        Err(f) => return vec![f],
        Ok(ns) => ns,
    };
    let mut found = secret_keys(
        catalog,
        &ns,
        &secret.name,
        &["clientId", "clientSecret"],
        at,
    );
    let (Some(schema), Some((_, values))) = (
        &spec.custom_credentials_schema,
        catalog.secret(&ns, &secret.name),
    ) else {
        return found;
    };
    let Ok(validator) = schemas::compile(&schema.to_value()) else {
        return found; // reported at spec.customCredentialsSchema
    };
    let values: Map<String, Value> = values
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let violations = schemas::violations(&validator, &Value::Object(values));
    if !violations.is_empty() {
        found.push(error(
            at,
            format!(
                "Secret {ns}/{} does not match spec.customCredentialsSchema: {}",
                secret.name,
                schemas::describe(&violations)
            ),
        ));
    }
    found
}

/// A ClusterConnector has no namespace, so its Secret references must name one; a
/// Connector reads Secrets from its own namespace.
fn secret_namespace(
    doc: &Document,
    named: Option<&str>,
    cluster_scoped: bool,
    at: &str,
) -> Result<String, Found> {
    match (cluster_scoped, named) {
        (true, None) => Err(error(
            at,
            "must name a namespace: a ClusterConnector has none; add `namespace:`",
        )),
        (false, Some(ns)) if Some(ns) != doc.namespace() => Err(error(
            at,
            format!(
                "names namespace {ns}, but a Connector reads Secrets from its own; \
                 move the Secret or drop `namespace:`"
            ),
        )),
        (true, Some(ns)) | (false, Some(ns)) => Ok(ns.to_owned()),
        (false, None) => Ok(doc
            .namespace()
            .unwrap_or(super::catalog::DEFAULT_NAMESPACE)
            .to_owned()),
    }
}

/// The Secret holds each key; checked only where the Secret is known (in the set, or in
/// the cluster with `--cluster`). Values are never read into a message.
pub fn secret_keys(
    catalog: &Catalog,
    namespace: &str,
    name: &str,
    keys: &[&str],
    at: &str,
) -> Vec<Found> {
    match catalog.secret(namespace, name) {
        Some((origin, values)) => keys
            .iter()
            .filter(|k| !values.contains_key(**k))
            .map(|k| {
                let place = match origin {
                    Origin::Set => "",
                    Origin::Cluster => " in the cluster",
                };
                error(
                    at,
                    format!(
                        "Secret {namespace}/{name}{place} has no key {k:?}; add it, or name \
                         the key it has (keys: {})",
                        values.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                )
            })
            .collect(),
        None if catalog.cluster => vec![warning(
            at,
            format!(
                "Secret {namespace}/{name} is neither in this set nor in the cluster; \
                 the object will wait until it exists"
            ),
        )],
        None => Vec::new(),
    }
}
