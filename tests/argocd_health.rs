//! The Argo CD health scripts shipped in charts/plugboard/argocd/ (and quoted in the docs),
//! run by a real Lua interpreter against the statuses plugboard writes.

use mlua::{Lua, LuaSerdeExt, Table};
use serde_json::{Value, json};

fn health(script: &str, object: Value) -> (String, String) {
    let source = std::fs::read_to_string(format!(
        "{}/charts/plugboard/argocd/{script}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let lua = Lua::new();
    lua.globals()
        .set("obj", lua.to_value(&object).unwrap())
        .unwrap();
    let hs: Table = lua.load(&source).eval().unwrap();
    (hs.get("status").unwrap(), hs.get("message").unwrap())
}

fn object(generation: i64, observed: i64, state: &str, conditions: Value) -> Value {
    json!({"metadata": {"generation": generation}, "status": {"observedGeneration": observed, "state": state, "conditions": conditions}})
}

fn cond(type_: &str, status: &str, message: &str) -> Value {
    json!({"type": type_, "status": status, "reason": "R", "message": message})
}

#[test]
fn a_connected_connection_is_healthy_only_for_its_current_generation() {
    let ready = json!([
        cond("Ready", "True", "credentials are stored and work"),
        cond("Stalled", "False", "")
    ]);
    assert_eq!(
        health("connection.lua", object(2, 2, "Connected", ready.clone())).0,
        "Healthy"
    );
    assert_eq!(
        health("connection.lua", object(3, 2, "Connected", ready)).0,
        "Progressing",
        "a newer spec is not yet reconciled"
    );
}

#[test]
fn stalled_is_degraded_with_its_message_and_waiting_is_progressing() {
    let stalled = json!([
        cond("Ready", "False", "/apiKey: value is too short"),
        cond("Stalled", "True", "/apiKey: value is too short")
    ]);
    assert_eq!(
        health("connection.lua", object(1, 1, "Error", stalled)),
        ("Degraded".into(), "/apiKey: value is too short".into())
    );
    let waiting = json!([
        cond("Ready", "False", "a person must authorize"),
        cond("Stalled", "False", "")
    ]);
    assert_eq!(
        health(
            "connection.lua",
            object(1, 1, "AuthorizationRequired", waiting)
        ),
        ("Progressing".into(), "a person must authorize".into())
    );
    assert_eq!(
        health("connection.lua", json!({"metadata": {"generation": 1}})).0,
        "Progressing",
        "no status yet"
    );
}

#[test]
fn a_disconnected_connection_is_suspended() {
    let off = json!([cond("Ready", "False", "disconnected on request")]);
    assert_eq!(
        health("connection.lua", object(4, 4, "Disconnected", off)).0,
        "Suspended"
    );
}

#[test]
fn connectors_and_tenants_use_the_generic_script() {
    let valid = json!([cond("Ready", "True", "valid"), cond("Stalled", "False", "")]);
    assert_eq!(health("generic.lua", object(1, 1, "", valid)).0, "Healthy");
    let invalid = json!([
        cond("Ready", "False", "spec.inputSchema does not compile"),
        cond("Stalled", "True", "spec.inputSchema does not compile")
    ]);
    assert_eq!(
        health("generic.lua", object(1, 1, "", invalid)).0,
        "Degraded"
    );
}

#[test]
fn the_docs_quote_the_shipped_connection_script() {
    let docs =
        std::fs::read_to_string(format!("{}/docs/operations.md", env!("CARGO_MANIFEST_DIR")))
            .unwrap();
    let script = std::fs::read_to_string(format!(
        "{}/charts/plugboard/argocd/connection.lua",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    for line in script
        .lines()
        .filter(|l| !l.starts_with("--") && !l.trim().is_empty())
    {
        assert!(
            docs.contains(line.trim()),
            "docs/operations.md lacks: {line}"
        );
    }
}
