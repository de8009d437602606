//! The Argo CD health checks shipped in `charts/plugboard/argocd/<kind>.lua` (and quoted in
//! the chart's NOTES and in docs/operations.md), run by a real Lua interpreter (mlua, Lua 5.4
//! built from source) against statuses built with the operator's own status types, so the
//! field names are the ones plugboard writes.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use mlua::{Lua, LuaSerdeExt, Table};
use plugboard::api::{ConnectionState, ConnectionStatus, ConnectorStatus, TenantStatus};
use plugboard::controller::conditions::{self, ConditionType, Desired};
use serde_json::{Value, json};

const KINDS: [&str; 4] = ["Connection", "Connector", "ClusterConnector", "Tenant"];

fn root() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn script(kind: &str) -> String {
    let path = root().join(format!(
        "charts/plugboard/argocd/{}.lua",
        kind.to_lowercase()
    ));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs the kind's script as Argo CD does: `obj` is the object, the chunk returns `hs`.
fn health(kind: &str, object: &Value) -> (String, String) {
    let lua = Lua::new();
    lua.globals()
        .set("obj", lua.to_value(object).unwrap())
        .unwrap();
    let hs: Table = lua
        .load(script(kind))
        .set_name(format!("{kind}.lua"))
        .eval()
        .unwrap_or_else(|e| panic!("{kind}.lua fails on {object}: {e}"));
    (hs.get("status").unwrap(), hs.get("message").unwrap())
}

/// Conditions as the controllers write them (`conditions::merge`), for `generation`.
fn conds(
    generation: i64,
    wanted: &[(ConditionType, bool, &str)],
) -> Vec<plugboard::api::Condition> {
    let desired: Vec<Desired> = wanted
        .iter()
        .map(|(t, s, msg)| Desired::new(*t, *s, "Reason", *msg))
        .collect();
    let now = Time("2026-01-01T00:00:00Z".parse().unwrap());
    conditions::merge(&[], &desired, Some(generation), &now)
}

/// An object of `kind` at `generation` whose status the operator wrote for `observed`.
fn object(
    kind: &str,
    generation: i64,
    observed: i64,
    state: Option<ConnectionState>,
    wanted: &[(ConditionType, bool, &str)],
) -> Value {
    let conditions = conds(observed, wanted);
    let status = match kind {
        "Connection" => serde_json::to_value(ConnectionStatus {
            observed_generation: Some(observed),
            conditions,
            state,
            ..Default::default()
        }),
        "Tenant" => serde_json::to_value(TenantStatus {
            observed_generation: Some(observed),
            conditions,
            ..Default::default()
        }),
        _ => serde_json::to_value(ConnectorStatus {
            observed_generation: Some(observed),
            conditions,
            ..Default::default()
        }),
    }
    .unwrap();
    json!({
        "apiVersion": "plugboard.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": "sample", "namespace": "acme", "generation": generation},
        "status": status,
    })
}

const READY: ConditionType = conditions::READY;
const STALLED: ConditionType = conditions::STALLED;
const RECONCILING: ConditionType = conditions::RECONCILING;

