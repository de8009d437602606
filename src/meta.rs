//! How plugboard marks what it writes, so that people, selectors and server-side apply can
//! tell its objects and fields from everyone else's.

/// The field manager of every write the controller makes. Stable: server-side apply keys
/// field ownership by it, so renaming it would orphan the fields plugboard owns today.
pub const FIELD_MANAGER: &str = "plugboard";
/// The field manager of what the consent callback writes: distinct from the controller's, so
/// the controller's own applies never remove the consumed-state annotation it owns.
pub const CONSENT_MANAGER: &str = "plugboard-connect";
/// The label on every object plugboard creates.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY_VALUE: &str = "plugboard";
