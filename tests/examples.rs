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

/// Reading `examples/` into documents, and looking objects up among them.
mod examples {
    use std::path::{Path, PathBuf};

    use k8s_openapi::api::core::v1::Secret;
    use plugboard::api::{ClusterConnector, Connector, ConnectorSpec};
    use serde::Deserialize;
    use serde::de::DeserializeOwned;
    use serde_json::Value;

    /// One YAML document of one example file, as YAML and as JSON.
    pub struct Doc {
        pub file: String,
        pub index: usize,
        pub yaml: serde_yaml::Value,
        pub json: Value,
    }

    impl Doc {
        pub fn kind(&self) -> &str {
            self.json["kind"].as_str().unwrap_or("<no kind>")
        }

        pub fn name(&self) -> &str {
            self.json["metadata"]["name"]
                .as_str()
                .unwrap_or("<no name>")
        }

        pub fn namespace(&self) -> Option<&str> {
            self.json["metadata"]["namespace"].as_str()
        }

        /// `Connection/name`.
        pub fn kind_name(&self) -> String {
            format!("{}/{}", self.kind(), self.name())
        }

        /// `examples/x.yaml, document 2 (Connection acme/name)`.
        pub fn label(&self) -> String {
            let object = match self.namespace() {
                Some(ns) => format!("{ns}/{}", self.name()),
                None => self.name().to_owned(),
            };
            format!(
                "{}, document {} ({} {object})",
                self.file,
                self.index + 1,
                self.kind()
            )
        }

        /// The document as `T`; panics naming the document when it does not read.
        pub fn typed<T: DeserializeOwned>(&self) -> T {
            serde_yaml::from_value(self.yaml.clone()).unwrap_or_else(|err| {
                panic!("{}: does not read as {}: {err}", self.label(), self.kind())
            })
        }
    }

    /// Every document of every example file, in the order `kubectl apply -f` reads them.
    pub struct Examples {
        pub docs: Vec<Doc>,
    }

    impl Examples {
        pub fn load() -> Self {
            let mut files: Vec<PathBuf> = std::fs::read_dir(dir())
                .expect("examples/ is readable")
                .map(|entry| entry.expect("examples/ is readable").path())
                .filter(|path| {
                    matches!(
                        path.extension().and_then(|e| e.to_str()),
                        Some("yaml" | "yml")
                    )
                })
                .collect();
            files.sort();
            let docs = files
                .iter()
                .flat_map(|path| {
                    let name = path.file_name().unwrap().to_string_lossy();
                    parse(&format!("examples/{name}"), &read(&name))
                })
                .collect();
            Self { docs }
        }

        /// The object of `kind` named `name` in `namespace` (`None`: cluster-scoped).
        pub fn find(&self, kind: &str, namespace: Option<&str>, name: &str) -> Option<&Doc> {
            self.docs
                .iter()
                .find(|d| d.kind() == kind && d.namespace() == namespace && d.name() == name)
        }

        /// The Secret's values (`data` decoded, then `stringData` over it), as a JSON object.
        pub fn secret_values(&self, namespace: Option<&str>, name: &str) -> Option<Value> {
            let secret: Secret = self.find("Secret", namespace, name)?.typed();
            let mut values = serde_json::Map::new();
            for (key, bytes) in secret.data.unwrap_or_default() {
                let text = String::from_utf8_lossy(&bytes.0).into_owned();
                values.insert(key, Value::String(text));
            }
            for (key, text) in secret.string_data.unwrap_or_default() {
                values.insert(key, Value::String(text));
            }
            Some(Value::Object(values))
        }
    }

    /// The spec of a Connector or ClusterConnector document.
    pub fn connector_spec(doc: &Doc) -> ConnectorSpec {
        match doc.kind() {
            "ClusterConnector" => doc.typed::<ClusterConnector>().spec.0,
            _ => doc.typed::<Connector>().spec,
        }
    }

