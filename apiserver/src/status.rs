//! Failures as the real API server reports them: a `metav1.Status` body whose reason, code,
//! details and message follow apimachinery's `errors` and `field` packages, so that a client
//! matching on `reason` or on message text behaves here as it would against a cluster.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// The group and plural an error names (`details.group`, `details.kind`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupResource {
    pub group: String,
    pub resource: String,
}

impl GroupResource {
    pub fn new(group: &str, resource: &str) -> Self {
        Self {
            group: group.to_owned(),
            resource: resource.to_owned(),
        }
    }

    /// `secrets` or `connections.plugboard.dev`, as messages print it.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }
}

/// The kinds of field error apimachinery knows; each is a cause `reason` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldErrorKind {
    Required,
    Invalid,
    TypeInvalid,
    NotSupported,
    Forbidden,
    Duplicate,
    TooLong,
    TooMany,
}

impl FieldErrorKind {
    fn reason(self) -> &'static str {
        match self {
            Self::Required => "FieldValueRequired",
            Self::Invalid => "FieldValueInvalid",
            Self::TypeInvalid => "FieldValueTypeInvalid",
            Self::NotSupported => "FieldValueNotSupported",
            Self::Forbidden => "FieldValueForbidden",
            Self::Duplicate => "FieldValueDuplicate",
            Self::TooLong => "FieldValueTooLong",
            Self::TooMany => "FieldValueTooMany",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Required => "Required value",
            Self::Invalid | Self::TypeInvalid => "Invalid value",
            Self::NotSupported => "Unsupported value",
            Self::Forbidden => "Forbidden",
            Self::Duplicate => "Duplicate value",
            Self::TooLong => "Too long",
            Self::TooMany => "Too many",
        }
    }
}

/// One bad field: `field.Error` in apimachinery.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub kind: FieldErrorKind,
    pub field: String,
    /// The bad value as Go's `%q`/`%v` prints it; `None` where the message omits it.
    pub value: Option<String>,
    pub detail: String,
}

/// Prints a value the way `field.Error` does: strings quoted, numbers and booleans bare.
pub fn go_value(value: &Value) -> String {
    match value {
        Value::String(s) => Value::String(s.clone()).to_string(),
        Value::Null => "null".to_owned(),
        other => other.to_string(),
    }
}

impl FieldError {
    fn new(kind: FieldErrorKind, field: &str, value: Option<String>, detail: &str) -> Self {
        Self {
            kind,
            field: field.to_owned(),
            value,
            detail: detail.to_owned(),
        }
    }

    pub fn required(field: &str, detail: &str) -> Self {
        Self::new(FieldErrorKind::Required, field, None, detail)
    }

    pub fn invalid(field: &str, value: &Value, detail: &str) -> Self {
        Self::new(
            FieldErrorKind::Invalid,
            field,
            Some(go_value(value)),
            detail,
        )
    }

    pub fn type_invalid(field: &str, value: &Value, detail: &str) -> Self {
        Self::new(
            FieldErrorKind::TypeInvalid,
            field,
            Some(go_value(value)),
            detail,
        )
    }

    pub fn not_supported(field: &str, value: &Value, supported: &[String]) -> Self {
        let quoted: Vec<String> = supported
            .iter()
            .map(|s| Value::String(s.clone()).to_string())
            .collect();
        let detail = if quoted.is_empty() {
            String::new()
        } else {
            format!("supported values: {}", quoted.join(", "))
        };
        Self::new(
            FieldErrorKind::NotSupported,
            field,
            Some(go_value(value)),
            &detail,
        )
    }

    pub fn forbidden(field: &str, detail: &str) -> Self {
        Self::new(FieldErrorKind::Forbidden, field, None, detail)
    }

    pub fn duplicate(field: &str, value: &Value) -> Self {
        Self::new(FieldErrorKind::Duplicate, field, Some(go_value(value)), "")
    }

    pub fn too_long(field: &str, max: usize) -> Self {
        let unit = if max == 1 { "byte" } else { "bytes" };
        let detail = format!("may not be more than {max} {unit}");
        Self::new(FieldErrorKind::TooLong, field, None, &detail)
    }

    pub fn too_many(field: &str, actual: usize, max: usize) -> Self {
        let detail = format!("must have at most {max} items");
        Self::new(
            FieldErrorKind::TooMany,
            field,
            Some(actual.to_string()),
            &detail,
        )
    }

