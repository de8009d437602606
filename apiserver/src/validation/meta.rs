//! ObjectMeta validation with apimachinery's rules and messages: names, labels, annotations,
//! finalizers and owner references. A label value over 63 characters is rejected here as a
//! cluster would reject it, not silently stored.

use serde_json::{Value, json};

use crate::status::FieldError;

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const NAME_PART_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const QUALIFIED_MSG: &str = "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const ANNOTATIONS_LIMIT: usize = 256 * 1024;

fn too_long(max: usize) -> String {
    format!("must be no more than {max} characters")
}

fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// `IsDNS1123Subdomain`: the messages for `s`, empty when valid.
pub fn subdomain(s: &str) -> Vec<String> {
    let mut msgs = Vec::new();
    if s.len() > 253 {
        msgs.push(too_long(253));
    }
    if !s.split('.').all(is_dns_label) {
        msgs.push(SUBDOMAIN_MSG.to_owned());
    }
    msgs
}

/// `IsDNS1123Label`.
pub fn dns_label(s: &str) -> Vec<String> {
    let mut msgs = Vec::new();
    if s.len() > 63 {
        msgs.push(too_long(63));
    }
    if !is_dns_label(s) {
        msgs.push(LABEL_MSG.to_owned());
    }
    msgs
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn is_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// `IsQualifiedName`: an optional DNS subdomain prefix and a name part.
pub fn qualified_name(s: &str) -> Vec<String> {
    let parts: Vec<&str> = s.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                return vec!["prefix part must be non-empty".to_owned()];
            }
            let prefix_msgs: Vec<String> = subdomain(prefix)
                .into_iter()
                .map(|m| format!("prefix part {m}"))
                .collect();
            if !prefix_msgs.is_empty() {
                return prefix_msgs;
            }
            name
        }
        _ => return vec![QUALIFIED_MSG.to_owned()],
    };
    let mut msgs = Vec::new();
    if name.is_empty() {
        msgs.push("name part must be non-empty".to_owned());
    } else if name.len() > 63 {
        msgs.push(format!("name part {}", too_long(63)));
    }
    if !name.is_empty() && !is_name_part(name) {
        msgs.push(NAME_PART_MSG.to_owned());
    }
    msgs
}

fn label_value(s: &str) -> Vec<String> {
    let mut msgs = Vec::new();
    if s.len() > 63 {
        msgs.push(too_long(63));
    }
    if !s.is_empty() && !is_name_part(s) {
        msgs.push(LABEL_VALUE_MSG.to_owned());
    }
    msgs
}

/// How an object's name must look.
#[derive(Debug, Clone, Copy)]
pub enum NameRule {
    Subdomain,
    Label,
}

fn check_name(rule: NameRule, name: &str, field: &str, errors: &mut Vec<FieldError>) {
    let msgs = match rule {
        NameRule::Subdomain => subdomain(name),
        NameRule::Label => dns_label(name),
    };
    for m in msgs {
        errors.push(FieldError::invalid(field, &Value::from(name), &m));
    }
}

fn string_map<'a>(meta: &'a Value, key: &str) -> impl Iterator<Item = (&'a String, &'a Value)> {
    meta.get(key)
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
}

/// `ValidateObjectMeta`, for an object about to be written.
pub fn validate(meta: &Value, rule: NameRule, errors: &mut Vec<FieldError>) {
    let name = meta.get("name").and_then(Value::as_str).unwrap_or_default();
    check_name(rule, name, "metadata.name", errors);
    for (k, v) in string_map(meta, "labels") {
        for m in qualified_name(k) {
            errors.push(FieldError::invalid(
                "metadata.labels",
                &Value::from(k.as_str()),
                &m,
            ));
        }
        let value = v.as_str().unwrap_or_default();
        for m in label_value(value) {
            errors.push(FieldError::invalid("metadata.labels", v, &m));
        }
    }
    let mut size = 0;
    for (k, v) in string_map(meta, "annotations") {
        for m in qualified_name(&k.to_lowercase()) {
            errors.push(FieldError::invalid(
                "metadata.annotations",
                &Value::from(k.as_str()),
                &m,
            ));
        }
        size += k.len() + v.as_str().map_or(0, str::len);
    }
    if size > ANNOTATIONS_LIMIT {
        errors.push(FieldError::too_long(
            "metadata.annotations",
            ANNOTATIONS_LIMIT,
        ));
    }
    finalizers(meta, errors);
    owner_references(meta, errors);
}

