//! (e) References resolve within `examples/`, every object lives in a namespace the
//! examples create, and the files apply in an order that creates what is referenced first.

use plugboard::api::{AuthMethod, Connection, ConnectorKind, ConnectorSpec, Tenant};

use super::examples::{Doc, Examples, connector_spec};

/// Each auth method of a connector with where it sits (`spec.auth`, `spec.options.x`).
pub fn auth_methods(spec: &ConnectorSpec) -> Vec<(String, &AuthMethod)> {
    let mut methods: Vec<(String, &AuthMethod)> = Vec::new();
    if let Some(auth) = &spec.auth {
        methods.push(("spec.auth".into(), auth));
    }
    for (key, method) in spec.options.iter().flatten() {
        methods.push((format!("spec.options.{key}"), method));
    }
    methods
}

/// Problems with one document's references (unlabelled).
pub fn check(ex: &Examples, doc: &Doc) -> Vec<String> {
    let mut problems = namespace(ex, doc);
    match doc.kind() {
        "Connection" => problems.extend(connection(ex, doc)),
        "Connector" | "ClusterConnector" => problems.extend(connector(ex, doc)),
        "Tenant" => problems.extend(tenant(ex, doc)),
        _ => {}
    }
    problems
}

fn namespace(ex: &Examples, doc: &Doc) -> Vec<String> {
    let cluster_scoped = matches!(doc.kind(), "Namespace" | "ClusterConnector");
    match (doc.namespace(), cluster_scoped) {
        (Some(ns), true) => vec![format!("is cluster-scoped but names namespace {ns}")],
        (None, false) => vec!["names no metadata.namespace".into()],
        (Some(ns), false) if ex.find("Namespace", None, ns).is_none() => {
            vec![format!("namespace {ns} is not created by any example")]
        }
        _ => Vec::new(),
    }
}

fn connection(ex: &Examples, doc: &Doc) -> Vec<String> {
    let connection: Connection = doc.typed();
    let ns = doc.namespace();
    let mut problems = Vec::new();
    let tenant = &connection.spec.tenant_ref.name;
    if ex.find("Tenant", ns, tenant).is_none() {
        problems.push(format!(
            "spec.tenantRef names Tenant {tenant}, which no example defines"
        ));
    }
    let r = &connection.spec.connector_ref;
    let (kind, found) = match connection.connector_kind() {
        ConnectorKind::Connector => ("Connector", ex.find("Connector", ns, &r.name)),
        ConnectorKind::ClusterConnector => (
            "ClusterConnector",
            ex.find("ClusterConnector", None, &r.name),
        ),
    };
    match found {
        None => problems.push(format!(
            "spec.connectorRef names {kind} {}, which no example defines",
            r.name
        )),
        Some(connector) => problems.extend(auth_option(&connection, connector)),
    }
    for (i, from) in connection.spec.input_from.iter().enumerate() {
        let key = &from.secret_key_ref;
        let at = format!("spec.inputFrom[{i}]");
        problems.extend(secret_key(ex, ns, &key.name, &key.key, &at));
    }
    problems
}

/// `authOptionKey` is set exactly when the connector has `options`, and names one.
fn auth_option(connection: &Connection, connector: &Doc) -> Vec<String> {
    let spec = connector_spec(connector);
    let key = connection.spec.auth_option_key.as_deref();
    let label = connector.label();
    match (&spec.options, key) {
        (Some(options), Some(key)) if !options.contains_key(key) => vec![format!(
            "spec.authOptionKey {key} is not one of the options of {label}: {:?}",
            options.keys().collect::<Vec<_>>()
        )],
        (Some(_), None) => vec![format!(
            "{label} has several auth options; spec.authOptionKey must pick one"
        )],
        (None, Some(key)) => vec![format!(
            "spec.authOptionKey {key} is set but {label} has a single auth method"
        )],
        _ => Vec::new(),
    }
}

fn connector(ex: &Examples, doc: &Doc) -> Vec<String> {
    let spec = connector_spec(doc);
    let cluster = doc.kind() == "ClusterConnector";
    let mut problems = Vec::new();
    for (at, method) in auth_methods(&spec) {
        if let Some(secret) = &method.client_secret_ref {
            let at = format!("{at}.clientSecretRef");
            let ns = secret_namespace(doc, secret.namespace.as_deref(), cluster, &at);
            match ns {
                Err(problem) => problems.push(problem),
                Ok(ns) => {
                    for key in ["clientId", "clientSecret"] {
                        problems.extend(secret_key(ex, ns, &secret.name, key, &at));
                    }
                }
            }
        }
        if let Some(key) = &method.signing_key_ref {
            let at = format!("{at}.signingKeyRef");
            match secret_namespace(doc, key.namespace.as_deref(), cluster, &at) {
                Err(problem) => problems.push(problem),
                Ok(ns) => problems.extend(secret_key(ex, ns, &key.name, &key.key, &at)),
            }
        }
    }
    problems
}

/// A ClusterConnector has no namespace, so its Secret refs must name one; a Connector
/// reads its own namespace and may not name another.
fn secret_namespace<'a>(
    doc: &'a Doc,
    named: Option<&'a str>,
    cluster: bool,
    at: &str,
) -> Result<Option<&'a str>, String> {
    match (cluster, named) {
        (true, None) => Err(format!(
            "{at} must name a namespace: a ClusterConnector has none"
        )),
        (false, Some(ns)) => Err(format!(
            "{at} names namespace {ns}; a namespaced Connector reads Secrets from its own"
        )),
        (true, Some(ns)) => Ok(Some(ns)),
        (false, None) => Ok(doc.namespace()),
    }
}

fn tenant(ex: &Examples, doc: &Doc) -> Vec<String> {
    let tenant: Tenant = doc.typed();
    let mut problems = Vec::new();
    for (i, from) in tenant.spec.fields_from.iter().enumerate() {
        let key = &from.secret_key_ref;
        let at = format!("spec.fieldsFrom[{i}]");
        problems.extend(secret_key(ex, doc.namespace(), &key.name, &key.key, &at));
    }
    problems
}

/// The Secret exists in the examples and holds `key`.
fn secret_key(ex: &Examples, ns: Option<&str>, name: &str, key: &str, at: &str) -> Vec<String> {
    let where_ = ns.unwrap_or("<no namespace>");
    match ex.secret_values(ns, name) {
        None => vec![format!(
            "{at} names Secret {where_}/{name}, which no example defines"
        )],
        Some(values) if values.get(key).is_none() => {
            vec![format!("{at}: Secret {where_}/{name} has no key {key}")]
        }
        Some(_) => Vec::new(),
    }
}

/// `kubectl apply -f examples/` goes file by file in name order; referenced objects
/// must come first: Namespace, Secrets, connectors, tenants, connections.
pub fn apply_order(ex: &Examples) -> Vec<String> {
    let rank = |doc: &Doc| match doc.kind() {
        "Namespace" => 0,
        "Secret" => 1,
        "Connector" | "ClusterConnector" => 2,
        "Tenant" => 3,
        _ => 4,
    };
    ex.docs
        .windows(2)
        .filter(|pair| rank(&pair[1]) < rank(&pair[0]))
        .map(|pair| {
            format!(
                "{} is applied after {}; rename the file so it sorts earlier",
                pair[1].label(),
                pair[0].label()
            )
        })
        .collect()
}
