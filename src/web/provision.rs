//! What `POST /connect` writes: the Tenant (created on first sight of its id, its fields
//! updated from later tokens), the Connection, and the Secret its string input goes into.
//!
//! Everything is written by server-side apply with the endpoint's own field manager and
//! without force, so the objects are ordinary resources a GitOps user can see and adopt: a
//! field someone else manages is a conflict the caller is told about, never overwritten.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams, ObjectMeta, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::connect_api::{ConnectError, Payload};
use crate::api::{Connection, ConnectorKind, Tenant};
use crate::auth::access_token::TenantClaims;
use crate::controller::Context;
use crate::meta::{CONNECT_MANAGER, INPUT_UPDATED_AT};

/// Marks what the endpoint created, so a person can tell it from what they applied.
pub const CREATED_BY_LABEL: &str = "plugboard.dev/created-by";
const CREATED_BY_VALUE: &str = "connect-endpoint";
/// Room left in a name for `-credentials`, `-input` and a random suffix, within the 253
/// characters of a Kubernetes object name.
const NAME_BUDGET: usize = 200;
/// A DNS label: what a tenant id must look like to be used as the Tenant's name unchanged.
const MAX_LABEL: usize = 63;

/// The Tenant's object name for a tenant id: the id itself when it is a valid name, else a
/// digest of it (ids may hold `@`, capitals or be long).
pub fn tenant_name(id: &str) -> String {
    let valid = !id.is_empty()
        && id.len() <= MAX_LABEL
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-')
        && !id.ends_with('-');
    if valid {
        return id.to_owned();
    }
    digested_tenant_name(id)
}

