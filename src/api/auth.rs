//! Auth methods: how plugboard obtains credentials for a connector.
//!
//! On the wire an auth method is one flat object with a `type` and the fields that type uses,
//! as the integration-engine model has it. The CRD's CEL rules make the API server refuse a
//! method that lacks a field its type needs, so `kubectl apply` fails early and says which.

use std::collections::BTreeMap;

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{SecretKeyReference, SecretReference};

// The protocol an auth method speaks.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AuthType {
    /// The user's input is the credential (API key, basic auth): `credentials` maps it.
    Static,
    /// OAuth 2.0 authorization-code flow with PKCE; a person consents at the provider.
    Oauth2,
    /// OAuth 2.0 client-credentials grant; no person involved.
    ClientCredentials,
    /// OAuth 1.0a three-legged flow.
    Oauth1,
    /// plugboard mints a short-lived JWT for the tenant and rotates it.
    TenantToken,
    /// A named proxy injects credentials; plugboard obtains none.
    Proxy,
}

impl AuthType {
    /// The name used in YAML, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Static => "static",
            Self::Oauth2 => "oauth2",
            Self::ClientCredentials => "client-credentials",
            Self::Oauth1 => "oauth1",
            Self::TenantToken => "tenant-token",
            Self::Proxy => "proxy",
        }
    }
}

// How the OAuth client authenticates at the token endpoint.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ClientAuth {
    /// HTTP Basic authentication with client id and secret (RFC 6749 section 2.3.1).
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Body,
}

// OAuth 1.0a signature methods.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum SignatureMethod {
    /// HMAC with SHA-1, the method most OAuth 1.0a providers require.
    #[serde(rename = "HMAC-SHA1")]
    HmacSha1,
    /// HMAC with SHA-256.
    #[serde(rename = "HMAC-SHA256")]
    HmacSha256,
    /// RSA with SHA-1; the signing key is the client secret in PEM.
    #[serde(rename = "RSA-SHA1")]
    RsaSha1,
    /// No signature; only over TLS.
    #[serde(rename = "PLAINTEXT")]
    Plaintext,
}

// JWT signing algorithms for tenant tokens.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum SigningAlgorithm {
    /// HMAC with SHA-256; the key is a shared secret.
    HS256,
    /// HMAC with SHA-512; the key is a shared secret.
    HS512,
    /// RSA PKCS#1 v1.5 with SHA-256; the key is a PEM private key.
    RS256,
}

/// A connector-defined request that exchanges the current credentials for new ones. Every
/// string is a template over `input`, `parameters`, `tenant`, `connection` and
/// `credentials` (the credentials before the exchange).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.form) && has(self.json))").message("set at most one of refresh.form and refresh.json"))]
pub struct CredentialsRefresh {
    /// HTTP method; `POST` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The absolute URI to send it to (for example `https://api.example.com/v1/sessions`).
    /// Its host must pass the host guard like every provider URL.
    pub uri: String,
    /// Request headers (for example `X-Api-Key: "{{ credentials.apiKey }}"`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// A form body (`application/x-www-form-urlencoded`): field name to template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form: Option<BTreeMap<String, String>>,
    /// A JSON body (`application/json`): a JSON object, whose strings are templates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<super::common::FreeForm>,
    /// HTTP status codes that count as success; any 2xx when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(range(min = 100, max = 599)))]
    pub expect_status: Vec<u16>,
}

/// One way to authenticate with the external app.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.type != 'static' || has(self.credentials)").message("a static auth method needs credentials: a map of templates such as apiKey: '{{ input.apiKey }}'"),
    validation = Rule::new("self.type != 'oauth2' || (has(self.authorizeUri) && has(self.tokenUri) && has(self.clientSecretRef))").message("an oauth2 auth method needs authorizeUri, tokenUri and clientSecretRef"),
    validation = Rule::new("self.type != 'client-credentials' || (has(self.tokenUri) && has(self.clientSecretRef))").message("a client-credentials auth method needs tokenUri and clientSecretRef"),
    validation = Rule::new("self.type != 'oauth1' || (has(self.requestTokenUri) && has(self.authorizeUri) && has(self.accessTokenUri) && has(self.clientSecretRef))").message("an oauth1 auth method needs requestTokenUri, authorizeUri, accessTokenUri and clientSecretRef"),
    validation = Rule::new("self.type != 'tenant-token' || (has(self.signingKeyRef) && has(self.issuer))").message("a tenant-token auth method needs signingKeyRef (the Secret key holding the signing key) and issuer (the workspace key, the token's iss)"),
    validation = Rule::new("self.type != 'proxy' || has(self.proxyKey)").message("a proxy auth method needs proxyKey: the name of the proxy that injects credentials"),
    validation = Rule::new("!has(self.refresh) || has(self.credentialsFromRefreshResponse)").message("refresh needs credentialsFromRefreshResponse: which credentials the refresh answer gives, such as sessionToken: '{{ response.token }}'"),
)]
pub struct AuthMethod {
    /// The protocol: static, oauth2, client-credentials, oauth1, tenant-token or proxy.
    #[serde(rename = "type")]
    pub type_: AuthType,
    /// Human-readable name of this method, shown when a connector offers several `options`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// JSON Schema (draft 2020-12) for what the person enters when connecting with this
    /// option (an API key, a username and password); replaces the connector's `inputSchema`
    /// for Connections that choose this option. The connect page builds its form from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<super::common::FreeForm>,

