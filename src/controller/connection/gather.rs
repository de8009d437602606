//! Gather: read every input of a Connection's reconcile once — its connector and auth
//! method, its tenant, every Secret they name (input, tenant fields, OAuth app, signing key)
//! and the stored credentials — before anything is decided.
//!
//! Connectors and Tenants come from the watch caches; Secrets from the API, because only
//! their metadata is watched. Nothing here judges what it read: `validate` and `plan` do.

use std::collections::BTreeMap;

use kube::ResourceExt;
use secrecy::{ExposeSecret, SecretSlice};
use serde_json::{Map, Value, json};

use super::dereference::{self, Resolved};
use super::unsaved::Kept;
use crate::api::{Connection, ConnectorSpec};
use crate::auth::method::{self, ConnectorSecrets, Inputs, Method, Needs, TenantView};
use crate::controller::Context;
use crate::error::Error;
use crate::schemas::{Compiled, ConnectorSchemas};
use crate::store::{CredentialStore, Credentials, Stored};

/// Everything a reconcile observed of one Connection.
pub struct Observed<'a> {
    pub conn: &'a Connection,
    pub resolved: Resolved,
    /// The connector's parameters merged with the Connection's `connectorParameters`.
    pub parameters: Map<String, Value>,
    /// The template context without credentials.
    pub context: Value,
    pub method: &'static dyn Method,
    /// The connector Secrets the method needs, as read.
    pub referenced: Referenced,
    pub store: &'a dyn CredentialStore,
    pub stored: Option<Stored>,
    /// `stored`'s credentials (everything but the API client).
    pub credentials: Credentials,
    /// New tokens an earlier reconcile could not store.
    pub kept: Option<Kept>,
    /// Where the connector's compiled schemas are kept.
    pub compiled: &'a Compiled,
    /// The template engine, for methods that judge what is stored against what the input
    /// renders to.
    pub templates: &'a crate::templates::Templates,
}

/// A Secret a connector names, as read.
pub struct SecretRead {
    /// Its namespace when it is not the Connection's.
    pub namespace: Option<String>,
    pub name: String,
    /// The field that names it, for messages.
    pub field: String,
    pub data: BTreeMap<String, SecretSlice<u8>>,
}

/// The connector Secrets read for the method.
#[derive(Default)]
pub struct Referenced {
    pub app: Option<SecretRead>,
    pub signing_key: Option<SecretRead>,
}

impl Observed<'_> {
    /// The connector's schemas, for validate.
    pub fn schemas(&self) -> ConnectorSchemas<'_> {
        ConnectorSchemas {
            connector: &self.resolved.connector,
            label: &self.resolved.connector_label,
            owner: self.resolved.connector_owner.as_ref(),
            compiled: self.compiled,
            option: self.conn.spec.auth_option_key.as_deref(),
        }
    }

    /// What the auth method works from, with `secrets` as validate checked them.
    pub fn inputs<'b>(&'b self, secrets: &'b ConnectorSecrets) -> Inputs<'b> {
        Inputs {
            label: &self.resolved.connector_label,
            connector: &self.resolved.connector,
            auth: &self.resolved.auth,
            parameters: &self.parameters,
            context: &self.context,
            tenant: TenantView {
                id: self.resolved.tenant.tenant_id(),
                display_name: self.resolved.tenant.spec.display_name.as_deref(),
                fields: self.resolved.tenant_fields.expose(),
            },
            secrets,
            stored: &self.credentials,
            templates: self.templates,
        }
    }

    /// Every secret value this reconcile handled, to scrub from what it reports.
    pub fn secret_values(&self) -> Vec<String> {
        let input = self.resolved.input.expose().values();
        let stored = self
            .credentials
            .values()
            .map(|v| v.expose_secret().to_owned());
        input
            .filter_map(|v| v.as_str().map(str::to_owned))
            .chain(stored)
            .collect()
    }
}

/// What a gather is for, which decides what it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A reconcile: everything.
    Reconcile,
    /// Revoking at deletion or disconnect: the connector Secrets only if the method sends
    /// anything with them, since they are often deleted together with the Connection, and
    /// not the store, which the caller has read already.
    Revocation,
}

/// Reads everything the reconcile of `conn` needs. A missing object or Secret is an error
/// naming it, for status; a failed API call an `Error::Kube`.
pub async fn gather<'a>(conn: &'a Connection, ctx: &'a Context) -> Result<Observed<'a>, Error> {
    gather_for(conn, ctx, Purpose::Reconcile).await
}

