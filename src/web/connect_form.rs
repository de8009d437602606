//! The connect page's form, from an input schema: which fields it has and how each is drawn,
//! how the posted form reads back into the input the Connection gets, and where each of the
//! validator's complaints belongs. Pure: the page's handlers do the I/O.
//!
//! Only the schema's top-level `properties` become fields (an object schema is what a
//! connector's input is). Fields come in the order of `required`, then the others by name:
//! the API server, like any Go JSON round trip, keeps an object's keys in no order of the
//! author's, but arrays keep theirs.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::schemas::Violation;

/// How a field is drawn and read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Text,
    /// `format: password` or `writeOnly: true`: never shown, never filled in again.
    Password,
    Number,
    Integer,
    Checkbox,
    /// `enum`: one of the listed values.
    Select,
    /// Anything else (objects, arrays): typed as JSON.
    Json,
}

/// One choice of a select field.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Choice {
    /// The value as the form posts it.
    pub value: String,
    pub selected: bool,
}

/// One field of the form, ready to draw.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Field {
    /// The input key, which the form posts as `input.<name>`.
    pub name: String,
    /// `title`, else the key.
    pub label: String,
    /// `description`.
    pub help: Option<String>,
    pub kind: Kind,
    pub required: bool,
    /// What the field shows: the schema's `default`, or what the person posted (never for a
    /// password field).
    pub value: String,
    pub checked: bool,
    pub choices: Vec<Choice>,
    /// What is wrong with it, from the server's validation.
    pub errors: Vec<String>,
}

/// The posted form's field for input key `name`.
pub fn form_key(name: &str) -> String {
    format!("input.{name}")
}

/// The fields of `schema` (an input schema), with their defaults.
pub fn fields(schema: Option<&Value>) -> Vec<Field> {
    let Some(properties) = schema.and_then(|s| s.get("properties")?.as_object()) else {
        return Vec::new();
    };
    let required: Vec<&str> = schema
        .and_then(|s| s.get("required")?.as_array())
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|name| properties.contains_key(*name))
        .collect();
    let mut names: Vec<&str> = required.clone();
    let mut rest: Vec<&str> = properties
        .keys()
        .map(String::as_str)
        .filter(|name| !required.contains(name))
        .collect();
    rest.sort_unstable();
    names.extend(rest);
    names
        .into_iter()
        .map(|name| field(name, &properties[name], required.contains(&name)))
        .collect()
}

fn field(name: &str, schema: &Value, required: bool) -> Field {
    let kind = kind(schema);
    let default = schema.get("default");
    let choices = schema
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|v| Choice {
            value: form_text(v),
            selected: Some(v) == default,
        })
        .collect();
    let value = match (kind, default) {
        (Kind::Password | Kind::Checkbox, _) | (_, None) => String::new(),
        (_, Some(v)) => form_text(v),
    };
    Field {
        name: name.to_owned(),
        label: text(schema, "title").unwrap_or_else(|| name.to_owned()),
        help: text(schema, "description"),
        kind,
        required,
        value,
        checked: default == Some(&Value::Bool(true)),
        choices,
        errors: Vec::new(),
    }
}

fn text(schema: &Value, key: &str) -> Option<String> {
    schema.get(key)?.as_str().map(str::to_owned)
}

fn kind(schema: &Value) -> Kind {
    if schema.get("enum").is_some_and(Value::is_array) {
        return Kind::Select;
    }
    let secret = schema.get("format").and_then(Value::as_str) == Some("password")
        || schema.get("writeOnly") == Some(&Value::Bool(true));
    match schema.get("type").and_then(Value::as_str) {
        Some("string") | None if secret => Kind::Password,
        Some("string") => Kind::Text,
        Some("integer") => Kind::Integer,
        Some("number") => Kind::Number,
        Some("boolean") => Kind::Checkbox,
        _ => Kind::Json,
    }
}