    pub fn dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
    }

    pub fn read(file: &str) -> String {
        std::fs::read_to_string(dir().join(file))
            .unwrap_or_else(|err| panic!("examples/{file} cannot be read: {err}"))
    }

    /// The non-empty documents of one YAML stream; `file` names it in messages.
    pub fn parse(file: &str, text: &str) -> Vec<Doc> {
        let mut docs = Vec::new();
        for (index, de) in serde_yaml::Deserializer::from_str(text).enumerate() {
            let yaml = serde_yaml::Value::deserialize(de)
                .unwrap_or_else(|err| panic!("{file}, document {}: not YAML: {err}", index + 1));
            if yaml.is_null() {
                continue;
            }
            let json = serde_json::to_value(&yaml).unwrap_or_else(|err| {
                panic!("{file}, document {}: not JSON-compatible: {err}", index + 1)
            });
            let file = file.to_owned();
            docs.push(Doc {
                file,
                index,
                yaml,
                json,
            });
        }
        docs
    }

    /// The first document of an example file with `from` replaced by `to`.
    pub fn mutated(file: &str, from: &str, to: &str) -> Doc {
        let text = read(file);
        let changed = text.replace(from, to);
        assert_ne!(text, changed, "examples/{file} does not contain {from:?}");
        let label = format!("examples/{file} (with {to:?})");
        parse(&label, &changed)
            .into_iter()
            .next()
            .expect("one document")
    }

    /// One document of one example file, for the negative tests.
    pub fn document(file: &str, index: usize) -> Doc {
        parse(&format!("examples/{file}"), &read(file))
            .into_iter()
            .find(|d| d.index == index)
            .unwrap_or_else(|| panic!("examples/{file} has no document {}", index + 1))
    }
}

/// (a) Read each document into its Rust type and compare what the type writes back with
/// the original: whatever the type dropped is a field the API does not have.
mod roundtrip {
    use k8s_openapi::api::core::v1::{Namespace, Secret};
    use plugboard::api::{ClusterConnector, Connection, Connector, Tenant};
    use serde::Serialize;
    use serde::de::DeserializeOwned;
    use serde_json::Value;

    use super::examples::Doc;

    /// Problems with one document (unlabelled).
    pub fn check(doc: &Doc) -> Vec<String> {
        let result = match doc.kind() {
            "Namespace" => through::<Namespace>(doc),
            "Secret" => through::<Secret>(doc),
            "Connector" => through::<Connector>(doc),
            "ClusterConnector" => through::<ClusterConnector>(doc),
            "Tenant" => through::<Tenant>(doc),
            "Connection" => through::<Connection>(doc),
            other => Err(format!("kind {other} is not one the examples use")),
        };
        let mut problems = Vec::new();
        match result {
            Err(err) => problems.push(err),
            Ok(back) => dropped(&doc.json, &back, "", &mut problems),
        }
        problems
    }

    fn through<T>(doc: &Doc) -> Result<Value, String>
    where
        T: kube::Resource<DynamicType = ()> + DeserializeOwned + Serialize,
    {
        let want = T::api_version(&());
        if doc.json["apiVersion"].as_str() != Some(want.as_ref()) {
            return Err(format!(
                "apiVersion is {}, but {} is served as {want}",
                doc.json["apiVersion"],
                doc.kind()
            ));
        }
        let typed: T = serde_yaml::from_value(doc.yaml.clone())
            .map_err(|err| format!("does not read as {}: {err}", doc.kind()))?;
        serde_json::to_value(&typed).map_err(|err| format!("does not write back: {err}"))
    }

    /// Every field of `original` that `back` lacks or changed, as a dotted path.
    fn dropped(original: &Value, back: &Value, path: &str, out: &mut Vec<String>) {
        match (original, back) {
            (Value::Object(have), Value::Object(kept)) => {
                for (key, value) in have {
                    let path = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    match kept.get(key) {
                        Some(kept) => dropped(value, kept, &path, out),
                        None => out.push(format!(
                            "`{path}` is not a field of this kind (misspelt? the API server \
                             would silently drop it)"
                        )),
                    }
                }
            }
            (Value::Array(have), Value::Array(kept)) if have.len() == kept.len() => {
                for (i, (value, kept)) in have.iter().zip(kept).enumerate() {
                    dropped(value, kept, &format!("{path}[{i}]"), out);
                }
            }
            _ if same(original, back) => {}
            _ => out.push(format!(
                "`{path}` reads back as {back} instead of {original}"
            )),
        }
    }

    /// Equal, or the same number, or the same duration written differently (`1h`, `3600s`).
    fn same(a: &Value, b: &Value) -> bool {
        if a == b {
            return true;
        }
        if let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) {
            return x == y;
        }
        let duration = |v: &Value| v.as_str()?.parse::<kube::core::Duration>().ok();
        matches!((duration(a), duration(b)), (Some(x), Some(y)) if x == y)
    }
}

