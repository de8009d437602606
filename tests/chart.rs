//! The Helm chart in charts/plugboard, linted and rendered by Helm's real binary (installed by
//! charts/install-helm.sh): the security settings, the values wired into the pod, the optional
//! objects, values.schema.json refusing wrong values, the CRDs, the NOTES, and a ClusterRole
//! that grants exactly the API calls src/ makes. Also the Dockerfile's rules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml::Value;

#[path = "chart/rbac_scan.rs"]
mod rbac_scan;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Helm: `$HELM`, else `helm` on `PATH`, else `target/tools/helm`. Never skipped: without it
/// every chart test fails, saying how to install it.
fn helm() -> PathBuf {
    if let Some(path) = std::env::var_os("HELM") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "HELM={} is not a file: unset it, or run charts/install-helm.sh",
            path.display()
        );
        return path;
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join("helm"))
        .find(|p| p.is_file());
    let installed = root().join("target/tools/helm");
    on_path
        .or_else(|| installed.is_file().then_some(installed))
        .unwrap_or_else(|| {
            panic!(
                "helm not found ($HELM, PATH, target/tools/helm): run charts/install-helm.sh \
                 (scripts/test does), or set HELM to a helm binary"
            )
        })
}

/// Runs helm in charts/; returns whether it succeeded and what it printed.
fn run_helm(args: &[&str]) -> (bool, String) {
    let out = Command::new(helm())
        .args(args)
        .current_dir(root().join("charts"))
        .output()
        .expect("helm runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

const ALL_FEATURES: &str = "plugboard/ci/all-features-values.yaml";
const NAMESPACE: &str = "plugboard-system";

/// `helm template` as release `t` in NAMESPACE, parsed into its documents.
fn render(extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["template", "t", "plugboard", "--namespace", NAMESPACE];
    args.extend_from_slice(extra);
    let (ok, text) = run_helm(&args);
    assert!(ok, "helm template {extra:?} failed: {text}");
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).expect("helm renders YAML"))
        .filter(|v: &Value| !v.is_null())
        .collect()
}

fn kinds(docs: &[Value]) -> Vec<String> {
    let mut k: Vec<String> = docs.iter().map(|d| str_of(&d["kind"])).collect();
    k.sort();
    k
}

fn find<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} rendered"))
}

fn str_of(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v:?}"))
        .to_owned()
}

fn seq(v: &Value) -> &Vec<Value> {
    v.as_sequence()
        .unwrap_or_else(|| panic!("not a list: {v:?}"))
}

fn pod(docs: &[Value]) -> &Value {
    &find(docs, "Deployment")["spec"]["template"]["spec"]
}

fn container(docs: &[Value]) -> &Value {
    let containers = seq(&pod(docs)["containers"]);
    assert_eq!(containers.len(), 1, "one container");
    &containers[0]
}

/// The container's environment: name → literal value (or the downward-API field path).
fn env(docs: &[Value]) -> BTreeMap<String, String> {
    seq(&container(docs)["env"])
        .iter()
        .map(|e| {
            let value = match e["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                Some(field) => format!("fieldRef:{field}"),
                None => str_of(&e["value"]),
            };
            (str_of(&e["name"]), value)
        })
        .collect()
}

#[test]
fn the_chart_lints_with_defaults_and_with_every_feature() {
    for extra in [vec![], vec!["-f", ALL_FEATURES]] {
        let mut args = vec!["lint", "plugboard", "--strict"];
        args.extend(extra.iter().copied());
        let (ok, text) = run_helm(&args);
        assert!(
            ok && text.contains("1 chart(s) linted, 0 chart(s) failed"),
            "{text}"
        );
    }
}

const BASE: [&str; 5] = [
    "ClusterRole",
    "ClusterRoleBinding",
    "Deployment",
    "Service",
    "ServiceAccount",
];

fn base_plus(extra: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = BASE.iter().chain(extra).map(|s| s.to_string()).collect();
    all.sort();
    all
}

