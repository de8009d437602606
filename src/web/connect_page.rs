//! The hosted connect page (the seed's `ui.connect()`): `GET /connect/session/{token}` shows
//! a connect session's form, `POST` to the same address submits it.
//!
//! The form comes from the input schema of the auth option in use; what is posted is checked
//! with the reconcile's own validator and each complaint is shown next to its field; a valid
//! submission goes through `POST /connect`'s path (`backend_connect::connect`), so the input
//! lands in the `<connection>-input` Secret, never in the spec. Then oauth2 and oauth1 go on
//! to the provider's consent; the others wait for the test and show the result, or the form
//! again with the reason it failed.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::backend_connect::{self, Connected, FoundConnector, Next, Settled, find_connector};
use super::connect_api::{ConnectError, Payload};
use super::connect_form::{self as form, Field};
use super::connect_result::{self, Outcome};
use super::connect_sessions::tenants_connection;
use super::connect_views::{self as views, ConnectorView, OptionView, View};
use crate::api::{AuthType, Connection};
use crate::auth::connect_session::{Session, Target};
use crate::auth::state::SessionMark;
use crate::controller::Context;

#[derive(Deserialize)]
pub struct PageQuery {
    option: Option<String>,
    mode: Option<String>,
}

/// A session that verified, with what it connects.
struct Opened {
    session: Session,
    connector: FoundConnector,
    /// The Connection a reconnect session re-enters.
    reconnect: Option<Connection>,
}

impl Opened {
    /// The auth option in use: the session's, the Connection's, or the one chosen.
    fn option(&self, chosen: Option<&str>) -> Result<Option<String>, String> {
        let fixed = self.session.option.clone().or_else(|| {
            self.reconnect
                .as_ref()
                .and_then(|c| c.spec.auth_option_key.clone())
        });
        let Some(options) = &self.connector.spec.options else {
            return Ok(None);
        };
        match fixed.or_else(|| chosen.map(str::to_owned)) {
            Some(key) if options.contains_key(&key) => Ok(Some(key)),
            Some(_) => Err("that is not one of this connector's ways to connect".to_owned()),
            None => Ok(None),
        }
    }

    fn auth_type(&self, option: Option<&str>) -> Option<AuthType> {
        let spec = &self.connector.spec;
        let method = match option {
            Some(key) => spec.options.as_ref()?.get(key)?,
            None => spec.auth.as_ref()?,
        };
        Some(method.type_)
    }
}

pub async fn show(
    State(ctx): State<Arc<Context>>,
    Path(token): Path<String>,
    Query(query): Query<PageQuery>,
    headers: HeaderMap,
) -> Response {
    let opened = match open(&ctx, &token).await {
        Ok(opened) => opened,
        Err(page) => return page,
    };
    let popup = query.mode.as_deref() == Some("popup");
    let option = match opened.option(query.option.as_deref()) {
        Ok(option) => option,
        Err(message) => {
            return views::message(&ctx, StatusCode::BAD_REQUEST, "Not connected", &message);
        }
    };
    if option.is_none() && opened.connector.spec.options.is_some() {
        return choose(&ctx, &opened, popup);
    }
    let cookie = views::csrf_cookie(&headers).unwrap_or_else(views::new_cookie);
    let fields = form::fields(input_schema(&ctx, &opened, option.as_deref()).as_ref());
    let view = form_view(&ctx, &opened, option, popup, fields, Vec::new(), &cookie);
    views::render(&ctx, StatusCode::OK, &view, Some(&cookie))
}

pub async fn submit(
    State(ctx): State<Arc<Context>>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let opened = match open(&ctx, &token).await {
        Ok(opened) => opened,
        Err(page) => return page,
    };
    let posted: BTreeMap<String, String> = url::form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let Some(cookie) = csrf_cookie_if_valid(&ctx, &opened, &headers, &posted) else {
        tracing::info!("connect page: a form post without this browser's CSRF token refused");
        return views::message(
            &ctx,
            StatusCode::FORBIDDEN,
            "Not connected",
            "This form was not sent from the page this browser opened. Reload the page and try again.",
        );
    };
    let option = match opened.option(posted.get("option").map(String::as_str)) {
        Ok(option) => option,
        Err(message) => {
            return views::message(&ctx, StatusCode::BAD_REQUEST, "Not connected", &message);
        }
    };
    let submission = Submission {
        ctx: &ctx,
        popup: posted.get("mode").map(String::as_str) == Some("popup"),
        opened,
        posted,
        option,
        cookie,
    };
    match submission.input() {
        Ok((input, fields)) => submission.connect(input, fields).await,
        Err(page) => *page,
    }
}

