//! Step 4: keep the credentials Secret as the contract says, writing only when it differs.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::FieldsV1;
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use super::credentials::{Credentials, RenderedApiClient};
use crate::api::{Connection, CredentialsReference, CredentialsStoreKind};
use crate::controller::{Context, FIELD_MANAGER, MANAGED_BY_LABEL, MANAGED_BY_VALUE};
use crate::error::Error;

/// The label that names the Connection a Secret belongs to.
pub const CONNECTION_LABEL: &str = "plugboard.dev/connection";
/// The key of the rendered API client in the credentials Secret.
pub const API_CLIENT_KEY: &str = "api-client.json";

/// The longest label value the API server accepts.
const LABEL_VALUE_MAX: usize = 63;
/// Hex digits of the name's digest in a label value that stands in for a long name.
const LABEL_DIGEST_HEX: usize = 10;

/// The value of [`CONNECTION_LABEL`] for the Connection `name`: the name itself when it is a
/// valid label value, else a prefix of it and a digest of all of it, 63 characters at most.
///
/// A label value may have 63 characters, a Connection's name 253: labelled with a longer
/// name, the Secret is refused (422) and the Connection can never store its credentials.
/// The stand-in is deterministic, so every write labels the Secret alike and
/// [`up_to_date`] holds, and two names differing past the prefix still differ. It need not
/// lead back to the name: plugboard never looks a Secret up by this label (a Connection's
/// Secret by [`secret_name`], a Secret's Connection by its owner reference); the label is
/// there for people and their selectors, and the prefix keeps it readable.
pub fn connection_label(name: &str) -> String {
    let valid = name.len() <= LABEL_VALUE_MAX
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if valid || name.is_empty() {
        return name.to_owned();
    }
    let digest: String = Sha256::digest(name.as_bytes())
        .iter()
        .take(LABEL_DIGEST_HEX / 2)
        .map(|b| format!("{b:02x}"))
        .collect();
    // A label value starts with a letter or digit and holds only these and `-_.`; what comes
    // after the prefix (a dash and hex digits) ends it with one.
    let prefix: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .skip_while(|c| !c.is_ascii_alphanumeric())
        .take(LABEL_VALUE_MAX - LABEL_DIGEST_HEX - 1)
        .collect();
    if prefix.is_empty() {
        digest
    } else {
        format!("{prefix}-{digest}")
    }
}

/// The name of the Connection's credentials Secret.
pub fn secret_name(conn: &Connection) -> String {
    conn.spec
        .credentials
        .as_ref()
        .and_then(|c| c.secret_name.clone())
        .unwrap_or_else(|| format!("{}-credentials", conn.name_any()))
}

/// Reads the credentials Secret from the API server.
///
/// plugboard does not cache these Secrets: at 10,000 Connections their copies were a third
/// of the operator's heap (docs/benchmarks.md). A reconcile reads its own once, which also
/// means it never acts on a stale copy: a refresh token rotated a moment ago is what it sees.
pub async fn read(conn: &Connection, ctx: &Context) -> Result<Option<Secret>, Error> {
    let api: Api<Secret> =
        Api::namespaced(ctx.client.clone(), &conn.namespace().unwrap_or_default());
    Ok(api.get_opt(&secret_name(conn)).await?)
}

/// Where the Connection's credentials live, or an error for a store this build lacks.
pub fn reference(conn: &Connection) -> Result<CredentialsReference, Error> {
    match conn.spec.credentials.as_ref().and_then(|c| c.store).unwrap_or_default() {
        CredentialsStoreKind::Kubernetes => Ok(CredentialsReference {
            store: CredentialsStoreKind::Kubernetes,
            secret_name: Some(secret_name(conn)),
            path: None,
        }),
        CredentialsStoreKind::Vault => Err(Error::InvalidInput(
            "spec.credentials.store vault is not supported by this version of plugboard; use kubernetes".to_owned(),
        )),
    }
}

