//! A connector-defined credential refresh (`auth.refresh`, the integration-engine model's
//! `refreshCredentials`): an HTTP request, templated over the credentials a method obtains,
//! whose answer `credentialsFromRefreshResponse` maps to the credentials used (an API key
//! exchanged for a one-hour session token, say).
//!
//! It wraps the method of the auth type: that method obtains the base credentials (renders
//! the input, or a person's consent stored them), this one exchanges them, and the plan
//! schedules the exchange like any refresh, from the expiry the answer gives.

use std::collections::BTreeMap;

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

use super::method::{Fresh, Held, Inputs, Method, Needs, Reread};
use crate::api::{AuthMethod, CredentialsRefresh};
use crate::error::Error;
use crate::provider::Tools;
use crate::provider::api_client::Signing;
use crate::provider::signed::{self, RequestSigner, SendError};
use crate::store::Credentials;
use crate::templates;

/// The method of an auth type, with its credentials exchanged by the connector's `refresh`.
pub struct Refreshing(pub &'static dyn Method);

/// The mapped keys that say when the exchanged credentials expire; stored as `expires_at`
/// (RFC 3339), like an OAuth token's.
const EXPIRES_IN: &str = "expires_in";
const EXPIRES_AT: &str = "expires_at";

/// The keys the refresh answer maps to, beside its expiry.
fn mapped(auth: &AuthMethod) -> impl Iterator<Item = &String> {
    auth.credentials_from_refresh_response
        .iter()
        .flat_map(BTreeMap::keys)
        .filter(|k| *k != EXPIRES_IN && *k != EXPIRES_AT)
}

impl Refreshing {
    /// The base credentials as the wrapped method renders them now, for a method that keeps
    /// nothing (static): whether the stored ones came from the same input.
    fn renders_as_stored(inputs: &Inputs<'_>) -> Result<bool, Error> {
        let rendered = super::static_input::render(inputs)?;
        Ok(rendered.iter().all(|(key, value)| {
            inputs.stored.get(key).map(ExposeSecret::expose_secret) == Some(value.expose_secret())
        }))
    }

    /// The credentials to exchange: rendered or obtained by the wrapped method, or stored by
    /// a consent.
    async fn base(
        &self,
        inputs: &Inputs<'_>,
        tools: Tools<'_>,
        reread: &dyn Reread,
        now: Timestamp,
    ) -> Result<Credentials, Error> {
        match self.0.inspect(inputs)? {
            Some(held) if held.usable => Ok(inputs.stored.clone()),
            Some(held) if held.needs_consent => Err(Error::AuthorizationRequired(
                "no credentials yet: a person must authorize access at the provider".to_owned(),
            )),
            _ => Ok(self.0.obtain(inputs, tools, reread, now).await?.credentials),
        }
    }
}

impl Method for Refreshing {
    fn needs(&self) -> Needs {
        self.0.needs()
    }

    fn check(&self, inputs: &Inputs<'_>, allow_private: bool) -> Result<(), Error> {
        self.0.check(inputs, allow_private)
    }

    fn inspect(&self, inputs: &Inputs<'_>) -> Result<Option<Held>, Error> {
        let stored = inputs.stored;
        let exchanged = mapped(inputs.auth).all(|k| stored.contains_key(k));
        let (base_usable, current, needs_consent) = match self.0.inspect(inputs)? {
            None => (true, Self::renders_as_stored(inputs)?, false),
            Some(held) => (held.usable, held.current, held.needs_consent),
        };
        Ok(Some(Held {
            keep: stored.clone(),
            usable: base_usable && exchanged,
            renewable: true,
            expires_at: super::oauth2_app::expires_at(stored),
            current,
            needs_consent: needs_consent && !base_usable,
        }))
    }

    fn obtain<'a>(
        &'a self,
        inputs: &'a Inputs<'a>,
        tools: Tools<'a>,
        reread: &'a dyn Reread,
        now: Timestamp,
    ) -> BoxFuture<'a, Result<Fresh, Error>> {
        async move {
            let base = self.base(inputs, tools, reread, now).await?;
            exchange(self.0, inputs, tools, base, now).await
        }
        .boxed()
    }

    fn renews_on_refusal(&self) -> bool {
        true
    }

    fn revokes(&self, auth: &AuthMethod) -> bool {
        self.0.revokes(auth)
    }

    fn revoke<'a>(
        &'a self,
        inputs: &'a Inputs<'a>,
        tools: Tools<'a>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        self.0.revoke(inputs, tools)
    }

    fn signing(&self, auth: &AuthMethod) -> Option<Signing> {
        self.0.signing(auth)
    }

    fn signer<'a>(
        &self,
        inputs: &Inputs<'a>,
    ) -> Result<Option<Box<dyn RequestSigner + 'a>>, Error> {
        self.0.signer(inputs)
    }
}

