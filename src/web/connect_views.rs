//! What the hosted connect page sends a browser: its one HTML template drawn as a form, an
//! option choice, a result or a message; its static assets; and the headers every page of
//! it carries (CSP, no caching, no referrer, no sniffing, the CSRF cookie).

use std::sync::LazyLock;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::backend_connect::FoundConnector;
use super::connect_form::Field;
use crate::controller::Context;

/// The cookie the page's CSRF token is bound to.
pub const CSRF_COOKIE: &str = "plugboard_connect";
/// The page's path prefix, the cookie's scope.
pub const PAGE_PATH: &str = "/connect/session";

const TEMPLATE: &str = include_str!("assets/connect.html");
pub const PAGE_CSS: &str = include_str!("assets/page.css");
pub const PAGE_JS: &str = include_str!("assets/page.js");
pub const CONNECT_JS: &str = include_str!("assets/connect.js");

static TEMPLATES: LazyLock<minijinja::Environment<'static>> = LazyLock::new(|| {
    let mut env = minijinja::Environment::new();
    // Everything drawn is escaped: names, titles and messages come from connectors, tenants
    // and providers.
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    env.add_template("connect.html", TEMPLATE)
        .expect("the connect page template parses");
    env
});

/// The connector as the page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectorView {
    pub name: String,
    /// `logoUri`, when it is an http(s) or data URL.
    pub logo: Option<String>,
}

impl ConnectorView {
    pub fn of(found: &FoundConnector) -> Self {
        let spec = &found.spec;
        // Only what an <img> can show; anything else is left out rather than drawn broken.
        let logo = spec.logo_uri.clone().filter(|l| {
            ["https://", "http://", "data:image/"]
                .iter()
                .any(|p| l.starts_with(p))
        });
        Self {
            name: spec
                .display_name
                .clone()
                .unwrap_or_else(|| found.name.clone()),
            logo,
        }
    }
}

/// One auth option to choose from.
#[derive(Debug, Clone, Serialize)]
pub struct OptionView {
    pub key: String,
    pub title: String,
}

/// How a session ended, for the result page and its script.
#[derive(Debug, Clone, Serialize)]
pub struct ResultView {
    /// `connected`, `pending` or `error`.
    pub status: &'static str,
    /// `namespace/name`.
    pub connection: String,
    /// Why, when it is an error: a code like `authorization_failed`.
    pub error: Option<&'static str>,
    /// The only origin the popup may tell how it went: the redirect address's.
    pub origin: Option<String>,
    /// Where to go afterwards, with `connection` and `status` added.
    pub redirect: Option<String>,
    pub popup: bool,
}

/// Everything the template may draw.
#[derive(Debug, Default, Serialize)]
pub struct View {
    /// `form`, `choose`, `result` or `message`.
    pub view: &'static str,
    pub title: String,
    pub heading: String,
    pub message: String,
    pub connector: Option<ConnectorView>,
    pub options: Vec<OptionView>,
    pub fields: Vec<Field>,
    pub general: Vec<String>,
    pub csrf: String,
    pub option: Option<String>,
    pub popup: bool,
    pub reconnect: Option<String>,
    pub submit: String,
    pub choose_again: bool,
    pub result: Option<ResultView>,
}

/// A page with nothing but a heading and a message (an expired link, a refusal).
pub fn message(ctx: &Context, status: StatusCode, heading: &str, message: &str) -> Response {
    let view = View {
        view: "message",
        title: heading.to_owned(),
        heading: heading.to_owned(),
        message: message.to_owned(),
        ..View::default()
    };
    render(ctx, status, &view, None)
}

/// Draws `view` with the page's headers, setting the CSRF `cookie` when given.
pub fn render(ctx: &Context, status: StatusCode, view: &View, cookie: Option<&str>) -> Response {
    let html = TEMPLATES
        .get_template("connect.html")
        .and_then(|t| t.render(minijinja::value::Serde(view)));
    let html = match html {
        Ok(html) => html,
        Err(err) => {
            tracing::error!(error = %err, "the connect page did not render");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be drawn",
            )
                .into_response();
        }
    };
    let logo = view.connector.as_ref().and_then(|c| c.logo.as_deref());
    let mut headers = page_headers(&ctx.config.frame_ancestors, logo);
    if let Some(cookie) = cookie
        && let Ok(value) = HeaderValue::from_str(&cookie_header(ctx, cookie))
    {
        headers.insert(header::SET_COOKIE, value);
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    (status, headers, html).into_response()
}

