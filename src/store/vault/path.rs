//! Where in the KV v2 mount a Connection's credentials live: `spec.credentials.path`, a
//! template over the Connection and its Tenant, under the operator's path prefix.
//!
//! The path is a person's input and decides what the operator writes and deletes in a shared
//! store, so it is checked before anything is sent: a path that could leave the prefix (`..`,
//! a leading `/`, an empty segment) or reach KV's own endpoints is refused, naming the field.

use minijinja::{Environment, UndefinedBehavior, context};

use crate::api::Connection;
use crate::error::Error;

const FIELD: &str = "spec.credentials.path";

/// The longest path accepted: far above any real one, low enough that a runaway template
/// cannot make an unbounded URL.
const MAX_LEN: usize = 512;

/// The path of `conn`'s credentials inside the mount: `prefix/` + the rendered
/// `spec.credentials.path` (`connection.name`, `connection.namespace`, `tenant.name`), or
/// `prefix/<namespace>/<name>` when the Connection names none.
pub fn resolve(conn: &Connection, prefix: &str) -> Result<String, Error> {
    let namespace = conn.metadata.namespace.clone().unwrap_or_default();
    let name = conn.metadata.name.clone().unwrap_or_default();
    let template = conn
        .spec
        .credentials
        .as_ref()
        .and_then(|c| c.path.as_deref());
    let relative = match template {
        Some(source) => render(source, &namespace, &name, &conn.spec.tenant_ref.name)?,
        None => format!("{namespace}/{name}"),
    };
    check(&relative)?;
    let prefix = prefix.trim_matches('/');
    Ok(if prefix.is_empty() {
        relative
    } else {
        format!("{prefix}/{relative}")
    })
}

fn render(source: &str, namespace: &str, name: &str, tenant: &str) -> Result<String, Error> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    let invalid = |err: minijinja::Error| {
        Error::InvalidInput(format!(
            "{FIELD}: {}; it may use connection.name, connection.namespace and tenant.name",
            err.detail().unwrap_or("not a valid template")
        ))
    };
    let template = env.template_from_str(source).map_err(invalid)?;
    template
        .render(context! {
            connection => context! { name => name, namespace => namespace },
            tenant => context! { name => tenant },
        })
        .map_err(invalid)
}

/// Refuses a rendered path that is not a plain relative path of named segments.
pub fn check(path: &str) -> Result<(), Error> {
    let refuse = |why: &str| {
        Err(Error::InvalidInput(format!(
            "{FIELD} {path:?} {why}; use a relative path of names such as plugboard/acme/hubspot"
        )))
    };
    if path.is_empty() {
        return refuse("is empty");
    }
    if path.len() > MAX_LEN {
        return refuse("is longer than 512 characters");
    }
    if path.starts_with('/') {
        return refuse("is absolute");
    }
    let segments: Vec<&str> = path.split('/').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return refuse("has an empty segment");
    }
    if segments.iter().any(|s| *s == ".." || *s == ".") {
        return refuse("has a `.` or `..` segment, which could leave the operator's prefix");
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | '+');
    if !path.chars().all(|c| c == '/' || allowed(c)) {
        return refuse("has characters other than letters, digits and -_.@+");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection(path: Option<&str>) -> Connection {
        let mut spec = serde_json::json!({
            "tenantRef": {"name": "acme"}, "connectorRef": {"name": "hubspot"},
            "credentials": {"store": "vault"},
        });
        if let Some(path) = path {
            spec["credentials"]["path"] = path.into();
        }
        serde_json::from_value(serde_json::json!({
            "apiVersion": "plugboard.dev/v1alpha1", "kind": "Connection",
            "metadata": {"name": "acme-hubspot", "namespace": "crm"}, "spec": spec,
        }))
        .unwrap()
    }

    #[test]
    fn a_template_is_rendered_under_the_prefix() {
        let conn = connection(Some(
            "{{ connection.namespace }}/{{ tenant.name }}/{{ connection.name }}",
        ));
        assert_eq!(
            resolve(&conn, "plugboard/").unwrap(),
            "plugboard/crm/acme/acme-hubspot"
        );
        assert_eq!(resolve(&conn, "").unwrap(), "crm/acme/acme-hubspot");
        assert_eq!(
            resolve(&connection(None), "plugboard").unwrap(),
            "plugboard/crm/acme-hubspot"
        );
    }

    #[test]
    fn paths_that_could_leave_the_prefix_are_refused_naming_the_field() {
        for path in [
            "../other",
            "a/../../b",
            "/etc",
            "a//b",
            "a/",
            ".",
            "a b",
            "a/%2e%2e",
        ] {
            let err = resolve(&connection(Some(path)), "plugboard").unwrap_err();
            assert_eq!(err.reason(), "InvalidInput", "{path}");
            assert!(
                err.to_string().starts_with("spec.credentials.path"),
                "{err}"
            );
        }
        let err = resolve(&connection(Some("{{ connection.uid }}")), "p").unwrap_err();
        assert!(err.to_string().contains("tenant.name"), "{err}");
        let err = resolve(&connection(Some("{{ tenant.name }}/..")), "p").unwrap_err();
        assert!(err.to_string().contains("`..`"), "{err}");
    }
}