/// (b) Validate plugboard kinds against the generated CRD's OpenAPI v3 schema, converted to
/// JSON Schema.
mod openapi {
    use serde_json::{Map, Value, json};

    use super::examples::Doc;

    /// The CRD's `openAPIV3Schema` for `kind`, as generated by the code.
    pub fn crd_schema(kind: &str) -> Value {
        let crd = plugboard::crd::all()
            .into_iter()
            .find(|crd| crd.spec.names.kind == kind)
            .unwrap_or_else(|| panic!("no generated CRD for kind {kind}"));
        let version = crd.spec.versions.first().expect("the CRD serves a version");
        let schema = version
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref());
        serde_json::to_value(schema.expect("the CRD has an openAPIV3Schema")).unwrap()
    }

    /// Problems with one plugboard document (unlabelled).
    pub fn check(doc: &Doc) -> Vec<String> {
        let schema = root(to_json_schema(&crd_schema(doc.kind())));
        let validator = jsonschema::draft202012::new(&schema).unwrap_or_else(|err| {
            panic!(
                "the {} CRD schema does not convert to JSON Schema: {err}",
                doc.kind()
            )
        });
        validator
            .iter_errors(&doc.json)
            .map(|err| {
                let at = err.instance_path().as_str();
                let at = if at.is_empty() { "/" } else { at };
                format!("CRD schema: {at}: {err}")
            })
            .collect()
    }

    /// The API server supplies `apiVersion`, `kind` and `metadata`; the CRD schema does not
    /// list them.
    fn root(mut schema: Value) -> Value {
        let properties = schema["properties"]
            .as_object_mut()
            .expect("root properties");
        properties.insert("apiVersion".into(), json!({ "type": "string" }));
        properties.insert("kind".into(), json!({ "type": "string" }));
        properties.insert("metadata".into(), json!({ "type": "object" }));
        schema
    }

    /// The OpenAPI keywords that mean the same in JSON Schema.
    const KEPT: &str = "type enum required pattern minimum maximum minLength maxLength \
                        minItems maxItems minProperties maxProperties uniqueItems";

    /// OpenAPI v3 (structural, as Kubernetes has it) to JSON Schema. An object with
    /// `properties` refuses others, as `kubectl apply`'s strict field validation does;
    /// one with `x-kubernetes-preserve-unknown-fields` (or no properties) takes anything.
    pub fn to_json_schema(node: &Value) -> Value {
        let Some(src) = node.as_object() else {
            return json!({});
        };
        let mut out = Map::new();
        for key in KEPT.split_whitespace() {
            if let Some(value) = src.get(key) {
                out.insert(key.into(), value.clone());
            }
        }
        let properties = src.get("properties").and_then(Value::as_object);
        if let Some(properties) = properties {
            let converted = properties
                .iter()
                .map(|(name, schema)| (name.clone(), to_json_schema(schema)))
                .collect();
            out.insert("properties".into(), Value::Object(converted));
        }
        if let Some(items) = src.get("items") {
            out.insert("items".into(), to_json_schema(items));
        }
        let preserve = src.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true));
        match src.get("additionalProperties") {
            Some(Value::Bool(allowed)) => {
                out.insert("additionalProperties".into(), json!(allowed));
            }
            Some(schema) => {
                out.insert("additionalProperties".into(), to_json_schema(schema));
            }
            None if properties.is_some() && !preserve => {
                out.insert("additionalProperties".into(), json!(false));
            }
            None => {}
        }
        if src.get("nullable") == Some(&json!(true)) {
            allow_null(&mut out);
        }
        Value::Object(out)
    }

    fn allow_null(schema: &mut Map<String, Value>) {
        if let Some(Value::String(ty)) = schema.get("type") {
            let types = json!([ty, "null"]);
            schema.insert("type".into(), types);
        }
        if let Some(Value::Array(values)) = schema.get_mut("enum") {
            values.push(Value::Null);
        }
    }
}

/// (c) The CRD's CEL rules (`x-kubernetes-validations`), evaluated client-side.
mod cel {
    use serde_json::Value;