    /// static: the credentials, as a map from credential key to a template rendered over
    /// `input`, `parameters`, `tenant` and `connection` (for example
    /// `apiKey: "{{ input.apiKey }}"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<BTreeMap<String, String>>,

    /// oauth2 and oauth1: the provider's authorization (consent) endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorize_uri: Option<String>,
    /// oauth2 and client-credentials: the provider's token endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_uri: Option<String>,
    /// oauth2 and client-credentials: scopes requested by default. A Connection overrides
    /// them with `connectorParameters.scopes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// oauth2: the separator between scopes in the authorization request; a space when
    /// unset, as RFC 6749 says. Some providers want a comma.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope_separator: Option<String>,
    /// oauth2: extra query parameters for the authorization URL (for example
    /// `access_type: offline` or `prompt: consent`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_authorize_params: Option<BTreeMap<String, String>>,
    /// oauth2 and client-credentials: extra form parameters for token requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_token_params: Option<BTreeMap<String, String>>,
    /// oauth2 and client-credentials: how the client authenticates at the token endpoint,
    /// `basic` (the default) or `body`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_auth: Option<ClientAuth>,
    /// oauth2: the provider issues no refresh token; at expiry the Connection needs a person
    /// to authorize again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_refresh_token: Option<bool>,
    /// oauth2: RFC 7009 token revocation endpoint, called when a Connection is disconnected
    /// or deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoke_uri: Option<String>,
    /// oauth2, client-credentials and oauth1: the Secret holding the OAuth app's `clientId`
    /// and `clientSecret` (bring your own OAuth app). Checked against the connector's
    /// `customCredentialsSchema`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_ref: Option<SecretReference>,
    /// client-credentials: the `audience` parameter some providers require.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// oauth2: credentials derived from the token response, as a map from credential key to
    /// a template over `response` (the parsed token response). Added to the standard keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_from_token_response: Option<BTreeMap<String, String>>,
    /// oauth2: like `credentialsFromTokenResponse`, for refresh responses when they differ.
    /// With `refresh` (any type): the credentials the refresh request's answer gives, as a
    /// map from credential key to a template over `response` (the parsed JSON or form
    /// answer). The keys `expires_in` (seconds) and `expires_at` (RFC 3339 or seconds since
    /// the epoch) set when they expire; plugboard refreshes ahead of that.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_from_refresh_response: Option<BTreeMap<String, String>>,
    /// Any type: a request that exchanges the credentials for new ones (an API key for a
    /// one-hour session token, say), sent when they are first obtained, ahead of expiry,
    /// on the refresh annotation, and when the test request is refused with 401. Needs
    /// `credentialsFromRefreshResponse`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh: Option<CredentialsRefresh>,

    /// oauth1: the request-token (temporary credentials) endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_token_uri: Option<String>,
    /// oauth1: the access-token (token credentials) endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_uri: Option<String>,
    /// oauth1: how requests are signed; `HMAC-SHA1` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_method: Option<SignatureMethod>,

    /// tenant-token: the Secret key holding the signing key (a shared secret for HS256 and
    /// HS512, a PEM private key for RS256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key_ref: Option<SecretKeyReference>,
    /// tenant-token: the workspace key the provider knows your product by; minted tokens
    /// carry it as `iss`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// tenant-token: the signing algorithm; HS256 when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<SigningAlgorithm>,
    /// tenant-token: how long a minted token is valid (a duration such as `1h`); one hour when
    /// unset. plugboard mints a new one before it expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_lifetime: Option<kube::core::Duration>,

    /// proxy: the name of the proxy configuration that injects credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_key: Option<String>,
}
