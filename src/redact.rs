//! Scrubbing known secret values out of text that reaches status, events and logs: a
//! provider or a library may echo back a credential it refused.

/// Values shorter than this are left alone: a region code or `true` would blank out
/// ordinary words, and no real secret is that short.
const MIN_SECRET_LEN: usize = 6;

/// `message` with every value of `secrets` replaced by `[redacted]`.
pub fn redact(message: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .filter(|s| s.len() >= MIN_SECRET_LEN)
        .fold(message.to_owned(), |text, secret| {
            text.replace(secret.as_str(), "[redacted]")
        })
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redaction_removes_secret_values_but_not_short_words() {
        let text = redact(
            "HTTP 401: invalid key sk_test_123456 for acct in eu",
            &["sk_test_123456".into(), "eu".into()],
        );
        assert_eq!(text, "HTTP 401: invalid key [redacted] for acct in eu");
    }
}