fn digested_tenant_name(id: &str) -> String {
    let digest = Sha256::digest(id.as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("tenant-{hex}")
}

/// The names the Tenant of `id` may have, in order of preference: the one it has (`found`),
/// `tenant_name`, and the digest. The digest is the fallback for an id whose own name is
/// held by a Tenant of another id — typically an id that is itself `tenant-<hex>`, the
/// digested name of some other id; the digest of such an id is another `tenant-<hex>`.
fn tenant_names(found: Option<String>, id: &str) -> Vec<String> {
    let mut names: Vec<String> = found.into_iter().collect();
    for name in [tenant_name(id), digested_tenant_name(id)] {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// The first of `names` that no Tenant of another id holds. Read from the API, not the
/// cache: the apply that follows must never land on another tenant's Tenant. The CRD refuses
/// a changed `spec.tenantId` — a 422 that would lock this tenant out — and were that rule
/// not enforced, the apply would hand the Tenant, its Connections and their credentials to
/// the caller.
async fn unclaimed_tenant_name(
    api: &Api<Tenant>,
    names: Vec<String>,
    id: &str,
) -> Result<String, ConnectError> {
    for name in &names {
        let held = api
            .get_opt(name)
            .await
            .map_err(|err| ConnectError::unavailable(format!("could not read Tenants: {err}")))?;
        if held.is_none_or(|t| t.tenant_id() == id) {
            return Ok(name.clone());
        }
    }
    Err(ConnectError::conflict(format!(
        "the Tenant names {names:?} all belong to Tenants of other tenant ids; this tenant \
         cannot be created until one of them is renamed or removed"
    )))
}

fn conflict_or(err: kube::Error, what: &str) -> ConnectError {
    match &err {
        kube::Error::Api(status) if status.code == 409 => ConnectError::conflict(format!(
            "{what} is managed by someone else ({}); change it there instead",
            status.message
        )),
        // The API server's message quotes the values it refused, which may be the
        // person's input (an API key): name the fields and why, never the values.
        kube::Error::Api(status) if status.code == 422 => {
            let fields: Vec<String> = status
                .details
                .iter()
                .flat_map(|d| d.causes.iter())
                .filter(|c| !c.field.is_empty())
                .map(|c| format!("{} ({})", c.field, c.reason))
                .collect();
            let fields = if fields.is_empty() {
                "a field".to_owned()
            } else {
                fields.join(", ")
            };
            ConnectError::invalid(
                "invalid_request",
                format!("the API server refused {what}: {fields} is not valid"),
            )
        }
        _ => ConnectError::unavailable(format!("could not write {what}: {err}")),
    }
}

/// Finds the Tenant with this id, or creates it; updates its name and fields when the token
/// carries new ones. Returns the Tenant as it is now.
pub async fn tenant(
    ctx: &Context,
    namespace: &str,
    claims: &TenantClaims,
) -> Result<Tenant, ConnectError> {
    let api: Api<Tenant> = Api::namespaced(ctx.client.clone(), namespace);
    // The controller's cache where this replica has one: a cache that lags only makes the
    // apply below run when it need not, and the name it picks is the same either way.
    let existing = if ctx.caches_live() {
        ctx.tenants
            .state()
            .iter()
            .find(|t| t.namespace().as_deref() == Some(namespace) && t.tenant_id() == claims.id)
            .map(|t| Tenant::clone(t))
    } else {
        api.list(&ListParams::default())
            .await
            .map_err(|err| ConnectError::unavailable(format!("could not list Tenants: {err}")))?
            .items
            .into_iter()
            .find(|t| t.tenant_id() == claims.id)
    };
    let found = existing.as_ref().map(|t| t.name_any());
    let have = existing.as_ref().map(|t| &t.spec);
    let display_name = claims
        .name
        .clone()
        .or_else(|| have.and_then(|s| s.display_name.clone()));
    let fields = claims
        .fields
        .clone()
        .or_else(|| have.and_then(|s| s.fields.as_ref().map(|f| f.0.clone())));
    let unchanged = have.is_some_and(|s| {
        s.display_name == display_name && s.fields.as_ref().map(|f| &f.0) == fields.as_ref()
    });
    if let (true, Some(tenant)) = (unchanged, existing.clone()) {
        return Ok(tenant);
    }
    let name = unclaimed_tenant_name(&api, tenant_names(found, &claims.id), &claims.id).await?;
    let mut spec = json!({"tenantId": claims.id});
    if let Some(display_name) = display_name {
        spec["displayName"] = json!(display_name);
    }
    if let Some(fields) = fields {
        spec["fields"] = Value::Object(fields);
    }
    let patch = json!({
        "apiVersion": "plugboard.dev/v1alpha1", "kind": "Tenant",
        "metadata": {"name": name, "labels": {CREATED_BY_LABEL: CREATED_BY_VALUE}},
        "spec": spec,
    });
    api.patch(
        &name,
        &PatchParams::apply(CONNECT_MANAGER),
        &Patch::Apply(patch),
    )
    .await
    .map_err(|err| conflict_or(err, &format!("Tenant {name:?}")))
}

/// The Connection to write: an existing one of this tenant and connector unless the caller
/// allows several, else a new name. Returns the name and the Connection it holds now, if any.
async fn connection_name(
    ctx: &Context,
    api: &Api<Connection>,
    tenant: &str,
    target: (ConnectorKind, &str),
    allow_multiple: bool,
) -> Result<(String, Option<Connection>), ConnectError> {
    let (kind, connector) = target;
    let base: String = format!("{tenant}-{connector}")
        .chars()
        .take(NAME_BUDGET)
        .collect();
    if allow_multiple {
        return Ok((fresh_connection_name(api, &base).await?, None));
    }
    let all: Vec<Connection> = if ctx.caches_live() {
        let ns = api.namespace();
        ctx.connections
            .state()
            .iter()
            .filter(|c| c.namespace().as_deref() == ns)
            .map(|c| Connection::clone(c))
            .collect()
    } else {
        api.list(&ListParams::default())
            .await
            .map_err(|err| ConnectError::unavailable(format!("could not list Connections: {err}")))?
            .items
    };
    let mut mine: Vec<Connection> = all
        .into_iter()
        .filter(|c| belongs(c, tenant, target) && c.meta().deletion_timestamp.is_none())
        .collect();
    mine.sort_by_key(|c| c.creation_timestamp());
    if let Some(found) = mine.into_iter().next() {
        return Ok((found.name_any(), Some(found)));
    }
    // `<tenant>-<connector>` is ambiguous (tenant `acme` with connector `crm-sync`, tenant
    // `acme-crm` with `sync`; a Connector and a ClusterConnector of one name), and a person
    // may have applied a Connection of that name for anything. The apply below would land on
    // such a Connection (same field manager, so no conflict): the CRD refuses its changed
    // tenantRef and connectorRef with a 422 that locks this tenant out, and were that rule
    // not enforced the apply would take the Connection over. So a name held by another
    // tenant's or connector's Connection is passed over for one with a digest of this tenant
    // and connector: deterministic, so later requests find the same one. Not a 409, which
    // would lock this tenant out of the connector for as long as the other Connection
    // exists, through no fault of its own. Two first requests racing for one free name can
    // still meet at the apply; the CRD's rule then refuses the later one, which chooses again.
    let kind_name = kind.as_str();
    let hex: String = Sha256::digest(format!("{tenant}\0{kind_name}\0{connector}").as_bytes())
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect();
    let distinct = format!(
        "{}-{hex}",
        base.chars().take(NAME_BUDGET - 9).collect::<String>()
    );
    for name in [&base, &distinct] {
        match read_connection(api, name).await? {
            Some(held) if !belongs(&held, tenant, target) => continue,
            held => return Ok((name.clone(), held)),
        }
    }
    Err(ConnectError::conflict(format!(
        "the Connection names {base:?} and {distinct:?} are held by Connections of other \
         tenants or connectors; remove one of them to connect this tenant"
    )))
}

/// The Connection name the caller fixed, unless another tenant's or connector's Connection
/// holds it.
async fn fixed_connection_name(
    api: &Api<Connection>,
    name: &str,
    tenant: &str,
    target: (ConnectorKind, &str),
) -> Result<(String, Option<Connection>), ConnectError> {
    match read_connection(api, name).await? {
        Some(held) if !belongs(&held, tenant, target) => Err(ConnectError::conflict(format!(
            "the Connection name {name:?} is held by a Connection of another tenant or connector"
        ))),
        held => Ok((name.to_owned(), held)),
    }
}

/// Whether `conn` is the tenant's Connection to the connector.
fn belongs(conn: &Connection, tenant: &str, (kind, connector): (ConnectorKind, &str)) -> bool {
    conn.spec.tenant_ref.name == tenant
        && conn.connector_kind() == kind
        && conn.spec.connector_ref.name == connector
}

/// Read from the API, not the cache: what a name is held by must be current when the apply
/// that follows decides whose Connection it writes.
async fn read_connection(
    api: &Api<Connection>,
    name: &str,
) -> Result<Option<Connection>, ConnectError> {
    api.get_opt(name)
        .await
        .map_err(|err| ConnectError::unavailable(format!("could not read Connections: {err}")))
}

/// A new name for one more Connection, with a random suffix that no Connection has yet.
async fn fresh_connection_name(api: &Api<Connection>, base: &str) -> Result<String, ConnectError> {
    for _ in 0..3 {
        let suffix: String = (0..6)
            .map(|_| {
                let i = rand::random_range(0..36u32);
                char::from_digit(i, 36).unwrap_or('0')
            })
            .collect();
        let name = format!("{base}-{suffix}");
        if read_connection(api, &name).await?.is_none() {
            return Ok(name);
        }
    }
    Err(ConnectError::unavailable(
        "could not find a free name for another Connection; try again",
    ))
}

/// Creates or updates the tenant's Connection to `kind/connector` with the payload's input
/// and parameters. String input goes into the Secret `<connection>-input` (it may be an API
/// key, which must not sit in a spec); other values stay inline.
pub async fn connection(
    ctx: &Context,
    namespace: &str,
    tenant: &Tenant,
    kind: ConnectorKind,
    payload: &Payload,
) -> Result<Connection, ConnectError> {
    let api: Api<Connection> = Api::namespaced(ctx.client.clone(), namespace);
    let tenant_name = tenant.name_any();
    let target = (kind, payload.connector.as_str());
    let allow_multiple = payload.allow_multiple_connections;
    let mut chosen = match &payload.connection {
        Some(name) => fixed_connection_name(&api, name, &tenant_name, target).await?,
        None => connection_name(ctx, &api, &tenant_name, target, allow_multiple).await?,
    };
    let conn = loop {
        let (name, held) = &chosen;
        let patch = connection_patch(name, held.as_ref(), tenant, kind, payload);
        let applied = api
            .patch(
                name,
                &PatchParams::apply(CONNECT_MANAGER),
                &Patch::Apply(patch),
            )
            .await;
        match applied {
            Ok(conn) => break conn,
            // Another tenant's first request took the name between the read and this
            // apply, and the CRD refused to hand its Connection over: choose again, now
            // that the name is seen taken. Chosen once more only, so that a 422 for any
            // other reason is still answered.
            Err(kube::Error::Api(status))
                if status.code == 422 && held.is_none() && payload.connection.is_none() =>
            {
                let again =
                    connection_name(ctx, &api, &tenant_name, target, allow_multiple).await?;
                if again.0 == *name {
                    return Err(conflict_or(
                        kube::Error::Api(status),
                        &format!("Connection {name:?}"),
                    ));
                }
                chosen = again;
            }
            Err(err) => return Err(conflict_or(err, &format!("Connection {name:?}"))),
        }
    };
    let strings = string_input(payload);
    if strings.is_empty() {
        return Ok(conn);
    }
    let secret_name = format!("{}-input", conn.name_any());
    input_secret(ctx, &conn, &secret_name, strings).await?;
    input_updated(&api, &conn).await
}

/// Marks the Connection's input as new. A changed input Secret changes no generation, so
/// without the mark a caller waiting for the Connection's verdict could not tell the verdict
/// on this input from the one on the input before it: the status echoes the mark.
async fn input_updated(
    api: &Api<Connection>,
    conn: &Connection,
) -> Result<Connection, ConnectError> {
    let at = k8s_openapi::jiff::Timestamp::now().to_string();
    let patch = json!({"metadata": {"annotations": {INPUT_UPDATED_AT: at}}});
    let params = PatchParams {
        field_manager: Some(CONNECT_MANAGER.to_owned()),
        ..PatchParams::default()
    };
    api.patch(&conn.name_any(), &params, &Patch::Merge(&patch))
        .await
        .map_err(|err| conflict_or(err, &format!("Connection {:?}", conn.name_any())))
}

/// The payload's string input: it goes into the input Secret, never the spec.
fn string_input(payload: &Payload) -> Map<String, Value> {
    let input = payload.input.clone().unwrap_or_default();
    input.into_iter().filter(|(_, v)| v.is_string()).collect()
}

/// The Connection as the payload makes it. One this endpoint creates is owned by its Tenant, so that the garbage collector deletes it with the Tenant whether or
/// not the operator runs. One a person applied is theirs, and gets no owner: Argo CD stops
/// pruning an object once it has an owner reference.
fn connection_patch(
    name: &str,
    held: Option<&Connection>,
    tenant: &Tenant,
    kind: ConnectorKind,
    payload: &Payload,
) -> Value {
    let secret_name = format!("{name}-input");
    let input = payload.input.clone().unwrap_or_default();
    let (strings, inline): (Map<String, Value>, Map<String, Value>) =
        input.into_iter().partition(|(_, v)| v.is_string());
    let input_from: Vec<Value> = strings
        .keys()
        .map(|k| json!({"field": k, "secretKeyRef": {"name": secret_name, "key": k}}))
        .collect();
    let mut spec = json!({
        "tenantRef": {"name": tenant.name_any()},
        "connectorRef": {"kind": kind.as_str(), "name": payload.connector},
    });
    if let Some(key) = &payload.auth_option_key {
        spec["authOptionKey"] = json!(key);
    }
    if !inline.is_empty() {
        spec["input"] = Value::Object(inline);
    }
    if !input_from.is_empty() {
        spec["inputFrom"] = Value::Array(input_from);
    }
    if let Some(parameters) = &payload.connector_parameters {
        spec["connectorParameters"] = Value::Object(parameters.clone());
    }
    let mut metadata = json!({"name": name, "labels": {CREATED_BY_LABEL: CREATED_BY_VALUE}});
    // Created now, or created owned before (this apply must name the owner again, or it
    // would drop it). The label cannot tell: an apply to a person's Connection adds it too.
    let created_here = held.is_none_or(|c| {
        c.owner_references()
            .iter()
            .any(|o| Some(&o.uid) == tenant.uid().as_ref())
    });
    if let (true, Some(mut owner)) = (created_here, tenant.controller_owner_ref(&())) {
        // Owned, not controlled: no controller manages a Connection on its Tenant's behalf.
        owner.controller = None;
        metadata["ownerReferences"] = json!([owner]);
    }
    json!({
        "apiVersion": "plugboard.dev/v1alpha1", "kind": "Connection",
        "metadata": metadata,
        "spec": spec,
    })
}

/// Writes the input Secret, owned by the Connection so that it goes with it.
async fn input_secret(
    ctx: &Context,
    conn: &Connection,
    name: &str,
    values: Map<String, Value>,
) -> Result<(), ConnectError> {
    let data: BTreeMap<String, ByteString> = values
        .into_iter()
        .filter_map(|(k, v)| v.as_str().map(|s| (k, ByteString(s.as_bytes().to_vec()))))
        .collect();
    let owner = conn.controller_owner_ref(&()).map(|mut o| {
        // Owned, not controlled: the Connection's controller manages only its credentials.
        o.controller = None;
        vec![o]
    });
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: conn.namespace(),
            labels: Some(BTreeMap::from([(
                CREATED_BY_LABEL.to_owned(),
                CREATED_BY_VALUE.to_owned(),
            )])),
            owner_references: owner,
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_owned()),
        data: Some(data),
        ..Secret::default()
    };
    let api: Api<Secret> =
        Api::namespaced(ctx.client.clone(), &conn.namespace().unwrap_or_default());
    let mut patch = serde_json::to_value(&secret).unwrap_or_default();
    patch["apiVersion"] = json!("v1");
    patch["kind"] = json!("Secret");
    api.patch(
        name,
        &PatchParams::apply(CONNECT_MANAGER),
        &Patch::Apply(patch),
    )
    .await
    .map(|_| ())
    .map_err(|err| conflict_or(err, &format!("Secret {name:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_of_the_api_server_names_the_fields_and_never_the_values() {
        let refused = kube::core::Status {
            code: 422,
            message: "Connection.plugboard.dev \"acme\" is invalid: spec.input.apiKey: Invalid value: \"sk_live_secret_value\": too long".to_owned(),
            details: Some(kube::core::response::StatusDetails {
                causes: vec![kube::core::response::StatusCause {
                    reason: "FieldValueInvalid".to_owned(),
                    message: "Invalid value: \"sk_live_secret_value\": too long".to_owned(),
                    field: "spec.input.apiKey".to_owned(),
                }],
                name: "acme".to_owned(),
                group: "plugboard.dev".to_owned(),
                kind: "connections".to_owned(),
                uid: String::new(),
                retry_after_seconds: 0,
            }),
            ..Default::default()
        };
        let answer = conflict_or(kube::Error::Api(Box::new(refused)), "Connection \"acme\"");
        assert!(
            !answer.message.contains("sk_live_secret_value"),
            "{}",
            answer.message
        );
        assert!(
            answer
                .message
                .contains("spec.input.apiKey (FieldValueInvalid)"),
            "{}",
            answer.message
        );
    }

    #[test]
    fn a_tenant_id_that_is_a_valid_name_is_kept_others_are_digested() {
        assert_eq!(tenant_name("globex"), "globex");
        assert_eq!(tenant_name("cust-42"), "cust-42");
        for odd in ["Globex", "jane@example.com", "-x", "", &"a".repeat(64)] {
            let name = tenant_name(odd);
            assert!(
                name.starts_with("tenant-") && name.len() == 23,
                "{odd:?} -> {name}"
            );
        }
        assert_eq!(tenant_name("Globex"), tenant_name("Globex"), "stable");
        assert_ne!(tenant_name("Globex"), tenant_name("globeX"));
    }
}
