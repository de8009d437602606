//! (c) The CRD's CEL rules (`x-kubernetes-validations`), evaluated client-side.

use serde_json::Value;

/// Every rule `object` breaks, as `path: message`; transition rules run when `old` is
/// given, as on an update.
pub fn violations(kind: &str, object: &Value, old: Option<&Value>) -> Vec<String> {
    let schema = super::openapi::crd_schema(kind);
    match kube_cel::Validator::new().validate(&schema, object, old) {
        Ok(()) => Vec::new(),
        Err(errors) => errors
            .iter()
            .map(|err| {
                let at = if err.field_path.is_empty() {
                    "<root>"
                } else {
                    &err.field_path
                };
                format!("CEL rule on {at}: {} (rule `{}`)", err.message, err.rule)
            })
            .collect(),
    }
}
