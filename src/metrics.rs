//! Prometheus metrics, served at `/metrics` in the OpenMetrics text format.
//!
//! Every label takes values from a small fixed set (a kind, an error reason, a state, a
//! purpose); never an object name, so the number of series does not grow with the number of
//! Connections.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use kube::runtime::reflector::Store;

use crate::api::{Connection, ConnectionState};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReconcileLabels {
    kind: &'static str,
    /// `success`, or the error's reason word.
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PurposeLabels {
    /// `test`, `disconnect`, `token` or `revoke`.
    purpose: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

/// Reconcile and provider call durations span milliseconds (a no-op) to the provider timeout.
fn duration_buckets() -> impl Iterator<Item = f64> {
    [
        0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ]
    .into_iter()
}

/// New tokens wait for one store write, a millisecond or so on a healthy API server; the
/// upper buckets show an API server slow enough to widen the window a kill would fall into.
fn unsaved_buckets() -> impl Iterator<Item = f64> {
    [
        0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
    ]
    .into_iter()
}

/// The operator's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ReconcileLabels, Counter>,
    reconcile_duration: Family<KindLabels, Histogram>,
    refreshes: Family<ResultLabels, Counter>,
    provider_duration: Family<PurposeLabels, Histogram>,
    tokens_unsaved: Histogram,
    states: Arc<ConnectionStates>,
}

/// Counts the Connections in the controller's cache by `status.state` at scrape time: the
/// cache holds them already, and a map of its own kept by every reconcile cost a key per
/// Connection (1.2 MB at 10,000).
#[derive(Debug, Default)]
struct ConnectionStates(Mutex<Option<Store<Connection>>>);

/// Every state, in the order the gauge lists them; one not yet reconciled is `Pending`.
const STATES: [ConnectionState; 6] = [
    ConnectionState::Pending,
    ConnectionState::AuthorizationRequired,
    ConnectionState::Connected,
    ConnectionState::Error,
    ConnectionState::Disconnected,
    ConnectionState::Suspended,
];

impl ConnectionStates {
    fn counts(&self) -> [i64; STATES.len()] {
        let mut counts = [0; STATES.len()];
        // Cloned out of the lock: the store's own read lock is all a scrape should hold.
        let store = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for conn in store.iter().flat_map(Store::state) {
            let state = conn
                .status
                .as_ref()
                .and_then(|s| s.state)
                .unwrap_or(ConnectionState::Pending);
            if let Some(i) = STATES.iter().position(|s| *s == state) {
                counts[i] += 1;
            }
        }
        counts
    }
}

impl prometheus_client::collector::Collector for ConnectionStates {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counts = self.counts();
        let mut family = encoder.encode_descriptor(
            // The registry adds the `plugboard_` prefix.
            "connections",
            "Connections by state, as the status in this replica's cache shows them (all 0 on a replica that does not lead)",
            None,
            MetricType::Gauge,
        )?;
        for (state, count) in STATES.into_iter().zip(counts) {
            ConstGauge::new(count).encode(family.encode_family(&StateLabels {
                state: state_name(state),
            })?)?;
        }
        Ok(())
    }
}

fn state_name(state: ConnectionState) -> &'static str {
    match state {
        ConnectionState::Pending => "Pending",
        ConnectionState::AuthorizationRequired => "AuthorizationRequired",
        ConnectionState::Connected => "Connected",
        ConnectionState::Error => "Error",
        ConnectionState::Disconnected => "Disconnected",
        ConnectionState::Suspended => "Suspended",
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("plugboard");
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciles by kind and result (success or the error reason)",
            reconciles.clone(),
        );
        let reconcile_duration = Family::<KindLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(duration_buckets())
        });
        registry.register(
            "reconcile_duration_seconds",
            "How long reconciles take, by kind",
            reconcile_duration.clone(),
        );
        let refreshes = Family::<ResultLabels, Counter>::default();
        registry.register(
            "token_refreshes",
            "Token refreshes by result",
            refreshes.clone(),
        );
        let provider_duration = Family::<PurposeLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(duration_buckets())
        });
        registry.register(
            "provider_request_duration_seconds",
            "Provider calls by purpose (test, disconnect, token, revoke)",
            provider_duration.clone(),
        );
        let tokens_unsaved = Histogram::new(unsaved_buckets());
        registry.register(
            "tokens_unsaved_seconds",
            "How long new tokens existed only in the operator's memory: from the provider's answer to the store accepting them (a rotated refresh token is lost if the operator is killed inside this window)",
            tokens_unsaved.clone(),
        );
        let states = Arc::new(ConnectionStates::default());
        registry.register_collector(Box::new(states.clone()));
        Self {
            registry,
            reconciles,
            reconcile_duration,
            refreshes,
            provider_duration,
            tokens_unsaved,
            states,
        }
    }
}

