//! How plugboard marks what it writes, so that people, selectors and server-side apply can
//! tell its objects and fields from everyone else's.

/// The User-Agent of every request to the API server, so that audit logs tell plugboard's
/// requests from everyone else's (kube-rs sends none of its own). A write without a field
/// manager (kube-runtime's finalizer patches) is recorded under its product, `plugboard`.
pub const USER_AGENT: &str = concat!("plugboard/", env!("CARGO_PKG_VERSION"));

/// The field manager of every write the controller makes. Stable: server-side apply keys
/// field ownership by it, so renaming it would orphan the fields plugboard owns today.
pub const FIELD_MANAGER: &str = "plugboard";
/// The field manager of what the connect endpoints write (the consent callback's tokens and
/// spent states, `POST /connect`'s objects): distinct from the controller's, so the
/// controller's own applies never remove what they own, such as the consumed-state
/// annotation.
pub const CONNECT_MANAGER: &str = "plugboard-connect";
/// The annotation that marks a new input in a Connection's input Secrets; its status echoes
/// it as `observedInputAt` once it has been worked out with that input.
pub const INPUT_UPDATED_AT: &str = "plugboard.dev/input-updated-at";
/// The label on every object plugboard creates.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY_VALUE: &str = "plugboard";

/// `config` with plugboard's User-Agent on every request.
pub fn identified(mut config: kube::Config) -> kube::Config {
    config.headers.push((
        axum::http::header::USER_AGENT,
        axum::http::HeaderValue::from_static(USER_AGENT),
    ));
    config
}
