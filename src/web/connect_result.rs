//! How a connect session ends: the session is recorded as spent on the Connection it
//! connected, and the person is sent to the session's redirect address, or — in a popup —
//! shown a result page whose script tells the opener and closes.

use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams};

use super::backend_connect::find_connector;
use super::connect_views::{self as views, ConnectorView, ResultView, View};
use crate::api::Connection;
use crate::auth::connect_session::Session;
use crate::auth::state::SessionMark;
use crate::controller::Context;
use crate::meta::CONNECT_MANAGER;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

/// The annotation on a Connection that holds the marker of the connect session that last
/// connected it: the page refuses that session from then on.
pub const SESSION_ANNOTATION: &str = "plugboard.dev/connect-session";

/// Where a session got to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Connected,
    /// Written, and still being tested; its status will tell.
    Pending,
    /// Not connected, for the reason named by the code (`authorization_failed`).
    Failed(&'static str),
}

impl Outcome {
    fn status(self) -> &'static str {
        match self {
            Self::Connected => "connected",
            Self::Pending => "pending",
            Self::Failed(_) => "error",
        }
    }
}

/// Whether `session` has already connected a Connection.
pub async fn spent(ctx: &Context, session: &Session) -> bool {
    let marker = session.marker();
    let carries = |c: &Connection| c.annotations().get(SESSION_ANNOTATION) == Some(&marker);
    if ctx.caches_live() {
        return ctx
            .connections
            .state()
            .iter()
            .any(|c| c.namespace().as_deref() == Some(session.ns.as_str()) && carries(c));
    }
    let api: Api<Connection> = Api::namespaced(ctx.client.clone(), &session.ns);
    match api.list(&ListParams::default()).await {
        Ok(list) => list.items.iter().any(carries),
        // Unknown is not spent: the submit that follows writes through the same API and
        // fails there with a message of its own.
        Err(err) => {
            tracing::warn!(error = %err, "connect page: could not list Connections");
            false
        }
    }
}

/// Ends the session that `mark` names with `outcome` for `conn`.
pub async fn finish(
    ctx: &Context,
    conn: &Connection,
    mark: &SessionMark,
    redirect: Option<String>,
    outcome: Outcome,
) -> Response {
    let ns = conn.namespace().unwrap_or_default();
    if outcome == Outcome::Connected {
        record_spent(ctx, &ns, &conn.name_any(), &mark.marker).await;
    }
    let connection = format!("{ns}/{}", conn.name_any());
    let kind = Some(conn.connector_kind());
    let connector = find_connector(ctx, &ns, &conn.spec.connector_ref.name, kind)
        .await
        .ok()
        .map(|found| ConnectorView::of(&found));
    let app = connector
        .as_ref()
        .map_or("The account", |c| c.name.as_str());
    let message = match outcome {
        Outcome::Connected => format!("{app} is connected. You can close this window."),
        Outcome::Pending => {
            format!("Connection {connection} is still connecting; its status will tell.")
        }
        Outcome::Failed(_) => "Not connected: the provider did not grant access.".to_owned(),
    };
    let shown = Shown {
        connection: &connection,
        connector,
        message: &message,
    };
    result(ctx, shown, mark.popup, redirect, outcome)
}

/// What a result page names.
struct Shown<'a> {
    connection: &'a str,
    connector: Option<ConnectorView>,
    message: &'a str,
}

/// Ends a session whose consent was not granted, showing `message`.
pub fn failed(
    ctx: &Context,
    connection: &str,
    mark: &SessionMark,
    redirect: Option<String>,
    message: &str,
) -> Response {
    let outcome = Outcome::Failed("authorization_failed");
    let shown = Shown {
        connection,
        connector: None,
        message,
    };
    result(ctx, shown, mark.popup, redirect, outcome)
}

fn result(
    ctx: &Context,
    shown: Shown<'_>,
    popup: bool,
    redirect: Option<String>,
    outcome: Outcome,
) -> Response {
    let connection = shown.connection;
    let target = redirect.as_deref().and_then(|r| url::Url::parse(r).ok());
    let back = target.clone().map(|mut url| {
        url.query_pairs_mut()
            .append_pair("connection", connection)
            .append_pair("status", outcome.status());
        url.to_string()
    });
    if let (false, Some(to)) = (popup, &back) {
        return Redirect::to(to).into_response();
    }
    let heading = match outcome {
        Outcome::Connected => "Connected",
        Outcome::Pending => "Connecting",
        Outcome::Failed(_) => "Not connected",
    };
    let view = View {
        view: "result",
        title: heading.to_owned(),
        heading: heading.to_owned(),
        message: shown.message.to_owned(),
        connector: shown.connector,
        result: Some(ResultView {
            status: outcome.status(),
            connection: connection.to_owned(),
            error: match outcome {
                Outcome::Failed(code) => Some(code),
                _ => None,
            },
            origin: target.map(|u| u.origin().ascii_serialization()),
            redirect: back,
            popup,
        }),
        ..View::default()
    };
    views::render(ctx, StatusCode::OK, &view, None)
}

/// Records the session as spent on the Connection. A failure leaves the session usable for
/// what remains of its life, which is logged rather than shown: the person is connected.
async fn record_spent(ctx: &Context, ns: &str, name: &str, marker: &str) {
    let api: Api<Connection> = Api::namespaced(ctx.client.clone(), ns);
    let patch = serde_json::json!({"metadata": {"annotations": {SESSION_ANNOTATION: marker}}});
    let params = PatchParams {
        field_manager: Some(CONNECT_MANAGER.to_owned()),
        ..PatchParams::default()
    };
    if let Err(err) = api.patch(name, &params, &Patch::Merge(&patch)).await {
        tracing::warn!(error = %err, connection = name, "connect page: could not record the session as spent");
    }
}