    /// `ErrorBody()`: the message without the field.
    pub fn body(&self) -> String {
        let mut s = self.kind.label().to_owned();
        if let Some(value) = &self.value {
            s = format!("{s}: {value}");
        }
        if !self.detail.is_empty() {
            s = format!("{s}: {}", self.detail);
        }
        s
    }

    /// `Error()`: `field: body`, with `<nil>` for the root as Go prints an empty path.
    pub fn message(&self) -> String {
        let field = if self.field.is_empty() {
            "<nil>"
        } else {
            &self.field
        };
        format!("{field}: {}", self.body())
    }
}

/// A failed request: code, reason, message and details of a `metav1.Status`.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    /// `details`, already shaped; `None` leaves the field out as Go's omitempty does.
    pub details: Option<Value>,
}

fn details(gr: &GroupResource, name: &str) -> Value {
    let mut d = Map::new();
    if !name.is_empty() {
        d.insert("name".into(), name.into());
    }
    if !gr.group.is_empty() {
        d.insert("group".into(), gr.group.clone().into());
    }
    d.insert("kind".into(), gr.resource.clone().into());
    Value::Object(d)
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: String, details: Option<Value>) -> Self {
        Self {
            code,
            reason,
            message,
            details,
        }
    }

    pub fn not_found(gr: &GroupResource, name: &str) -> Self {
        let message = format!("{} \"{name}\" not found", gr.qualified());
        Self::new(404, "NotFound", message, Some(details(gr, name)))
    }

    /// A path the server has no route for.
    pub fn no_route() -> Self {
        let message = "the server could not find the requested resource".to_owned();
        Self::new(404, "NotFound", message, Some(json!({})))
    }

    pub fn already_exists(gr: &GroupResource, name: &str) -> Self {
        let message = format!("{} \"{name}\" already exists", gr.qualified());
        Self::new(409, "AlreadyExists", message, Some(details(gr, name)))
    }

    /// `Operation cannot be fulfilled on ...`: optimistic-concurrency and precondition
    /// failures.
    pub fn conflict(gr: &GroupResource, name: &str, why: &str) -> Self {
        let message = format!(
            "Operation cannot be fulfilled on {} \"{name}\": {why}",
            gr.qualified()
        );
        Self::new(409, "Conflict", message, Some(details(gr, name)))
    }

    /// A stale `metadata.resourceVersion`.
    pub fn stale(gr: &GroupResource, name: &str) -> Self {
        Self::conflict(
            gr,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// Server-side apply conflicts: (manager as printed, field path as printed).
    /// The real server names no object here, only the causes.
    pub fn apply_conflicts(conflicts: &[(String, String)]) -> Self {
        let causes: Vec<Value> = conflicts
            .iter()
            .map(|(manager, field)| {
                json!({"reason": "FieldManagerConflict", "message": format!("conflict with {manager}"), "field": field})
            })
            .collect();
        let message = if let [(manager, field)] = conflicts {
            format!("Apply failed with 1 conflict: conflict with {manager}: {field}")
        } else {
            let mut by_manager: Vec<(&String, Vec<&String>)> = Vec::new();
            for (manager, field) in conflicts {
                match by_manager.iter_mut().find(|(m, _)| *m == manager) {
                    Some((_, fields)) => fields.push(field),
                    None => by_manager.push((manager, vec![field])),
                }
            }
            by_manager.sort();
            let mut lines = Vec::new();
            for (manager, fields) in by_manager {
                lines.push(format!("conflicts with {manager}:"));
                lines.extend(fields.iter().map(|f| format!("- {f}")));
            }
            format!(
                "Apply failed with {} conflicts: {}",
                conflicts.len(),
                lines.join("\n")
            )
        };
        Self::new(409, "Conflict", message, Some(json!({"causes": causes})))
    }

    /// 422 Invalid: `Kind.group "name" is invalid: ...`, one cause per field error.
    pub fn invalid(kind: &str, group: &str, name: &str, errors: &[FieldError]) -> Self {
        // ToAggregate drops repeated messages and brackets more than one.
        let mut messages: Vec<String> = Vec::new();
        let mut kept: Vec<&FieldError> = Vec::new();
        for e in errors {
            if !messages.contains(&e.message()) {
                messages.push(e.message());
                kept.push(e);
            }
        }
        let aggregate = match messages.as_slice() {
            [one] => one.clone(),
            many => format!("[{}]", many.join(", ")),
        };
        let qualified_kind = if group.is_empty() {
            kind.to_owned()
        } else {
            format!("{kind}.{group}")
        };
        let causes: Vec<Value> = kept
            .iter()
            .map(|e| json!({"reason": e.kind.reason(), "message": e.body(), "field": e.field}))
            .collect();
        let mut d = Map::new();
        if !name.is_empty() {
            d.insert("name".into(), name.into());
        }
        if !group.is_empty() {
            d.insert("group".into(), group.into());
        }
        d.insert("kind".into(), kind.into());
        d.insert("causes".into(), causes.into());
        let message = format!("{qualified_kind} \"{name}\" is invalid: {aggregate}");
        Self::new(422, "Invalid", message, Some(Value::Object(d)))
    }

    /// 422 without field causes, as `NewGenericServerResponse` builds it (a failed JSON
    /// patch `test`, for one).
    pub fn unprocessable(server_message: &str) -> Self {
        let message = "the server rejected our request due to an error in our request".to_owned();
        let causes = json!([{"reason": "UnexpectedServerResponse", "message": server_message}]);
        Self::new(422, "Invalid", message, Some(json!({"causes": causes})))
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message.into(), None)
    }

    pub fn forbidden(gr: &GroupResource, name: &str, why: &str, cause: Option<Value>) -> Self {
        let message = format!("{} \"{name}\" is forbidden: {why}", gr.qualified());
        let mut d = details(gr, name);
        if let Some(cause) = cause {
            d["causes"] = json!([cause]);
        }
        Self::new(403, "Forbidden", message, Some(d))
    }

    pub fn method_not_allowed() -> Self {
        let message = "the server does not allow this method on the requested resource".to_owned();
        Self::new(405, "MethodNotAllowed", message, Some(json!({})))
    }

    /// 410 Expired: a watch or a continue token older than the history kept.
    pub fn expired(message: String) -> Self {
        Self::new(410, "Expired", message, None)
    }

    pub fn unsupported_media_type(accepted: &[&str]) -> Self {
        let message = format!(
            "the body of the request was in an unknown format - accepted media types include: {}",
            accepted.join(", ")
        );
        Self::new(415, "UnsupportedMediaType", message, None)
    }

    /// No media range of an `Accept` header can be served.
    pub fn not_acceptable(accept: &str) -> Self {
        let message = format!(
            "only the following media types are accepted: application/json, application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1, application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1 (asked for: {accept})"
        );
        Self::new(406, "NotAcceptable", message, None)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message.into(), None)
    }

    pub fn body(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (code, axum::Json(self.body())).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_errors_print_like_apimachinery() {
        assert_eq!(
            FieldError::required("spec.tenantRef.name", "").message(),
            "spec.tenantRef.name: Required value"
        );
        let e = FieldError::type_invalid(
            "spec.input",
            &json!("string"),
            "spec.input in body must be of type object: \"string\"",
        );
        assert_eq!(
            e.message(),
            r#"spec.input: Invalid value: "string": spec.input in body must be of type object: "string""#
        );
        let e = FieldError::not_supported("spec.kind", &json!("C"), &["A".into(), "B".into()]);
        assert_eq!(
            e.body(),
            r#"Unsupported value: "C": supported values: "A", "B""#
        );
        assert_eq!(
            FieldError::too_long("note", 1024).body(),
            "Too long: may not be more than 1024 bytes"
        );
    }

    #[test]
    fn one_invalid_field_is_not_bracketed_and_several_are() {
        let one = ApiError::invalid(
            "Widget",
            "example.dev",
            "w",
            &[FieldError::required("spec.size", "")],
        );
        assert_eq!(
            one.message,
            r#"Widget.example.dev "w" is invalid: spec.size: Required value"#
        );
        let two = ApiError::invalid(
            "Secret",
            "",
            "s",
            &[FieldError::required("a", ""), FieldError::required("b", "")],
        );
        assert_eq!(
            two.message,
            r#"Secret "s" is invalid: [a: Required value, b: Required value]"#
        );
    }
}
