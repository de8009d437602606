//! `Tenant`: one customer of the SaaS product.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Condition;
use super::common::{ConnectionCounts, FreeForm, ValueFromSecret};

/// One customer of your product (a user, a team or an organisation), whose accounts in
/// external apps are connected through Connections.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[kube(
    group = "plugboard.dev",
    version = "v1alpha1",
    kind = "Tenant",
    namespaced,
    status = "TenantStatus",
    shortname = "tnt",
    category = "plugboard",
    doc = "One customer of your product (a user, team or organisation) with fields that integration logic reads; its Connections link it to external apps.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    ),
    printcolumn(name = "Tenant ID", type_ = "string", json_path = ".spec.tenantId"),
    printcolumn(
        name = "Connections",
        type_ = "integer",
        json_path = ".status.connections.total"
    ),
    printcolumn(name = "Suspended", type_ = "boolean", json_path = ".spec.suspended"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.tenantId) ? self.tenantId : '') == (has(oldSelf.tenantId) ? oldSelf.tenantId : '')").message("tenantId is immutable: create a new Tenant instead"))]
pub struct TenantSpec {
    /// Your product's identifier for this customer, as it appears in tenant tokens (`id`
    /// claim). Defaults to `metadata.name`. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// Human-readable name (the `name` claim).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// A test customer, used while building integrations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_test: Option<bool>,
    /// Pause every Connection of this tenant: no refresh, no test, until set back to false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended: Option<bool>,
    /// Values that integration logic uses (for example `plan: enterprise`); templates see
    /// them as `tenant.fields`. Validated against the operator's tenant-fields schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<FreeForm>,
    /// Sensitive fields read from Secrets (for example an API token of your own product).
    /// They override inline `fields` of the same key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields_from: Vec<ValueFromSecret>,
}

/// What plugboard found when it reconciled the tenant.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` is `True` when the fields are valid. `Reconciling` and `Stalled` follow
    /// kstatus.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The tenant's Connections, by readiness.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<ConnectionCounts>,
}

impl Tenant {
    /// The tenant's id: `spec.tenantId`, or the object's name when unset.
    pub fn tenant_id(&self) -> &str {
        self.spec
            .tenant_id
            .as_deref()
            .or(self.metadata.name.as_deref())
            .unwrap_or_default()
    }
}
