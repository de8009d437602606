//! Content negotiation for reads: whole objects, or only their metadata as
//! `PartialObjectMetadata`, which clients ask for with
//! `Accept: application/json;as=PartialObjectMetadata[List];g=meta.k8s.io;v=v1` (kube's
//! `metadata_watcher`, client-go's metadata informers). A metadata watch of Secrets is how a
//! controller follows them without receiving their data.

use axum::http::{HeaderMap, header};
use serde_json::{Value, json};

use crate::resource::ResourceType;
use crate::status::ApiError;

/// The group and version of the metadata-only kinds.
const META_API_VERSION: &str = "meta.k8s.io/v1";

/// How GET, LIST and WATCH serve objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Object,
    Metadata,
}

impl View {
    /// The view the `Accept` header asks for: the first media range this server can serve.
    /// A range with an `as` it cannot produce (a `Table`, say) is passed over; if nothing is
    /// left, the answer is 406 as from the real server.
    pub fn of(headers: &HeaderMap) -> Result<Self, ApiError> {
        let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
            return Ok(Self::Object);
        };
        accept
            .split(',')
            .find_map(Self::of_range)
            .ok_or_else(|| ApiError::not_acceptable(accept))
    }

    fn of_range(range: &str) -> Option<Self> {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default();
        if !matches!(media, "application/json" | "application/*" | "*/*") {
            return None;
        }
        let params: Vec<(&str, &str)> = parts.filter_map(|p| p.split_once('=')).collect();
        let param = |name: &str| params.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        match param("as") {
            None => Some(Self::Object),
            Some("PartialObjectMetadata" | "PartialObjectMetadataList")
                if param("g") == Some("meta.k8s.io") && param("v") == Some("v1") =>
            {
                Some(Self::Metadata)
            }
            Some(_) => None,
        }
    }

    /// One object as served at the requested version (one stored copy serves every
    /// version, as with a CRD's `conversion: None`), or its metadata.
    pub fn render(self, rt: &ResourceType, object: &Value) -> Value {
        match self {
            Self::Object => {
                let mut out = object.clone();
                if out.is_object() {
                    out["apiVersion"] = Value::String(rt.api_version());
                }
                out
            }
            Self::Metadata => json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": META_API_VERSION,
                "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
            }),
        }
    }

    /// The `kind` and `apiVersion` of a list.
    pub fn list_type(self, rt: &ResourceType) -> (String, String) {
        match self {
            Self::Object => (format!("{}List", rt.kind), rt.api_version()),
            Self::Metadata => (
                "PartialObjectMetadataList".to_owned(),
                META_API_VERSION.to_owned(),
            ),
        }
    }

    /// The `kind` and `apiVersion` of a bookmark's object.
    pub fn item_type(self, rt: &ResourceType) -> (String, String) {
        match self {
            Self::Object => (rt.kind.clone(), rt.api_version()),
            Self::Metadata => (
                "PartialObjectMetadata".to_owned(),
                META_API_VERSION.to_owned(),
            ),
        }
    }
}
