//! What executing a plan produced: the data `execute` hands to `status`, in a module of its
//! own so that the steps depend on it and not on each other.

use k8s_openapi::jiff::Timestamp;

use crate::error::Error;

/// How far the pipeline got, which decides `Authorized` and `Tested`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Failed before credentials were stored.
    Credentials,
    /// Credentials stored; the test failed or could not run.
    Test,
}

/// What a run of the credentials and test steps produced.
pub struct Outcome {
    pub result: Result<Done, Failure>,
    /// Every secret value handled, to scrub from the messages status shows.
    pub secrets: Vec<String>,
}

/// Why a run stopped, and what it had done by then.
pub struct Failure {
    pub error: Error,
    pub stage: Stage,
    /// The schedule of new tokens that reached the store, whatever failed after: without it
    /// in status, the reconcile their own write wakes would find the old, passed refresh
    /// time and refresh them again, and again.
    pub stored: Option<Schedule>,
}

impl Failure {
    /// A failure before anything was stored.
    pub fn before(error: Error, stage: Stage) -> Self {
        Self {
            error,
            stage,
            stored: None,
        }
    }
}

/// When the credentials in use expire and fall due.
#[derive(Debug, Clone, Default)]
pub struct Schedule {
    pub expires_at: Option<Timestamp>,
    pub next_refresh_at: Option<Timestamp>,
    pub refreshed_at: Option<Timestamp>,
}

/// A connected Connection, as status reports it.
pub struct Done {
    pub schedule: Schedule,
    /// The refresh request annotation answered, if this run answered one.
    pub answered: Option<String>,
    pub retry: Retry,
    pub tested: bool,
    /// The store's version of the credentials, as written or read.
    pub version: Option<String>,
}

/// Whether a failed refresh is being retried while the stored credentials stay in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    None,
    /// It just failed: retry after the backoff, and no sooner than this.
    After(std::time::Duration),
    /// An earlier one failed and its retry is due then.
    Pending(Timestamp),
}
