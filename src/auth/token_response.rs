//! The token response as providers really send it (RFC 6749, 5.1), read leniently where
//! they stray from the letter: `expires_in` as a string (the old Azure AD v1 endpoint and
//! others send `"3599"`) as well as a number. A response the strict reader refused was a
//! lost response, and with a rotating provider a lost refresh token.

use std::time::Duration;

use oauth2::basic::BasicTokenType;
use oauth2::{AccessToken, RefreshToken, Scope, TokenResponse};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// A token response: the standard fields, and every other field for the connector's
/// response-mapping templates.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LenientResponse {
    access_token: AccessToken,
    #[serde(deserialize_with = "oauth2::helpers::deserialize_untagged_enum_case_insensitive")]
    token_type: BasicTokenType,
    #[serde(default, deserialize_with = "seconds")]
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_in: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<RefreshToken>,
    #[serde(rename = "scope")]
    #[serde(deserialize_with = "oauth2::helpers::deserialize_space_delimited_vec")]
    #[serde(serialize_with = "oauth2::helpers::serialize_space_delimited_vec")]
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(default)]
    scopes: Option<Vec<Scope>>,
    /// The fields beyond the standard ones.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl TokenResponse for LenientResponse {
    type TokenType = BasicTokenType;

    fn access_token(&self) -> &AccessToken {
        &self.access_token
    }

    fn token_type(&self) -> &BasicTokenType {
        &self.token_type
    }

    fn expires_in(&self) -> Option<Duration> {
        self.expires_in.map(Duration::from_secs)
    }

    fn refresh_token(&self) -> Option<&RefreshToken> {
        self.refresh_token.as_ref()
    }

    fn scopes(&self) -> Option<&Vec<Scope>> {
        self.scopes.as_ref()
    }
}

/// `expires_in` as a JSON number or a string of digits; a negative, fractional or other
/// value is refused, as the strict reader would.
fn seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Seconds {
        Number(u64),
        Text(String),
    }
    match Option::<Seconds>::deserialize(deserializer)? {
        None => Ok(None),
        Some(Seconds::Number(n)) => Ok(Some(n)),
        Some(Seconds::Text(text)) => text.trim().parse().map(Some).map_err(|_| {
            serde::de::Error::custom("expires_in is neither a number nor a string of digits")
        }),
    }
}

/// The refresh token of a 2xx answer that is not a valid token response, if it holds one:
/// a rotating provider has already invalidated the one it replaces, so it must be kept
/// whatever else is wrong with the answer.
pub fn salvage_refresh_token(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let token = value.get("refresh_token")?.as_str()?;
    (!token.is_empty()).then(|| token.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(body: Value) -> Result<LenientResponse, serde_json::Error> {
        serde_json::from_value(body)
    }

    #[test]
    fn expires_in_is_read_as_a_number_or_a_string_of_digits() {
        let base = serde_json::json!({"access_token": "at", "token_type": "Bearer"});
        for (expires_in, want) in [
            (serde_json::json!(3599), Some(3599)),
            (serde_json::json!("3599"), Some(3599)),
            (serde_json::json!(" 60 "), Some(60)),
            (Value::Null, None),
        ] {
            let mut body = base.clone();
            body["expires_in"] = expires_in.clone();
            let response = read(body).unwrap_or_else(|e| panic!("{expires_in}: {e}"));
            assert_eq!(
                response.expires_in(),
                want.map(Duration::from_secs),
                "{expires_in}"
            );
        }
        assert_eq!(read(base.clone()).unwrap().expires_in(), None, "absent");
        for bad in [
            serde_json::json!(-1),
            serde_json::json!("soon"),
            serde_json::json!(1.5),
        ] {
            let mut body = base.clone();
            body["expires_in"] = bad.clone();
            assert!(read(body).is_err(), "{bad}");
        }
    }

    #[test]
    fn other_fields_are_kept_and_scopes_split() {
        let response = read(serde_json::json!({
            "access_token": "at", "token_type": "bearer", "refresh_token": "rt",
            "scope": "contacts deals", "ext_expires_in": "3599", "user_id": 7,
        }))
        .unwrap();
        assert_eq!(response.refresh_token().unwrap().secret(), "rt");
        assert_eq!(response.scopes().unwrap().len(), 2);
        assert_eq!(response.extra["user_id"], 7);
        assert_eq!(response.extra["ext_expires_in"], "3599");
    }

    #[test]
    fn a_refresh_token_is_salvaged_from_an_answer_that_is_no_token_response() {
        let broken = br#"{"refresh_token": "rt-new", "expires_in": "never"}"#;
        assert_eq!(salvage_refresh_token(broken).as_deref(), Some("rt-new"));
        assert_eq!(salvage_refresh_token(b"<html>oops</html>"), None);
        assert_eq!(salvage_refresh_token(br#"{"refresh_token": ""}"#), None);
    }
}
