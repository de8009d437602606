//! What the API server itself would refuse: plugboard objects against the CRDs this binary
//! generates (the ones `plugboard crd` prints), by the embedded API server's dry-run create:
//! unknown fields, types, enums, formats, bounds and CEL rules.

use std::sync::LazyLock;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

use super::found::{Found, error};
use super::source::Document;

static CRDS: LazyLock<Vec<CustomResourceDefinition>> = LazyLock::new(crate::crd::all);

/// The API group every plugboard kind is in.
pub const GROUP: &str = "plugboard.dev";

/// Whether the document claims to be a plugboard object (by its apiVersion's group).
pub fn is_plugboard(doc: &Document) -> bool {
    doc.api_version().split('/').next() == Some(GROUP) && doc.api_version().contains('/')
}

pub fn check(doc: &Document) -> Vec<Found> {
    let Some(crd) = CRDS.iter().find(|c| c.spec.names.kind == doc.kind()) else {
        let kinds: Vec<&str> = CRDS.iter().map(|c| c.spec.names.kind.as_str()).collect();
        return vec![error(
            "kind",
            format!(
                "{:?} is not a plugboard kind; use one of {}",
                doc.kind(),
                kinds.join(", ")
            ),
        )];
    };
    plugboard_apiserver::dry_run::create(crd, &doc.value)
        .into_iter()
        .map(|refusal| error(refusal.field, refusal.message))
        .collect()
}
