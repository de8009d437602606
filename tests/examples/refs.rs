//! (e) Every object lives in a namespace the examples create, and the files apply in an
//! order that creates what is referenced first. (Whether references resolve is
//! `plugboard validate`'s to check.)

use super::examples::{Doc, Examples};

/// Problems with where one document lives (unlabelled).
pub fn namespace(ex: &Examples, doc: &Doc) -> Vec<String> {
    let cluster_scoped = matches!(doc.kind(), "Namespace" | "ClusterConnector");
    match (doc.namespace(), cluster_scoped) {
        (Some(ns), true) => vec![format!("is cluster-scoped but names namespace {ns}")],
        (None, false) => vec!["names no metadata.namespace".into()],
        (Some(ns), false) if ex.find("Namespace", None, ns).is_none() => {
            vec![format!("namespace {ns} is not created by any example")]
        }
        _ => Vec::new(),
    }
}

/// `kubectl apply -f examples/` goes file by file in name order; referenced objects
/// must come first: Namespace, Secrets, connectors, tenants, connections.
pub fn apply_order(ex: &Examples) -> Vec<String> {
    let rank = |doc: &Doc| match doc.kind() {
        "Namespace" => 0,
        "Secret" => 1,
        "Connector" | "ClusterConnector" => 2,
        "Tenant" => 3,
        _ => 4,
    };
    ex.docs
        .windows(2)
        .filter(|pair| rank(&pair[1]) < rank(&pair[0]))
        .map(|pair| {
            format!(
                "{} is applied after {}; rename the file so it sorts earlier",
                pair[1].label(),
                pair[0].label()
            )
        })
        .collect()
}