    /// Every rule `object` breaks, as `path: message`; transition rules run when `old` is
    /// given, as on an update.
    pub fn violations(kind: &str, object: &Value, old: Option<&Value>) -> Vec<String> {
        let schema = super::openapi::crd_schema(kind);
        match kube_cel::Validator::new().validate(&schema, object, old) {
            Ok(()) => Vec::new(),
            Err(errors) => errors
                .iter()
                .map(|err| {
                    let at = if err.field_path.is_empty() {
                        "<root>"
                    } else {
                        &err.field_path
                    };
                    format!("CEL rule on {at}: {} (rule `{}`)", err.message, err.rule)
                })
                .collect(),
        }
    }
}

/// (d) The JSON Schemas a connector embeds, and what Connections give them.
mod schemas {
    use std::collections::BTreeSet;

    use plugboard::api::{Connection, ConnectorKind, ConnectorSpec};
    use serde_json::{Map, Value};

    use super::examples::{Doc, Examples, connector_spec};

    const DRAFT: &str = "https://json-schema.org/draft/2020-12/schema";

    /// Compiles a draft 2020-12 schema, or says why it does not.
    fn compile(schema: &Value) -> Result<jsonschema::Validator, String> {
        if let Some(declared) = schema.get("$schema")
            && declared != DRAFT
        {
            return Err(format!("declares $schema {declared}, not {DRAFT}"));
        }
        jsonschema::draft202012::new(schema).map_err(|err| err.to_string())
    }

    /// What `instance` breaks, as `pointer: message`, with values masked (input may hold
    /// a key).
    fn violations(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
        validator
            .iter_errors(instance)
            .map(|err| {
                let at = err.instance_path().as_str().to_owned();
                let at = if at.is_empty() { "/".to_owned() } else { at };
                format!("{at}: {}", err.masked())
            })
            .collect()
    }

    /// The schemas a Connector or ClusterConnector embeds compile, and the OAuth app
    /// Secrets it names satisfy its `customCredentialsSchema`.
    pub fn check_connector(ex: &Examples, doc: &Doc) -> Vec<String> {
        let spec = connector_spec(doc);
        let mut problems = Vec::new();
        for (field, schema) in [
            ("inputSchema", &spec.input_schema),
            ("parametersSchema", &spec.parameters_schema),
            ("customCredentialsSchema", &spec.custom_credentials_schema),
        ] {
            if let Some(schema) = schema
                && let Err(err) = compile(&schema.to_value())
            {
                problems.push(format!(
                    "spec.{field} does not compile as draft 2020-12: {err}"
                ));
            }
        }
        problems.extend(client_secrets(ex, doc, &spec));
        problems
    }

    fn client_secrets(ex: &Examples, doc: &Doc, spec: &ConnectorSpec) -> Vec<String> {
        let Some(schema) = &spec.custom_credentials_schema else {
            return Vec::new();
        };
        let Ok(validator) = compile(&schema.to_value()) else {
            return Vec::new();
        };
        let mut problems = Vec::new();
        for (at, method) in super::refs::auth_methods(spec) {
            let Some(secret) = &method.client_secret_ref else {
                continue;
            };
            let namespace = secret.namespace.as_deref().or(doc.namespace());
            if let Some(values) = ex.secret_values(namespace, &secret.name) {
                for v in violations(&validator, &values) {
                    problems.push(format!(
                        "{at}.clientSecretRef: Secret {} breaks \
                         spec.customCredentialsSchema at {v}",
                        secret.name
                    ));
                }
            }
        }
        problems
    }

    /// A Connection's merged parameters and inline input satisfy its connector's schemas.
    pub fn check_connection(ex: &Examples, doc: &Doc) -> Vec<String> {
        let connection: Connection = doc.typed();
        let r = &connection.spec.connector_ref;
        let found = match connection.connector_kind() {
            ConnectorKind::Connector => ex.find("Connector", doc.namespace(), &r.name),
            ConnectorKind::ClusterConnector => ex.find("ClusterConnector", None, &r.name),
        };
        // A dangling connectorRef is the reference check's to report.
        let Some(connector) = found else {
            return Vec::new();
        };
        let spec = connector_spec(connector);
        let mut problems = parameters(&connection, &spec, &connector.label());
        problems.extend(input(&connection, &spec, &connector.label()));
        problems
    }

