//! What is wrong with a connector's spec, found without a cluster or a provider: schemas that
//! do not compile, templates that do not parse or read a variable their context will not
//! have, requests without an API client, host patterns that are not globs, and endpoints the
//! host guard would block. The Connector controller reports these on the connector;
//! `plugboard validate` reports them on a pull request, with the same words.

use std::fmt;

use crate::api::{AuthMethod, ConnectorSpec, CredentialsRefresh, HttpRequest};
use crate::provider::hosts::{self, AllowedHosts};
use crate::schemas;
use crate::templates::Templates;

/// One problem, at one field (`spec.auth.tokenUri`, `spec.options.key.credentials.apiKey`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

fn problem(field: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        field: field.into(),
        message: message.into(),
    }
}

/// What a request template (API client, test, disconnect, refresh) is rendered over.
const REQUEST: &[&str] = &["input", "parameters", "tenant", "connection", "credentials"];
/// What a static method's credential templates are rendered over: there are no credentials
/// yet, they are what it makes.
const OBTAIN: &[&str] = &["input", "parameters", "tenant", "connection"];
/// What a mapping from a provider's answer is rendered over.
const RESPONSE: &[&str] = &["response"];

/// Each auth method of a connector with where it sits (`spec.auth`, `spec.options.<key>`).
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

/// Every problem with a connector's spec, each naming its field.
pub fn problems(spec: &ConnectorSpec, templates: &Templates) -> Vec<Problem> {
    let mut found = Vec::new();
    for (field, schema) in [
        ("spec.inputSchema", &spec.input_schema),
        ("spec.parametersSchema", &spec.parameters_schema),
        (
            "spec.customCredentialsSchema",
            &spec.custom_credentials_schema,
        ),
    ] {
        if let Some(schema) = schema
            && let Err(err) = schemas::compile(&schema.to_value())
        {
            found.push(problem(field, format!("does not compile: {err}")));
        }
    }
    for (at, method) in auth_methods(spec) {
        if let Some(schema) = &method.input_schema
            && let Err(err) = schemas::compile(&schema.to_value())
        {
            found.push(problem(
                format!("{at}.inputSchema"),
                format!("does not compile: {err}"),
            ));
        }
    }
    for (field, source, context) in every_template(spec) {
        found.extend(template(templates, &field, &source, context));
    }
    for (at, present) in [
        ("spec.test", spec.test.is_some()),
        ("spec.disconnect", spec.disconnect.is_some()),
    ] {
        if present && spec.api_client.is_none() {
            found.push(problem(at, "needs spec.apiClient to send its request with"));
        }
    }
    if let Some(client) = &spec.api_client
        && let Err(err) = AllowedHosts::new(&client.base_uri, &client.allowed_hosts)
    {
        found.push(problem("spec.apiClient.allowedHosts", err.reason));
    }
    found
}

/// A template that does not parse, or reads variables its context will not have.
fn template(templates: &Templates, field: &str, source: &str, context: &[&str]) -> Vec<Problem> {
    let names = match templates.variables(source) {
        Ok(names) => names,
        Err(err) => return vec![problem(field, err.message)],
    };
    names
        .into_iter()
        .filter(|name| !context.contains(&name.as_str()))
        .map(|name| {
            problem(
                field,
                format!(
                    "reads `{name}`, which this template does not have; it can read {}",
                    context.join(", ")
                ),
            )
        })
        .collect()
}