/// The Secret as it should be.
pub fn desired(
    conn: &Connection,
    credentials: &Credentials,
    api_client: Option<&RenderedApiClient>,
) -> Secret {
    let mut data: BTreeMap<String, ByteString> = credentials
        .iter()
        .map(|(k, v)| (k.clone(), ByteString(v.expose_secret().as_bytes().to_vec())))
        .collect();
    if let Some(client) = api_client {
        let json = serde_json::to_vec(client).expect("a map of strings always serializes");
        data.insert(API_CLIENT_KEY.to_owned(), ByteString(json));
    }
    Secret {
        metadata: ObjectMeta {
            name: Some(secret_name(conn)),
            namespace: conn.namespace(),
            labels: Some(BTreeMap::from([
                (MANAGED_BY_LABEL.to_owned(), MANAGED_BY_VALUE.to_owned()),
                (
                    CONNECTION_LABEL.to_owned(),
                    connection_label(&conn.name_any()),
                ),
            ])),
            owner_references: conn.controller_owner_ref(&()).map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_owned()),
        data: Some(data),
        ..Secret::default()
    }
}

/// `want` with the `api-client.json` that `current` holds, for storing new tokens when the
/// API client cannot be rendered: the stored one is the last good one.
pub fn keeping_api_client(mut want: Secret, current: Option<&Secret>) -> Secret {
    let stored = current
        .and_then(|s| s.data.as_ref())
        .and_then(|d| d.get(API_CLIENT_KEY));
    if let (Some(client), Some(data)) = (stored, want.data.as_mut()) {
        data.insert(API_CLIENT_KEY.to_owned(), client.clone());
    }
    want
}

/// Whether the stored Secret already is what applying `want` would make it: our labels and
/// owner reference present, every key we want with its value, and no key left that we
/// applied before but no longer want. Keys and labels someone else added are theirs; server-
/// side apply leaves them alone, so they must not make every reconcile write.
fn up_to_date(have: &Secret, want: &Secret) -> bool {
    let labels_ok = want
        .metadata
        .labels
        .iter()
        .flatten()
        .all(|(k, v)| have.labels().get(k) == Some(v));
    let owner_ok = want.metadata.owner_references.iter().flatten().all(|o| {
        have.owner_references()
            .iter()
            .any(|h| h.uid == o.uid && h.controller == o.controller)
    });
    let empty = BTreeMap::new();
    let have_data = have.data.as_ref().unwrap_or(&empty);
    let want_data = want.data.as_ref().unwrap_or(&empty);
    let values_ok = want_data.iter().all(|(k, v)| have_data.get(k) == Some(v));
    let nothing_stale = owned_data_keys(have)
        .iter()
        .all(|k| want_data.contains_key(k));
    labels_ok
        && owner_ok
        && values_ok
        && nothing_stale
        && have.metadata.deletion_timestamp.is_none()
}

/// The `data` keys our field manager owns, from the Secret's managedFields.
fn owned_data_keys(secret: &Secret) -> Vec<String> {
    let ours = secret
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|m| m.manager.as_deref() == Some(FIELD_MANAGER));
    let mut keys = Vec::new();
    for entry in ours {
        let Some(FieldsV1(fields)) = &entry.fields_v1 else {
            continue;
        };
        if let Some(data) = fields.get("f:data").and_then(|d| d.as_object()) {
            keys.extend(
                data.keys()
                    .filter_map(|k| k.strip_prefix("f:"))
                    .map(str::to_owned),
            );
        }
    }
    keys
}

/// How often new tokens are re-applied over a Secret that changed under them: each retry
/// re-reads it, and a third concurrent writer within milliseconds means something is wrong.
const CONFLICT_RETRIES: usize = 3;

/// Applies the Secret unless `current` (as [`read`] returned it) already is right. Returns
/// whether it wrote.
///
/// `precondition` is the resourceVersion new tokens were obtained against. It makes the write
/// optimistic: if the Secret changed meanwhile, the API server refuses (409) and the write is
/// repeated over the current version, because the tokens just obtained are the newest and
/// must not be lost (the provider may already have invalidated the old refresh token).
pub async fn apply(
    conn: &Connection,
    want: Secret,
    current: Option<&Secret>,
    precondition: Option<String>,
    ctx: &Context,
) -> Result<bool, Error> {
    let namespace = conn.namespace().unwrap_or_default();
    let name = secret_name(conn);
    if precondition.is_none() && current.is_some_and(|have| up_to_date(have, &want)) {
        return Ok(false);
    }
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    // force: the operator owns these Secrets; a hand edit is put back, not a conflict.
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut body = serde_json::to_value(&want).expect("a Secret always serializes");
    body["apiVersion"] = "v1".into();
    body["kind"] = "Secret".into();
    let mut version = precondition.filter(|v| !v.is_empty());
    for _ in 0..CONFLICT_RETRIES {
        body["metadata"]["resourceVersion"] =
            version.clone().map_or(serde_json::Value::Null, Into::into);
        if version.is_none()
            && let Some(meta) = body["metadata"].as_object_mut()
        {
            meta.remove("resourceVersion");
        }
        match api.patch(&name, &params, &Patch::Apply(&body)).await {
            Ok(_) => return Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => {
                tracing::info!(
                    "credentials Secret changed while tokens were refreshed; writing them over the new version"
                );
                version = api.get_opt(&name).await?.and_then(|s| s.resource_version());
            }
            Err(err) => return Err(err.into()),
        }
    }
    Err(Error::unavailable(
        "the credentials Secret kept changing while new tokens were written; retrying",
    ))
}

