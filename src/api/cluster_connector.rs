//! `ClusterConnector`: a Connector shared by every namespace (a catalogue).
//!
//! kube's derive makes one kind per spec type, so this kind wraps the Connector's spec in a
//! transparent newtype: on the wire and in the schema both kinds have one spec, and the
//! controller has one code path for them.

use std::ops::Deref;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::connector::{ConnectorSpec, ConnectorStatus};

/// The spec of a ClusterConnector: exactly a Connector's spec.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "plugboard.dev",
    version = "v1alpha1",
    kind = "ClusterConnector",
    status = "ConnectorStatus",
    shortname = "cctor",
    category = "plugboard",
    doc = "A Connector shared by every namespace: how to talk to one external app. Secrets it names (clientSecretRef, signingKeyRef) carry their namespace.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    ),
    printcolumn(name = "Auth", type_ = "string", json_path = ".spec.auth.type"),
    printcolumn(
        name = "Display Name",
        type_ = "string",
        json_path = ".spec.displayName"
    ),
    printcolumn(
        name = "Connections",
        type_ = "integer",
        json_path = ".status.connections.total"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(transparent)]
#[schemars(transparent)]
pub struct ClusterConnectorSpec(pub ConnectorSpec);

impl Deref for ClusterConnectorSpec {
    type Target = ConnectorSpec;

    fn deref(&self) -> &ConnectorSpec {
        &self.0
    }
}