/// The browser's CSRF cookie, when the form carries the token bound to it and the session.
fn csrf_cookie_if_valid(
    ctx: &Context,
    opened: &Opened,
    headers: &HeaderMap,
    posted: &BTreeMap<String, String>,
) -> Option<String> {
    let key = ctx.config.state_key.as_ref()?;
    let cookie = views::csrf_cookie(headers)?;
    let token = posted.get("csrf")?;
    opened
        .session
        .csrf_matches(key, &cookie, token)
        .then_some(cookie)
}

/// The input a form gave, valid, with the fields it came from.
type Checked = (Map<String, Value>, Vec<Field>);

/// A form post that passed the CSRF check.
struct Submission<'a> {
    ctx: &'a Context,
    opened: Opened,
    posted: BTreeMap<String, String>,
    option: Option<String>,
    popup: bool,
    cookie: String,
}

impl Submission<'_> {
    /// The form shown again with what was typed (passwords aside) and what is wrong.
    fn refused(
        &self,
        mut fields: Vec<Field>,
        general: Vec<String>,
        status: StatusCode,
    ) -> Response {
        form::refill(&mut fields, &self.posted);
        let view = form_view(
            self.ctx,
            &self.opened,
            self.option.clone(),
            self.popup,
            fields,
            general,
            &self.cookie,
        );
        views::render(self.ctx, status, &view, None)
    }

    /// The input the form gives, checked with the reconcile's validator; the form again with
    /// each complaint at its field otherwise.
    fn input(&self) -> Result<Checked, Box<Response>> {
        let invalid = StatusCode::UNPROCESSABLE_ENTITY;
        let schema = input_schema(self.ctx, &self.opened, self.option.as_deref());
        let mut fields = form::fields(schema.as_ref());
        let (input, unreadable) = form::read(&fields, schema.as_ref(), &self.posted);
        if !unreadable.is_empty() {
            for field in &mut fields {
                field.errors.extend(unreadable.get(&field.name).cloned());
            }
            return Err(Box::new(self.refused(fields, Vec::new(), invalid)));
        }
        let checked = self
            .opened
            .connector
            .schemas(self.ctx, self.option.as_deref())
            .input_violations(&input);
        match checked {
            Err(err) => Err(Box::new(self.refused(
                fields,
                vec![err.to_string()],
                invalid,
            ))),
            Ok(violations) if !violations.is_empty() => {
                let general = form::place(&mut fields, &violations);
                Err(Box::new(self.refused(fields, general, invalid)))
            }
            Ok(_) => Ok((input, fields)),
        }
    }

    /// Connects as `POST /connect` does, and shows where that led.
    async fn connect(&self, input: Map<String, Value>, fields: Vec<Field>) -> Response {
        let (ctx, session) = (self.ctx, &self.opened.session);
        let payload = payload(&self.opened, self.option.clone(), input, self.popup);
        let settled = match backend_connect::connect(ctx, &session.ns, &session.tenant, &payload)
            .await
        {
            Err(err) => return self.refused(fields, vec![err.message().to_owned()], err.status()),
            Ok(Connected {
                next: Next::Consent(url),
                ..
            }) => return Redirect::to(url.as_str()).into_response(),
            Ok(Connected {
                connection,
                next: Next::Settled(settled),
                ..
            }) => (connection, settled),
        };
        let outcome = match settled.1 {
            Settled::Failed { message, .. } => {
                let general = vec![format!("Not connected: {message}")];
                return self.refused(fields, general, StatusCode::UNPROCESSABLE_ENTITY);
            }
            Settled::Connected => Outcome::Connected,
            Settled::Pending => Outcome::Pending,
        };
        let mark = SessionMark {
            marker: session.marker(),
            popup: self.popup,
        };
        let redirect = session.redirect.clone();
        connect_result::finish(ctx, &settled.0, &mark, redirect, outcome).await
    }
}

