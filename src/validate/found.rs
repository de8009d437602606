//! One problem a check found in one object, before it is placed at a file and line.

/// An error fails the run; a warning is shown and does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub severity: Severity,
    /// The field path at fault (`spec.tenantRef.name`); empty for the whole object.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

pub fn error(field: impl Into<String>, message: impl Into<String>) -> Found {
    Found {
        severity: Severity::Error,
        field: field.into(),
        message: message.into(),
    }
}

pub fn warning(field: impl Into<String>, message: impl Into<String>) -> Found {
    Found {
        severity: Severity::Warning,
        field: field.into(),
        message: message.into(),
    }
}