/// A value as a form field holds it: strings as they are, others as JSON.
fn form_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The input a posted form gives, and the fields it could not read (by name). An empty field
/// is left out, so that `required` says it is missing; an unchecked box is `false`.
pub fn read(
    fields: &[Field],
    schema: Option<&Value>,
    posted: &BTreeMap<String, String>,
) -> (Map<String, Value>, BTreeMap<String, String>) {
    let mut input = Map::new();
    let mut unreadable = BTreeMap::new();
    for field in fields {
        let given = posted.get(&form_key(&field.name)).map(String::as_str);
        let read = match (field.kind, given) {
            (Kind::Checkbox, given) => Ok(Some(Value::Bool(given.is_some()))),
            (_, None | Some("")) => Ok(None),
            (kind, Some(text)) => parse(kind, text, property(schema, &field.name)),
        };
        match read {
            Ok(Some(value)) => {
                input.insert(field.name.clone(), value);
            }
            Ok(None) => {}
            Err(message) => {
                unreadable.insert(field.name.clone(), message.to_owned());
            }
        }
    }
    (input, unreadable)
}

fn property<'a>(schema: Option<&'a Value>, name: &str) -> Option<&'a Value> {
    schema?.get("properties")?.get(name)
}

fn parse(kind: Kind, text: &str, schema: Option<&Value>) -> Result<Option<Value>, &'static str> {
    match kind {
        Kind::Text | Kind::Password => Ok(Some(Value::String(text.to_owned()))),
        Kind::Integer => text
            .trim()
            .parse::<i64>()
            .map(|n| Some(Value::from(n)))
            .map_err(|_| "enter a whole number"),
        Kind::Number => text
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(|n| Some(Value::Number(n)))
            .ok_or("enter a number"),
        Kind::Select => schema
            .and_then(|s| s.get("enum")?.as_array())
            .into_iter()
            .flatten()
            .find(|v| form_text(v) == text)
            .map(|v| Some(v.clone()))
            .ok_or("choose one of the listed values"),
        Kind::Json => serde_json::from_str(text)
            .map(Some)
            .map_err(|_| "enter valid JSON"),
        Kind::Checkbox => Ok(Some(Value::Bool(true))),
    }
}

/// Sorts the validator's complaints onto the fields they name (by their JSON pointer, or the
/// property a `required` rule missed); those naming no field are returned, for the top of
/// the form.
pub fn place(fields: &mut [Field], violations: &[Violation]) -> Vec<String> {
    let mut general = Vec::new();
    for v in violations {
        let (name, message) = match &v.missing {
            Some(missing) if v.pointer.is_empty() => (missing.clone(), "required".to_owned()),
            _ => (top_key(&v.pointer), v.message.clone()),
        };
        match fields.iter_mut().find(|f| f.name == name) {
            Some(field) if !name.is_empty() => field.errors.push(message),
            _ => general.push(describe(v)),
        }
    }
    general
}

fn describe(v: &Violation) -> String {
    match (&v.missing, v.pointer.is_empty()) {
        (Some(missing), true) => format!("{missing} is required"),
        (_, true) => v.message.clone(),
        _ => format!("{}: {}", v.pointer, v.message),
    }
}

/// The top-level key a JSON pointer starts with, unescaped (RFC 6901).
fn top_key(pointer: &str) -> String {
    pointer
        .split('/')
        .nth(1)
        .unwrap_or_default()
        .replace("~1", "/")
        .replace("~0", "~")
}