/// The refresh request over `base`, and its answer mapped: `base` with the mapped keys and
/// their expiry. One provider request.
async fn exchange(
    inner: &dyn Method,
    inputs: &Inputs<'_>,
    tools: Tools<'_>,
    base: Credentials,
    now: Timestamp,
) -> Result<Fresh, Error> {
    let spec = inputs.auth.refresh.as_ref().ok_or_else(|| {
        Error::InvalidConnector(format!("{} auth has no refresh request", inputs.label))
    })?;
    let field = format!("{} auth.refresh", inputs.label);
    let request = build(spec, inputs, tools, &base, &field)?;
    let sent = {
        let mut signing = Inputs { ..*inputs };
        signing.stored = &base;
        // A method that signs its requests (oauth1) signs this one with the base credentials.
        let signer = inner.signer(&signing)?;
        let _permit = crate::provider::limit::global()
            .acquire(request.url())
            .await;
        let started = std::time::Instant::now();
        let sent = signed::execute(tools.http, signer.as_deref(), request).await;
        tools.metrics.provider_call("refresh", started.elapsed());
        sent
    };
    let answer = sent.map_err(|err| match err {
        SendError::Transport(err) => Error::unavailable(format!(
            "the refresh request {}",
            crate::provider::http::describe_transport_error(&err)
        )),
        SendError::Signing(err) => err,
    })?;
    let outcome = judge(spec, &answer, &field);
    tools.metrics.refreshed(match &outcome {
        Ok(_) => "success",
        Err(err) if err.is_transient() => "unavailable",
        Err(_) => "rejected",
    });
    let response = outcome?;
    let mut session = Credentials::new();
    super::response_mapping::apply(
        &mut session,
        &response,
        inputs.auth.credentials_from_refresh_response.as_ref(),
        tools,
        &format!("{} auth.credentialsFromRefreshResponse", inputs.label),
    )?;
    let expires_at = expiry(&mut session, now, inputs.label)?;
    let mut credentials = base;
    credentials.remove(EXPIRES_AT);
    credentials.extend(session);
    if let Some(at) = expires_at {
        credentials.insert(EXPIRES_AT.to_owned(), SecretString::from(at.to_string()));
    }
    Ok(Fresh {
        credentials,
        expires_at,
        issued: true,
        unusable: None,
    })
}

/// The request as the connector describes it, rendered over `base`, its URL host-guarded.
fn build(
    spec: &CredentialsRefresh,
    inputs: &Inputs<'_>,
    tools: Tools<'_>,
    base: &Credentials,
    field: &str,
) -> Result<reqwest::Request, Error> {
    let value = templates::to_value(&templates::with_credentials(inputs.context.clone(), base));
    let render = |name: &str, source: &str| {
        tools
            .templates
            .render(source, &value)
            .map_err(|source| Error::InvalidTemplate {
                field: format!("{field}.{name}"),
                source,
            })
    };
    let uri = render("uri", &spec.uri)?;
    crate::provider::hosts::check_endpoint(&uri, tools.allow_private_networks).map_err(
        |source| Error::BlockedHost {
            field: format!("{field}.uri"),
            source,
        },
    )?;
    let url = url::Url::parse(&uri).map_err(|err| {
        Error::InvalidConnector(format!("{field}.uri renders to an invalid URL: {err}"))
    })?;
    let method = spec
        .method
        .as_deref()
        .unwrap_or("POST")
        .to_ascii_uppercase();
    let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|_| {
        Error::InvalidConnector(format!("{field}.method {method:?} is not an HTTP method"))
    })?;
    let mut builder = tools.http.request(method, url);
    for (name, source) in &spec.headers {
        builder = builder.header(name, render(&format!("headers.{name}"), source)?);
    }
    if let Some(form) = &spec.form {
        let fields = form
            .iter()
            .map(|(k, v)| Ok((k.clone(), render(&format!("form.{k}"), v)?)))
            .collect::<Result<Vec<_>, Error>>()?;
        builder = builder.form(&fields);
    }
    if let Some(json) = &spec.json {
        let body = render_json(
            &Value::Object(json.0.clone()),
            &|path, s| render(&format!("json.{path}"), s),
            "",
        )?;
        builder = builder.json(&body);
    }
    builder.build().map_err(|err| {
        Error::InvalidConnector(format!("{field} could not be built into a request: {err}"))
    })
}

