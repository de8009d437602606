//! The operator's own HTML pages: a title and a message, for a person in a browser.

use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

/// A minimal page. Everything in it is HTML-escaped by the template engine: names and
/// provider error descriptions come from outside.
pub fn page(status: StatusCode, title: &str, message: &str) -> Response {
    let mut env = minijinja::Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    let html = env
        .render_str(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>plugboard: {{ title }}</title></head>\
             <body><h1>{{ title }}</h1><p>{{ message }}</p></body></html>",
            minijinja::context! { title, message },
        )
        .unwrap_or_else(|_| "plugboard".to_owned());
    (status, [(header::CACHE_CONTROL, "no-store")], Html(html)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pages_escape_what_they_show() {
        let response = page(
            StatusCode::BAD_REQUEST,
            "Not connected",
            "<script>alert(1)</script>",
        );
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(text.contains("&lt;script&gt;"), "{text}");
        assert!(!text.contains("<script>"), "{text}");
    }
}