impl Metrics {
    /// Counts a reconcile's outcome: `success` or the error's reason.
    pub fn reconciled(&self, kind: &'static str, result: &'static str) {
        self.reconciles
            .get_or_create(&ReconcileLabels { kind, result })
            .inc();
    }

    pub fn reconcile_took(&self, kind: &'static str, took: Duration) {
        self.reconcile_duration
            .get_or_create(&KindLabels { kind })
            .observe(took.as_secs_f64());
    }

    pub fn refreshed(&self, result: &'static str) {
        self.refreshes.get_or_create(&ResultLabels { result }).inc();
    }

    pub fn provider_call(&self, purpose: &'static str, took: Duration) {
        self.provider_duration
            .get_or_create(&PurposeLabels { purpose })
            .observe(took.as_secs_f64());
    }

    pub fn tokens_unsaved_for(&self, took: Duration) {
        self.tokens_unsaved.observe(took.as_secs_f64());
    }

    /// Counts the Connections of `cache` in the `plugboard_connections` gauge from now on;
    /// `None` when this replica stops leading and its cache stops being filled.
    pub fn count_connections(&self, cache: Option<Store<Connection>>) {
        *self.states.0.lock().unwrap_or_else(PoisonError::into_inner) = cache;
    }

    /// The metrics in the OpenMetrics text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_names_every_family_with_bounded_labels() {
        let m = Metrics::default();
        m.reconciled("Connection", "success");
        m.reconciled("Connection", "TestFailed");
        m.reconcile_took("Connection", Duration::from_millis(30));
        m.refreshed("success");
        m.provider_call("test", Duration::from_millis(20));
        let (cache, mut writer) = kube::runtime::reflector::store::<Connection>();
        let conn = |name: &str, state: Option<ConnectionState>| {
            let spec =
                serde_json::json!({"tenantRef": {"name": "t"}, "connectorRef": {"name": "c"}});
            let mut conn = Connection::new(name, serde_json::from_value(spec).expect("a spec"));
            conn.metadata.namespace = Some("acme".into());
            conn.status = state.map(|state| crate::api::ConnectionStatus {
                state: Some(state),
                ..Default::default()
            });
            kube::runtime::watcher::Event::Apply(conn)
        };
        writer.apply_watcher_event(&conn("a", Some(ConnectionState::Connected)));
        writer.apply_watcher_event(&conn("b", Some(ConnectionState::Connected)));
        writer.apply_watcher_event(&conn("c", None));
        m.count_connections(Some(cache));
        let text = m.render();
        let has = |line: &str| text.lines().any(|l| l == line);
        assert!(
            has(r#"plugboard_reconciles_total{kind="Connection",result="TestFailed"} 1"#),
            "{text}"
        );
        assert!(
            has(r#"plugboard_connections{state="Connected"} 2"#),
            "{text}"
        );
        assert!(has(r#"plugboard_connections{state="Error"} 0"#), "{text}");
        // Not reconciled yet.
        assert!(has(r#"plugboard_connections{state="Pending"} 1"#), "{text}");
        assert!(text.contains("plugboard_token_refreshes_total"), "{text}");
        assert!(
            text.contains("plugboard_provider_request_duration_seconds_bucket"),
            "{text}"
        );
        assert!(
            !text.contains("acme"),
            "no object name in any label: {text}"
        );
        m.count_connections(None);
        let text = m.render();
        assert!(
            text.lines()
                .any(|l| l == r#"plugboard_connections{state="Connected"} 0"#),
            "a replica that stopped leading counts nothing: {text}"
        );
    }
}
