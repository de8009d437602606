//! Every manifest in `examples/` is something a user copies, so each must be exactly what the
//! API accepts and means what it says:
//!
//! - `plugboard validate examples/` finds nothing, not even a warning: every object passes
//!   its CRD schema and CEL rules, connectors' schemas and templates are sound, every
//!   reference (tenant, connector, auth option, Secret and key) resolves within
//!   `examples/`, and Connections' parameters and input satisfy their connectors' schemas
//!   (tests/validate.rs proves each of those checks fails what it should);
//! - it reads into plugboard's (or Kubernetes') Rust type and back without losing a field;
//! - everything lives in the one namespace the examples create, the files apply in
//!   `kubectl apply` order, and connector parameters really pick the host they claim to;
//! - the CEL transition rules hold on an update.

use serde_json::json;

use examples::{Doc, Examples};

#[test]
fn every_example_reads_into_its_rust_type_without_losing_a_field() {
    assert_no_problems(each(&["*"], |_, doc| roundtrip::check(doc)));
}

#[test]
fn plugboard_validate_finds_nothing_wrong_with_the_examples() {
    let top: Vec<std::path::PathBuf> = std::fs::read_dir(examples::dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    let report = validate(&[], &top);
    let checked = report["checked"].as_u64().unwrap_or_default();
    assert!(
        checked >= 20,
        "validate checked only {checked} plugboard objects"
    );
    // The quickstart's provider is `plugboard dev`'s echo server on loopback, which only
    // passes the host guard the way dev runs the operator.
    let quickstart = validate(
        &["--allow-private-networks"],
        &[examples::dir().join("quickstart")],
    );
    assert_eq!(quickstart["checked"], 3);
}

/// `plugboard validate` over `paths`: its JSON report, after asserting it found nothing.
fn validate(flags: &[&str], paths: &[std::path::PathBuf]) -> serde_json::Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_plugboard"))
        .args(["validate", "--output", "json"])
        .args(flags)
        .args(paths)
        .output()
        .expect("plugboard runs");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|err| {
        panic!(
            "validate did not print JSON ({err}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    let findings: Vec<String> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            format!(
                "{}:{}: {}: {}",
                f["file"], f["line"], f["field"], f["message"]
            )
        })
        .collect();
    assert_no_problems(findings);
    assert!(out.status.success(), "validate exited {}", out.status);
    report
}

#[test]
fn every_object_is_in_the_examples_namespace_and_the_files_apply_in_order() {
    let mut problems = each(&["*"], refs::namespace);
    problems.extend(refs::apply_order(&Examples::load()));
    assert_no_problems(problems);
}

#[test]
fn the_examples_the_issue_asks_for_are_all_there() {
    let ex = Examples::load();
    let wanted = "Namespace/acme Connector/hubspot Connector/github Connector/stripe \
                  Connector/paddle Connector/paypal ClusterConnector/google-calendar \
                  Connector/asana Tenant/globex Tenant/initech Connection/globex-hubspot \
                  Connection/globex-stripe Connection/initech-paddle Connection/initech-asana";
    let missing: Vec<&str> = wanted
        .split_whitespace()
        .filter(|want| !ex.docs.iter().any(|d| d.kind_name() == *want))
        .collect();
    assert!(missing.is_empty(), "examples/ lacks {missing:?}");
}

#[test]
fn connector_parameters_pick_the_paddle_host() {
    let ex = Examples::load();
    let sandbox = ex.find("Connection", Some("acme"), "initech-paddle");
    let sandbox = sandbox.expect("examples/ defines Connection acme/initech-paddle");
    let label = sandbox.label();
    let (uri, allowed) = templates::base_uri(&ex, sandbox, None);
    let want = "https://sandbox-api.paddle.com";
    assert_eq!(
        uri, want,
        "{label}: environment sandbox should select the sandbox API"
    );
    let (live, _) = templates::base_uri(&ex, sandbox, Some(json!({})));
    let want = "https://api.paddle.com";
    assert_eq!(
        live, want,
        "{label}: by default the connector's production should apply"
    );
    for uri in [&uri, &live] {
        let host = uri.trim_start_matches("https://");
        assert!(
            allowed.iter().any(|h| h == host),
            "{label}: {host} is not in the connector's apiClient.allowedHosts {allowed:?}"
        );
    }
}

// ---- negative tests: each check rejects what it should ----

#[test]
fn a_misspelt_connection_field_fails_the_unknown_field_and_schema_checks() {
    let file = "40-connection-globex-hubspot.yaml";
    let doc = examples::mutated(file, "  connectorParameters:", "  connectorParameter:");
    let what = "the misspelt spec.connectorParameter should be reported as unknown";
    assert_reports(
        &doc,
        &roundtrip::check(&doc),
        "`spec.connectorParameter`",
        what,
    );
}

#[test]
fn changing_a_connections_tenant_ref_fails_the_cel_transition_rule() {
    let doc = examples::document("40-connection-globex-hubspot.yaml", 0);
    let old = doc.json.clone();
    let unchanged = cel::violations("Connection", &old, Some(&old));
    let label = doc.label();
    assert!(
        unchanged.is_empty(),
        "{label}: an unchanged Connection fails: {unchanged:?}"
    );
    let mut new = old.clone();
    new["spec"]["tenantRef"]["name"] = json!("initech");
    let problems = cel::violations("Connection", &new, Some(&old));
    let what = "changing spec.tenantRef should fail the transition rule";
    assert_reports(&doc, &problems, "tenantRef is immutable", what);
}

// ---- helpers ----

/// Runs `check` on every example document of `kinds` (`*`: all), labelling each problem
/// with the file and document it was found in.
fn each(kinds: &[&str], check: impl Fn(&Examples, &Doc) -> Vec<String>) -> Vec<String> {
    let ex = Examples::load();
    assert!(
        ex.docs.len() >= 20,
        "examples/ holds only {} documents",
        ex.docs.len()
    );
    let wanted = |doc: &&Doc| kinds.contains(&"*") || kinds.contains(&doc.kind());
    let mut problems = Vec::new();
    for doc in ex.docs.iter().filter(wanted) {
        let label = doc.label();
        problems.extend(check(&ex, doc).into_iter().map(|p| format!("{label}: {p}")));
    }
    problems
}

/// Fails with every problem on its own line.
fn assert_no_problems(problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "{} problem(s) in examples/:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

/// A negative test's check reported `want`.
fn assert_reports(doc: &Doc, problems: &[String], want: &str, what: &str) {
    assert!(
        problems.iter().any(|p| p.contains(want)),
        "{}: {what}; got {problems:?}",
        doc.label()
    );
}

#[path = "examples/corpus.rs"]
mod examples;

#[path = "examples/roundtrip.rs"]
mod roundtrip;

#[path = "examples/cel.rs"]
mod cel;

#[path = "examples/refs.rs"]
mod refs;

#[path = "examples/templates.rs"]
mod templates;