/// Verifies the session and finds what it connects; a page saying why not otherwise.
async fn open(ctx: &Context, token: &str) -> Result<Opened, Response> {
    let Some(key) = &ctx.config.state_key else {
        return Err(views::message(
            ctx,
            StatusCode::SERVICE_UNAVAILABLE,
            "Not available",
            "The operator has no state signing key configured.",
        ));
    };
    let session = Session::open(key, token, Timestamp::now().as_second()).map_err(|err| {
        let status = match err {
            crate::auth::connect_session::SessionError::Expired => StatusCode::GONE,
            crate::auth::connect_session::SessionError::NotValid => StatusCode::FORBIDDEN,
        };
        views::message(ctx, status, "Not connected", &err.to_string())
    })?;
    if connect_result::spent(ctx, &session).await {
        return Err(views::message(
            ctx,
            StatusCode::GONE,
            "Already connected",
            "This connect link was already used. To connect again, start again from the application.",
        ));
    }
    let refused =
        |err: ConnectError| views::message(ctx, err.status(), "Not connected", err.message());
    let (kind, name, reconnect) = match &session.target {
        Target::Connector { kind, name } => (*kind, name.clone(), None),
        Target::Connection { name } => {
            let conn = tenants_connection(ctx, &session.ns, &session.tenant, name)
                .await
                .map_err(refused)?;
            (
                conn.connector_kind(),
                conn.spec.connector_ref.name.clone(),
                Some(conn),
            )
        }
    };
    let connector = find_connector(ctx, &session.ns, &name, Some(kind))
        .await
        .map_err(refused)?;
    Ok(Opened {
        session,
        connector,
        reconnect,
    })
}

fn input_schema(ctx: &Context, opened: &Opened, option: Option<&str>) -> Option<Value> {
    let schemas = opened.connector.schemas(ctx, option);
    schemas.input_schema().map(|(_, schema)| schema)
}

fn connector_view(opened: &Opened) -> ConnectorView {
    ConnectorView::of(&opened.connector)
}

/// The page that asks which of the connector's auth options to use.
fn choose(ctx: &Context, opened: &Opened, popup: bool) -> Response {
    let connector = connector_view(opened);
    let options = opened
        .connector
        .spec
        .options
        .iter()
        .flatten()
        .map(|(key, method)| OptionView {
            key: key.clone(),
            title: method.title.clone().unwrap_or_else(|| key.clone()),
        })
        .collect();
    let view = View {
        view: "choose",
        title: format!("Connect {}", connector.name),
        heading: format!("Connect {}", connector.name),
        connector: Some(connector),
        options,
        popup,
        ..View::default()
    };
    views::render(ctx, StatusCode::OK, &view, None)
}

fn form_view(
    ctx: &Context,
    opened: &Opened,
    option: Option<String>,
    popup: bool,
    fields: Vec<Field>,
    general: Vec<String>,
    cookie: &str,
) -> View {
    let connector = connector_view(opened);
    let csrf = ctx
        .config
        .state_key
        .as_ref()
        .map(|key| opened.session.csrf(key, cookie))
        .unwrap_or_default();
    let consent = matches!(
        opened.auth_type(option.as_deref()),
        Some(AuthType::Oauth2 | AuthType::Oauth1)
    );
    let submit = if consent {
        format!("Continue to {}", connector.name)
    } else {
        "Connect".to_owned()
    };
    let choose_again = opened.connector.spec.options.is_some()
        && opened.session.option.is_none()
        && opened.reconnect.is_none();
    View {
        view: "form",
        title: format!("Connect {}", connector.name),
        heading: format!("Connect {}", connector.name),
        connector: Some(connector),
        fields,
        general,
        csrf,
        option,
        popup,
        reconnect: opened.reconnect.as_ref().map(|c| c.name_any()),
        submit,
        choose_again,
        ..View::default()
    }
}

/// What the session and the form ask `POST /connect`'s path to do.
fn payload(
    opened: &Opened,
    option: Option<String>,
    input: Map<String, Value>,
    popup: bool,
) -> Payload {
    let session = &opened.session;
    let connection = match &opened.reconnect {
        Some(conn) => Some(conn.name_any()),
        // One more Connection: named after the session, so that trying again within it
        // corrects this Connection instead of adding another.
        None if session.multiple => {
            let base = format!(
                "{}-{}",
                super::provision::tenant_name(&session.tenant.id),
                opened.connector.name
            );
            let suffix: String = session
                .marker()
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .map(|c| c.to_ascii_lowercase())
                .take(8)
                .collect();
            // Within a name's 253 characters, with room for `-input` and `-credentials`.
            Some(format!(
                "{}-{suffix}",
                base.chars().take(200).collect::<String>()
            ))
        }
        None => None,
    };
    // A reconnect keeps the Connection's parameters unless the session sets new ones: the
    // endpoint's apply would otherwise drop those it set before.
    let parameters = session.parameters.clone().or_else(|| {
        opened
            .reconnect
            .as_ref()
            .and_then(|c| c.spec.connector_parameters.as_ref().map(|p| p.0.clone()))
    });
    Payload {
        connector: opened.connector.name.clone(),
        connector_kind: Some(opened.connector.kind),
        auth_option_key: option,
        input: Some(input),
        connector_parameters: parameters,
        redirect_uri: session.redirect.clone(),
        allow_multiple_connections: session.multiple,
        connection,
        session: Some(SessionMark {
            marker: session.marker(),
            popup,
        }),
    }
}
