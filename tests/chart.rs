//! The Helm chart, rendered by Helm's real binary (installed by `charts/install-helm.sh`):
//! it lints, renders with defaults and with every optional feature, keeps the security
//! settings, asks for exactly the permissions the code uses, refuses wrong values with a
//! message, and ships the generated CRDs unchanged. Also the Dockerfile's rules.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn helm() -> PathBuf {
    let path = std::env::var("HELM")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join("target/tools/helm"));
    assert!(
        path.exists(),
        "helm is not installed at {}: run charts/install-helm.sh (scripts/test does)",
        path.display()
    );
    path
}

fn run_helm(args: &[&str]) -> (bool, String) {
    let out = Command::new(helm())
        .args(args)
        .current_dir(root().join("charts"))
        .output()
        .expect("helm runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

const ALL_FEATURES: &str = "plugboard/ci/all-features-values.yaml";

fn render(extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["template", "t", "plugboard", "--namespace", "plugboard"];
    args.extend_from_slice(extra);
    let (ok, text) = run_helm(&args);
    assert!(ok, "helm template failed: {text}");
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

fn kinds(docs: &[Value]) -> Vec<String> {
    let mut k: Vec<String> = docs
        .iter()
        .map(|d| d["kind"].as_str().unwrap().to_owned())
        .collect();
    k.sort();
    k
}

fn find<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} rendered"))
}

#[test]
fn the_chart_lints_with_defaults_and_with_every_feature() {
    for extra in [vec![], vec!["-f", ALL_FEATURES]] {
        let mut args = vec!["lint", "plugboard"];
        args.extend(extra.iter().copied());
        let (ok, text) = run_helm(&args);
        assert!(ok && text.contains("0 chart(s) failed"), "{text}");
    }
}

#[test]
fn optional_objects_appear_only_when_enabled() {
    let base = [
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "Role",
        "RoleBinding",
        "Service",
        "ServiceAccount",
    ];
    assert_eq!(kinds(&render(&[])), base);
    let mut all: Vec<&str> = base.to_vec();
    all.extend([
        "ConfigMap",
        "Ingress",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "ServiceMonitor",
    ]);
    all.sort();
    assert_eq!(kinds(&render(&["-f", ALL_FEATURES])), all);
}

#[test]
fn the_deployment_runs_locked_down_with_probes_and_resources() {
    for docs in [render(&[]), render(&["-f", ALL_FEATURES])] {
        let pod = &find(&docs, "Deployment")["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        let c = &pod["containers"][0];
        let sc = &c["securityContext"];
        assert_eq!(sc["readOnlyRootFilesystem"], true);
        assert_eq!(sc["allowPrivilegeEscalation"], false);
        assert_eq!(sc["capabilities"]["drop"][0], "ALL");
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
        assert!(
            c["resources"]["requests"]["memory"].is_string()
                && c["resources"]["limits"]["memory"].is_string()
        );
    }
    let docs = render(&["-f", ALL_FEATURES]);
    let env = &find(&docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"];
    let value = |name: &str| {
        env.as_sequence()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .map(|e| e["value"].clone())
    };
    assert_eq!(
        value("PLUGBOARD_LEADER_ELECTION"),
        Some("true".into()),
        "two replicas elect a leader"
    );
    assert_eq!(
        value("PLUGBOARD_PUBLIC_URL"),
        Some("https://plugboard.example.com".into())
    );
    let ingress = serde_yaml::to_string(&find(&docs, "Ingress")["spec"]).unwrap();
    assert!(
        ingress.contains("/oauth/callback") && !ingress.contains("/metrics"),
        "{ingress}"
    );
}

/// (apiGroup, resource, verb) triples, sorted.
fn rules(role: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for rule in role["rules"].as_sequence().unwrap() {
        for g in rule["apiGroups"].as_sequence().unwrap() {
            for r in rule["resources"].as_sequence().unwrap() {
                for v in rule["verbs"].as_sequence().unwrap() {
                    out.push((
                        g.as_str().unwrap().into(),
                        r.as_str().unwrap().into(),
                        v.as_str().unwrap().into(),
                    ));
                }
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_cluster_role_grants_exactly_what_the_code_calls() {
    // What the code does, and where: each line is one API call the operator makes.
    let calls: &[(&str, &str, &[&str])] = &[
        // watch caches and triggers (controller/mod.rs), dereference fallbacks (connection/dereference.rs)
        ("plugboard.dev", "connectors", &["get", "list", "watch"]),
        (
            "plugboard.dev",
            "clusterconnectors",
            &["get", "list", "watch"],
        ),
        ("plugboard.dev", "tenants", &["get", "list", "watch"]),
        // Connection watch, the connect flow's get, the finalizer helper's JSON patch
        (
            "plugboard.dev",
            "connections",
            &["get", "list", "watch", "patch"],
        ),
        // status by server-side apply (connection/status.rs, connector.rs, tenant.rs)
        ("plugboard.dev", "connections/status", &["patch"]),
        ("plugboard.dev", "connectors/status", &["patch"]),
        ("plugboard.dev", "clusterconnectors/status", &["patch"]),
        ("plugboard.dev", "tenants/status", &["patch"]),
        // blockOwnerDeletion on the credentials Secret's owner reference
        ("plugboard.dev", "connections/finalizers", &["update"]),
        // credentials Secrets (store.rs, authorize.rs), referenced Secrets, the state key (operator.rs)
        (
            "",
            "secrets",
            &["get", "list", "watch", "create", "patch", "delete"],
        ),
        // events::Recorder
        ("events.k8s.io", "events", &["create", "patch"]),
    ];
    let mut want: Vec<(String, String, String)> = calls
        .iter()
        .flat_map(|(g, r, vs)| {
            vs.iter()
                .map(move |v| (g.to_string(), r.to_string(), v.to_string()))
        })
        .collect();
    want.sort();
    let docs = render(&[]);
    assert_eq!(rules(find(&docs, "ClusterRole")), want);
    let lease: Vec<_> = rules(find(&docs, "Role"));
    assert_eq!(
        lease,
        [
            ("coordination.k8s.io", "leases", "create"),
            ("coordination.k8s.io", "leases", "get"),
            ("coordination.k8s.io", "leases", "patch")
        ]
        .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()))
    );
    // Every kind the code opens an Api for is in the table.
    let mut source = String::new();
    for entry in walk(&root().join("src")) {
        source.push_str(&std::fs::read_to_string(entry).unwrap());
    }
    for (kind, resource) in [
        ("Connection", "connections"),
        ("Connector", "connectors"),
        ("ClusterConnector", "clusterconnectors"),
        ("Tenant", "tenants"),
        ("Secret", "secrets"),
    ] {
        assert!(
            source.contains(&format!("Api<{kind}>")) || source.contains(&format!("Api::<{kind}>")),
            "{kind} is used"
        );
        assert!(
            want.iter().any(|(_, r, _)| r == resource),
            "{resource} has rules"
        );
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

#[test]
fn wrong_values_fail_with_a_message_naming_the_value() {
    for (set, expected) in [
        ("replicas=zero", "/replicas"),
        ("logFormat=xml", "/logFormat"),
        ("defaultStore=s3", "/defaultStore"),
        ("publicUrl=ftp://x", "/publicUrl"),
        ("replicass=2", "replicass"),
    ] {
        let (ok, text) = run_helm(&["template", "t", "plugboard", "--set", set]);
        assert!(!ok, "{set} was accepted");
        assert!(text.contains(expected), "{set}: {text}");
    }
}

#[test]
fn the_chart_ships_the_generated_crds_unchanged() {
    let generated = root().join("crds");
    for entry in std::fs::read_dir(&generated).unwrap() {
        let name = entry.unwrap().file_name();
        let want = std::fs::read(generated.join(&name)).unwrap();
        let have =
            std::fs::read(root().join("charts/plugboard/crds").join(&name)).unwrap_or_else(|_| {
                panic!(
                    "charts/plugboard/crds/{} is missing",
                    name.to_string_lossy()
                )
            });
        assert!(
            have == want,
            "charts/plugboard/crds/{} differs from crds/: copy crds/*.yaml into the chart",
            name.to_string_lossy()
        );
    }
}

#[test]
fn the_dockerfile_builds_in_one_stage_and_runs_as_non_root_in_another() {
    let text = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let froms: Vec<&str> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert!(froms.len() >= 2, "multi-stage");
    assert!(
        froms
            .iter()
            .all(|f| !f.contains(":latest") && f.contains(':')),
        "pinned tags: {froms:?}"
    );
    assert!(
        froms.last().unwrap().contains("distroless"),
        "a distroless final image"
    );
    let user = text
        .lines()
        .rev()
        .find(|l| l.starts_with("USER "))
        .expect("a USER line");
    assert!(!user.contains("root") || user.contains("nonroot"), "{user}");
    assert!(user.contains("65532"), "{user}");
}

#[test]
fn the_notes_carry_the_argo_cd_health_script_for_every_kind() {
    let (ok, text) = run_helm(&[
        "install",
        "t",
        "plugboard",
        "--dry-run=client",
        "--namespace",
        "plugboard",
    ]);
    assert!(ok, "{text}");
    let notes = text.split("NOTES:").nth(1).expect("NOTES are rendered");
    for kind in ["Connection", "Connector", "ClusterConnector", "Tenant"] {
        assert!(
            notes.contains(&format!(
                "resource.customizations.health.plugboard.dev_{kind}: |"
            )),
            "{kind}: {notes}"
        );
    }
    assert!(notes.contains(r#"return {status = "Degraded", message = c.message}"#));
}