    /// `parameters` < `connectorParameters`, key by key at the top level.
    fn parameters(connection: &Connection, spec: &ConnectorSpec, connector: &str) -> Vec<String> {
        let mut merged: Map<String, Value> = spec
            .parameters
            .as_ref()
            .map(|p| p.0.clone())
            .unwrap_or_default();
        if let Some(overrides) = &connection.spec.connector_parameters {
            merged.extend(overrides.0.clone());
        }
        let Some(schema) = &spec.parameters_schema else {
            return match &connection.spec.connector_parameters {
                Some(_) => vec![format!(
                    "spec.connectorParameters is set but {connector} has no parametersSchema \
                     to check it"
                )],
                None => Vec::new(),
            };
        };
        let Ok(validator) = compile(&schema.to_value()) else {
            return Vec::new(); // reported on the connector
        };
        violations(&validator, &Value::Object(merged))
            .into_iter()
            .map(|v| {
                format!(
                    "merged connector parameters break the parametersSchema of {connector} at {v}"
                )
            })
            .collect()
    }

    /// Inline `input` against `inputSchema`; keys that come from `inputFrom` are not
    /// required inline, but must be declared by the schema.
    fn input(connection: &Connection, spec: &ConnectorSpec, connector: &str) -> Vec<String> {
        let Some(schema) = &spec.input_schema else {
            return Vec::new();
        };
        let from: BTreeSet<&str> = connection
            .spec
            .input_from
            .iter()
            .map(|f| f.field.as_str())
            .collect();
        let mut schema = schema.to_value();
        let mut problems = Vec::new();
        if let Some(Value::Object(properties)) = schema.get("properties") {
            for field in from.iter().filter(|f| !properties.contains_key(**f)) {
                problems.push(format!(
                    "spec.inputFrom gives `{field}`, which the inputSchema of {connector} \
                     does not declare"
                ));
            }
        }
        if let Some(Value::Array(required)) = schema.get_mut("required") {
            required.retain(|key| !key.as_str().is_some_and(|k| from.contains(k)));
        }
        let Ok(validator) = compile(&schema) else {
            return problems; // reported on the connector
        };
        let inline = connection.spec.input.as_ref().map(|i| i.to_value());
        let inline = inline.unwrap_or_else(|| Value::Object(Map::new()));
        for v in violations(&validator, &inline) {
            problems.push(format!(
                "spec.input breaks the inputSchema of {connector} at {v}"
            ));
        }
        problems
    }
}

/// (e) References resolve within `examples/`, every object lives in a namespace the
/// examples create, and the files apply in an order that creates what is referenced first.
mod refs {
    use plugboard::api::{AuthMethod, Connection, ConnectorKind, ConnectorSpec, Tenant};

    use super::examples::{Doc, Examples, connector_spec};

    /// Each auth method of a connector with where it sits (`spec.auth`, `spec.options.x`).
    pub fn auth_methods(spec: &ConnectorSpec) -> Vec<(String, &AuthMethod)> {
        let mut methods: Vec<(String, &AuthMethod)> = Vec::new();
        if let Some(auth) = &spec.auth {
            methods.push(("spec.auth".into(), auth));
        }
        for (key, method) in spec.options.iter().flatten() {
            methods.push((format!("spec.options.{key}"), method));
        }
        methods
    }

    /// Problems with one document's references (unlabelled).
    pub fn check(ex: &Examples, doc: &Doc) -> Vec<String> {
        let mut problems = namespace(ex, doc);
        match doc.kind() {
            "Connection" => problems.extend(connection(ex, doc)),
            "Connector" | "ClusterConnector" => problems.extend(connector(ex, doc)),
            "Tenant" => problems.extend(tenant(ex, doc)),
            _ => {}
        }
        problems
    }

    fn namespace(ex: &Examples, doc: &Doc) -> Vec<String> {
        let cluster_scoped = matches!(doc.kind(), "Namespace" | "ClusterConnector");
        match (doc.namespace(), cluster_scoped) {
            (Some(ns), true) => vec![format!("is cluster-scoped but names namespace {ns}")],
            (None, false) => vec!["names no metadata.namespace".into()],
            (Some(ns), false) if ex.find("Namespace", None, ns).is_none() => {
                vec![format!("namespace {ns} is not created by any example")]
            }
            _ => Vec::new(),
        }
    }

