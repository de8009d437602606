//! Credentials for `tenant-token`: a JWT minted for the Connection's tenant, kept while it is
//! fresh and still says what it should, and minted anew before it expires or when the
//! tenant, the issuer, the key or the algorithm changed.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use secrecy::SecretString;

use super::dereference::Resolved;
use super::oauth::{Obtained, REFRESH_REQUESTED_AT, refresh_due, scheduled_refresh};
use crate::api::{Connection, SigningAlgorithm};
use crate::auth::tenant_token;
use crate::controller::Context;
use crate::error::Error;

/// A minted token's lifetime when the connector does not say: long enough that rotation is
/// rare, short enough that a leaked token soon stops working.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);
/// The shortest lifetime accepted: below it, minting, storing and testing a token would take
/// a noticeable share of the time it is valid.
const MIN_LIFETIME: Duration = Duration::from_secs(10);

/// Reads the signing key (named like an OAuth app's Secret, with the same namespace rule).
async fn signing_key(
    conn: &Connection,
    resolved: &Resolved,
    ctx: &Context,
) -> Result<(Vec<u8>, String), Error> {
    let label = &resolved.connector_label;
    let field = format!("{label} auth.signingKeyRef");
    let reference =
        resolved.auth.signing_key_ref.as_ref().ok_or_else(|| {
            Error::InvalidConnector(format!("{field} is required for tenant-token"))
        })?;
    let secret = super::dereference::connector_secret(
        conn,
        resolved,
        &reference.name,
        reference.namespace.as_deref(),
        &field,
        ctx,
    )
    .await?;
    let key = secret
        .data
        .and_then(|mut d| d.remove(&reference.key))
        .ok_or_else(|| Error::SecretKeyNotFound {
            name: reference.name.clone(),
            key: reference.key.clone(),
            field: field.clone(),
        })?;
    Ok((key.0, field))
}

/// Credentials for `tenant-token`: the stored JWT while its key id and claims still match and
/// it is not due, else a newly minted one.
pub async fn obtain(
    conn: &Connection,
    resolved: &Resolved,
    current: Option<&Secret>,
    ctx: &Context,
    now: Timestamp,
) -> Result<Obtained, Error> {
    let label = &resolved.connector_label;
    let auth = &resolved.auth;
    let issuer = auth.issuer.as_deref().ok_or_else(|| {
        Error::InvalidConnector(format!("{label} auth.issuer is required for tenant-token"))
    })?;
    let (key, field) = signing_key(conn, resolved, ctx).await?;
    let algorithm = auth.algorithm.unwrap_or(SigningAlgorithm::HS256);
    let tenant = &resolved.tenant;
    let want = tenant_token::claims(
        issuer,
        tenant.tenant_id(),
        tenant.spec.display_name.as_deref(),
        resolved.tenant_fields.expose(),
    );
    let kid = tenant_token::key_id(algorithm, &key);
    let status = conn.status.clone().unwrap_or_default();
    let requested = conn.annotations().get(REFRESH_REQUESTED_AT).cloned();
    let forced = requested.is_some() && requested != status.refresh_requested_at;
    let stored = current
        .and_then(|s| s.data.as_ref())
        .and_then(|d| d.get("token"))
        .map(|t| String::from_utf8_lossy(&t.0).into_owned());
    if let Some(token) = stored
        && !forced
        && let Some((token_kid, claims, exp)) = tenant_token::inspect(&token)
        && token_kid.as_deref() == Some(kid.as_str())
        && claims == want
        && let Ok(expires) = Timestamp::from_second(exp)
    {
        let due = scheduled_refresh(&status, Some(expires), now);
        if due.is_none_or(|due| now < due) {
            return Ok(Obtained {
                credentials: credentials(SecretString::from(token), expires),
                expires_at: Some(expires),
                next_refresh_at: due,
                refresh_requested_at: status.refresh_requested_at.clone(),
                ..Obtained::default()
            });
        }
    }
    let lifetime = auth
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
    let token = tenant_token::mint(&want, algorithm, &key, now.as_second(), expires.as_second())
        .map_err(|why| Error::InvalidConnector(format!("{field}: {why}")))?;
    ctx.metrics.refreshed("success");
    Ok(Obtained {
        credentials: credentials(SecretString::from(token), expires),
        expires_at: Some(expires),
        next_refresh_at: Some(next_mint(now, expires)),
        refreshed_at: Some(now),
        refresh_requested_at: requested.or(status.refresh_requested_at),
        ..Obtained::default()
    })
}

/// When a token minted `now` expires: in whole seconds, as its `exp` claim says. The next
/// reconcile reads the expiry back from the stored token's `exp`; with the fraction of a
/// second `now` has, the Secret's `expires_at` and the status's `credentialsExpireAt` would
/// differ from it, and each mint would be followed by a second write of both (and a test).
fn expiry(now: Timestamp, lifetime: Duration) -> Option<Timestamp> {
    let expires = now.checked_add(lifetime).ok()?;
    Timestamp::from_second(expires.as_second()).ok()
}

/// When to mint the next token: the OAuth2 rule, which uses a short token for at least half
/// its life and a long one until a margin of at least five minutes before expiry.
fn next_mint(issued: Timestamp, expires: Timestamp) -> Timestamp {
    refresh_due(issued, expires)
}

fn credentials(token: SecretString, expires: Timestamp) -> BTreeMap<String, SecretString> {
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

    #[test]
    fn a_short_token_is_minted_again_after_half_its_life_a_long_one_by_the_oauth2_rule() {
        let issued: Timestamp = "2026-11-23T00:00:00Z".parse().unwrap();
        let short = issued.checked_add(Duration::from_secs(120)).unwrap();
        let used = next_mint(issued, short).duration_since(issued).as_secs();
        assert!((60..=72).contains(&used), "minted again after {used} s");
        let hour = issued.checked_add(Duration::from_secs(3600)).unwrap();
        let next = next_mint(issued, hour);
        let early = hour.duration_since(next).as_secs();
        assert!(
            (12 * 60..=18 * 60).contains(&early),
            "{early} s before expiry"
        );
    }
}
