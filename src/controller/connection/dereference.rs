//! Dereference: find the objects a Connection refers to — its connector and auth method,
//! its tenant, and the Secrets its input and the tenant's fields come from — and the Secrets
//! a connector names, within the namespace rule.
//!
//! Connectors and Tenants come from the watch caches (no API call per reconcile); Secrets the
//! user named are read from the API, because only the operator's own Secrets are cached.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, ObjectMeta};
use kube::runtime::reflector::ObjectRef;
use secrecy::SecretString;
use serde_json::{Map, Value};

use crate::api::{
    AuthMethod, ClusterConnector, Connection, Connector, ConnectorKind, ConnectorSpec, Tenant,
    ValueFromSecret,
};
use crate::controller::Context;
use crate::error::Error;
use crate::schemas::Owner;

/// Everything a Connection refers to, resolved.
pub struct Resolved {
    /// `Connector/name` or `ClusterConnector/name`, for messages.
    pub connector_label: String,
    /// Whether the connector is a ClusterConnector, which alone may name Secrets in other
    /// namespaces.
    pub cluster_scoped: bool,
    pub connector: ConnectorSpec,
    /// Whose compiled schemas these are: the connector's uid and generation.
    pub connector_owner: Option<Owner>,
    pub auth: AuthMethod,
    pub tenant: Tenant,
    /// Inline input merged with `inputFrom`. Wrapped because it may hold an API key.
    pub input: SecretJson,
    /// Tenant fields merged with `fieldsFrom`.
    pub tenant_fields: SecretJson,
}

/// A JSON object that may contain secret values: it prints as `[redacted]`.
pub struct SecretJson(Map<String, Value>);

impl SecretJson {
    /// The object, for schema validation and template rendering only.
    pub fn expose(&self) -> &Map<String, Value> {
        &self.0
    }
}

impl std::fmt::Debug for SecretJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

pub async fn resolve(conn: &Connection, ctx: &Context) -> Result<Resolved, Error> {
    let namespace = conn.namespace().unwrap_or_default();
    let Found {
        label: connector_label,
        spec: connector,
        owner: connector_owner,
    } = find_connector(conn, &namespace, ctx).await?;
    let auth = select_auth(conn, &connector)?;
    let tenant_name = &conn.spec.tenant_ref.name;
    let tenant = if ctx.caches_live() {
        ctx.tenants
            .get(&ObjectRef::new(tenant_name).within(&namespace))
    } else {
        Api::<Tenant>::namespaced(ctx.client.clone(), &namespace)
            .get_opt(tenant_name)
            .await?
            .map(std::sync::Arc::new)
    }
    .ok_or_else(|| Error::TenantNotFound {
        name: tenant_name.clone(),
    })?;
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let inline = conn
        .spec
        .input
        .as_ref()
        .map(|i| i.0.clone())
        .unwrap_or_default();
    let input =
        merge_from_secrets(&secrets, inline, &conn.spec.input_from, "spec.inputFrom").await?;
    let fields = tenant
        .spec
        .fields
        .as_ref()
        .map(|f| f.0.clone())
        .unwrap_or_default();
    let tenant_fields = merge_from_secrets(
        &secrets,
        fields,
        &tenant.spec.fields_from,
        &format!("Tenant {tenant_name:?} spec.fieldsFrom"),
    )
    .await?;
    Ok(Resolved {
        cluster_scoped: conn.connector_kind() == ConnectorKind::ClusterConnector,
        connector_label,
        connector,
        connector_owner,
        auth,
        tenant: (*tenant).clone(),
        input: SecretJson(input),
        tenant_fields: SecretJson(tenant_fields),
    })
}

/// Whether deleting the Connection sends anything to its provider: a token revocation
/// (`revokeUri`) or the connector's `disconnect` request. Reads no Secret.
pub async fn sends_at_deletion(conn: &Connection, ctx: &Context) -> Result<bool, Error> {
    let namespace = conn.namespace().unwrap_or_default();
    let connector = find_connector(conn, &namespace, ctx).await?.spec;
    let auth = select_auth(conn, &connector)?;
    let method = crate::auth::method_of(&auth)?;
    Ok(method.revokes(&auth) || connector.disconnect.is_some())
}

/// A connector as found: its label for messages, its spec, and who owns its compiled
/// schemas.
struct Found {
    label: String,
    spec: ConnectorSpec,
    owner: Option<Owner>,
}

impl Found {
    fn of(kind: ConnectorKind, meta: &ObjectMeta, spec: ConnectorSpec) -> Self {
        Self {
            label: format!(
                "{}/{}",
                kind.as_str(),
                meta.name.as_deref().unwrap_or_default()
            ),
            owner: meta.uid.clone().map(|uid| Owner {
                uid,
                generation: meta.generation,
            }),
            spec,
        }
    }
}

async fn find_connector(conn: &Connection, namespace: &str, ctx: &Context) -> Result<Found, Error> {
    let name = &conn.spec.connector_ref.name;
    let kind = conn.connector_kind();
    let found = if ctx.caches_live() {
        match kind {
            ConnectorKind::Connector => ctx
                .connectors
                .get(&ObjectRef::<Connector>::new(name).within(namespace))
                .map(|c| Found::of(kind, &c.metadata, c.spec.clone())),
            ConnectorKind::ClusterConnector => ctx
                .cluster_connectors
                .get(&ObjectRef::<ClusterConnector>::new(name))
                .map(|c| Found::of(kind, &c.metadata, c.spec.0.clone())),
        }
    } else {
        find_connector_in_api(conn, namespace, ctx).await?
    };
    found.ok_or_else(|| Error::ConnectorNotFound {
        kind: kind.as_str(),
        name: name.clone(),
    })
}

