//! What the consent flow (`web::consent`) reads of a Connection, through the reconcile's own
//! gather and validate: one set of rules and one set of reasons for both.

pub use super::gather::{Observed, gather};
pub use super::validate::connector_secrets;
