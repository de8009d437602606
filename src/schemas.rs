//! JSON Schema validation of input, connector parameters, OAuth app credentials and tenant
//! fields (draft 2020-12), and a connector's schemas compiled once per generation.
//!
//! Messages name the JSON pointer of each bad value and what the schema wanted, and never the
//! value itself: input may hold an API key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use jsonschema::Validator;
use serde_json::{Map, Value};

use crate::api::ConnectorSpec;
use crate::error::Error;

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
    /// The property a `required` rule found missing (its pointer is the object's).
    pub missing: Option<String>,
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

/// The object a schema belongs to: a connector, by uid and generation. A new generation may
/// carry new schemas; a new uid is another object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub uid: String,
    pub generation: Option<i64>,
}

/// Compiled schemas, kept per owner so that a connector's schemas compile once per
/// generation instead of on every reconcile of each of its Connections (compiling is the
/// costliest part of validating). An owner's older generation is replaced; [`forget`]
/// drops an owner that changed or went away.
///
/// [`forget`]: Compiled::forget
#[derive(Default)]
pub struct Compiled {
    by_owner: Mutex<HashMap<String, Generation>>,
}

/// One owner's compiled schemas, of the generation they were compiled for.
type Generation = (Option<i64>, HashMap<String, Arc<Validator>>);

impl Compiled {
    /// The compiled `schema`, known to `owner` as `which` (`inputSchema`,
    /// `options.apikey.inputSchema`, ...). Without an owner (an object not from the API) it
    /// is compiled and not kept.
    pub fn get(
        &self,
        owner: Option<&Owner>,
        which: &str,
        schema: &Value,
    ) -> Result<Arc<Validator>, InvalidSchema> {
        let Some(owner) = owner else {
            return compile(schema).map(Arc::new);
        };
        let cached = self
            .lock()
            .get(&owner.uid)
            .filter(|(generation, _)| *generation == owner.generation)
            .and_then(|(_, schemas)| schemas.get(which).cloned());
        if let Some(validator) = cached {
            return Ok(validator);
        }
        // Compiled without the lock: another reconcile may compile the same schema meanwhile,
        // which costs time once and never a wrong answer.
        let validator = Arc::new(compile(schema)?);
        let mut by_owner = self.lock();
        let entry = by_owner.entry(owner.uid.clone()).or_default();
        if entry.0 != owner.generation {
            *entry = (owner.generation, HashMap::new());
        }
        entry.1.insert(which.to_owned(), validator.clone());
        Ok(validator)
    }

    /// Drops what is kept for the owner `uid`.
    pub fn forget(&self, uid: &str) {
        self.lock().remove(uid);
    }