/// Deletes the credentials Secret if `current` (as [`read`] returned it) says there is one,
/// so that a Connection without credentials costs no write. Returns whether it deleted.
pub async fn delete(
    conn: &Connection,
    current: Option<&Secret>,
    ctx: &Context,
) -> Result<bool, Error> {
    let namespace = conn.namespace().unwrap_or_default();
    let name = secret_name(conn);
    if current.is_none() {
        return Ok(false);
    }
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    match api.delete(&name, &DeleteParams::default()).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
        Err(err) => Err(err.into()),
    }
}

/// The credentials a Secret holds (everything but the rendered API client).
pub fn stored(secret: &Secret) -> Credentials {
    secret
        .data
        .iter()
        .flatten()
        .filter(|(k, _)| k.as_str() != API_CLIENT_KEY)
        .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned().into()))
        .collect()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;

    use super::*;

    fn secret(data: &[(&str, &str)], owned: &[&str]) -> Secret {
        let fields: serde_json::Map<String, serde_json::Value> = owned
            .iter()
            .map(|k| (format!("f:{k}"), serde_json::json!({})))
            .collect();
        Secret {
            metadata: ObjectMeta {
                managed_fields: Some(vec![ManagedFieldsEntry {
                    manager: Some(FIELD_MANAGER.to_owned()),
                    operation: Some("Apply".to_owned()),
                    fields_v1: Some(FieldsV1(serde_json::json!({"f:data": fields}))),
                    ..ManagedFieldsEntry::default()
                }]),
                ..ObjectMeta::default()
            },
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Secret::default()
        }
    }

    /// apimachinery's label value rule: `(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?`, at
    /// most 63 characters.
    fn is_label_value(v: &str) -> bool {
        let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        v.len() <= 63
            && (v.is_empty()
                || (v.chars().all(ok)
                    && v.starts_with(|c: char| c.is_ascii_alphanumeric())
                    && v.ends_with(|c: char| c.is_ascii_alphanumeric())))
    }

    #[test]
    fn a_name_that_is_no_label_value_is_labelled_with_a_stable_stand_in() {
        assert_eq!(connection_label("acme-stripe"), "acme-stripe");
        let exact = "a".repeat(63);
        assert_eq!(connection_label(&exact), exact);
        let long = format!(
            "{}.billing.eu-west-1.production",
            "acme-corporation".repeat(4)
        );
        let label = connection_label(&long);
        assert!(is_label_value(&label), "{label}");
        assert_eq!(label.len(), 63);
        assert!(label.starts_with(&long[..52]), "{label}");
        assert_eq!(connection_label(&long), label, "the same for the same name");
        let other = long.replace("production", "staging");
        assert_ne!(connection_label(&other), label, "differs past the prefix");
        for odd in [
            "-x".repeat(40),
            "é".repeat(40),
            format!("{}-", "b".repeat(70)),
        ] {
            let label = connection_label(&odd);
            assert!(is_label_value(&label), "{odd:?} -> {label:?}");
        }
    }

    #[test]
    fn a_key_someone_else_added_does_not_make_it_stale() {
        let have = secret(&[("apiKey", "k"), ("note", "theirs")], &["apiKey"]);
        let want = secret(&[("apiKey", "k")], &[]);
        assert!(up_to_date(&have, &want));
    }

    #[test]
    fn a_changed_value_or_a_key_we_no_longer_want_is_stale() {
        let want = secret(&[("apiKey", "new")], &[]);
        assert!(!up_to_date(
            &secret(&[("apiKey", "old")], &["apiKey"]),
            &want
        ));
        let want = secret(&[("apiKey", "k")], &[]);
        let have = secret(&[("apiKey", "k"), ("token", "t")], &["apiKey", "token"]);
        assert!(!up_to_date(&have, &want));
    }
}