/// The headers of every page: scripts, styles and everything else from the operator only
/// (images also from the connector's logo origin); framed only by the listed origins; never
/// cached (a page may hold what a person typed); no referrer, as the address holds the
/// session.
pub fn page_headers(frame_ancestors: &[String], logo: Option<&str>) -> HeaderMap {
    let logo_origin = logo
        .and_then(|l| url::Url::parse(l).ok())
        .filter(|u| matches!(u.scheme(), "https" | "http"))
        .map(|u| u.origin().ascii_serialization());
    let frames = if frame_ancestors.is_empty() {
        "'none'".to_owned()
    } else {
        frame_ancestors.join(" ")
    };
    let csp = format!(
        "default-src 'self'; img-src 'self' data:{}; frame-ancestors {frames}; base-uri 'none'; object-src 'none'",
        logo_origin.map(|o| format!(" {o}")).unwrap_or_default()
    );
    let mut headers = HeaderMap::new();
    let set = |headers: &mut HeaderMap, name, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    set(&mut headers, header::CONTENT_SECURITY_POLICY, &csp);
    set(&mut headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(&mut headers, header::CACHE_CONTROL, "no-store");
    set(&mut headers, header::REFERRER_POLICY, "no-referrer");
    if frame_ancestors.is_empty() {
        set(&mut headers, header::X_FRAME_OPTIONS, "DENY");
    }
    headers
}

/// The CSRF cookie. Over https it may travel in a frame of a listed origin (`SameSite=None`,
/// partitioned per embedding site); over plain http, as in local development, it is `Lax`.
fn cookie_header(ctx: &Context, value: &str) -> String {
    let https = ctx
        .config
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"));
    let scope = if https {
        "SameSite=None; Secure; Partitioned"
    } else {
        "SameSite=Lax"
    };
    format!("{CSRF_COOKIE}={value}; Path={PAGE_PATH}; HttpOnly; {scope}")
}

/// The CSRF cookie a request carries, if it is one this page could have set.
pub fn csrf_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == CSRF_COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|v| {
            (16..=64).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// A new CSRF cookie value.
pub fn new_cookie() -> String {
    use base64::Engine as _;
    let bytes: [u8; 18] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A static asset: cacheable for a short while, never sniffed.
pub fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_allow_only_the_operator_the_logo_and_the_listed_frames() {
        let none = page_headers(&[], Some("https://cdn.example.com/logo.png"));
        let csp = none[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(
            csp.starts_with("default-src 'self'; img-src 'self' data: https://cdn.example.com;"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(none[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(none[header::CACHE_CONTROL], "no-store");
        assert_eq!(none[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        let framed = page_headers(&["https://app.example.com".into()], Some("javascript:x"));
        let csp = framed[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(
            csp.contains("frame-ancestors https://app.example.com;"),
            "{csp}"
        );
        assert!(csp.contains("img-src 'self' data:;"), "{csp}");
        assert!(framed.get(header::X_FRAME_OPTIONS).is_none());
    }

    #[test]
    fn only_a_well_formed_csrf_cookie_is_read() {
        let mut headers = HeaderMap::new();
        let value = new_cookie();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("other=1; {CSRF_COOKIE}={value}")).unwrap(),
        );
        assert_eq!(csrf_cookie(&headers), Some(value));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("plugboard_connect=<script>"),
        );
        assert_eq!(csrf_cookie(&headers), None);
    }

    #[test]
    fn the_template_escapes_what_it_draws() {
        let view = View {
            view: "message",
            heading: "<b>x</b>".into(),
            message: "\"><script>alert(1)</script>".into(),
            ..View::default()
        };
        let html = TEMPLATES
            .get_template("connect.html")
            .unwrap()
            .render(minijinja::value::Serde(&view))
            .unwrap();
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(
            html.contains("<h1>&lt;b&gt;x&lt;&#x2f;b&gt;</h1>"),
            "{html}"
        );
    }
}
