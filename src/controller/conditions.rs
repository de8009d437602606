//! `metav1.Condition` bookkeeping shared by every kind's status.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::Condition;

/// The condition types plugboard writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionType {
    /// The summary `kubectl wait`, Flux (kstatus) and Argo CD read.
    Ready,
    /// kstatus: the controller is still working towards the goal.
    Reconciling,
    /// kstatus: only an edit will fix it.
    Stalled,
    /// A Connection's credentials are stored.
    Authorized,
    /// A Connection's test request passed.
    Tested,
}

impl ConditionType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "Ready",
            Self::Reconciling => "Reconciling",
            Self::Stalled => "Stalled",
            Self::Authorized => "Authorized",
            Self::Tested => "Tested",
        }
    }
}

pub const READY: ConditionType = ConditionType::Ready;
pub const RECONCILING: ConditionType = ConditionType::Reconciling;
pub const STALLED: ConditionType = ConditionType::Stalled;
pub const AUTHORIZED: ConditionType = ConditionType::Authorized;
pub const TESTED: ConditionType = ConditionType::Tested;

/// The `status` word of a condition that holds.
const TRUE: &str = "True";
const FALSE: &str = "False";

/// A condition as the reconcile wants it, before timestamps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub type_: ConditionType,
    pub status: bool,
    pub reason: String,
    pub message: String,
}

impl Desired {
    pub fn new(
        type_: ConditionType,
        status: bool,
        reason: &str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            type_,
            status,
            reason: reason.to_owned(),
            message: message.into(),
        }
    }
}

/// Builds the condition list from `desired`, keeping each existing condition's
/// `lastTransitionTime` when its status did not change, so an unchanged state produces an
/// identical list and therefore no write.
pub fn merge(
    existing: &[Condition],
    desired: &[Desired],
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    desired
        .iter()
        .map(|want| {
            let status = if want.status { TRUE } else { FALSE };
            let previous = find(existing, want.type_);
            let last_transition_time = match previous {
                Some(prev) if prev.status == status => prev.last_transition_time.clone(),
                _ => now.clone(),
            };
            Condition {
                type_: want.type_.as_str().into(),
                status: status.into(),
                reason: want.reason.clone().into(),
                message: want.message.clone(),
                observed_generation: generation,
                last_transition_time,
            }
        })
        .collect()
}

/// The condition of one type, if present.
pub fn find(conditions: &[Condition], type_: ConditionType) -> Option<&Condition> {
    conditions.iter().find(|c| c.type_ == type_.as_str())
}

/// The status of one condition type, if present.
pub fn is_true(conditions: &[Condition], type_: ConditionType) -> Option<bool> {
    find(conditions, type_).map(holds)
}

/// Whether a condition holds (its status is `True`).
pub fn holds(condition: &Condition) -> bool {
    condition.status == TRUE
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(s: &str) -> Time {
        Time(s.parse().unwrap())
    }

    #[test]
    fn an_unchanged_status_keeps_its_transition_time() {
        let then = time("2026-01-01T00:00:00Z");
        let now = time("2026-01-02T00:00:00Z");
        let want = [Desired::new(READY, true, "Connected", "ok")];
        let first = merge(&[], &want, Some(1), &then);
        let second = merge(&first, &want, Some(1), &now);
        assert_eq!(first, second, "same state, same list: no write");
    }

    #[test]
    fn a_flip_takes_the_new_time() {
        let then = time("2026-01-01T00:00:00Z");
        let now = time("2026-01-02T00:00:00Z");
        let first = merge(
            &[],
            &[Desired::new(READY, true, "Connected", "ok")],
            Some(1),
            &then,
        );
        let second = merge(
            &first,
            &[Desired::new(READY, false, "TestFailed", "401")],
            Some(1),
            &now,
        );
        assert_eq!(second[0].last_transition_time, now);
        assert_eq!(second[0].status, "False");
    }
}
