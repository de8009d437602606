//! The Kubernetes store: a Connection's credentials in the Secret `<connection>-credentials`
//! (or `spec.credentials.secretName`) in its namespace, owned by the Connection so that the
//! garbage collector removes it with it.

use std::collections::BTreeMap;

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::FieldsV1;
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams};
use kube::{Client, Resource, ResourceExt};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use super::{CredentialStore, Stored, Want, Writer};
use crate::api::{Connection, CredentialsReference, CredentialsStoreKind};
use crate::error::Error;
use crate::meta::{CONNECT_MANAGER, FIELD_MANAGER, MANAGED_BY_LABEL, MANAGED_BY_VALUE};

/// The label that names the Connection a Secret belongs to.
pub const CONNECTION_LABEL: &str = "plugboard.dev/connection";
/// Records the consent flows completed on the credentials Secret whose states have not
/// expired yet, so that each state is refused if it comes back.
pub const CONSUMED_STATE: &str = "plugboard.dev/authorized-state";

/// How often new tokens are re-applied over a Secret that changed under them: each retry
/// re-reads it, and a third concurrent writer within milliseconds means something is wrong.
const CONFLICT_RETRIES: usize = 3;

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

/// Credentials in Secrets, read and written through the API server.
///
/// These Secrets are not cached: at 10,000 Connections their copies were a third of the
/// operator's heap (docs/benchmarks.md). A reconcile reads its own once.
pub struct SecretStore {
    client: Client,
}

impl SecretStore {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    fn api(&self, conn: &Connection) -> Api<Secret> {
        Api::namespaced(self.client.clone(), &conn.namespace().unwrap_or_default())
    }

    async fn read_secret(&self, conn: &Connection) -> Result<Option<Stored>, Error> {
        let secret = self.api(conn).get_opt(&secret_name(conn)).await?;
        Ok(secret.map(|s| stored(conn, &s)))
    }

    async fn apply(
        &self,
        conn: &Connection,
        want: &Want,
        writer: Writer<'_>,
        over: Option<&str>,
    ) -> Result<String, Error> {
        let api = self.api(conn);
        let name = secret_name(conn);
        let (manager, annotations) = match writer {
            Writer::Controller => (FIELD_MANAGER, None),
            Writer::Consent { consumed_states } => (
                CONNECT_MANAGER,
                Some(BTreeMap::from([(
                    CONSUMED_STATE.to_owned(),
                    consumed_states.to_owned(),
                )])),
            ),
        };
        // force: the operator owns these Secrets; a hand edit is put back, not a conflict.
        let params = PatchParams::apply(manager).force();
        let mut secret = desired(conn, want);
        secret.metadata.annotations = annotations;
        let mut version = over.filter(|v| !v.is_empty()).map(str::to_owned);
        for _ in 0..CONFLICT_RETRIES {
            secret.metadata.resource_version = version.clone();
            let mut body = serde_json::to_value(&secret).expect("a Secret always serializes");
            body["apiVersion"] = "v1".into();
            body["kind"] = "Secret".into();
            match api.patch(&name, &params, &Patch::Apply(&body)).await {
                Ok(written) => return Ok(written.resource_version().unwrap_or_default()),
                Err(kube::Error::Api(status)) if status.code == 409 && over.is_some() => {
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

    async fn delete_secret(&self, conn: &Connection) -> Result<bool, Error> {
        match self
            .api(conn)
            .delete(&secret_name(conn), &DeleteParams::default())
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
            Err(err) => Err(err.into()),
        }
    }
}

impl CredentialStore for SecretStore {
    /// A Secret's resourceVersion means nothing to its readers: status names the Secret.
    fn reference(&self, conn: &Connection, _version: Option<&str>) -> CredentialsReference {
        CredentialsReference {
            store: CredentialsStoreKind::Kubernetes,
            secret_name: Some(secret_name(conn)),
            ..CredentialsReference::default()
        }
    }

    fn read<'a>(&'a self, conn: &'a Connection) -> BoxFuture<'a, Result<Option<Stored>, Error>> {
        self.read_secret(conn).boxed()
    }

    fn write<'a>(
        &'a self,
        conn: &'a Connection,
        want: &'a Want,
        writer: Writer<'a>,
        over: Option<&'a str>,
    ) -> BoxFuture<'a, Result<String, Error>> {
        self.apply(conn, want, writer, over).boxed()
    }

    fn delete<'a>(&'a self, conn: &'a Connection) -> BoxFuture<'a, Result<bool, Error>> {
        self.delete_secret(conn).boxed()
    }

    /// The Secret is owned by its Connection and watched by the operator.
    fn in_cluster(&self) -> bool {
        true
    }
}

/// The labels and owner every credentials Secret carries.
fn labels(conn: &Connection) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY_LABEL.to_owned(), MANAGED_BY_VALUE.to_owned()),
        (
            CONNECTION_LABEL.to_owned(),
            connection_label(&conn.name_any()),
        ),
    ])
}

/// The Secret as `want` makes it.
fn desired(conn: &Connection, want: &Want) -> Secret {
    let data: BTreeMap<String, ByteString> = want
        .data
        .iter()
        .map(|(k, v)| (k.clone(), ByteString(v.expose_secret().as_bytes().to_vec())))
        .collect();
    Secret {
        metadata: ObjectMeta {
            name: Some(secret_name(conn)),
            namespace: conn.namespace(),
            labels: Some(labels(conn)),
            owner_references: conn.controller_owner_ref(&()).map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_owned()),
        data: Some(data),
        ..Secret::default()
    }
}

/// What a Secret holds, in the store's terms.
fn stored(conn: &Connection, secret: &Secret) -> Stored {
    let labels_ok = labels(conn)
        .iter()
        .all(|(k, v)| secret.labels().get(k) == Some(v));
    let owner_ok = conn.controller_owner_ref(&()).is_none_or(|o| {
        secret
            .owner_references()
            .iter()
            .any(|h| h.uid == o.uid && h.controller == o.controller)
    });
    Stored {
        data: secret
            .data
            .iter()
            .flatten()
            .map(|(k, v)| {
                (
                    k.clone(),
                    SecretString::from(String::from_utf8_lossy(&v.0).into_owned()),
                )
            })
            .collect(),
        version: secret.resource_version().unwrap_or_default(),
        owned: owned_data_keys(secret),
        in_order: labels_ok && owner_ok && secret.metadata.deletion_timestamp.is_none(),
        consumed_states: secret.annotations().get(CONSUMED_STATE).cloned(),
    }
}

/// The `data` keys the controller's field manager owns, from the Secret's managedFields.
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

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;

    use super::*;

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
    fn owned_keys_are_the_controllers_own_from_managed_fields() {
        let entry = |manager: &str, keys: serde_json::Value| ManagedFieldsEntry {
            manager: Some(manager.to_owned()),
            operation: Some("Apply".to_owned()),
            fields_v1: Some(FieldsV1(serde_json::json!({ "f:data": keys }))),
            ..ManagedFieldsEntry::default()
        };
        let secret = Secret {
            metadata: ObjectMeta {
                managed_fields: Some(vec![
                    entry(FIELD_MANAGER, serde_json::json!({"f:apiKey": {}})),
                    entry("kubectl-edit", serde_json::json!({"f:note": {}})),
                ]),
                ..ObjectMeta::default()
            },
            ..Secret::default()
        };
        assert_eq!(owned_data_keys(&secret), ["apiKey"]);
    }
}
