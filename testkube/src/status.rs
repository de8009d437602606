//! Errors as the real API server sends them: a `metav1.Status` body with a reason and code.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// A failed request.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Value,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: String, details: Value) -> Self {
        Self {
            code,
            reason,
            message,
            details,
        }
    }

    pub fn not_found(resource: &str, name: &str) -> Self {
        let (plural, group) = split(resource);
        Self::new(
            404,
            "NotFound",
            format!("{resource} \"{name}\" not found"),
            json!({"name": name, "group": group, "kind": plural}),
        )
    }

    pub fn already_exists(resource: &str, name: &str) -> Self {
        let (plural, group) = split(resource);
        Self::new(
            409,
            "AlreadyExists",
            format!("{resource} \"{name}\" already exists"),
            json!({"name": name, "group": group, "kind": plural}),
        )
    }

    /// A stale resourceVersion, worded as the real server words it.
    pub fn conflict(resource: &str, name: &str) -> Self {
        let (plural, group) = split(resource);
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {resource} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
            ),
            json!({"name": name, "group": group, "kind": plural}),
        )
    }

    /// Server-side apply conflicts between field managers.
    pub fn apply_conflict(resource: &str, name: &str, conflicts: &[(String, String)]) -> Self {
        let (plural, group) = split(resource);
        let listed: Vec<String> = conflicts
            .iter()
            .map(|(m, f)| format!("conflict with \"{m}\": {f}"))
            .collect();
        let causes: Vec<Value> = conflicts
            .iter()
            .map(|(m, f)| json!({"reason": "FieldManagerConflict", "message": format!("conflict with \"{m}\""), "field": f}))
            .collect();
        let noun = if conflicts.len() == 1 {
            "conflict"
        } else {
            "conflicts"
        };
        Self::new(
            409,
            "Conflict",
            format!(
                "Apply failed with {} {noun}: {}",
                conflicts.len(),
                listed.join("\n")
            ),
            json!({"name": name, "group": group, "kind": plural, "causes": causes}),
        )
    }

    /// 422 Invalid, with one cause per bad field.
    pub fn invalid(kind: &str, group: &str, name: &str, causes: Vec<(String, String)>) -> Self {
        let listed: Vec<String> = causes.iter().map(|(f, m)| format!("{f}: {m}")).collect();
        let message = format!(
            "{kind}.{group} \"{name}\" is invalid: {}",
            listed.join(", ")
        );
        let causes: Vec<Value> = causes
            .iter()
            .map(|(f, m)| json!({"reason": "FieldValueInvalid", "message": m, "field": f}))
            .collect();
        Self::new(
            422,
            "Invalid",
            message,
            json!({"name": name, "group": group, "kind": kind, "causes": causes}),
        )
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message.into(), Value::Null)
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource".into(),
            Value::Null,
        )
    }

    /// 410: a watch from a resourceVersion older than the history kept.
    pub fn gone(rv: u64) -> Self {
        Self::new(
            410,
            "Expired",
            format!("too old resource version: {rv}"),
            Value::Null,
        )
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {content_type})"
            ),
            Value::Null,
        )
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
        if !self.details.is_null() {
            status["details"] = self.details.clone();
        }
        status
    }
}

fn split(resource: &str) -> (String, String) {
    match resource.split_once('.') {
        Some((plural, group)) => (plural.to_owned(), group.to_owned()),
        None => (resource.to_owned(), String::new()),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (code, axum::Json(self.body())).into_response()
    }
}