#[test]
fn optional_objects_appear_only_when_enabled() {
    assert_eq!(kinds(&render(&[])), base_plus(&[]));
    let url = "publicUrl=https://plugboard.example.com";
    for (set, adds) in [
        (vec!["ingress.enabled=true", url], vec!["Ingress"]),
        (vec!["serviceMonitor.enabled=true"], vec!["ServiceMonitor"]),
        (
            vec!["podDisruptionBudget.enabled=true"],
            vec!["PodDisruptionBudget"],
        ),
        (vec!["networkPolicy.enabled=true"], vec!["NetworkPolicy"]),
        (vec!["tenantFieldsSchema.type=object"], vec!["ConfigMap"]),
        (
            vec!["leaderElection.enabled=true"],
            vec!["Role", "RoleBinding"],
        ),
        (
            vec!["replicas=2"],
            vec!["PodDisruptionBudget", "Role", "RoleBinding"],
        ),
        (vec!["serviceAccount.create=false"], vec![]),
    ] {
        let args: Vec<&str> = set.iter().flat_map(|s| ["--set", s]).collect();
        let mut want = base_plus(&adds);
        if set == ["serviceAccount.create=false"] {
            want.retain(|k| k != "ServiceAccount");
        }
        assert_eq!(kinds(&render(&args)), want, "{set:?}");
    }
    assert_eq!(
        kinds(&render(&["-f", ALL_FEATURES])),
        base_plus(&[
            "ConfigMap",
            "Ingress",
            "NetworkPolicy",
            "PodDisruptionBudget",
            "Role",
            "RoleBinding",
            "ServiceMonitor",
        ])
    );
}

#[test]
fn the_pod_runs_as_non_root_read_only_without_privileges() {
    for docs in [render(&[]), render(&["-f", ALL_FEATURES])] {
        let pod = pod(&docs);
        let psc = &pod["securityContext"];
        assert_eq!(psc["runAsNonRoot"], true);
        assert_eq!(psc["runAsUser"], 65532);
        assert_eq!(psc["seccompProfile"]["type"], "RuntimeDefault");
        for host in ["hostNetwork", "hostPID", "hostIPC"] {
            assert!(pod[host].is_null() || pod[host] == false, "{host}");
        }
        let c = container(&docs);
        let sc = &c["securityContext"];
        assert_eq!(sc["runAsNonRoot"], true);
        assert_eq!(sc["runAsUser"], 65532);
        assert_eq!(sc["readOnlyRootFilesystem"], true);
        assert_eq!(sc["allowPrivilegeEscalation"], false);
        assert!(sc["privileged"].is_null() || sc["privileged"] == false);
        assert_eq!(seq(&sc["capabilities"]["drop"]), &[Value::from("ALL")]);
        assert!(
            sc["capabilities"]["add"].is_null(),
            "no capability is added"
        );
        assert_eq!(c["args"], Value::from(vec!["run"]));
    }
}

#[test]
fn probes_hit_healthz_and_readyz_on_the_http_port() {
    let docs = render(&[]);
    let c = container(&docs);
    let ports = seq(&c["ports"]);
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0]["name"], "http");
    assert_eq!(ports[0]["containerPort"], 8080);
    assert_eq!(env(&docs)["PLUGBOARD_LISTEN"], "0.0.0.0:8080");
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        assert_eq!(c[probe]["httpGet"]["path"], path, "{probe}");
        assert_eq!(c[probe]["httpGet"]["port"], "http", "{probe}");
    }
    let service = find(&docs, "Service");
    let port = &seq(&service["spec"]["ports"])[0];
    assert_eq!(
        (&port["name"], &port["targetPort"]),
        (&"http".into(), &"http".into())
    );
    assert_eq!(
        service["spec"]["selector"],
        find(&docs, "Deployment")["spec"]["template"]["metadata"]["labels"],
        "the Service selects the pods"
    );
}

