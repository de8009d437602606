//! Which resources the server serves, what sets each apart (the registry strategy of the real
//! server), and how a request path names one.

use std::sync::Arc;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;

use crate::status::GroupResource;

/// Which registry strategy a resource follows; the built-in kinds each have their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// A custom resource served from a CRD.
    Custom,
    Namespace,
    Secret,
    Event,
    Lease,
    Crd,
}

/// One served resource at one version.
#[derive(Debug, Clone)]
pub struct ResourceType {
    /// `""` for the core group.
    pub group: String,
    pub version: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub namespaced: bool,
    /// Whether `/status` is served, and so writes to the main resource leave status alone.
    pub status_subresource: bool,
    pub flavour: Flavour,
    /// The CRD's openAPIV3Schema for this version: validation, pruning, defaulting, list
    /// types for server-side apply.
    pub schema: Option<Arc<Value>>,
    /// CRD `selectableFields`, as JSON paths (`.spec.color`).
    pub selectable_fields: Vec<String>,
}

impl ResourceType {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn gr(&self) -> GroupResource {
        GroupResource::new(&self.group, &self.plural)
    }

    /// The store key's resource part: one per group and plural, whatever the version, as
    /// etcd keeps one copy of an object served at several versions.
    pub fn qualified(&self) -> String {
        self.gr().qualified()
    }

    /// Custom resources and CRDs track `metadata.generation`; the other built-ins do not.
    pub fn tracks_generation(&self) -> bool {
        matches!(self.flavour, Flavour::Custom | Flavour::Crd)
    }

    /// Whether PUT may omit `metadata.resourceVersion` (`AllowUnconditionalUpdate`).
    pub fn unconditional_update(&self) -> bool {
        !matches!(self.flavour, Flavour::Custom | Flavour::Crd)
    }

    /// Whether PUT of a missing object creates it (`AllowCreateOnUpdate`).
    pub fn create_on_update(&self) -> bool {
        self.flavour == Flavour::Event
    }

    /// Whether an immediate DELETE answers with the object (`ReturnDeletedObject`) rather
    /// than a Success status.
    pub fn returns_deleted_object(&self) -> bool {
        self.flavour == Flavour::Custom
    }

    /// The patch content types this resource accepts; custom resources have no Go struct
    /// to take strategic-merge hints from.
    pub fn patch_types(&self) -> Vec<&'static str> {
        let mut types = vec![
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/apply-patch+yaml",
        ];
        if self.flavour != Flavour::Custom {
            types.insert(2, "application/strategic-merge-patch+json");
        }
        types
    }

    fn builtin(group: &str, plural: &str, kind: &str, flavour: Flavour) -> Self {
        let namespaced = matches!(flavour, Flavour::Secret | Flavour::Event | Flavour::Lease);
        Self {
            group: group.into(),
            version: "v1".into(),
            plural: plural.into(),
            singular: kind.to_lowercase(),
            kind: kind.into(),
            short_names: Vec::new(),
            categories: Vec::new(),
            namespaced,
            status_subresource: matches!(flavour, Flavour::Namespace | Flavour::Crd),
            flavour,
            schema: None,
            selectable_fields: Vec::new(),
        }
    }

    /// One type per served version of a CRD.
    pub fn from_crd(crd: &CustomResourceDefinition) -> Vec<Self> {
        let names = &crd.spec.names;
        crd.spec
            .versions
            .iter()
            .filter(|v| v.served)
            .map(|v| Self {
                group: crd.spec.group.clone(),
                version: v.name.clone(),
                plural: names.plural.clone(),
                singular: names
                    .singular
                    .clone()
                    .unwrap_or_else(|| names.kind.to_lowercase()),
                kind: names.kind.clone(),
                short_names: names.short_names.clone().unwrap_or_default(),
                categories: names.categories.clone().unwrap_or_default(),
                namespaced: crd.spec.scope == "Namespaced",
                status_subresource: v.subresources.as_ref().is_some_and(|s| s.status.is_some()),
                flavour: Flavour::Custom,
                schema: v
                    .schema
                    .as_ref()
                    .and_then(|s| s.open_api_v3_schema.as_ref())
                    .and_then(|s| serde_json::to_value(s).ok())
                    .map(Arc::new),
                selectable_fields: v
                    .selectable_fields
                    .iter()
                    .flatten()
                    .map(|f| f.json_path.clone())
                    .collect(),
            })
            .collect()
    }
}

