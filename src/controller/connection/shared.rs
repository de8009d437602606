//! What the web endpoints (the consent flow, `POST /connect`) read and check of a
//! Connection, through the reconcile's own gather, dereference and validate: one set of
//! rules and one set of reasons for all of them.

pub use super::dereference::auth_method;
pub use super::gather::{Observed, gather, merge_parameters};
pub use super::validate::connector_secrets;
