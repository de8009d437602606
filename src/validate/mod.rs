//! `plugboard validate`: checks manifests before any cluster applies them, for a GitOps pull
//! request or a connector author's editor. Every plugboard object is checked against its CRD
//! (schema and CEL rules, by the embedded API server's dry-run create), then for what the
//! API server cannot see: connectors' schemas and templates, the host guard, references
//! between objects and the keys of the Secrets they name, and Connections' parameters and
//! input against their connector's schemas.

mod catalog;
mod cluster;
mod connections;
mod connectors;
mod found;
pub(crate) mod lines;
pub mod report;
mod schema;
pub(crate) mod source;
mod tenants;

use std::path::PathBuf;

pub use found::Severity;
pub use report::{Finding, Report};

use catalog::Catalog;
use found::{Found, error};
use source::Document;

/// What to check, and how.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Files, folders, or `-` for standard input.
    pub paths: Vec<PathBuf>,
    /// As `plugboard run --allow-private-networks`: endpoints on internal addresses pass.
    pub allow_private_networks: bool,
}

/// Why the run could not check at all (as opposed to finding problems).
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    #[error("cannot read {0}")]
    Read(#[from] std::io::Error),
    #[error("--cluster: {0}")]
    Cluster(String),
}

/// Checks everything under `options.paths`; with `cluster`, references the set does not
/// hold are looked up there (read-only).
pub async fn run(
    options: &Options,
    cluster: Option<&kube::Client>,
) -> Result<Report, ValidateError> {
    let read = source::read(&options.paths)?;
    let mut catalog = Catalog::of(&read.documents);
    if let Some(client) = cluster {
        let wanted = cluster::wanted(&read.documents, &catalog);
        cluster::fetch(client, wanted, &mut catalog)
            .await
            .map_err(ValidateError::Cluster)?;
    }
    let mut report = Report::default();
    for bad in &read.unreadable {
        report.findings.push(Finding {
            severity: Severity::Error,
            file: bad.file.clone(),
            line: bad.line,
            kind: String::new(),
            namespace: None,
            name: String::new(),
            field: String::new(),
            message: bad.message.clone(),
        });
    }
    let mut files: Vec<&str> = read.documents.iter().map(|d| d.file.as_str()).collect();
    files.dedup();
    report.files = files.len();
    for doc in &read.documents {
        if !schema::is_plugboard(doc) {
            report.skipped += 1;
            continue;
        }
        report.checked += 1;
        for found in check(doc, &catalog, options) {
            report.findings.push(Finding::at(doc, found));
        }
    }
    report
        .findings
        .sort_by(|a, b| (&a.file, a.line, a.severity).cmp(&(&b.file, b.line, b.severity)));
    Ok(report)
}

/// Every problem with one plugboard object. The kind's own checks run only on an object
/// the API server would accept, since they read it as the typed spec.
fn check(doc: &Document, catalog: &Catalog, options: &Options) -> Vec<Found> {
    let mut found = Vec::new();
    if doc.name().is_empty() {
        found.push(error(
            "metadata.name",
            "is missing; every object needs a name",
        ));
    }
    found.extend(schema::check(doc));
    if found.iter().any(|f| f.severity == Severity::Error) {
        return found;
    }
    let private = options.allow_private_networks;
    found.extend(match doc.kind() {
        "Connector" | "ClusterConnector" => connectors::check(doc, catalog, private),
        "Connection" => connections::check(doc, catalog, private),
        "Tenant" => tenants::check(doc, catalog),
        _ => Vec::new(),
    });
    found
}
