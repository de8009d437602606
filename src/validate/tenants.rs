//! Tenant: the Secrets its `fieldsFrom` names hold the keys.

use crate::api::TenantSpec;

use super::catalog::{Catalog, DEFAULT_NAMESPACE};
use super::connectors::secret_keys;
use super::found::Found;
use super::source::Document;

pub fn check(doc: &Document, catalog: &Catalog) -> Vec<Found> {
    let Some(spec) = doc
        .value
        .get("spec")
        .and_then(|s| serde_json::from_value::<TenantSpec>(s.clone()).ok())
    else {
        return Vec::new(); // the schema check has said why
    };
    let ns = doc.namespace().unwrap_or(DEFAULT_NAMESPACE);
    spec.fields_from
        .iter()
        .enumerate()
        .flat_map(|(i, from)| {
            let key = &from.secret_key_ref;
            let at = format!("spec.fieldsFrom[{i}].secretKeyRef");
            secret_keys(catalog, ns, &key.name, &[&key.key], &at)
        })
        .collect()
}
