//! What an OpenBao/Vault answer means to the store: the faults every request can end in, and
//! Vault's own error text, bounded for a status message. Shared by the KV requests and the
//! login, which both talk to the same server.

use serde_json::Value;

/// Why a KV request did not do what it was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvError {
    /// Not reachable, sealed, or not ready: try again later.
    Unavailable(String),
    /// The operator's token may not do this.
    Forbidden(String),
    /// The operator's settings do not match the server (no such mount, no auth method).
    Misconfigured(String),
    /// A write's `cas` was not the current version: someone wrote in between.
    CasMismatch,
}

impl KvError {
    pub fn unreachable(address: &str, err: &reqwest::Error) -> Self {
        let why = if err.is_timeout() {
            "timed out".to_owned()
        } else if err.is_connect() {
            "connection failed".to_owned()
        } else {
            // Without the URL: it is known, and the error text repeats it.
            err.without_url_text()
        };
        Self::Unavailable(format!("OpenBao/Vault at {address} is unreachable ({why})"))
    }

    /// An answer of no expected kind.
    pub fn status(code: u16, answer: &Value) -> Self {
        Self::Unavailable(format!(
            "OpenBao/Vault answered HTTP {code} ({})",
            messages(answer)
        ))
    }
}

trait WithoutUrl {
    fn without_url_text(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    fn without_url_text(&self) -> String {
        let mut err = std::error::Error::source(self);
        let mut last = None;
        while let Some(e) = err {
            last = Some(e.to_string());
            err = e.source();
        }
        last.unwrap_or_else(|| "request failed".to_owned())
    }
}

/// Vault's `errors` list, joined; short, since it lands in a status message.
pub fn messages(answer: &Value) -> String {
    let joined = answer
        .get("errors")
        .and_then(Value::as_array)
        .map(|errors| {
            errors
                .iter()
                .filter_map(Value::as_str)
                .filter(|e| !e.is_empty())
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default();
    let joined = if joined.is_empty() {
        "no message".to_owned()
    } else {
        joined
    };
    joined.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn vaults_errors_are_joined_and_bounded() {
        assert_eq!(
            messages(&json!({"errors": ["1 error occurred:", "permission denied"]})),
            "1 error occurred:; permission denied"
        );
        assert_eq!(messages(&json!({})), "no message");
        assert_eq!(messages(&json!({"errors": ["x".repeat(1000)]})).len(), 300);
    }
}
