//! Every manifest in `examples/` is something a user copies, so each must be exactly what the
//! API accepts and means what it says:
//!
//! - it reads into plugboard's (or Kubernetes') Rust type and back without losing a field, so
//!   a misspelt field, which the API server would silently prune, fails here;
//! - plugboard kinds satisfy the generated CRD's OpenAPI schema and its CEL rules;
//! - the JSON Schemas a connector embeds compile (draft 2020-12), and every Connection's
//!   parameters and inline input satisfy its connector's schemas;
//! - every template a connector holds parses, and connector parameters really pick the
//!   host they claim to;
//! - every reference (tenant, connector, auth option, Secret and key) resolves within
//!   `examples/`, all in the one namespace the examples create, in `kubectl apply` order.
//!
//! The negative tests at the end prove that each check rejects what it should.

use serde_json::json;

use examples::{Doc, Examples};

#[test]
fn every_example_reads_into_its_rust_type_without_losing_a_field() {
    assert_no_problems(each(&["*"], |_, doc| roundtrip::check(doc)));
}

#[test]
fn every_plugboard_example_satisfies_its_crd_schema() {
    assert_no_problems(each(PLUGBOARD, |_, doc| openapi::check(doc)));
}

#[test]
fn every_plugboard_example_passes_its_crd_cel_rules() {
    assert_no_problems(each(PLUGBOARD, |_, doc| {
        cel::violations(doc.kind(), &doc.json, None)
    }));
}

#[test]
fn every_connector_schema_compiles_and_every_connection_satisfies_them() {
    let mut problems = each(CONNECTORS, schemas::check_connector);
    problems.extend(each(&["Connection"], schemas::check_connection));
    assert_no_problems(problems);
}

#[test]
fn every_connector_template_parses() {
    assert_no_problems(each(CONNECTORS, |_, doc| templates::check(doc)));
}

#[test]
fn every_reference_resolves_within_the_examples() {
    let mut problems = each(&["*"], refs::check);
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
fn a_connector_with_both_auth_and_options_fails_the_cel_rule() {
    let doc = examples::document("20-connector-hubspot-oauth2.yaml", 0);
    let mut object = doc.json.clone();
    object["spec"]["options"] = json!({ "oauth": object["spec"]["auth"].clone() });
    let problems = cel::violations("Connector", &object, None);
    let what = "spec.options next to spec.auth should fail the CEL rule";
    assert_reports(&doc, &problems, "set exactly one of spec.auth", what);
}

#[test]
fn an_oauth2_method_without_token_uri_fails_the_cel_rule() {
    let doc = examples::document("20-connector-hubspot-oauth2.yaml", 0);
    let mut object = doc.json.clone();
    let auth = object["spec"]["auth"].as_object_mut().expect("spec.auth");
    assert!(
        auth.remove("tokenUri").is_some(),
        "{}: no tokenUri",
        doc.label()
    );
    let problems = cel::violations("Connector", &object, None);
    let want = "an oauth2 auth method needs authorizeUri, tokenUri";
    let what = "without spec.auth.tokenUri the CEL rule should refuse it";
    assert_reports(&doc, &problems, want, what);
}

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
    let what = "the CRD schema should refuse spec.connectorParameter";
    assert_reports(&doc, &openapi::check(&doc), "connectorParameter", what);
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

#[test]
fn an_environment_outside_the_enum_fails_the_parameters_schema() {
    let file = "43-connection-initech-paddle-sandbox.yaml";
    let doc = examples::mutated(file, "environment: sandbox", "environment: staging");
    let problems = schemas::check_connection(&Examples::load(), &doc);
    let what = "environment staging is not in the connector's enum";
    assert_reports(&doc, &problems, "/environment", what);
}

#[test]
fn a_missing_secret_fails_the_reference_check() {
    let file = "42-connection-globex-stripe.yaml";
    let doc = examples::mutated(
        file,
        "name: globex-stripe-api-key",
        "name: globex-stripe-key",
    );
    let problems = refs::check(&Examples::load(), &doc);
    let what = "inputFrom names a Secret that does not exist";
    assert_reports(&doc, &problems, "Secret acme/globex-stripe-key", what);
}

// ---- helpers ----

const PLUGBOARD: &[&str] = &["Connector", "ClusterConnector", "Tenant", "Connection"];
const CONNECTORS: &[&str] = &["Connector", "ClusterConnector"];

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

#[path = "examples/openapi.rs"]
mod openapi;

#[path = "examples/cel.rs"]
mod cel;

#[path = "examples/schemas.rs"]
mod schemas;

#[path = "examples/refs.rs"]
mod refs;

#[path = "examples/templates.rs"]
mod templates;
