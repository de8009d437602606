//! What `plugboard validate` prints: one line per problem (`file:line: Kind/namespace/name:
//! field: message`) and a summary, or the same as JSON for machines.

use serde::Serialize;

use super::found::{Found, Severity};
use super::source::Document;

/// One problem, placed at its file and line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub severity: Severity,
    pub file: String,
    pub line: usize,
    /// Empty for a document that did not read.
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    pub field: String,
    pub message: String,
}

impl Finding {
    pub fn at(doc: &Document, found: Found) -> Self {
        Finding {
            severity: found.severity,
            file: doc.file.clone(),
            line: doc.line(&found.field),
            kind: doc.kind().to_owned(),
            namespace: doc.namespace().map(str::to_owned),
            name: doc.name().to_owned(),
            field: found.field,
            message: found.message,
        }
    }

    /// `file:line: Kind/namespace/name: field: message`; warnings say so before the
    /// message.
    pub fn line(&self) -> String {
        let mut out = format!("{}:{}:", self.file, self.line);
        if !self.kind.is_empty() {
            out.push(' ');
            out.push_str(&self.kind);
            if let Some(ns) = &self.namespace {
                out.push('/');
                out.push_str(ns);
            }
            out.push('/');
            out.push_str(&self.name);
            out.push(':');
        }
        if !self.field.is_empty() {
            out.push(' ');
            out.push_str(&self.field);
            out.push(':');
        }
        if self.severity == Severity::Warning {
            out.push_str(" warning:");
        }
        out.push(' ');
        out.push_str(&self.message);
        out
    }
}

/// Everything one run found.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub findings: Vec<Finding>,
    /// Files that held at least one object.
    pub files: usize,
    /// plugboard objects checked.
    pub checked: usize,
    /// Objects of other kinds (Secrets, Namespaces, Deployments...): read for references,
    /// not checked.
    pub skipped: usize,
}

impl Report {
    pub fn errors(&self) -> usize {
        self.count(Severity::Error)
    }

    pub fn warnings(&self) -> usize {
        self.count(Severity::Warning)
    }

    fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    /// `checked 14 plugboard objects in 25 files: 1 error, 2 warnings; 11 other objects skipped`.
    pub fn summary(&self) -> String {
        let plural =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        format!(
            "checked {} in {}: {}, {}; {} skipped",
            plural(self.checked, "plugboard object", "plugboard objects"),
            plural(self.files, "file", "files"),
            plural(self.errors(), "error", "errors"),
            plural(self.warnings(), "warning", "warnings"),
            plural(self.skipped, "other object", "other objects"),
        )
    }

    /// The text output: the problems (in file and line order), then the summary.
    pub fn text(&self) -> String {
        let mut out: String = self.findings.iter().map(|f| f.line() + "\n").collect();
        out.push_str(&self.summary());
        out.push('\n');
        out
    }

    /// The JSON output: the report with `errors`, `warnings` and the summary line added.
    pub fn json(&self) -> String {
        let mut value = serde_json::to_value(self).expect("a report serializes");
        value["errors"] = self.errors().into();
        value["warnings"] = self.warnings().into();
        value["summary"] = self.summary().into();
        serde_json::to_string_pretty(&value).expect("a value serializes")
    }
}
