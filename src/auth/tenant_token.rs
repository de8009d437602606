//! The `tenant-token` auth method: a JWT minted for the Connection's tenant, kept while it
//! still says what it should, and minted anew before it expires or when the tenant, the
//! issuer, the key or the algorithm changed.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::jiff::Timestamp;
use secrecy::{ExposeSecret, SecretString};

use super::jwt;
use super::method::{Fresh, Held, Inputs, Method, Needs, Reread, SigningKey};
use crate::api::SigningAlgorithm;
use crate::error::Error;
use crate::provider::Tools;
use crate::store::Credentials;

/// A minted token's lifetime when the connector does not say: long enough that rotation is
/// rare, short enough that a leaked token soon stops working.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);
/// The shortest lifetime accepted: below it, minting, storing and testing a token would take
/// a noticeable share of the time it is valid.
const MIN_LIFETIME: Duration = Duration::from_secs(10);

pub struct TenantToken;

impl TenantToken {
    fn issuer<'a>(inputs: &'a Inputs<'_>) -> Result<&'a str, Error> {
        inputs.auth.issuer.as_deref().ok_or_else(|| {
            Error::InvalidConnector(format!(
                "{} auth.issuer is required for tenant-token",
                inputs.label
            ))
        })
    }

    fn key<'a>(inputs: &'a Inputs<'_>) -> Result<&'a SigningKey, Error> {
        inputs.secrets.signing_key.as_ref().ok_or_else(|| {
            Error::InvalidConnector(format!(
                "{} auth.signingKeyRef is required for tenant-token",
                inputs.label
            ))
        })
    }

    /// The claims the tenant's token should carry now.
    fn want(inputs: &Inputs<'_>) -> Result<serde_json::Value, Error> {
        let tenant = inputs.tenant;
        Ok(jwt::claims(
            Self::issuer(inputs)?,
            tenant.id,
            tenant.display_name,
            tenant.fields,
        ))
    }

    fn algorithm(inputs: &Inputs<'_>) -> SigningAlgorithm {
        inputs.auth.algorithm.unwrap_or(SigningAlgorithm::HS256)
    }

    fn mint(inputs: &Inputs<'_>, tools: Tools<'_>, now: Timestamp) -> Result<Fresh, Error> {
        let label = inputs.label;
        let key = Self::key(inputs)?;
        let lifetime = inputs
            .auth
            .token_lifetime
            .map(Duration::from)
            .unwrap_or(DEFAULT_LIFETIME);
        if lifetime < MIN_LIFETIME {
            return Err(Error::InvalidConnector(format!(
                "{label} auth.tokenLifetime must be at least {}s",
                MIN_LIFETIME.as_secs()
            )));
        }
        let expires = expiry(now, lifetime).ok_or_else(|| {
            Error::InvalidConnector(format!("{label} auth.tokenLifetime is too long"))
        })?;
        let token = jwt::mint(
            &Self::want(inputs)?,
            Self::algorithm(inputs),
            key.bytes.expose_secret(),
            now.as_second(),
            expires.as_second(),
        )
        .map_err(|why| Error::InvalidConnector(format!("{}: {why}", key.field)))?;
        tools.metrics.refreshed("success");
        Ok(Fresh {
            credentials: credentials(SecretString::from(token), expires),
            expires_at: Some(expires),
            issued: true,
            unusable: None,
        })
    }
}

impl Method for TenantToken {
    fn needs(&self) -> Needs {
        Needs {
            app: false,
            signing_key: true,
        }
    }

    fn check(&self, inputs: &Inputs<'_>, _allow_private: bool) -> Result<(), Error> {
        Self::issuer(inputs).map(drop)
    }

    /// The stored token is current while its key id and claims match what a new one would
    /// carry; what is kept is exactly what a fresh mint stores.
    fn inspect(&self, inputs: &Inputs<'_>) -> Result<Option<Held>, Error> {
        let want = Self::want(inputs)?;
        let kid = jwt::key_id(
            Self::algorithm(inputs),
            Self::key(inputs)?.bytes.expose_secret(),
        );
        let found = inputs
            .stored
            .get("token")
            .and_then(|token| Some((token, jwt::inspect(token.expose_secret())?)))
            .and_then(|(token, (token_kid, claims, exp))| {
                let expires = Timestamp::from_second(exp).ok()?;
                let current = token_kid.as_deref() == Some(kid.as_str()) && claims == want;
                Some((token.clone(), expires, current))
            });
        Ok(Some(match found {
            Some((token, expires, current)) => Held {
                keep: credentials(token, expires),
                usable: true,
                renewable: true,
                expires_at: Some(expires),
                current,
                needs_consent: false,
            },
            None => Held {
                keep: Credentials::new(),
                usable: false,
                renewable: true,
                expires_at: None,
                current: false,
                needs_consent: false,
            },
        }))
    }

    fn obtain<'a>(
        &'a self,
        inputs: &'a Inputs<'a>,
        tools: Tools<'a>,
        _reread: &'a dyn Reread,
        now: Timestamp,
    ) -> BoxFuture<'a, Result<Fresh, Error>> {
        let minted = Self::mint(inputs, tools, now);
        async move { minted }.boxed()
    }
}

/// When a token minted `now` expires: in whole seconds, as its `exp` claim says. The next
/// reconcile reads the expiry back from the stored token's `exp`; with the fraction of a
/// second `now` has, the stored `expires_at` and the status's `credentialsExpireAt` would
/// differ from it, and each mint would be followed by a second write of both (and a test).
fn expiry(now: Timestamp, lifetime: Duration) -> Option<Timestamp> {
    let expires = now.checked_add(lifetime).ok()?;
    Timestamp::from_second(expires.as_second()).ok()
}

fn credentials(token: SecretString, expires: Timestamp) -> Credentials {
    BTreeMap::from([
        ("token".to_owned(), token),
        (
            "expires_at".to_owned(),
            SecretString::from(expires.to_string()),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_expires_on_the_whole_second_its_exp_claim_names() {
        let now: Timestamp = "2026-11-23T00:00:00.123456789Z".parse().unwrap();
        let expires = expiry(now, Duration::from_millis(3_600_500)).unwrap();
        assert_eq!(expires.to_string(), "2026-11-23T01:00:00Z");
        assert_eq!(expires.subsec_nanosecond(), 0);
    }
}
