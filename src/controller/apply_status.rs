//! Writing an object's status, the same way for every kind plugboard reconciles.
//!
//! This file names no kind on purpose: the chart's RBAC test (tests/chart/rbac_scan.rs)
//! attributes a generic API call to the kinds its file names, and this one's permissions are
//! those of its callers (`.apply_status(` is in the scan's table of calls).

use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};

use super::{Cached, Context, FIELD_MANAGER};
use crate::error::Error;

impl Context {
    /// Applies `status` to `obj`'s status subresource as plugboard (server-side apply, so
    /// only the fields plugboard sets are its own), and remembers the write so that the next
    /// reconcile waits for the cache to show it.
    pub async fn apply_status<K: Cached>(
        &self,
        api: Api<K>,
        obj: &K,
        status: &impl serde::Serialize,
    ) -> Result<(), Error> {
        let patch = serde_json::json!({
            "apiVersion": K::api_version(&()),
            "kind": K::kind(&()),
            "status": status,
        });
        let written = api
            .patch_status(
                &obj.name_any(),
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(patch),
            )
            .await?;
        self.own_writes.wrote_object(obj, &written);
        Ok(())
    }
}