/// The built-in resources the operator and its tests use.
pub fn builtins() -> Vec<ResourceType> {
    vec![
        // Short names as a real server lists them, so `kubectl get ns` works.
        ResourceType {
            short_names: vec!["ns".into()],
            ..ResourceType::builtin("", "namespaces", "Namespace", Flavour::Namespace)
        },
        ResourceType::builtin("", "secrets", "Secret", Flavour::Secret),
        ResourceType {
            short_names: vec!["ev".into()],
            ..ResourceType::builtin("events.k8s.io", "events", "Event", Flavour::Event)
        },
        ResourceType::builtin("coordination.k8s.io", "leases", "Lease", Flavour::Lease),
        ResourceType {
            short_names: vec!["crd".into(), "crds".into()],
            categories: vec!["api-extensions".into()],
            ..ResourceType::builtin(
                "apiextensions.k8s.io",
                "customresourcedefinitions",
                "CustomResourceDefinition",
                Flavour::Crd,
            )
        },
    ]
}

/// Every served type. CRDs written through the API add and remove theirs at run time.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    types: Vec<Arc<ResourceType>>,
}

impl Registry {
    pub fn new(types: Vec<ResourceType>) -> Self {
        Self {
            types: types.into_iter().map(Arc::new).collect(),
        }
    }

    pub fn all(&self) -> &[Arc<ResourceType>] {
        &self.types
    }

    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
            .cloned()
    }

    /// The type an `apiVersion` and `kind` name (an owner reference, say).
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceType>> {
        self.types
            .iter()
            .find(|t| t.api_version() == api_version && t.kind == kind)
            .or_else(|| {
                // Another served version of the same group still names the same objects.
                let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
                self.types
                    .iter()
                    .find(|t| t.group == group && t.kind == kind)
            })
            .cloned()
    }

    /// Any served version of a stored resource (`plural.group`).
    pub fn by_qualified(&self, qualified: &str) -> Option<Arc<ResourceType>> {
        self.types
            .iter()
            .find(|t| t.qualified() == qualified)
            .cloned()
    }
}

/// A request path, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub plural: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

/// Parses `/api/v1/...` and `/apis/{group}/{version}/...` resource paths.
pub fn parse_path(path: &str) -> Option<Target> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match parts.as_slice() {
        ["api", version, rest @ ..] if !rest.is_empty() => ("", *version, rest),
        ["apis", group, version, rest @ ..] if !rest.is_empty() => (*group, *version, rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        // `/api/v1/namespaces/{name}[/status|/finalize]` is the Namespace itself.
        ["namespaces", _] | ["namespaces", _, "status" | "finalize"] if group.is_empty() => {
            (None, rest)
        }
        ["namespaces", ns, more @ ..] if !more.is_empty() => (Some(ns.to_string()), more),
        _ => (None, rest),
    };
    let owned = |s: &&str| Some(s.to_string());
    let (plural, name, subresource) = match rest {
        [plural] => (plural, None, None),
        [plural, name] => (plural, owned(name), None),
        [plural, name, sub] => (plural, owned(name), owned(sub)),
        _ => return None,
    };
    Some(Target {
        group: group.into(),
        version: version.into(),
        namespace,
        plural: plural.to_string(),
        name,
        subresource,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_like_the_api_server_routes_them() {
        let t = parse_path("/api/v1/namespaces/acme/secrets/s1").unwrap();
        assert_eq!(
            (t.namespace.as_deref(), t.plural.as_str(), t.name.as_deref()),
            (Some("acme"), "secrets", Some("s1"))
        );
        let t = parse_path("/api/v1/namespaces/acme").unwrap();
        assert_eq!(
            (t.namespace, t.plural.as_str(), t.name.as_deref()),
            (None, "namespaces", Some("acme"))
        );
        let t = parse_path("/api/v1/namespaces/acme/status").unwrap();
        assert_eq!(
            (t.name.as_deref(), t.subresource.as_deref()),
            (Some("acme"), Some("status"))
        );
        let t = parse_path("/apis/plugboard.dev/v1alpha1/namespaces/acme/connections/c/status")
            .unwrap();
        assert_eq!(t.subresource.as_deref(), Some("status"));
        let t = parse_path("/apis/plugboard.dev/v1alpha1/clusterconnectors").unwrap();
        assert_eq!((t.namespace, t.name), (None, None));
        assert_eq!(parse_path("/apis/plugboard.dev/v1alpha1"), None);
    }
}