/// `value` with every string rendered as a template; `path` names where, for errors.
fn render_json(
    value: &Value,
    render: &dyn Fn(&str, &str) -> Result<String, Error>,
    path: &str,
) -> Result<Value, Error> {
    let at = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    Ok(match value {
        Value::String(s) => Value::String(render(path, s)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| render_json(v, render, &at(&i.to_string())))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), render_json(v, render, &at(k))?)))
                .collect::<Result<_, Error>>()?,
        ),
        other => other.clone(),
    })
}

/// What the answer means: a JSON object or a form to map, or why not. The body is never
/// quoted: it is where the new credentials are.
fn judge(
    spec: &CredentialsRefresh,
    answer: &signed::Answer,
    field: &str,
) -> Result<Map<String, Value>, Error> {
    let status = answer.status;
    let expected = if spec.expect_status.is_empty() {
        (200..300).contains(&status)
    } else {
        spec.expect_status.contains(&status)
    };
    if !expected {
        let message = format!("{field} was answered HTTP {status}");
        return Err(match status {
            429 | 500.. => Error::ProviderUnavailable {
                message,
                retry_after: answer.retry_after,
            },
            401 | 403 => Error::CredentialsRefused(format!(
                "{message}: the provider refused the credentials it exchanges; correct the input (or authorize again) and the exchange is tried again"
            )),
            _ => Error::InvalidConnector(format!(
                "{message}: check the request the connector describes"
            )),
        });
    }
    let body = answer.body.trim();
    if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(body) {
        return Ok(map);
    }
    let looks_like_form =
        !body.is_empty() && !body.starts_with(['{', '[', '<']) && body.contains('=');
    if looks_like_form {
        return Ok(url::form_urlencoded::parse(body.as_bytes())
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect());
    }
    Err(Error::unavailable(format!(
        "{field} was answered HTTP {status} with {} bytes that are neither a JSON object nor a form; the credentials stored before stay in use",
        body.len()
    )))
}