    /// How many owners have schemas kept.
    pub fn owners(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Generation>> {
        // Inserts and removals are single calls: a panic elsewhere cannot leave the map
        // half-changed, so a poisoned lock is still good to use.
        self.by_owner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A connector's schemas, as a check sees them.
pub struct ConnectorSchemas<'a> {
    pub connector: &'a ConnectorSpec,
    /// `Connector/name` or `ClusterConnector/name`, for messages.
    pub label: &'a str,
    pub owner: Option<&'a Owner>,
    pub compiled: &'a Compiled,
    /// The auth option in use: its own `inputSchema`, when it has one, replaces the
    /// connector's.
    pub option: Option<&'a str>,
}

impl ConnectorSchemas<'_> {
    /// Checks `instance` against the connector's schema `which`: the violations, described
    /// as one line; a schema that does not compile is the connector's fault, and says so.
    fn violations(
        &self,
        which: &str,
        schema: Option<&Value>,
        instance: &Map<String, Value>,
    ) -> Result<Option<String>, Error> {
        let found = self.all_violations(which, schema, instance)?;
        Ok((!found.is_empty()).then(|| describe(&found)))
    }

    fn all_violations(
        &self,
        which: &str,
        schema: Option<&Value>,
        instance: &Map<String, Value>,
    ) -> Result<Vec<Violation>, Error> {
        let Some(schema) = schema else {
            return Ok(Vec::new());
        };
        let validator = self
            .compiled
            .get(self.owner, which, schema)
            .map_err(|err| {
                Error::InvalidConnector(format!(
                    "{} spec.{which} does not compile: {err}",
                    self.label
                ))
            })?;
        Ok(violations(&validator, &Value::Object(instance.clone())))
    }

    /// The schema the input must satisfy and where it sits: the auth method's own
    /// `inputSchema` (of the option in use, or of `auth`), else the connector's.
    pub fn input_schema(&self) -> Option<(String, Value)> {
        let method = match self.option {
            Some(key) => self
                .connector
                .options
                .as_ref()
                .and_then(|o| o.get(key))
                .map(|m| (format!("options.{key}.inputSchema"), m)),
            None => self
                .connector
                .auth
                .as_ref()
                .map(|m| ("auth.inputSchema".to_owned(), m)),
        };
        let own = method.and_then(|(which, m)| Some((which, m.input_schema.as_ref()?.to_value())));
        own.or_else(|| {
            let schema = self.connector.input_schema.as_ref()?;
            Some(("inputSchema".to_owned(), schema.to_value()))
        })
    }

    /// Checks `input` (described as `what`) against the input schema.
    pub fn input(&self, what: &str, input: &Map<String, Value>) -> Result<(), Error> {
        let (which, schema) = self.input_schema().unzip();
        let which = which.unwrap_or_default();
        match self.violations(&which, schema.as_ref(), input)? {
            None => Ok(()),
            Some(found) => Err(Error::InvalidInput(format!(
                "{what} does not match {} spec.{which}: {found}",
                self.label
            ))),
        }
    }

    /// Every violation of `input` against the input schema, for a form to show each next to
    /// its field.
    pub fn input_violations(&self, input: &Map<String, Value>) -> Result<Vec<Violation>, Error> {
        let (which, schema) = self.input_schema().unzip();
        self.all_violations(&which.unwrap_or_default(), schema.as_ref(), input)
    }

    /// Checks merged connector parameters (described as `what`) against `parametersSchema`.
    pub fn parameters(&self, what: &str, parameters: &Map<String, Value>) -> Result<(), Error> {
        let schema = self
            .connector
            .parameters_schema
            .as_ref()
            .map(|s| s.to_value());
        match self.violations("parametersSchema", schema.as_ref(), parameters)? {
            None => Ok(()),
            Some(found) => Err(Error::InvalidParameters(format!(
                "{what} do not match spec.parametersSchema: {found}"
            ))),
        }
    }

    /// Checks the OAuth app's values, from the Secret `name` named by `field`, against
    /// `customCredentialsSchema`.
    pub fn app(&self, name: &str, field: &str, values: &Map<String, Value>) -> Result<(), Error> {
        let schema = self
            .connector
            .custom_credentials_schema
            .as_ref()
            .map(|s| s.to_value());
        match self.violations("customCredentialsSchema", schema.as_ref(), values)? {
            None => Ok(()),
            Some(found) => Err(Error::InvalidConnector(format!(
                "Secret {name:?} ({field}) does not match spec.customCredentialsSchema: {found}"
            ))),
        }
    }
}

/// Every violation of `instance` against `validator`, in instance order.
pub fn violations(validator: &Validator, instance: &Value) -> Vec<Violation> {
    let mut found: Vec<Violation> = validator
        .iter_errors(instance)
        .map(|err| Violation {
            pointer: err.instance_path().as_str().to_owned(),
            message: err.masked().to_string(),
            missing: match err.kind() {
                jsonschema::error::ValidationErrorKind::Required { property } => {
                    property.as_str().map(str::to_owned)
                }
                _ => None,
            },
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

    #[test]
    fn a_connectors_schema_compiles_once_per_generation_and_is_dropped_with_it() {
        let compiled = Compiled::default();
        let schema = serde_json::json!({"type": "object", "required": ["apiKey"]});
        let owner = |generation| Owner {
            uid: "uid-1".to_owned(),
            generation: Some(generation),
        };
        let first = compiled
            .get(Some(&owner(1)), "inputSchema", &schema)
            .unwrap();
        let again = compiled
            .get(Some(&owner(1)), "inputSchema", &schema)
            .unwrap();
        assert!(
            Arc::ptr_eq(&first, &again),
            "the same generation is not compiled again"
        );
        let changed = serde_json::json!({"type": "object"});
        let newer = compiled
            .get(Some(&owner(2)), "inputSchema", &changed)
            .unwrap();
        assert!(
            !Arc::ptr_eq(&first, &newer),
            "a new generation compiles its own"
        );
        assert!(newer.is_valid(&serde_json::json!({})));
        assert_eq!(compiled.owners(), 1, "older generations are not kept");
        compiled.forget("uid-1");
        assert_eq!(compiled.owners(), 0);
        let broken = serde_json::json!({"type": 7});
        assert!(
            compiled
                .get(Some(&owner(3)), "inputSchema", &broken)
                .is_err()
        );
        assert_eq!(
            compiled.owners(),
            0,
            "a schema that does not compile is not kept"
        );
    }

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