fn finalizers(meta: &Value, errors: &mut Vec<FieldError>) {
    let list: Vec<&str> = meta
        .get("finalizers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for (i, f) in list.iter().enumerate() {
        for m in qualified_name(f) {
            errors.push(FieldError::invalid(
                &format!("metadata.finalizers[{i}]"),
                &Value::from(*f),
                &m,
            ));
        }
    }
    if list.contains(&"orphan") && list.contains(&"foregroundDeletion") {
        let shown = format!(
            "[]string{{{}}}",
            list.iter()
                .map(|f| format!("{f:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let e = FieldError {
            value: Some(shown),
            ..FieldError::invalid(
                "metadata.finalizers",
                &Value::Null,
                "finalizer orphan and foregroundDeletion cannot be both set",
            )
        };
        errors.push(e);
    }
}

fn owner_references(meta: &Value, errors: &mut Vec<FieldError>) {
    let refs = meta.get("ownerReferences").and_then(Value::as_array);
    let mut controllers = Vec::new();
    for r in refs.into_iter().flatten() {
        let get = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or_default();
        for (key, what) in [
            ("apiVersion", "version"),
            ("kind", "kind"),
            ("name", "name"),
            ("uid", "uid"),
        ] {
            if get(key).is_empty() {
                let field = format!("metadata.ownerReferences.{key}");
                errors.push(FieldError::invalid(
                    &field,
                    &json!(""),
                    &format!("{what} must not be empty"),
                ));
            }
        }
        if r.get("controller").and_then(Value::as_bool) == Some(true) {
            controllers.push(format!("{}/{}", get("kind"), get("name")));
        }
    }
    if controllers.len() > 1 {
        let detail = format!(
            "Only one reference can have Controller set to true. Found \"true\" in references for {}",
            controllers.join(" and ")
        );
        let e = FieldError {
            value: Some("[]v1.OwnerReference{...}".to_owned()),
            ..FieldError::invalid("metadata.ownerReferences", &Value::Null, &detail)
        };
        errors.push(e);
    }
}

/// `ValidateObjectMetaUpdate`: what may not change, and no new finalizers once deleting.
pub fn validate_update(new: &Value, old: &Value, errors: &mut Vec<FieldError>) {
    let old_uid = old.get("uid").cloned().unwrap_or(Value::Null);
    if let Some(uid) = new.get("uid")
        && *uid != old_uid
    {
        errors.push(FieldError::invalid(
            "metadata.uid",
            uid,
            "field is immutable",
        ));
    }
    if old.get("deletionTimestamp").is_some() {
        let names = |m: &Value| -> Vec<String> {
            m.get("finalizers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        };
        let before = names(old);
        let mut extra: Vec<String> = names(new)
            .into_iter()
            .filter(|f| !before.contains(f))
            .collect();
        extra.sort();
        extra.dedup();
        if !extra.is_empty() {
            let shown: Vec<String> = extra.iter().map(|f| format!("{f:?}")).collect();
            let detail = format!(
                "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                shown.join(", ")
            );
            errors.push(FieldError::forbidden("metadata.finalizers", &detail));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(meta: Value) -> Vec<String> {
        let mut errors = Vec::new();
        validate(&meta, NameRule::Subdomain, &mut errors);
        errors.iter().map(FieldError::message).collect()
    }

    #[test]
    fn names_labels_and_finalizers_follow_apimachinery() {
        assert!(messages(json!({"name": "ok.name-1", "labels": {"app.kubernetes.io/name": "x"}, "finalizers": ["a.dev/b"]})).is_empty());
        let bad = messages(json!({"name": "Bad_Name"}));
        assert_eq!(bad.len(), 1);
        assert!(bad[0].starts_with(
            "metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"
        ));
        let long = "x".repeat(64);
        let bad = messages(json!({"name": "a", "labels": {"k": long}}));
        assert_eq!(
            bad,
            [format!(
                "metadata.labels: Invalid value: \"{long}\": must be no more than 63 characters"
            )]
        );
        let bad = messages(json!({"name": "a", "finalizers": ["a.dev/bad name"]}));
        assert!(
            bad[0].starts_with(
                "metadata.finalizers[0]: Invalid value: \"a.dev/bad name\": name part must consist"
            ),
            "{bad:?}"
        );
    }

    #[test]
    fn no_new_finalizers_while_deleting() {
        let mut errors = Vec::new();
        validate_update(
            &json!({"finalizers": ["a/b", "x/z"]}),
            &json!({"deletionTimestamp": "t", "finalizers": ["a/b"]}),
            &mut errors,
        );
        assert_eq!(
            errors[0].message(),
            "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{\"x/z\"}"
        );
    }
}
