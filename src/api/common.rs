//! Pieces of the API that more than one kind uses.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A JSON object whose shape the user decides (schemas, input, parameters, fields).
///
/// In the CRD it is `type: object` with `x-kubernetes-preserve-unknown-fields`, so the API
/// server keeps every key; plugboard validates it against the connector's JSON Schemas.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(transparent)]
pub struct FreeForm(pub serde_json::Map<String, serde_json::Value>);

impl JsonSchema for FreeForm {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "FreeForm".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true,
        })
    }
}

impl FreeForm {
    /// The object as a JSON value, for templates and schema validation.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::Value::Object(self.0.clone())
    }
}

/// A reference to a Secret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretReference {
    /// Name of the Secret.
    pub name: String,
    /// Namespace of the Secret. Only a ClusterConnector may name one (it has no namespace of
    /// its own); a namespaced object always reads Secrets from its own namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// One key of a Secret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeySelector {
    /// Name of the Secret, in the same namespace as the object that refers to it.
    pub name: String,
    /// Key within the Secret's data.
    pub key: String,
}

/// One key of a Secret that may live in another namespace (for a ClusterConnector).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyReference {
    /// Name of the Secret.
    pub name: String,
    /// Key within the Secret's data.
    pub key: String,
    /// Namespace of the Secret. Only a ClusterConnector may name one (it has no namespace of
    /// its own); a namespaced object always reads Secrets from its own namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// A value that comes from a Secret instead of the object itself, so that it never sits in
/// git.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValueFromSecret {
    /// Top-level key the value is stored under (for example `apiKey`). It overrides an
    /// inline value of the same key.
    pub field: String,
    /// The Secret key that holds the value.
    pub secret_key_ref: SecretKeySelector,
}

/// How many Connections an object has, by readiness.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionCounts {
    /// All Connections.
    pub total: u32,
    /// Connections whose `Ready` condition is `True`.
    pub ready: u32,
    /// Connections waiting for a person to authorize access at the provider.
    pub authorization_required: u32,
}