/// Reads what `purpose` needs of `conn`.
pub async fn gather_for<'a>(
    conn: &'a Connection,
    ctx: &'a Context,
    purpose: Purpose,
) -> Result<Observed<'a>, Error> {
    let store = ctx.stores.of(conn)?;
    let resolved = dereference::resolve(conn, ctx).await?;
    let method = crate::auth::method_of(&resolved.auth)?;
    let needs = match purpose {
        // A method that signs its requests needs its app to sign the disconnect request.
        Purpose::Revocation
            if !method.revokes(&resolved.auth) && method.signing(&resolved.auth).is_none() =>
        {
            Needs::default()
        }
        _ => method.needs(),
    };
    let auth = &resolved.auth;
    let app = auth.client_secret_ref.as_ref().filter(|_| needs.app);
    let app = app.map(|r| (r.namespace.as_deref(), r.name.as_str()));
    let key = auth.signing_key_ref.as_ref().filter(|_| needs.signing_key);
    let key = key.map(|r| (r.namespace.as_deref(), r.name.as_str()));
    let referenced = Referenced {
        app: read(conn, &resolved, app, "clientSecretRef", ctx).await?,
        signing_key: read(conn, &resolved, key, "signingKeyRef", ctx).await?,
    };
    // Revocation is handed the credentials it revokes, read (or kept) by its caller.
    let stored = match purpose {
        Purpose::Reconcile => store.read(conn).await?,
        Purpose::Revocation => None,
    };
    let parameters = merged_parameters(&resolved, conn);
    let context = template_context(conn, &resolved, &parameters);
    Ok(Observed {
        conn,
        credentials: stored.as_ref().map(Stored::credentials).unwrap_or_default(),
        stored,
        kept: ctx.unsaved.peek(conn),
        resolved,
        parameters,
        context,
        method,
        referenced,
        store,
        compiled: &ctx.schemas,
        templates: &ctx.templates,
    })
}

/// The connector Secret `(namespace, name)` its auth method names in `field`, if it names
/// one.
async fn read(
    conn: &Connection,
    resolved: &Resolved,
    named: Option<(Option<&str>, &str)>,
    field: &str,
    ctx: &Context,
) -> Result<Option<SecretRead>, Error> {
    let Some((namespace, name)) = named else {
        return Ok(None);
    };
    let field = format!("{} auth.{field}", resolved.connector_label);
    let secret =
        dereference::connector_secret(conn, resolved, name, namespace, &field, ctx).await?;
    let own = conn.namespace();
    Ok(Some(SecretRead {
        namespace: namespace
            .filter(|ns| Some(*ns) != own.as_deref())
            .map(str::to_owned),
        name: name.to_owned(),
        field,
        data: secret
            .data
            .into_iter()
            .flatten()
            .map(|(k, v)| (k, SecretSlice::from(v.0)))
            .collect(),
    }))
}

/// The connector's `parameters` overridden key by key, at the top level, by the
/// Connection's `connectorParameters`, as the integration-engine model defines them.
pub fn merged_parameters(resolved: &Resolved, conn: &Connection) -> Map<String, Value> {
    merge_parameters(
        &resolved.connector,
        conn.spec.connector_parameters.as_ref().map(|p| &p.0),
    )
}

/// `connector`'s `parameters` with `overrides` set key by key at the top level.
pub fn merge_parameters(
    connector: &ConnectorSpec,
    overrides: Option<&Map<String, Value>>,
) -> Map<String, Value> {
    let mut merged = connector
        .parameters
        .as_ref()
        .map(|p| p.0.clone())
        .unwrap_or_default();
    for (key, value) in overrides.into_iter().flatten() {
        merged.insert(key.clone(), value.clone());
    }
    merged
}

/// The template context without credentials: `input`, `parameters`, `tenant`, `connection`.
pub fn template_context(
    conn: &Connection,
    resolved: &Resolved,
    parameters: &Map<String, Value>,
) -> Value {
    let tenant = &resolved.tenant;
    json!({
        "input": resolved.input.expose(),
        "parameters": parameters,
        "tenant": {
            "id": tenant.tenant_id(),
            "name": tenant.spec.display_name.clone().unwrap_or_else(|| tenant.name_any()),
            "fields": resolved.tenant_fields.expose(),
        },
        "connection": {"name": conn.name_any(), "namespace": conn.namespace()},
    })
}

pub use crate::templates::with_credentials;

/// Reads the stored credentials again, for a refresh that met `invalid_grant`.
pub struct Reread<'a> {
    pub conn: &'a Connection,
    pub store: &'a dyn CredentialStore,
}

impl method::Reread for Reread<'_> {
    fn stored(&self) -> futures::future::BoxFuture<'_, Result<Credentials, Error>> {
        Box::pin(async move {
            Ok(self
                .store
                .read(self.conn)
                .await?
                .as_ref()
                .map(Stored::credentials)
                .unwrap_or_default())
        })
    }
}
