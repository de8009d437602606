//! Micro-benchmarks of what every Connection reconcile does in memory: rendering templates,
//! validating input against a connector's schema, and deciding whether the status changed;
//! and of decoding a Connection, which every watch event of one costs.
//!
//! `cargo bench --bench hot_paths`

use criterion::{Criterion, criterion_group, criterion_main};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{self as metav1, Time};
use serde_json::json;
use std::hint::black_box;

use plugboard::api::{Condition, Connection, ConnectionState, ConnectionStatus};
use plugboard::controller::conditions::{self, Desired};
use plugboard::schemas;
use plugboard::templates::{self, Templates};

fn context() -> minijinja::Value {
    templates::to_value(&json!({
        "input": {"apiKey": "sk_test_0123456789abcdef", "subdomain": "acme"},
        "parameters": {"environment": "production", "scopes": ["contacts", "deals"]},
        "tenant": {"id": "t-1", "name": "Acme", "fields": {"plan": "enterprise"}},
        "credentials": {"apiKey": "sk_test_0123456789abcdef"},
        "connection": {"name": "acme-stripe", "namespace": "acme"},
    }))
}

fn template_rendering(c: &mut Criterion) {
    let t = Templates::default();
    let ctx = context();
    let mut group = c.benchmark_group("templates");
    group.bench_function("header", |b| {
        b.iter(|| t.render(black_box("Bearer {{ credentials.apiKey }}"), &ctx))
    });
    group.bench_function("base_uri", |b| {
        b.iter(|| {
            t.render(
                black_box(
                    "https://{{ input.subdomain }}.{{ parameters.environment }}.example.com/v1",
                ),
                &ctx,
            )
        })
    });
    group.bench_function("literal", |b| {
        b.iter(|| t.render(black_box("application/json"), &ctx))
    });
    group.finish();
}

fn schema_validation(c: &mut Criterion) {
    let schema = json!({
        "type": "object",
        "required": ["apiKey"],
        "properties": {
            "apiKey": {"type": "string", "minLength": 12, "pattern": "^sk_"},
            "region": {"enum": ["eu", "us"]},
        },
        "additionalProperties": false,
    });
    let input = json!({"apiKey": "sk_test_0123456789abcdef", "region": "eu"});
    let validator = schemas::compile(&schema).expect("compiles");
    let mut group = c.benchmark_group("schemas");
    // A reconcile compiles the connector's schemas and then validates; both are measured.
    group.bench_function("compile", |b| {
        b.iter(|| schemas::compile(black_box(&schema)))
    });
    group.bench_function("validate", |b| {
        b.iter(|| schemas::violations(&validator, black_box(&input)))
    });
    group.bench_function("compile_and_validate", |b| {
        b.iter(|| {
            let v = schemas::compile(black_box(&schema)).expect("compiles");
            schemas::violations(&v, black_box(&input))
        })
    });
    group.finish();
}

fn connected() -> Vec<Desired> {
    vec![
        Desired::new(
            conditions::READY,
            true,
            "Connected",
            "credentials are stored and work",
        ),
        Desired::new(
            conditions::AUTHORIZED,
            true,
            "CredentialsStored",
            "credentials are stored",
        ),
        Desired::new(
            conditions::TESTED,
            true,
            "TestPassed",
            "the connector's test request succeeded",
        ),
        Desired::new(conditions::RECONCILING, false, "Connected", ""),
        Desired::new(conditions::STALLED, false, "Connected", ""),
    ]
}

/// What a no-op reconcile does to decide it must not write: build the next status from the
/// current one, and compare.
fn status_comparison(c: &mut Criterion) {
    let then = Time("2026-01-01T00:00:00Z".parse().unwrap());
    let now = Time("2026-01-01T01:00:00Z".parse().unwrap());
    let desired = connected();
    let current = ConnectionStatus {
        observed_generation: Some(1),
        conditions: conditions::merge(&[], &desired, Some(1), &then),
        state: Some(ConnectionState::Connected),
        last_tested_at: Some("2026-01-01T00:00:00Z".into()),
        ..ConnectionStatus::default()
    };
    c.bench_function("status/unchanged", |b| {
        b.iter(|| {
            let next = ConnectionStatus {
                conditions: conditions::merge(&current.conditions, &desired, Some(1), &now),
                ..current.clone()
            };
            black_box(next == current)
        })
    });
}

/// Decoding a Connected Connection as a watch event delivers it, and its conditions alone
/// with shared words (`plugboard::api::Condition`) against `metav1.Condition`'s own strings.
fn decoding(c: &mut Criterion) {
    let then = Time("2026-01-01T00:00:00Z".parse().unwrap());
    let conditions = conditions::merge(&[], &connected(), Some(1), &then);
    let connection = json!({
        "apiVersion": "plugboard.dev/v1alpha1",
        "kind": "Connection",
        "metadata": {"name": "c-1", "namespace": "bench", "resourceVersion": "12345",
            "uid": "0b6f1c9e-5d1a-4a8e-9a57-3c2f4f0e9d11", "generation": 1,
            "finalizers": ["plugboard.dev/cleanup"]},
        "spec": {"tenantRef": {"name": "t-1"}, "connectorRef": {"name": "api-0"},
            "inputFrom": [{"field": "apiKey", "secretKeyRef": {"name": "c-1-input", "key": "api-key"}}]},
        "status": {"observedGeneration": 1, "state": "Connected", "conditions": conditions,
            "lastTestedAt": "2026-01-01T00:00:00Z"},
    });
    let bytes = serde_json::to_vec(&connection).unwrap();
    let condition_bytes = serde_json::to_vec(&conditions).unwrap();
    let mut group = c.benchmark_group("decode");
    group.bench_function("connection", |b| {
        b.iter(|| black_box(serde_json::from_slice::<Connection>(&bytes).unwrap()))
    });
    group.bench_function("conditions_shared_words", |b| {
        b.iter(|| black_box(serde_json::from_slice::<Vec<Condition>>(&condition_bytes).unwrap()))
    });
    group.bench_function("conditions_metav1", |b| {
        b.iter(|| {
            black_box(serde_json::from_slice::<Vec<metav1::Condition>>(&condition_bytes).unwrap())
        })
    });
    group.finish();
}

criterion_group!(
    hot_paths,
    template_rendering,
    schema_validation,
    status_comparison,
    decoding
);
criterion_main!(hot_paths);