/// The same lookup from the API, for a replica whose caches are not running.
async fn find_connector_in_api(
    conn: &Connection,
    namespace: &str,
    ctx: &Context,
) -> Result<Option<Found>, Error> {
    let name = &conn.spec.connector_ref.name;
    let kind = conn.connector_kind();
    Ok(match kind {
        ConnectorKind::Connector => Api::<Connector>::namespaced(ctx.client.clone(), namespace)
            .get_opt(name)
            .await?
            .map(|c| Found::of(kind, &c.metadata, c.spec)),
        ConnectorKind::ClusterConnector => Api::<ClusterConnector>::all(ctx.client.clone())
            .get_opt(name)
            .await?
            .map(|c| Found::of(kind, &c.metadata, c.spec.0)),
    })
}

fn select_auth(conn: &Connection, connector: &ConnectorSpec) -> Result<AuthMethod, Error> {
    let key = conn.spec.auth_option_key.as_deref();
    auth_method(connector, key, "spec.authOptionKey").cloned()
}

/// The auth method a connection with the option `key` (named by `field`) uses: the
/// connector's one `auth`, or its `options` entry of that key. `POST /connect` asks the same
/// before it writes anything.
pub fn auth_method<'a>(
    connector: &'a ConnectorSpec,
    key: Option<&str>,
    field: &str,
) -> Result<&'a AuthMethod, Error> {
    match (&connector.auth, &connector.options, key) {
        (Some(auth), None, None) => Ok(auth),
        (Some(_), None, Some(key)) => Err(Error::InvalidInput(format!(
            "{field} {key:?} is set but the connector has a single auth method; remove {field}"
        ))),
        (None, Some(options), key) => {
            let valid = options
                .keys()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ");
            let Some(key) = key else {
                return Err(Error::InvalidInput(format!(
                    "{field} is required: the connector offers several auth methods ({valid})"
                )));
            };
            options.get(key).ok_or_else(|| {
                Error::InvalidInput(format!(
                    "{field} {key:?} is not an option of the connector; valid keys: {valid}"
                ))
            })
        }
        _ => Err(Error::InvalidConnector(
            "the connector must set exactly one of spec.auth or spec.options".to_owned(),
        )),
    }
}

/// `inline` with each `from` entry's Secret value set at its top-level key.
pub(crate) async fn merge_from_secrets(
    secrets: &Api<Secret>,
    mut inline: Map<String, Value>,
    from: &[ValueFromSecret],
    field: &str,
) -> Result<Map<String, Value>, Error> {
    let mut fetched: BTreeMap<String, Secret> = BTreeMap::new();
    for (i, entry) in from.iter().enumerate() {
        let name = &entry.secret_key_ref.name;
        let at = format!("{field}[{i}]");
        if !fetched.contains_key(name) {
            let secret = secrets
                .get_opt(name)
                .await?
                .ok_or_else(|| Error::SecretNotFound {
                    namespace: None,
                    name: name.clone(),
                    field: at.clone(),
                })?;
            fetched.insert(name.clone(), secret);
        }
        let value = secret_value(&fetched[name], &entry.secret_key_ref.key).ok_or_else(|| {
            Error::SecretKeyNotFound {
                namespace: None,
                name: name.clone(),
                key: entry.secret_key_ref.key.clone(),
                field: at,
            }
        })?;
        use secrecy::ExposeSecret;
        inline.insert(
            entry.field.clone(),
            Value::String(value.expose_secret().to_owned()),
        );
    }
    Ok(inline)
}

/// One key of a Secret as text (from `data`, or `stringData` as a real API server never
/// returns it but a hand-made object may carry it).
fn secret_value(secret: &Secret, key: &str) -> Option<SecretString> {
    if let Some(bytes) = secret.data.as_ref().and_then(|d| d.get(key)) {
        return Some(SecretString::from(
            String::from_utf8_lossy(&bytes.0).into_owned(),
        ));
    }
    secret
        .string_data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|s| SecretString::from(s.clone()))
}

/// Reads a Secret a connector names (an OAuth app, a signing key). Only a ClusterConnector
/// may name one in another namespace: otherwise anyone who may write a Connector could have
/// the operator send another namespace's secret to an endpoint of their choosing.
pub(crate) async fn connector_secret(
    conn: &Connection,
    resolved: &Resolved,
    name: &str,
    namespace: Option<&str>,
    field: &str,
    ctx: &Context,
) -> Result<Secret, Error> {
    let own = conn.namespace().unwrap_or_default();
    let elsewhere = match namespace {
        Some(ns) if ns != own && !resolved.cluster_scoped => {
            return Err(Error::InvalidConnector(format!(
                "{field}.namespace {ns:?}: only a ClusterConnector may name a Secret in another namespace; remove it or move the Secret to {own:?}"
            )));
        }
        Some(ns) if ns != own => Some(ns.to_owned()),
        _ => None,
    };
    let namespace = elsewhere.as_deref().unwrap_or(&own);
    Api::<Secret>::namespaced(ctx.client.clone(), namespace)
        .get_opt(name)
        .await?
        .ok_or_else(|| Error::SecretNotFound {
            namespace: elsewhere.clone(),
            name: name.to_owned(),
            field: field.to_owned(),
        })
}