    fn connection(ex: &Examples, doc: &Doc) -> Vec<String> {
        let connection: Connection = doc.typed();
        let ns = doc.namespace();
        let mut problems = Vec::new();
        let tenant = &connection.spec.tenant_ref.name;
        if ex.find("Tenant", ns, tenant).is_none() {
            problems.push(format!(
                "spec.tenantRef names Tenant {tenant}, which no example defines"
            ));
        }
        let r = &connection.spec.connector_ref;
        let (kind, found) = match connection.connector_kind() {
            ConnectorKind::Connector => ("Connector", ex.find("Connector", ns, &r.name)),
            ConnectorKind::ClusterConnector => (
                "ClusterConnector",
                ex.find("ClusterConnector", None, &r.name),
            ),
        };
        match found {
            None => problems.push(format!(
                "spec.connectorRef names {kind} {}, which no example defines",
                r.name
            )),
            Some(connector) => problems.extend(auth_option(&connection, connector)),
        }
        for (i, from) in connection.spec.input_from.iter().enumerate() {
            let key = &from.secret_key_ref;
            let at = format!("spec.inputFrom[{i}]");
            problems.extend(secret_key(ex, ns, &key.name, &key.key, &at));
        }
        problems
    }

    /// `authOptionKey` is set exactly when the connector has `options`, and names one.
    fn auth_option(connection: &Connection, connector: &Doc) -> Vec<String> {
        let spec = connector_spec(connector);
        let key = connection.spec.auth_option_key.as_deref();
        let label = connector.label();
        match (&spec.options, key) {
            (Some(options), Some(key)) if !options.contains_key(key) => vec![format!(
                "spec.authOptionKey {key} is not one of the options of {label}: {:?}",
                options.keys().collect::<Vec<_>>()
            )],
            (Some(_), None) => vec![format!(
                "{label} has several auth options; spec.authOptionKey must pick one"
            )],
            (None, Some(key)) => vec![format!(
                "spec.authOptionKey {key} is set but {label} has a single auth method"
            )],
            _ => Vec::new(),
        }
    }

    fn connector(ex: &Examples, doc: &Doc) -> Vec<String> {
        let spec = connector_spec(doc);
        let cluster = doc.kind() == "ClusterConnector";
        let mut problems = Vec::new();
        for (at, method) in auth_methods(&spec) {
            if let Some(secret) = &method.client_secret_ref {
                let at = format!("{at}.clientSecretRef");
                let ns = secret_namespace(doc, secret.namespace.as_deref(), cluster, &at);
                match ns {
                    Err(problem) => problems.push(problem),
                    Ok(ns) => {
                        for key in ["clientId", "clientSecret"] {
                            problems.extend(secret_key(ex, ns, &secret.name, key, &at));
                        }
                    }
                }
            }
            if let Some(key) = &method.signing_key_ref {
                let at = format!("{at}.signingKeyRef");
                match secret_namespace(doc, key.namespace.as_deref(), cluster, &at) {
                    Err(problem) => problems.push(problem),
                    Ok(ns) => problems.extend(secret_key(ex, ns, &key.name, &key.key, &at)),
                }
            }
        }
        problems
    }

    /// A ClusterConnector has no namespace, so its Secret refs must name one; a Connector
    /// reads its own namespace and may not name another.
    fn secret_namespace<'a>(
        doc: &'a Doc,
        named: Option<&'a str>,
        cluster: bool,
        at: &str,
    ) -> Result<Option<&'a str>, String> {
        match (cluster, named) {
            (true, None) => Err(format!(
                "{at} must name a namespace: a ClusterConnector has none"
            )),
            (false, Some(ns)) => Err(format!(
                "{at} names namespace {ns}; a namespaced Connector reads Secrets from its own"
            )),
            (true, Some(ns)) => Ok(Some(ns)),
            (false, None) => Ok(doc.namespace()),
        }
    }

    fn tenant(ex: &Examples, doc: &Doc) -> Vec<String> {
        let tenant: Tenant = doc.typed();
        let mut problems = Vec::new();
        for (i, from) in tenant.spec.fields_from.iter().enumerate() {
            let key = &from.secret_key_ref;
            let at = format!("spec.fieldsFrom[{i}]");
            problems.extend(secret_key(ex, doc.namespace(), &key.name, &key.key, &at));
        }
        problems
    }

    /// The Secret exists in the examples and holds `key`.
    fn secret_key(ex: &Examples, ns: Option<&str>, name: &str, key: &str, at: &str) -> Vec<String> {
        let where_ = ns.unwrap_or("<no namespace>");
        match ex.secret_values(ns, name) {
            None => vec![format!(
                "{at} names Secret {where_}/{name}, which no example defines"
            )],
            Some(values) if values.get(key).is_none() => {
                vec![format!("{at}: Secret {where_}/{name} has no key {key}")]
            }
            Some(_) => Vec::new(),
        }
    }

    /// `kubectl apply -f examples/` goes file by file in name order; referenced objects
    /// must come first: Namespace, Secrets, connectors, tenants, connections.
    pub fn apply_order(ex: &Examples) -> Vec<String> {
        let rank = |doc: &Doc| match doc.kind() {
            "Namespace" => 0,
            "Secret" => 1,
            "Connector" | "ClusterConnector" => 2,
            "Tenant" => 3,
            _ => 4,
        };
        ex.docs
            .windows(2)
            .filter(|pair| rank(&pair[1]) < rank(&pair[0]))
            .map(|pair| {
                format!(
                    "{} is applied after {}; rename the file so it sorts earlier",
                    pair[1].label(),
                    pair[0].label()
                )
            })
            .collect()
    }
}

