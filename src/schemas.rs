//! JSON Schema validation of input, connector parameters, OAuth app credentials and tenant
//! fields (draft 2020-12).
//!
//! Messages name the JSON pointer of each bad value and what the schema wanted, and never the
//! value itself: input may hold an API key.

use jsonschema::Validator;
use serde_json::Value;

/// A schema that does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidSchema {
    pub message: String,
}

/// One way an instance fails its schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer of the bad value within the instance (`""` for the whole instance).
    pub pointer: String,
    /// What the schema wanted, with the value itself masked.
    pub message: String,
}

/// Compiles a draft 2020-12 schema. Remote `$ref`s are not fetched: the crate is built
/// without HTTP resolution, so a connector cannot make the operator call out.
pub fn compile(schema: &Value) -> Result<Validator, InvalidSchema> {
    jsonschema::draft202012::options()
        .build(schema)
        .map_err(|err| InvalidSchema {
            message: format!(
                "{} (at {})",
                err.masked(),
                pointer_or_root(err.schema_path().as_str())
            ),
        })
}

/// Every violation of `instance` against `validator`, in instance order.
pub fn violations(validator: &Validator, instance: &Value) -> Vec<Violation> {
    let mut found: Vec<Violation> = validator
        .iter_errors(instance)
        .map(|err| Violation {
            pointer: err.instance_path().as_str().to_owned(),
            message: err.masked().to_string(),
        })
        .collect();
    found.sort_by(|a, b| a.pointer.cmp(&b.pointer));
    found
}

/// Violations as one line for a condition message: `/apiKey: value is shorter than 20
/// characters; /region: value is not one of ["eu","us"]`.
pub fn describe(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| format!("{}: {}", pointer_or_root(&v.pointer), v.message))
        .collect::<Vec<_>>()
        .join("; ")
}

fn pointer_or_root(pointer: &str) -> &str {
    if pointer.is_empty() { "/" } else { pointer }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn stripe_input() -> Validator {
        compile(&json!({
            "type": "object",
            "required": ["apiKey"],
            "properties": {
                "apiKey": {"type": "string", "minLength": 20, "pattern": "^sk_"},
                "region": {"enum": ["eu", "us"]},
            },
            "additionalProperties": false,
        }))
        .unwrap()
    }

    #[test]
    fn a_valid_instance_has_no_violations() {
        let v = stripe_input();
        assert!(
            violations(
                &v,
                &json!({"apiKey": "sk_test_0123456789abcdef", "region": "eu"})
            )
            .is_empty()
        );
    }

    #[test]
    fn every_violation_names_its_pointer_and_never_the_value() {
        let v = stripe_input();
        let secret = "pk_leaked_value";
        let found = violations(&v, &json!({"apiKey": secret, "region": "mars", "extra": 1}));
        let text = describe(&found);
        assert!(text.contains("/apiKey: "), "{text}");
        assert!(text.contains("/region: "), "{text}");
        assert!(
            text.contains(r#"["eu","us"]"#) || text.contains("eu"),
            "{text}"
        );
        assert!(text.contains("extra"), "{text}");
        assert!(!text.contains(secret), "the value leaked: {text}");
        assert!(!text.contains("mars"), "the value leaked: {text}");
    }

    #[test]
    fn a_missing_required_property_is_reported_at_the_root() {
        let text = describe(&violations(&stripe_input(), &json!({})));
        assert!(text.starts_with("/: "), "{text}");
        assert!(text.contains("apiKey"), "{text}");
    }

    #[test]
    fn a_schema_that_does_not_compile_is_an_error() {
        let err = compile(&json!({"type": "strnig"})).unwrap_err();
        assert!(!err.message.is_empty());
    }

    #[test]
    fn a_remote_ref_is_not_fetched() {
        // Resolving it would need HTTP; without it, compilation fails instead of calling out.
        let err = compile(&json!({"$ref": "http://169.254.169.254/latest/meta-data"}));
        assert!(err.is_err());
    }
}