/// Every template of a connector, with its field and the variables it is rendered over.
fn every_template(spec: &ConnectorSpec) -> Vec<(String, String, &'static [&'static str])> {
    let mut found = Vec::new();
    let mut add = |field: String, source: &str, context| {
        found.push((field, source.to_owned(), context));
    };
    for (at, method) in auth_methods(spec) {
        for (key, source) in method.credentials.iter().flatten() {
            add(format!("{at}.credentials.{key}"), source, OBTAIN);
        }
        for (name, map) in [
            (
                "credentialsFromTokenResponse",
                &method.credentials_from_token_response,
            ),
            (
                "credentialsFromRefreshResponse",
                &method.credentials_from_refresh_response,
            ),
        ] {
            for (key, source) in map.iter().flatten() {
                add(format!("{at}.{name}.{key}"), source, RESPONSE);
            }
        }
        if let Some(refresh) = &method.refresh {
            for (field, source) in refresh_templates(&format!("{at}.refresh"), refresh) {
                add(field, &source, REQUEST);
            }
        }
    }
    if let Some(client) = &spec.api_client {
        add("spec.apiClient.baseUri".into(), &client.base_uri, REQUEST);
        for (name, map) in [("headers", &client.headers), ("query", &client.query)] {
            for (key, source) in map {
                add(format!("spec.apiClient.{name}.{key}"), source, REQUEST);
            }
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
        for (field, source) in request
            .map(|r| request_templates(at, r))
            .unwrap_or_default()
        {
            add(field, &source, REQUEST);
        }
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

fn refresh_templates(at: &str, refresh: &CredentialsRefresh) -> Vec<(String, String)> {
    let mut found = vec![(format!("{at}.uri"), refresh.uri.clone())];
    for (key, source) in &refresh.headers {
        found.push((format!("{at}.headers.{key}"), source.clone()));
    }
    for (key, source) in refresh.form.iter().flatten() {
        found.push((format!("{at}.form.{key}"), source.clone()));
    }
    if let Some(json) = &refresh.json {
        strings_in(&format!("{at}.json"), &json.to_value(), &mut found);
    }
    found
}

/// The strings of a JSON body, each a template, with its dotted path.
fn strings_in(at: &str, value: &serde_json::Value, found: &mut Vec<(String, String)>) {
    match value {
        serde_json::Value::String(s) => found.push((at.to_owned(), s.clone())),
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                strings_in(&format!("{at}[{i}]"), item, found);
            }
        }
        serde_json::Value::Object(map) => {
            for (key, item) in map {
                strings_in(&format!("{at}.{key}"), item, found);
            }
        }
        _ => {}
    }
}

/// The provider endpoints a connector names literally (no template in them) that the host
/// guard would block: not http(s), or an internal address while private networks are not
/// allowed. `localhost` counts as internal here: the operator's resolver refuses it when
/// it connects, and a check that waits for that finds it only in production.
pub fn blocked_endpoints(spec: &ConnectorSpec, allow_private: bool) -> Vec<Problem> {
    let mut uris: Vec<(String, &str)> = Vec::new();
    for (at, method) in auth_methods(spec) {
        for (name, uri) in [
            ("authorizeUri", &method.authorize_uri),
            ("tokenUri", &method.token_uri),
            ("revokeUri", &method.revoke_uri),
            ("requestTokenUri", &method.request_token_uri),
            ("accessTokenUri", &method.access_token_uri),
        ] {
            if let Some(uri) = uri {
                uris.push((format!("{at}.{name}"), uri));
            }
        }
    }
    if let Some(client) = &spec.api_client {
        uris.push(("spec.apiClient.baseUri".into(), &client.base_uri));
    }
    uris.into_iter()
        .filter(|(_, uri)| !uri.contains("{{") && !uri.contains("{%"))
        .filter_map(|(field, uri)| {
            endpoint(uri, allow_private)
                .err()
                .map(|why| problem(field, why))
        })
        .collect()
}

/// The host guard's verdict on one literal endpoint, with the fix in the message.
pub fn endpoint(uri: &str, allow_private: bool) -> Result<(), String> {
    hosts::check_endpoint(uri, allow_private)
        .map_err(|err| format!("{}; use the provider's public https endpoint", err.reason))?;
    let host = url::Url::parse(uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase));
    match host {
        Some(h) if !allow_private && (h == "localhost" || h.ends_with(".localhost")) => {
            Err(format!(
                "host {h:?} is an internal address; use the provider's public https endpoint, \
             or pass --allow-private-networks for a provider on your own network"
            ))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> ConnectorSpec {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn a_sound_connector_has_no_problems() {
        let s = spec(
            "auth: {type: static, credentials: {apiKey: '{{ input.apiKey }}'}}\n\
             inputSchema: {type: object, required: [apiKey]}\n\
             apiClient: {baseUri: 'https://api.stripe.com', headers: {Authorization: 'Bearer {{ credentials.apiKey }}'}}\n\
             test: {path: /v1/account}\n",
        );
        assert_eq!(problems(&s, &Templates::default()), Vec::<Problem>::new());
        assert_eq!(blocked_endpoints(&s, false), Vec::<Problem>::new());
    }

    #[test]
    fn each_problem_names_its_field() {
        let s = spec(
            "options: {key: {type: static, credentials: {apiKey: '{{ input.apiKey '}}}\n\
             inputSchema: {type: strnig}\n\
             test: {path: /v1/account}\n",
        );
        let found = problems(&s, &Templates::default());
        let fields: Vec<&str> = found.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.inputSchema",
                "spec.options.key.credentials.apiKey",
                "spec.test"
            ],
            "{found:?}"
        );
        assert!(
            found[0].message.starts_with("does not compile"),
            "{found:?}"
        );
        assert!(found[1].message.contains("syntax error"), "{found:?}");
        assert!(
            found[2].message.contains("needs spec.apiClient"),
            "{found:?}"
        );
    }

    #[test]
    fn a_template_that_reads_a_variable_its_context_lacks_is_named_with_what_it_can_read() {
        let s = spec(
            "auth: {type: static, credentials: {apiKey: '{{ inputs.apiKey }}', b: '{{ credentials.x }}'}}\n\
             apiClient: {baseUri: 'https://api.example.com/{{ range(2) | length }}', headers: {X: '{{ response.id }}'}}\n",
        );
        let found = problems(&s, &Templates::default());
        let text: Vec<String> = found.iter().map(ToString::to_string).collect();
        assert_eq!(found.len(), 3, "{text:#?}");
        assert!(text[0].starts_with("spec.auth.credentials.apiKey: reads `inputs`"));
        assert!(text[1].starts_with("spec.auth.credentials.b: reads `credentials`"));
        assert!(text[2].contains("spec.apiClient.headers.X: reads `response`"));
        assert!(text[2].ends_with("input, parameters, tenant, connection, credentials"));
    }

    #[test]
    fn literal_endpoints_on_internal_hosts_are_blocked_unless_private_networks_are_allowed() {
        let s = spec(
            "auth: {type: oauth2, authorizeUri: 'http://localhost:8080/auth', tokenUri: 'http://169.254.169.254/t', revokeUri: 'https://{{ parameters.host }}/r'}\n\
             apiClient: {baseUri: 'ftp://files.example.com'}\n",
        );
        let fields =
            |found: Vec<Problem>| -> Vec<String> { found.into_iter().map(|p| p.field).collect() };
        assert_eq!(
            fields(blocked_endpoints(&s, false)),
            [
                "spec.auth.authorizeUri",
                "spec.auth.tokenUri",
                "spec.apiClient.baseUri"
            ]
        );
        assert_eq!(
            fields(blocked_endpoints(&s, true)),
            ["spec.apiClient.baseUri"]
        );
    }
}
