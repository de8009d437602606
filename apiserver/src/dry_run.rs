//! A create checked without a server: what `kubectl apply --server-side --dry-run=server`
//! with strict field validation would be refused for, for tools that read manifests before
//! any cluster sees them (`plugboard validate`). It runs the same decode, strategy and
//! validation steps as a real create here, and stores nothing.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;

use crate::resource::ResourceType;
use crate::{strategy, validation};

/// One reason the server would refuse the object: the field path as the server prints it
/// (`spec.auth.tokenUri`, `spec.inputFrom[0].field`; empty for the whole object) and its
/// message without the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub field: String,
    pub message: String,
}

/// Everything a server serving `crd` would refuse in `object` on a strict create: unknown
/// fields, ObjectMeta, the structural schema (types, enums, formats, bounds) and the CEL
/// rules. An object of a version the CRD does not serve is one refusal naming `apiVersion`.
pub fn create(crd: &CustomResourceDefinition, object: &Value) -> Vec<Refusal> {
    let sent = object.get("apiVersion").and_then(Value::as_str);
    let types = ResourceType::from_crd(crd);
    let Some(rt) = types
        .iter()
        .find(|t| Some(t.api_version().as_str()) == sent)
    else {
        let served: Vec<String> = types.iter().map(ResourceType::api_version).collect();
        return vec![Refusal {
            field: "apiVersion".into(),
            message: format!(
                "{} is not served; use one of {}",
                sent.unwrap_or("(none)"),
                served.join(", ")
            ),
        }];
    };
    let mut object = object.clone();
    let dropped = match strategy::decode(rt, &mut object, true) {
        Ok(dropped) => dropped,
        Err(err) => {
            return vec![Refusal {
                field: String::new(),
                message: err.message,
            }];
        }
    };
    let mut refusals: Vec<Refusal> = dropped
        .into_iter()
        .map(|field| Refusal {
            field,
            message: "unknown field: the schema does not declare it (check the spelling)".into(),
        })
        .collect();
    let namespace = meta(&object, "namespace");
    let name = meta(&object, "name");
    strategy::prepare_create(rt, &mut object, &namespace, &name);
    refusals.extend(
        validation::check(rt, &object, None)
            .into_iter()
            .map(|e| Refusal {
                message: e.body(),
                field: e.field,
            }),
    );
    refusals
}

fn meta(object: &Value, field: &str) -> String {
    object["metadata"][field]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}
