//! What a Connection's watches map to it: the credentials Secret it owns, and the objects
//! that name it or that it names.

use kube::Resource;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::api::Connection;

/// The Connection that owns an object (its credentials Secret), for the controller's
/// watches: a Secret someone edited or deleted is put back by its owner's reconcile.
pub fn owner_of(meta: &kube::api::ObjectMeta) -> Option<ObjectRef<Connection>> {
    let api_version = Connection::api_version(&());
    let owner = meta.owner_references.iter().flatten().find(|o| {
        o.controller == Some(true)
            && o.kind == Connection::kind(&())
            && o.api_version == api_version
    })?;
    Some(ObjectRef::new(&owner.name).within(meta.namespace.as_deref()?))
}

/// The Connections a change to some object affects, for the controller's watches.
pub fn referencing(
    connections: &Store<Connection>,
    matches: impl Fn(&Connection) -> bool,
) -> Vec<ObjectRef<Connection>> {
    connections
        .state()
        .iter()
        .filter(|c| matches(c))
        .map(|c| ObjectRef::from(c.as_ref()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_triggers_the_connection_that_controls_it_only() {
        let conn = Connection::new(
            "billing",
            serde_json::from_value(serde_json::json!({
                "connectorRef": {"name": "c"}, "tenantRef": {"name": "t"}
            }))
            .expect("a spec"),
        );
        let mut conn = conn;
        conn.metadata.namespace = Some("team-a".to_owned());
        conn.metadata.uid = Some("u-1".to_owned());
        let owner = conn.controller_owner_ref(&()).expect("an owner reference");
        let mut meta = kube::api::ObjectMeta {
            namespace: Some("team-a".to_owned()),
            owner_references: Some(vec![owner.clone()]),
            ..Default::default()
        };
        assert_eq!(
            owner_of(&meta),
            Some(ObjectRef::new("billing").within("team-a"))
        );
        // A mere owner (garbage collection only), or another kind, is not a trigger.
        let mut not_controller = owner.clone();
        not_controller.controller = None;
        meta.owner_references = Some(vec![not_controller]);
        assert_eq!(owner_of(&meta), None);
        let mut other_kind = owner;
        other_kind.kind = "Tenant".to_owned();
        meta.owner_references = Some(vec![other_kind]);
        assert_eq!(owner_of(&meta), None);
    }
}