/// Templates (minijinja, undefined variables are errors, as plugboard renders them).
mod templates {
    use minijinja::{Environment, UndefinedBehavior};
    use plugboard::api::{Connection, ConnectorSpec, HttpRequest};
    use serde_json::{Map, Value, json};

    use super::examples::{Doc, Examples, connector_spec};

    fn environment() -> Environment<'static> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env
    }

    /// Every template a connector holds, with where it sits.
    fn all(spec: &ConnectorSpec) -> Vec<(String, String)> {
        let mut found = Vec::new();
        for (at, method) in super::refs::auth_methods(spec) {
            for (key, source) in method.credentials.iter().flatten() {
                found.push((format!("{at}.credentials.{key}"), source.clone()));
            }
        }
        if let Some(client) = &spec.api_client {
            found.push(("spec.apiClient.baseUri".into(), client.base_uri.clone()));
            for (key, source) in &client.headers {
                found.push((format!("spec.apiClient.headers.{key}"), source.clone()));
            }
            for (key, source) in &client.query {
                found.push((format!("spec.apiClient.query.{key}"), source.clone()));
            }
        }
        let requests = [
            ("spec.test", spec.test.as_ref().map(|t| &t.request)),
            (
                "spec.disconnect",
                spec.disconnect.as_ref().map(|d| &d.request),
            ),
        ];
        for (at, request) in requests {
            found.extend(request.into_iter().flat_map(|r| request_templates(at, r)));
        }
        found
    }

    fn request_templates(at: &str, request: &HttpRequest) -> Vec<(String, String)> {
        let mut found = vec![(format!("{at}.path"), request.path.clone())];
        for (key, source) in &request.headers {
            found.push((format!("{at}.headers.{key}"), source.clone()));
        }
        if let Some(body) = &request.body {
            found.push((format!("{at}.body"), body.clone()));
        }
        found
    }

    /// Problems with one connector's templates (unlabelled).
    pub fn check(doc: &Doc) -> Vec<String> {
        let env = environment();
        all(&connector_spec(doc))
            .into_iter()
            .filter_map(|(at, source)| {
                let err = env.template_from_str(&source).err()?;
                Some(format!("{at} is not a valid template: {err}"))
            })
            .collect()
    }

    /// A Connection's `apiClient.baseUri` rendered with its merged parameters (or with
    /// `overrides` in place of its `connectorParameters`), and the connector's allowedHosts.
    pub fn base_uri(ex: &Examples, doc: &Doc, overrides: Option<Value>) -> (String, Vec<String>) {
        let connection: Connection = doc.typed();
        let name = &connection.spec.connector_ref.name;
        let connector = ex.find("Connector", doc.namespace(), name);
        let spec = connector_spec(connector.expect("the connection's connector exists"));
        let mut parameters: Map<String, Value> = spec
            .parameters
            .as_ref()
            .map(|p| p.0.clone())
            .unwrap_or_default();
        let given = connection.spec.connector_parameters.map(|p| p.to_value());
        if let Some(Value::Object(given)) = overrides.or(given) {
            parameters.extend(given);
        }
        let client = spec.api_client.expect("the connector has an apiClient");
        let context = json!({ "parameters": parameters });
        let uri = environment()
            .render_str(&client.base_uri, minijinja::value::Serde(&context))
            .unwrap_or_else(|err| panic!("{}: baseUri does not render: {err}", doc.label()));
        (uri, client.allowed_hosts)
    }
}