#[test]
fn every_kind_in_the_crds_has_a_script() {
    let mut kinds: Vec<String> = std::fs::read_dir(root().join("crds"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .map(|text| {
            let crd: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
            crd["spec"]["names"]["kind"].as_str().unwrap().to_owned()
        })
        .collect();
    kinds.sort();
    let mut ours = KINDS.map(str::to_owned).to_vec();
    ours.sort();
    assert_eq!(kinds, ours, "a kind without an Argo CD health script");
    for kind in KINDS {
        assert!(script(kind).contains(&format!("plugboard.dev/v1alpha1 {kind} ")));
    }
}

#[test]
fn ready_for_the_current_generation_is_healthy_with_its_message() {
    for kind in KINDS {
        let state = (kind == "Connection").then_some(ConnectionState::Connected);
        let obj = object(
            kind,
            3,
            3,
            state,
            &[
                (READY, true, "all good"),
                (RECONCILING, false, ""),
                (STALLED, false, ""),
            ],
        );
        assert_eq!(
            health(kind, &obj),
            ("Healthy".into(), "all good".into()),
            "{kind}"
        );
    }
}

#[test]
fn a_status_for_an_older_generation_is_progressing_even_if_ready_or_stalled() {
    for kind in KINDS {
        for wanted in [
            [(READY, true, "all good"), (STALLED, false, "")],
            [(READY, false, "bad input"), (STALLED, true, "bad input")],
        ] {
            let obj = object(kind, 4, 3, None, &wanted);
            assert_eq!(
                health(kind, &obj),
                (
                    "Progressing".into(),
                    "Waiting for plugboard to observe generation 4".into()
                ),
                "{kind}: {wanted:?}"
            );
        }
    }
}

#[test]
fn stalled_is_degraded_with_its_message_in_any_condition_order() {
    for kind in KINDS {
        for wanted in [
            [
                (READY, false, "/apiKey: too short"),
                (STALLED, true, "/apiKey: too short"),
            ],
            [
                (STALLED, true, "/apiKey: too short"),
                (READY, false, "/apiKey: too short"),
            ],
        ] {
            let state = (kind == "Connection").then_some(ConnectionState::Error);
            let obj = object(kind, 1, 1, state, &wanted);
            assert_eq!(
                health(kind, &obj),
                ("Degraded".into(), "/apiKey: too short".into()),
                "{kind}: {wanted:?}"
            );
        }
    }
}

#[test]
fn not_ready_and_not_stalled_is_progressing_with_the_ready_message() {
    for kind in KINDS {
        let state = (kind == "Connection").then_some(ConnectionState::AuthorizationRequired);
        let wanted = [
            (READY, false, "a person must authorize at the provider"),
            (RECONCILING, true, "waiting"),
            (STALLED, false, ""),
        ];
        assert_eq!(
            health(kind, &object(kind, 2, 2, state, &wanted)),
            (
                "Progressing".into(),
                "a person must authorize at the provider".into()
            ),
            "{kind}"
        );
    }
}

#[test]
fn no_status_or_no_conditions_yet_is_progressing() {
    for kind in KINDS {
        let bare = json!({"kind": kind, "metadata": {"name": "x", "generation": 1}});
        assert_eq!(health(kind, &bare).0, "Progressing", "{kind}");
        let empty = object(kind, 1, 1, None, &[]);
        assert_eq!(health(kind, &empty).0, "Progressing", "{kind}");
    }
}

#[test]
fn a_disconnected_connection_is_suspended_and_other_kinds_have_no_such_state() {
    let wanted = [
        (READY, false, "disconnected on request"),
        (STALLED, false, ""),
    ];
    let off = object(
        "Connection",
        5,
        5,
        Some(ConnectionState::Disconnected),
        &wanted,
    );
    assert_eq!(health("Connection", &off).0, "Suspended");
    // The same status words on another kind are not a suspension.
    let mut tenant = object("Tenant", 5, 5, None, &wanted);
    tenant["status"]["state"] = "Disconnected".into();
    assert_eq!(health("Tenant", &tenant).0, "Progressing");
}

/// Argo CD runs health checks with gopher-lua, which speaks Lua 5.1; the interpreter here is
/// 5.4. A text check keeps the scripts to syntax both accept.
#[test]
fn the_scripts_use_no_syntax_newer_than_lua_5_1() {
    for kind in KINDS {
        let code: String = script(kind)
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        for newer in [
            "goto ", "//", "<const>", "<close>", "<<", ">>", "&", "|", "::",
        ] {
            assert!(!code.contains(newer), "{kind}.lua uses `{newer}`");
        }
    }
}

#[test]
fn the_docs_quote_every_script_as_shipped() {
    let docs = std::fs::read_to_string(root().join("docs/operations.md")).unwrap();
    for kind in KINDS {
        let key = format!("resource.customizations.health.plugboard.dev_{kind}: |\n");
        let at = docs
            .find(&key)
            .unwrap_or_else(|| panic!("docs/operations.md has no {key}"));
        let quoted: String = script(kind)
            .lines()
            .map(|l| {
                if l.is_empty() {
                    "\n".to_owned()
                } else {
                    format!("    {l}\n")
                }
            })
            .collect();
        assert!(
            docs[at + key.len()..].starts_with(&quoted),
            "docs/operations.md does not quote charts/plugboard/argocd/{}.lua as it is",
            kind.to_lowercase()
        );
    }
}

#[test]
fn a_suspended_tenant_and_its_paused_connections_are_suspended() {
    let paused = object(
        "Connection",
        2,
        2,
        Some(ConnectionState::Suspended),
        &[
            (
                READY,
                false,
                "tenant \"globex\" is suspended (spec.suspended)",
            ),
            (STALLED, false, ""),
        ],
    );
    assert_eq!(
        health("Connection", &paused),
        (
            "Suspended".to_owned(),
            "tenant \"globex\" is suspended (spec.suspended)".to_owned()
        )
    );
    let mut tenant = object("Tenant", 3, 3, None, &[(READY, true, "fields are valid")]);
    assert_eq!(health("Tenant", &tenant).0, "Healthy");
    tenant["spec"] = json!({"suspended": true});
    assert_eq!(health("Tenant", &tenant).0, "Suspended");
    tenant["spec"] = json!({"suspended": false});
    assert_eq!(health("Tenant", &tenant).0, "Healthy");
}