/// The fields with what the person posted put back, for the form shown again with its
/// errors. Password fields stay empty: what was typed there is not sent back to the browser.
pub fn refill(fields: &mut [Field], posted: &BTreeMap<String, String>) {
    for field in fields {
        let given = posted.get(&form_key(&field.name));
        match field.kind {
            Kind::Password => {}
            Kind::Checkbox => field.checked = given.is_some(),
            Kind::Select => {
                for choice in &mut field.choices {
                    choice.selected = given == Some(&choice.value);
                }
            }
            _ => field.value = given.cloned().unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> Value {
        json!({
            "type": "object",
            "required": ["subdomain", "apiKey"],
            "properties": {
                "apiKey": {"type": "string", "format": "password", "title": "API key",
                           "description": "Settings → API", "pattern": "^sk_"},
                "subdomain": {"type": "string", "default": "acme"},
                "region": {"enum": ["eu", "us"], "default": "us"},
                "sandbox": {"type": "boolean", "default": true},
                "pageSize": {"type": "integer"},
                "ratio": {"type": "number"},
                "token": {"type": "string", "writeOnly": true},
                "extra": {"type": "object"},
            }
        })
    }

    fn posted(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (form_key(k), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn fields_follow_required_then_name_and_take_their_kind_label_and_default() {
        let fields = fields(Some(&schema()));
        let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "subdomain",
                "apiKey",
                "extra",
                "pageSize",
                "ratio",
                "region",
                "sandbox",
                "token"
            ]
        );
        let kinds: Vec<Kind> = fields.iter().map(|f| f.kind).collect();
        use Kind::*;
        assert_eq!(
            kinds,
            [
                Text, Password, Json, Integer, Number, Select, Checkbox, Password
            ]
        );
        let key = &fields[1];
        assert_eq!(
            (key.label.as_str(), key.help.as_deref(), key.required),
            ("API key", Some("Settings → API"), true)
        );
        assert_eq!(fields[0].value, "acme");
        assert!(fields[6].checked);
        let region: Vec<(&str, bool)> = fields[5]
            .choices
            .iter()
            .map(|c| (c.value.as_str(), c.selected))
            .collect();
        assert_eq!(region, [("eu", false), ("us", true)]);
    }

    #[test]
    fn a_posted_form_reads_back_into_typed_input() {
        let schema = schema();
        let fields = fields(Some(&schema));
        let form = posted(&[
            ("apiKey", "sk_1"),
            ("subdomain", ""),
            ("region", "eu"),
            ("pageSize", "50"),
            ("ratio", "0.5"),
            ("extra", "{\"a\": 1}"),
        ]);
        let (input, unreadable) = read(&fields, Some(&schema), &form);
        assert!(unreadable.is_empty(), "{unreadable:?}");
        assert_eq!(
            Value::Object(input),
            json!({"apiKey": "sk_1", "region": "eu", "pageSize": 50, "ratio": 0.5,
                   "extra": {"a": 1}, "sandbox": false})
        );
        let bad = posted(&[("pageSize", "fifty"), ("region", "mars"), ("extra", "{")]);
        let (_, unreadable) = read(&fields, Some(&schema), &bad);
        assert_eq!(
            unreadable.keys().collect::<Vec<_>>(),
            ["extra", "pageSize", "region"]
        );
    }

    #[test]
    fn complaints_land_on_the_fields_they_name() {
        let mut fields = fields(Some(&schema()));
        let violations = [
            Violation {
                pointer: String::new(),
                message: "\"subdomain\" is a required property".into(),
                missing: Some("subdomain".into()),
            },
            Violation {
                pointer: "/apiKey".into(),
                message: "value does not match \"^sk_\"".into(),
                missing: None,
            },
            Violation {
                pointer: String::new(),
                message: "additional properties are not allowed".into(),
                missing: None,
            },
        ];
        let general = place(&mut fields, &violations);
        assert_eq!(fields[0].errors, ["required"]);
        assert_eq!(fields[1].errors, ["value does not match \"^sk_\""]);
        assert_eq!(general, ["additional properties are not allowed"]);
    }

    #[test]
    fn a_form_shown_again_keeps_what_was_typed_except_secrets() {
        let mut fields = fields(Some(&schema()));
        refill(
            &mut fields,
            &posted(&[
                ("apiKey", "sk_secret"),
                ("subdomain", "globex"),
                ("region", "eu"),
            ]),
        );
        assert_eq!(fields[0].value, "globex");
        assert_eq!(fields[1].value, "", "a password is never sent back");
        assert!(fields[5].choices[0].selected && !fields[5].choices[1].selected);
        assert!(!fields[6].checked, "an unchecked box stays unchecked");
    }
}
