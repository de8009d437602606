//! Finalizers held only while a deletion would have work for the operator.
//!
//! A finalizer outlives the operator that placed it: scaled to zero, uninstalled first or
//! crash-looping, it leaves every deleted object — and the namespace around it — waiting for
//! ever. So a Connection holds its finalizer only while deleting it would send something to
//! its provider (or empty a store the garbage collector cannot reach), and a Tenant only while
//! one of its Connections holds one. Everything else goes with its owner through
//! ownerReferences and the garbage collector, with or without the operator.

use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;

use super::own_writes::OwnWrites;
use crate::meta::FIELD_MANAGER;

/// Whether `obj` carries `finalizer`.
pub fn holds<K: Resource>(obj: &K, finalizer: &str) -> bool {
    obj.finalizers().iter().any(|f| f == finalizer)
}

/// The JSON patch that makes `obj` carry `finalizer` exactly when `wanted`, or none when it
/// already does. Each patch tests the list it changes, so that a finalizer another
/// controller added or removed meanwhile is never overwritten: the patch is refused and the
/// next reconcile decides again on the new list.
pub fn patch<K: Resource>(obj: &K, finalizer: &str, wanted: bool) -> Option<json_patch::Patch> {
    let list = obj.finalizers();
    let ops = match (wanted, list.iter().position(|f| f == finalizer)) {
        (true, Some(_)) | (false, None) => return None,
        // The API server leaves out an empty list; a test for null matches that.
        (true, None) if list.is_empty() => json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": [finalizer]},
        ]),
        (true, None) => json!([
            {"op": "test", "path": "/metadata/finalizers", "value": list},
            {"op": "add", "path": "/metadata/finalizers/-", "value": finalizer},
        ]),
        (false, Some(i)) => json!([
            {"op": "test", "path": format!("/metadata/finalizers/{i}"), "value": finalizer},
            {"op": "remove", "path": format!("/metadata/finalizers/{i}")},
        ]),
    };
    serde_json::from_value(ops).ok()
}

/// Adds or removes `finalizer` so that `obj` carries it exactly when `wanted`; returns
/// whether it wrote. A write is remembered, so that the next reconcile waits for a cache
/// that shows it instead of deciding again on the old list.
pub async fn set<K>(
    api: &Api<K>,
    obj: &K,
    finalizer: &str,
    wanted: bool,
    writes: &OwnWrites,
) -> Result<bool, kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let Some(ops) = patch(obj, finalizer, wanted) else {
        return Ok(false);
    };
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    };
    match api
        .patch(&obj.name_any(), &params, &Patch::<()>::Json(ops))
        .await
    {
        Ok(written) => {
            writes.wrote_object(obj, &written);
            Ok(true)
        }
        // Removing the last finalizer of a deleted object deletes it: nothing is left to
        // remember, and an object already gone needs no finalizer removed.
        Err(kube::Error::Api(status)) if status.code == 404 && !wanted => Ok(true),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    fn with(finalizers: &[&str]) -> ConfigMap {
        let mut cm = ConfigMap::default();
        cm.metadata.finalizers =
            (!finalizers.is_empty()).then(|| finalizers.iter().map(|f| f.to_string()).collect());
        cm
    }

    fn ops(obj: &ConfigMap, wanted: bool) -> Option<serde_json::Value> {
        patch(obj, "x", wanted).map(|p| serde_json::to_value(p).unwrap())
    }

    #[test]
    fn nothing_is_written_when_the_list_already_says_so() {
        assert_eq!(ops(&with(&["x"]), true), None);
        assert_eq!(ops(&with(&[]), false), None);
        assert_eq!(ops(&with(&["other"]), false), None);
    }

    #[test]
    fn adding_tests_the_list_it_extends() {
        assert_eq!(
            ops(&with(&[]), true),
            Some(json!([
                {"op": "test", "path": "/metadata/finalizers", "value": null},
                {"op": "add", "path": "/metadata/finalizers", "value": ["x"]},
            ]))
        );
        assert_eq!(
            ops(&with(&["other"]), true),
            Some(json!([
                {"op": "test", "path": "/metadata/finalizers", "value": ["other"]},
                {"op": "add", "path": "/metadata/finalizers/-", "value": "x"},
            ]))
        );
    }

    #[test]
    fn removing_takes_only_this_finalizer_at_the_place_it_was_seen() {
        assert_eq!(
            ops(&with(&["other", "x"]), false),
            Some(json!([
                {"op": "test", "path": "/metadata/finalizers/1", "value": "x"},
                {"op": "remove", "path": "/metadata/finalizers/1"},
            ]))
        );
    }
}