/// Takes the mapped `expires_in` / `expires_at` out of `session` and says when the
/// credentials expire: `expires_in` in seconds (a number, or a string of one, as some
/// providers send it), `expires_at` in RFC 3339 or seconds since the epoch.
fn expiry(
    session: &mut Credentials,
    now: Timestamp,
    label: &str,
) -> Result<Option<Timestamp>, Error> {
    let bad = |key: &str, what: &str| {
        Error::InvalidConnector(format!(
            "{label} auth.credentialsFromRefreshResponse.{key} did not render {what}; map it to a value of the answer that is one"
        ))
    };
    let expires_in = session.remove(EXPIRES_IN);
    let expires_at = session.remove(EXPIRES_AT);
    if let Some(seconds) = expires_in {
        let text = seconds.expose_secret().trim().to_owned();
        if text.is_empty() {
            return Ok(None);
        }
        let seconds: f64 = text
            .parse()
            .ok()
            .filter(|s: &f64| s.is_finite() && *s >= 0.0)
            .ok_or_else(|| bad(EXPIRES_IN, "a number of seconds"))?;
        let after = SignedDuration::try_from_secs_f64(seconds)
            .map_err(|_| bad(EXPIRES_IN, "a number of seconds"))?;
        return now
            .checked_add(after)
            .map(Some)
            .map_err(|_| bad(EXPIRES_IN, "a number of seconds"));
    }
    let Some(at) = expires_at else {
        return Ok(None);
    };
    let text = at.expose_secret().trim();
    if text.is_empty() {
        return Ok(None);
    }
    if let Ok(at) = text.parse::<Timestamp>() {
        return Ok(Some(at));
    }
    text.parse::<i64>()
        .ok()
        .and_then(|s| Timestamp::from_second(s).ok())
        .map(Some)
        .ok_or_else(|| bad(EXPIRES_AT, "an RFC 3339 time or seconds since the epoch"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(pairs: &[(&str, &str)]) -> Credentials {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), SecretString::from((*v).to_owned())))
            .collect()
    }

    #[test]
    fn expiry_is_read_as_seconds_a_string_of_them_a_time_or_an_epoch() {
        let now: Timestamp = "2026-12-03T12:00:00Z".parse().unwrap();
        let at = |pairs: &[(&str, &str)]| {
            expiry(&mut session(pairs), now, "C")
                .map(|t| t.map(|t| t.to_string()))
                .map_err(|e| e.to_string())
        };
        let hour = Ok(Some("2026-12-03T13:00:00Z".to_owned()));
        assert_eq!(at(&[("expires_in", "3600")]), hour);
        assert_eq!(at(&[("expires_in", " 3600.0 ")]), hour);
        assert_eq!(at(&[("expires_at", "2026-12-03T13:00:00Z")]), hour);
        assert_eq!(
            at(&[("expires_at", &(now.as_second() + 3600).to_string())]),
            hour
        );
        assert_eq!(at(&[("token", "x")]), Ok(None));
        assert_eq!(at(&[("expires_in", "")]), Ok(None));
        let err = at(&[("expires_in", "soon")]).unwrap_err();
        assert!(
            err.contains("credentialsFromRefreshResponse.expires_in"),
            "{err}"
        );
        assert!(at(&[("expires_in", "-5")]).is_err());
        assert!(at(&[("expires_at", "tomorrow")]).is_err());
    }

    #[test]
    fn expiry_keys_are_taken_out_of_the_credentials() {
        let mut s = session(&[("token", "x"), ("expires_in", "60")]);
        expiry(&mut s, Timestamp::UNIX_EPOCH, "C").unwrap();
        assert_eq!(s.keys().collect::<Vec<_>>(), ["token"]);
    }

    fn answer(status: u16, body: &str) -> signed::Answer {
        signed::Answer {
            status,
            body: body.to_owned(),
            retry_after: None,
        }
    }

    #[test]
    fn answers_are_json_objects_or_forms_and_never_quoted() {
        let spec = CredentialsRefresh::default();
        let json = judge(
            &spec,
            &answer(200, r#"{"token": "s3cr3t", "expires_in": "3600"}"#),
            "f",
        )
        .unwrap();
        assert_eq!(json["token"], "s3cr3t");
        let form = judge(&spec, &answer(200, "token=s3cr3t&expires_in=60"), "f").unwrap();
        assert_eq!(form["expires_in"], "60");
        let garbage = judge(&spec, &answer(200, "<html>s3cr3t</html>"), "f").unwrap_err();
        assert!(
            garbage.is_transient() && !garbage.to_string().contains("s3cr3t"),
            "{garbage}"
        );
        let refused = judge(&spec, &answer(401, "bad key s3cr3t"), "f").unwrap_err();
        assert_eq!(refused.reason(), "CredentialsRefused");
        assert!(!refused.to_string().contains("s3cr3t"));
        assert!(
            judge(&spec, &answer(503, ""), "f")
                .unwrap_err()
                .is_transient()
        );
        let listed = CredentialsRefresh {
            expect_status: vec![201],
            ..CredentialsRefresh::default()
        };
        assert!(judge(&listed, &answer(200, "{}"), "f").is_err());
    }
}
