//! Templates: credential maps, API client fields and test requests are minijinja templates
//! rendered over a context of `input`, `parameters`, `tenant`, `credentials` and
//! `connection`.
//!
//! Undefined variables are errors, not empty strings: an API key header that silently renders
//! as `Bearer ` would reach the provider and fail there, far from the typo that caused it.

use minijinja::{Environment, UndefinedBehavior, Value};

/// Renders templates with strict undefined handling.
pub struct Templates {
    env: Environment<'static>,
}

/// Why a template did not render. The message names the variable or the syntax problem, and
/// never contains a value from the context (values may be secrets).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    pub message: String,
}

impl Default for Templates {
    fn default() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Rendered strings go into HTTP headers, URLs and Secrets, never into HTML.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        Self { env }
    }
}

impl Templates {
    /// Checks that a template parses, without rendering it.
    pub fn check(&self, source: &str) -> Result<(), TemplateError> {
        self.env
            .template_from_str(source)
            .map(drop)
            .map_err(|err| describe(&err))
    }

    /// The context variables a template reads (`input`, `credentials`, ...), leaving out
    /// the environment's own functions (`range`, `dict`, ...): what a check compares with
    /// the variables the context will have.
    pub fn variables(&self, source: &str) -> Result<Vec<String>, TemplateError> {
        let template = self
            .env
            .template_from_str(source)
            .map_err(|err| describe(&err))?;
        let globals: Vec<&str> = self.env.globals().map(|(name, _)| name).collect();
        let mut names: Vec<String> = template
            .undeclared_variables(false)
            .into_iter()
            .filter(|name| !globals.contains(&name.as_str()))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Renders one template over `context`.
    pub fn render(&self, source: &str, context: &Value) -> Result<String, TemplateError> {
        // Most strings in a connector are plain literals; skip the parser for them.
        if !source.contains("{{") && !source.contains("{%") {
            return Ok(source.to_owned());
        }
        let template = self
            .env
            .template_from_str(source)
            .map_err(|err| describe(&err))?;
        template.render(context).map_err(|err| {
            if err.kind() == minijinja::ErrorKind::UndefinedError {
                let missing = first_undefined(&template, context);
                TemplateError {
                    message: match missing {
                        Some(name) => format!("undefined variable `{name}`"),
                        None => "uses an undefined variable".to_owned(),
                    },
                }
            } else {
                describe(&err)
            }
        })
    }
}

/// The template context `context` with `credentials` added (their values exposed), for
/// the API client and the requests that use them. Takes the map rather than naming the
/// store's `Credentials` alias, so templates depend on no store.
pub fn with_credentials(
    mut context: serde_json::Value,
    credentials: &std::collections::BTreeMap<String, secrecy::SecretString>,
) -> serde_json::Value {
    use secrecy::ExposeSecret;
    let exposed: serde_json::Map<String, serde_json::Value> = credentials
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                serde_json::Value::String(v.expose_secret().to_owned()),
            )
        })
        .collect();
    context["credentials"] = serde_json::Value::Object(exposed);
    context
}

/// A JSON value as a template value.
pub fn to_value(json: &serde_json::Value) -> Value {
    Value::from(minijinja::value::Serde(json))
}

/// The first variable path the template reads that the context lacks, for a message that
/// names it (`input.apiKey`) rather than only saying something was undefined.
fn first_undefined(template: &minijinja::Template<'_, '_>, context: &Value) -> Option<String> {
    let mut names: Vec<String> = template.undeclared_variables(true).into_iter().collect();
    names.sort();
    names.into_iter().find(|path| {
        let mut value = context.clone();
        for segment in path.split('.') {
            match value.get_attr(segment) {
                Ok(next) if !next.is_undefined() => value = next,
                _ => return true,
            }
        }
        false
    })
}

/// A minijinja error as one line: its kind and detail, without the template source (which
/// may hold literal secrets someone pasted in) or any rendered value.
fn describe(err: &minijinja::Error) -> TemplateError {
    let detail = err.detail().map(|d| format!(": {d}")).unwrap_or_default();
    let line = err
        .line()
        .map(|l| format!(" (line {l})"))
        .unwrap_or_default();
    TemplateError {
        message: format!("{}{detail}{line}", err.kind()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Value {
        to_value(&serde_json::json!({
            "input": {"apiKey": "sk_live_secret", "subdomain": "acme"},
            "parameters": {"environment": "sandbox", "scopes": ["contacts", "deals"]},
            "tenant": {"id": "t-1", "name": "Acme", "fields": {"plan": "enterprise"}},
        }))
    }

    #[test]
    fn renders_values_from_every_part_of_the_context() {
        let t = Templates::default();
        let rendered = t
            .render(
                "https://{{ input.subdomain }}.{{ parameters.environment }}.example.com/{{ tenant.fields.plan }}",
                &ctx(),
            )
            .unwrap();
        assert_eq!(rendered, "https://acme.sandbox.example.com/enterprise");
        assert_eq!(
            t.render("{{ parameters.scopes | join(',') }}", &ctx())
                .unwrap(),
            "contacts,deals"
        );
    }

    #[test]
    fn an_undefined_variable_is_an_error_naming_it() {
        let err = Templates::default()
            .render("Bearer {{ input.apiToken }}", &ctx())
            .unwrap_err();
        assert_eq!(err.message, "undefined variable `input.apiToken`");
    }

    #[test]
    fn an_undefined_top_level_name_is_named_too() {
        let err = Templates::default()
            .render("{{ secrets.key }}", &ctx())
            .unwrap_err();
        assert_eq!(err.message, "undefined variable `secrets.key`");
    }

    #[test]
    fn a_syntax_error_says_where_without_echoing_the_source() {
        let err = Templates::default()
            .check("sk_live_pasted {{ input.apiKey ")
            .unwrap_err();
        assert!(err.message.contains("syntax error"), "{}", err.message);
        assert!(err.message.contains("line 1"), "{}", err.message);
        assert!(!err.message.contains("sk_live_pasted"), "{}", err.message);
    }

    #[test]
    fn nothing_is_html_escaped() {
        let c = to_value(&serde_json::json!({"input": {"q": "a&b<c>"}}));
        assert_eq!(
            Templates::default().render("{{ input.q }}", &c).unwrap(),
            "a&b<c>"
        );
    }
}