#[test]
fn resources_and_the_image_come_from_values() {
    let chart: Value = serde_yaml::from_str(
        &std::fs::read_to_string(root().join("charts/plugboard/Chart.yaml")).unwrap(),
    )
    .unwrap();
    let docs = render(&[]);
    let c = container(&docs);
    assert_eq!(
        str_of(&c["image"]),
        format!(
            "ghcr.io/plugboard-dev/plugboard:{}",
            str_of(&chart["appVersion"])
        ),
        "the tag defaults to appVersion"
    );
    for (kind, key) in [
        ("requests", "cpu"),
        ("requests", "memory"),
        ("limits", "memory"),
    ] {
        assert!(c["resources"][kind][key].is_string(), "{kind}.{key}");
    }
    let docs = render(&[
        "--set",
        "resources.limits.memory=300Mi",
        "--set",
        "image.tag=1.2.3",
        "--set",
        "image.pullPolicy=Always",
    ]);
    let c = container(&docs);
    assert_eq!(c["resources"]["limits"]["memory"], "300Mi");
    assert!(str_of(&c["image"]).ends_with(":1.2.3"));
    assert_eq!(c["imagePullPolicy"], "Always");
}

#[test]
fn values_become_the_operators_environment() {
    let base = BTreeMap::from([
        ("PLUGBOARD_LISTEN", "0.0.0.0:8080"),
        ("PLUGBOARD_LOG", "info"),
        ("PLUGBOARD_LOG_FORMAT", "json"),
        ("PLUGBOARD_ALLOW_PRIVATE_NETWORKS", "false"),
        ("PLUGBOARD_LEADER_ELECTION", "false"),
        ("PLUGBOARD_LEASE_NAME", "t-plugboard-leader"),
        ("PLUGBOARD_STATE_KEY_SECRET", "t-plugboard-state-key"),
        ("PLUGBOARD_DEFAULT_STORE", "kubernetes"),
        ("POD_NAME", "fieldRef:metadata.name"),
        ("POD_NAMESPACE", "fieldRef:metadata.namespace"),
    ]);
    let owned = |m: &BTreeMap<&str, &str>| -> BTreeMap<String, String> {
        m.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(env(&render(&[])), owned(&base));
    let mut all = base.clone();
    all.extend([
        ("PLUGBOARD_LOG", "plugboard=debug,kube=info"),
        ("PLUGBOARD_LOG_FORMAT", "text"),
        ("PLUGBOARD_ALLOW_PRIVATE_NETWORKS", "true"),
        ("PLUGBOARD_LEADER_ELECTION", "true"),
        ("PLUGBOARD_DEFAULT_STORE", "vault"),
        ("PLUGBOARD_PUBLIC_URL", "https://plugboard.example.com"),
        (
            "PLUGBOARD_REDIRECT_ALLOWLIST",
            "https://app.example.com/integrations,https://admin.example.com/",
        ),
        ("PLUGBOARD_NAMESPACE", "acme"),
        ("PLUGBOARD_CONNECT_NAMESPACE", "acme"),
        ("PLUGBOARD_WORKSPACE_SECRET", "acme-workspace"),
        (
            "PLUGBOARD_CONNECT_FRAME_ANCESTORS",
            "https://app.example.com,https://admin.example.com",
        ),
        (
            "PLUGBOARD_TENANT_FIELDS_SCHEMA",
            "/etc/plugboard/tenant-fields-schema.json",
        ),
    ]);
    let docs = render(&["-f", ALL_FEATURES]);
    assert_eq!(env(&docs), owned(&all));
    // Two replicas elect a leader even when leaderElection.enabled says false.
    let two = render(&[
        "--set",
        "replicas=2",
        "--set",
        "leaderElection.enabled=false",
    ]);
    assert_eq!(env(&two)["PLUGBOARD_LEADER_ELECTION"], "true");
}

#[test]
fn the_tenant_fields_schema_is_mounted_where_the_environment_points() {
    let docs = render(&["-f", ALL_FEATURES]);
    let values: Value = serde_yaml::from_str(
        &std::fs::read_to_string(root().join("charts").join(ALL_FEATURES)).unwrap(),
    )
    .unwrap();
    let config_map = find(&docs, "ConfigMap");
    let file = str_of(&config_map["data"]["tenant-fields-schema.json"]);
    let rendered: serde_json::Value = serde_json::from_str(&file).expect("the schema is JSON");
    let wanted: serde_json::Value =
        serde_json::to_value(&values["tenantFieldsSchema"]).expect("values are JSON-able");
    assert_eq!(rendered, wanted);
    let pod = pod(&docs);
    let volume = &seq(&pod["volumes"])[0];
    assert_eq!(volume["configMap"]["name"], config_map["metadata"]["name"]);
    let mount = &seq(&container(&docs)["volumeMounts"])[0];
    assert_eq!(mount["name"], volume["name"]);
    let path = Path::new(&str_of(&mount["mountPath"])).join("tenant-fields-schema.json");
    assert_eq!(
        env(&docs)["PLUGBOARD_TENANT_FIELDS_SCHEMA"],
        path.to_string_lossy()
    );
    assert!(
        find(&docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
            ["checksum/tenant-fields-schema"]
            .is_string(),
        "a schema change restarts the pods"
    );
}

#[test]
fn the_optional_objects_point_at_the_operator() {
    let docs = render(&["-f", ALL_FEATURES]);
    let pod_labels = &find(&docs, "Deployment")["spec"]["template"]["metadata"]["labels"];
    let name = str_of(&find(&docs, "Service")["metadata"]["name"]);

    let ingress = &find(&docs, "Ingress")["spec"];
    let rule = &seq(&ingress["rules"])[0];
    assert_eq!(rule["host"], "plugboard.example.com");
    let paths: Vec<(String, String, String)> = seq(&rule["http"]["paths"])
        .iter()
        .map(|p| {
            let backend = &p["backend"]["service"];
            (
                str_of(&p["path"]),
                str_of(&backend["name"]),
                str_of(&backend["port"]["name"]),
            )
        })
        .collect();
    let only = |path: &str| (path.to_owned(), name.clone(), "http".to_owned());
    assert_eq!(
        paths,
        [
            only("/connect"),
            only("/connect.js"),
            only("/oauth/callback")
        ],
        "only the connect endpoints are public"
    );

    let monitor = &find(&docs, "ServiceMonitor")["spec"];
    let endpoint = &seq(&monitor["endpoints"])[0];
    assert_eq!(
        (&endpoint["port"], &endpoint["path"]),
        (&"http".into(), &"/metrics".into())
    );
    for (k, v) in monitor["selector"]["matchLabels"].as_mapping().unwrap() {
        assert_eq!(&find(&docs, "Service")["metadata"]["labels"][k], v);
    }
    assert_eq!(
        find(&docs, "ServiceMonitor")["metadata"]["labels"]["release"],
        "prometheus"
    );

    let pdb = &find(&docs, "PodDisruptionBudget")["spec"];
    assert_eq!(&pdb["selector"]["matchLabels"], pod_labels);
    assert_eq!(pdb["maxUnavailable"], 1);

    let policy = &find(&docs, "NetworkPolicy")["spec"];
    assert_eq!(&policy["podSelector"]["matchLabels"], pod_labels);
    let ingress_ports = seq(&seq(&policy["ingress"])[0]["ports"]);
    assert_eq!(
        ingress_ports,
        &[serde_yaml::from_str::<Value>("{port: http, protocol: TCP}").unwrap()]
    );
    let egress: BTreeSet<(i64, String)> = seq(&policy["egress"])
        .iter()
        .flat_map(|rule| seq(&rule["ports"]).clone())
        .map(|p| (p["port"].as_i64().unwrap(), str_of(&p["protocol"])))
        .collect();
    let tcp = |p: i64| (p, "TCP".to_owned());
    let want: BTreeSet<_> = [
        (53, "UDP".to_owned()),
        tcp(53),
        tcp(443),
        tcp(6443),
        tcp(8200),
    ]
    .into();
    assert_eq!(
        egress, want,
        "DNS, the API server, HTTPS and the extra Vault rule"
    );
}

#[test]
fn an_ingress_without_a_public_url_is_refused() {
    let (ok, text) = run_helm(&[
        "template",
        "t",
        "plugboard",
        "--set",
        "ingress.enabled=true",
    ]);
    assert!(!ok, "rendered an Ingress without publicUrl");
    assert!(text.contains("ingress.enabled needs publicUrl"), "{text}");
}

#[test]
fn wrong_values_fail_naming_the_value() {
    for (set, expected) in [
        ("replicas=zero", "'/replicas': got string, want integer"),
        ("replicas=0", "'/replicas': minimum"),
        (
            "logFormat=xml",
            "'/logFormat': value must be one of 'text', 'json'",
        ),
        ("defaultStore=s3", "'/defaultStore': value must be one of"),
        ("image.pullPolicy=Sometimes", "'/image/pullPolicy'"),
        ("publicUrl=ftp://plugboard.example.com", "'/publicUrl'"),
        ("publicUrl=not a url", "'/publicUrl'"),
        (
            "redirectAllowlist[0]=app.example.com",
            "'/redirectAllowlist/0'",
        ),
        ("allowPrivateNetworks=maybe", "'/allowPrivateNetworks'"),
        (
            "podDisruptionBudget.maxUnavailable=-1",
            "'/podDisruptionBudget/maxUnavailable'",
        ),
        (
            "serviceMonitor.interval=often",
            "'/serviceMonitor/interval'",
        ),
        ("replicass=2", "'replicass'"),
        ("ingress.hots=x", "'hots'"),
    ] {
        let (ok, text) = run_helm(&["template", "t", "plugboard", "--set", set]);
        assert!(!ok, "{set} was accepted");
        assert!(
            text.contains(expected),
            "{set}: wanted {expected:?} in: {text}"
        );
    }
}

/// Every rule as (apiGroup, resource, verb, resourceNames), sorted.
fn rules(role: &Value) -> BTreeSet<(String, String, String, Vec<String>)> {
    let mut out = BTreeSet::new();
    for rule in seq(&role["rules"]) {
        let names: Vec<String> = rule["resourceNames"]
            .as_sequence()
            .map(|n| n.iter().map(str_of).collect())
            .unwrap_or_default();
        for g in seq(&rule["apiGroups"]) {
            for r in seq(&rule["resources"]) {
                for v in seq(&rule["verbs"]) {
                    out.insert((str_of(g), str_of(r), str_of(v), names.clone()));
                }
            }
        }
    }
    out
}

#[test]
fn the_cluster_role_grants_exactly_the_calls_src_makes() {
    let scan = rbac_scan::scan(&root().join("src"));
    assert!(scan.unknown.is_empty(), "{}", scan.unknown.join("\n"));
    let docs = render(&["--set", "leaderElection.enabled=true"]);
    let granted: BTreeSet<rbac_scan::Grant> = rules(find(&docs, "ClusterRole"))
        .into_iter()
        .map(|(g, r, v, names)| {
            assert!(names.is_empty(), "cluster-wide rules name no objects");
            (g, r, v)
        })
        .collect();
    let (leases, cluster): (BTreeMap<_, _>, BTreeMap<_, _>) = scan
        .calls
        .into_iter()
        .partition(|((g, _, _), _)| g == "coordination.k8s.io");
    let needed: BTreeSet<_> = cluster.keys().cloned().collect();
    let missing: Vec<String> = needed
        .difference(&granted)
        .map(|grant| format!("{grant:?}, needed by {}", cluster[grant].join(", ")))
        .collect();
    let unused: Vec<String> = granted
        .difference(&needed)
        .map(|grant| format!("{grant:?}"))
        .collect();
    assert!(
        missing.is_empty() && unused.is_empty(),
        "charts/plugboard/templates/rbac.yaml and src/ disagree.\n\
         Calls the ClusterRole does not grant:\n  {}\n\
         Grants no call in src/ needs (or the scan in tests/chart/rbac_scan.rs does not see):\n  {}",
        missing.join("\n  "),
        unused.join("\n  ")
    );

    // Leader election: the Lease in the release namespace, reads and renewals by name only.
    let lease_name = env(&docs)["PLUGBOARD_LEASE_NAME"].clone();
    let wanted: BTreeSet<_> = leases
        .keys()
        .map(|(g, r, v)| {
            let names = if v == "create" {
                vec![]
            } else {
                vec![lease_name.clone()]
            };
            (g.clone(), r.clone(), v.clone(), names)
        })
        .collect();
    assert!(!wanted.is_empty(), "src/ elects a leader on a Lease");
    assert_eq!(rules(find(&docs, "Role")), wanted);

    // Both bindings bind the pod's ServiceAccount, in the release namespace.
    let account = str_of(&pod(&docs)["serviceAccountName"]);
    for binding in ["ClusterRoleBinding", "RoleBinding"] {
        let subject = &seq(&find(&docs, binding)["subjects"])[0];
        assert_eq!(subject["name"], account.as_str(), "{binding}");
        assert_eq!(subject["namespace"], NAMESPACE, "{binding}");
    }
}

/// What CI does with a chart's output before Argo CD or Flux applies it: `helm template
/// --include-crds | plugboard validate -` reads every document (helm's `# Source:` comments
/// and all) and finds nothing wrong.
#[test]
fn the_charts_output_piped_into_plugboard_validate_reads_clean() {
    let (ok, text) = run_helm(&[
        "template",
        "t",
        "plugboard",
        "--namespace",
        NAMESPACE,
        "--include-crds",
        "-f",
        ALL_FEATURES,
    ]);
    assert!(ok, "helm template failed: {text}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_plugboard"))
        .args(["validate", "--output", "json", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("plugboard runs");
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(text.as_bytes()).expect("writes the chart");
    }
    let out = child.wait_with_output().expect("plugboard finishes");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    let rendered = render(&["--include-crds", "-f", ALL_FEATURES]).len();
    assert_eq!(report["findings"], serde_json::json!([]), "{report}");
    assert_eq!(
        report["skipped"].as_u64(),
        Some(rendered as u64),
        "{report}"
    );
    assert!(out.status.success());
}

#[test]
fn the_chart_ships_the_generated_crds_byte_for_byte() {
    let names = |dir: &Path| -> BTreeSet<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    let generated = root().join("crds");
    let shipped = root().join("charts/plugboard/crds");
    let fix = "copy them: cp crds/*.yaml charts/plugboard/crds/";
    assert_eq!(names(&shipped), names(&generated), "{fix}");
    for name in names(&generated) {
        let want = std::fs::read(generated.join(&name)).unwrap();
        let have = std::fs::read(shipped.join(&name)).unwrap();
        assert!(
            have == want,
            "charts/plugboard/crds/{name} differs from crds/: {fix}"
        );
    }
}

#[test]
fn the_notes_say_how_to_check_it_and_carry_every_argo_cd_script() {
    let (ok, text) = run_helm(&[
        "install",
        "t",
        "plugboard",
        "--dry-run=client",
        "--namespace",
        NAMESPACE,
    ]);
    assert!(ok, "{text}");
    let notes = text.split("NOTES:").nth(1).expect("NOTES are rendered");
    assert!(notes.contains("kubectl get plugboard -A"), "{notes}");
    assert!(
        notes.contains("kubectl wait --for=condition=Ready connection/"),
        "{notes}"
    );
    assert!(notes.contains("publicUrl is not set"), "{notes}");
    for kind in ["Connection", "Connector", "ClusterConnector", "Tenant"] {
        let key = format!("  resource.customizations.health.plugboard.dev_{kind}: |\n");
        let script = std::fs::read_to_string(root().join(format!(
            "charts/plugboard/argocd/{}.lua",
            kind.to_lowercase()
        )))
        .unwrap();
        let indented: String = script.lines().map(|l| format!("    {l}\n")).collect();
        assert!(
            notes.contains(&format!("{key}{indented}")),
            "the NOTES lack the {kind} script as shipped: {notes}"
        );
    }
}

/// Every value of values.yaml as a `key.path` leaf (`resources` counts as one: it is a
/// Kubernetes ResourceRequirements), and the keys no comment line directly precedes.
fn values_keys() -> (Vec<String>, Vec<String>) {
    const WHOLE: &str = "resources";
    let text = std::fs::read_to_string(root().join("charts/plugboard/values.yaml")).unwrap();
    let (mut leaves, mut uncommented) = (Vec::new(), Vec::new());
    let mut parents: Vec<(usize, String)> = Vec::new();
    let mut previous = "";
    for line in text.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let key_line = trimmed
            .split_once(':')
            .filter(|(key, _)| !key.is_empty() && key.chars().all(char::is_alphanumeric));
        if let Some((key, rest)) = key_line {
            parents.retain(|(i, _)| *i < indent);
            let mut path: Vec<&str> = parents.iter().map(|(_, k)| k.as_str()).collect();
            if path.first() != Some(&WHOLE) {
                path.push(key);
                let full = path.join(".");
                if !previous.trim_start().starts_with('#') {
                    uncommented.push(full.clone());
                }
                if rest.trim().is_empty() {
                    parents.push((indent, key.to_owned()));
                }
                if !rest.trim().is_empty() || full == WHOLE {
                    leaves.push(full);
                }
            } else {
                parents.push((indent, key.to_owned()));
            }
        }
        if !trimmed.is_empty() {
            previous = line;
        }
    }
    (leaves, uncommented)
}

#[test]
fn every_value_is_commented_in_values_yaml_and_listed_in_the_docs() {
    let (leaves, uncommented) = values_keys();
    assert!(leaves.len() > 30, "the values were read: {leaves:?}");
    assert!(
        uncommented.is_empty(),
        "values.yaml keys without a comment: {uncommented:?}"
    );
    let docs = std::fs::read_to_string(root().join("docs/operations.md")).unwrap();
    let missing: Vec<&String> = leaves
        .iter()
        .filter(|k| !docs.contains(&format!("| `{k}` |")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/operations.md's values table lacks {missing:?}"
    );
}

#[path = "chart/dockerfile.rs"]
mod dockerfile;

#[test]
fn the_dockerfile_builds_in_one_stage_and_runs_distroless_as_non_root_in_another() {
    let text = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let ignore = std::fs::read_to_string(root().join(".dockerignore")).unwrap();
    let problems = dockerfile::check(&text, &ignore);
    assert!(problems.is_empty(), "Dockerfile: {problems:#?}");
}

#[test]
fn the_dockerfile_check_catches_each_rule() {
    let good = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let ignore = std::fs::read_to_string(root().join(".dockerignore")).unwrap();
    for (change, from, to) in [
        (
            "one stage",
            "FROM gcr.io/distroless/cc-debian12:nonroot AS final",
            "",
        ),
        (
            "latest",
            "gcr.io/distroless/cc-debian12:nonroot",
            "gcr.io/distroless/cc-debian12:latest",
        ),
        ("untagged", "FROM rust:1-bookworm", "FROM rust"),
        ("root user", "USER 65532:65532", "USER root"),
        ("no lock", "--release --locked", "--release"),
        ("other glibc", "rust:1-bookworm", "rust:1-trixie"),
        (
            "shell entrypoint",
            r#"ENTRYPOINT ["/plugboard"]"#,
            "ENTRYPOINT /plugboard",
        ),
        ("no cmd", r#"CMD ["run"]"#, ""),
    ] {
        assert!(
            good.contains(from),
            "{change}: the Dockerfile has no {from:?}"
        );
        let bad = good.replace(from, to);
        assert!(
            !dockerfile::check(&bad, &ignore).is_empty(),
            "{change} was not caught"
        );
    }
    assert!(
        !dockerfile::check(&good, "*\n!Cargo.toml\n!Cargo.lock\n!src/\n").is_empty(),
        "a .dockerignore that leaves out plugboard-apiserver/ was not caught"
    );
}
