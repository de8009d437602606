//! Label and field selectors, as `?labelSelector=` and `?fieldSelector=` express them.

use serde_json::Value;

use crate::resource::{Flavour, ResourceType};
use crate::status::ApiError;
use crate::validation::meta::qualified_name;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default)]
pub struct LabelSelector(Vec<Requirement>);

/// Splits on commas outside parentheses (`a in (x,y),b` has two terms).
fn terms(text: &str) -> Vec<String> {
    let (mut out, mut depth, mut current) = (Vec::new(), 0, String::new());
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    out.push(current);
    out.into_iter()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect()
}

fn unparsable(term: &str, why: &str) -> ApiError {
    ApiError::bad_request(format!("unable to parse requirement: {why}: {term}"))
}

fn key(term: &str, k: &str) -> Result<String, ApiError> {
    let k = k.trim();
    match qualified_name(k).first() {
        Some(msg) => Err(unparsable(
            term,
            &format!("<nil>: Invalid value: \"{k}\": {msg}"),
        )),
        None => Ok(k.to_owned()),
    }
}

fn requirement(term: &str) -> Result<Requirement, ApiError> {
    if let Some(open) = term.find('(') {
        let inner = term[open + 1..]
            .strip_suffix(')')
            .ok_or_else(|| unparsable(term, "found '(', expected: ')'"))?;
        let values: Vec<String> = inner.split(',').map(|v| v.trim().to_owned()).collect();
        let head = term[..open].trim();
        let (k, op) = head
            .rsplit_once(char::is_whitespace)
            .ok_or_else(|| unparsable(term, "expected an operator"))?;
        return match op {
            "in" => Ok(Requirement::In(key(term, k)?, values)),
            "notin" => Ok(Requirement::NotIn(key(term, k)?, values)),
            _ => Err(unparsable(
                term,
                &format!("found '{op}', expected: in, notin"),
            )),
        };
    }
    if let Some((k, v)) = term.split_once("!=") {
        return Ok(Requirement::NotEquals(key(term, k)?, v.trim().into()));
    }
    if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
        return Ok(Requirement::Equals(key(term, k)?, v.trim().into()));
    }
    if let Some(k) = term.strip_prefix('!') {
        return Ok(Requirement::NotExists(key(term, k)?));
    }
    Ok(Requirement::Exists(key(term, term)?))
}

impl LabelSelector {
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        terms(text)
            .iter()
            .map(|t| requirement(t))
            .collect::<Result<_, _>>()
            .map(Self)
    }

    pub fn matches(&self, object: &Value) -> bool {
        let labels = object
            .pointer("/metadata/labels")
            .and_then(Value::as_object);
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|req| match req {
            Requirement::Equals(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|x| vs.iter().all(|v| v != x)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
        })
    }
}

/// The fields a kind can be selected on beyond `metadata.name` and `metadata.namespace`.
fn selectable(rt: &ResourceType) -> Vec<String> {
    let fixed: &[&str] = match rt.flavour {
        Flavour::Secret => &["type"],
        Flavour::Namespace => &["status.phase"],
        Flavour::Event => &[
            "regarding.kind",
            "regarding.namespace",
            "regarding.name",
            "regarding.uid",
            "regarding.apiVersion",
            "regarding.resourceVersion",
            "regarding.fieldPath",
            "reason",
            "reportingController",
            "type",
        ],
        _ => &[],
    };
    let from_crd = rt
        .selectable_fields
        .iter()
        .map(|p| p.trim_start_matches('.').to_owned());
    fixed
        .iter()
        .map(|s| (*s).to_owned())
        .chain(from_crd)
        .collect()
}

/// A field selector: `field=value`, `field==value`, `field!=value`, comma-separated.
#[derive(Debug, Clone, Default)]
pub struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    pub fn parse(text: &str, rt: &ResourceType) -> Result<Self, ApiError> {
        let allowed = selectable(rt);
        let mut reqs = Vec::new();
        for term in terms(text) {
            let (field, equal, value) = if let Some((k, v)) = term.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                (k, true, v)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{term}'; can't understand '{term}'"
                )));
            };
            let field = field.trim();
            let known = matches!(field, "metadata.name" | "metadata.namespace")
                || allowed.iter().any(|a| a == field);
            if !known {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {field}"
                )));
            }
            reqs.push((field.to_owned(), equal, value.trim().to_owned()));
        }
        Ok(Self(reqs))
    }

    pub fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|(field, equal, value)| {
            let pointer = format!("/{}", field.replace('.', "/"));
            let actual = match object.pointer(&pointer) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (actual == *value) == *equal
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::resource::builtins;

    #[test]
    fn label_selectors_cover_every_operator() {
        let o = json!({"metadata": {"labels": {"app": "plugboard", "tier": "a"}}});
        for (sel, want) in [
            ("app=plugboard", true),
            ("app==plugboard,tier!=b", true),
            ("tier in (a, b)", true),
            ("tier in(a)", true),
            ("tier notin (a)", false),
            ("app", true),
            ("!missing", true),
            ("missing", false),
            ("", true),
        ] {
            assert_eq!(
                LabelSelector::parse(sel).unwrap().matches(&o),
                want,
                "{sel}"
            );
        }
        assert_eq!(LabelSelector::parse("bad key=x").unwrap_err().code, 400);
    }

    #[test]
    fn field_selectors_match_name_namespace_and_the_kinds_own_fields() {
        let secrets = builtins()
            .into_iter()
            .find(|t| t.plural == "secrets")
            .unwrap();
        let o = json!({"metadata": {"name": "n", "namespace": "ns"}, "type": "Opaque"});
        assert!(
            FieldSelector::parse(
                "metadata.name=n,metadata.namespace!=x,type=Opaque",
                &secrets
            )
            .unwrap()
            .matches(&o)
        );
        let err = FieldSelector::parse("spec.x=1", &secrets).unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (400, "field label not supported: spec.x")
        );
    }
}
