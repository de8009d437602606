//! `plugboard validate`, run as a user runs it: the binary, its output and its exit code.
//!
//! The corpus in `tests/fixtures/validate/` holds one broken manifest per check, each saying
//! in `# expect: LINE: FIELD: TEXT` (an error) or `# warn: ...` lines what it must be
//! reported for; `base.yaml` is what they refer to, and is itself clean.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

mod support;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/validate")
}

fn validate(args: &[&str], stdin: Option<&str>, kubeconfig: Option<&Path>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_plugboard"));
    command
        .arg("validate")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(path) = kubeconfig {
        command.env("KUBECONFIG", path);
    }
    let mut child = command.spawn().expect("plugboard starts");
    let input = stdin.unwrap_or_default().to_owned();
    let mut pipe = child.stdin.take().expect("stdin is piped");
    let writer = std::thread::spawn(move || {
        use std::io::Write as _;
        let _ = pipe.write_all(input.as_bytes());
    });
    let out = child.wait_with_output().expect("plugboard finishes");
    writer.join().expect("stdin written");
    out
}

fn json_report(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|err| {
        panic!(
            "not JSON ({err}):\n{}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// One expectation of a corpus file.
#[derive(Debug)]
struct Expected {
    severity: &'static str,
    line: u64,
    field: String,
    text: String,
}

fn expectations(text: &str) -> Vec<Expected> {
    text.lines()
        .filter_map(|l| {
            let (severity, rest) = match l {
                _ if l.starts_with("# expect: ") => ("error", &l["# expect: ".len()..]),
                _ if l.starts_with("# warn: ") => ("warning", &l["# warn: ".len()..]),
                _ => return None,
            };
            let (line, rest) = rest.split_once(": ").expect("LINE: ...");
            let (field, text) = match rest.split_once(": ") {
                // A document that does not read has no field.
                Some((field, text)) if !field.contains(' ') => (field.to_owned(), text),
                _ => (String::new(), rest),
            };
            Some(Expected {
                severity,
                line: line.parse().expect("a line number"),
                field,
                text: text.to_owned(),
            })
        })
        .collect()
}

fn summary_of(finding: &Value) -> String {
    format!(
        "{} line {} {}: {}",
        finding["severity"], finding["line"], finding["field"], finding["message"]
    )
}

#[test]
fn every_broken_manifest_is_reported_at_its_line_with_its_field_and_nothing_else() {
    let base = fixtures().join("base.yaml");
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p != &base)
        .collect();
    files.sort();
    assert!(files.len() >= 15, "the corpus holds {} files", files.len());
    let mut failures = Vec::new();
    for file in &files {
        let expected = expectations(&std::fs::read_to_string(file).unwrap());
        assert!(
            !expected.is_empty(),
            "{} says what it expects",
            file.display()
        );
        let out = validate(
            &["-o", "json", base.to_str().unwrap(), file.to_str().unwrap()],
            None,
            None,
        );
        let report = json_report(&out);
        let findings = report["findings"].as_array().unwrap().clone();
        let name = file.file_name().unwrap().to_string_lossy();
        for want in &expected {
            let hit = findings.iter().any(|f| {
                f["severity"] == want.severity
                    && f["line"] == want.line
                    && f["field"] == want.field.as_str()
                    && f["message"].as_str().unwrap_or("").contains(&want.text)
                    && f["file"].as_str().unwrap_or("").ends_with(&*name)
            });
            if !hit {
                let seen: Vec<String> = findings.iter().map(summary_of).collect();
                failures.push(format!("{name}: wanted {want:?}; saw {seen:#?}"));
            }
        }
        if findings.len() != expected.len() {
            let seen: Vec<String> = findings.iter().map(summary_of).collect();
            failures.push(format!(
                "{name}: {} findings, expected {}: {seen:#?}",
                findings.len(),
                expected.len()
            ));
        }
        let errors = expected.iter().any(|e| e.severity == "error");
        if out.status.success() == errors {
            failures.push(format!("{name}: exit {} with errors={errors}", out.status));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn text_output_is_one_line_per_problem_then_a_summary_and_exit_1() {
    let file = fixtures().join("input-schema.yaml");
    let base = fixtures().join("base.yaml");
    let out = validate(
        &[base.to_str().unwrap(), file.to_str().unwrap()],
        None,
        None,
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let want = format!(
        "{}:10: Connection/acme/short-key: spec.input.apiKey: /apiKey: value is shorter than 8 \
         characters; give it in spec.input or spec.inputFrom as Connector kit spec.inputSchema says\n\
         checked 3 plugboard objects in 2 files: 1 error, 0 warnings; 2 other objects skipped\n",
        file.display()
    );
    assert_eq!(text, want);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn warnings_alone_exit_0_and_say_warning() {
    let file = fixtures().join("connector-missing.yaml");
    let out = validate(&[file.to_str().unwrap()], None, None);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(":7: Connection/acme/dangling: spec.connectorRef.name: warning: names Connector acme/kti, which is not in this set; pass --cluster"),
        "{text}"
    );
    assert!(text.contains("0 errors, 2 warnings"), "{text}");
    assert_eq!(out.status.code(), Some(0), "{text}");
}

#[test]
fn standard_input_takes_a_kubectl_list_and_counts_foreign_kinds_as_skipped() {
    let list = json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "acme"}},
            {"apiVersion": "plugboard.dev/v1alpha1", "kind": "Tenant",
             "metadata": {"name": "globex", "namespace": "acme"}, "spec": {"displayNmae": "Globex"}}
        ]
    });
    let text = serde_json::to_string_pretty(&list).unwrap();
    let out = validate(&["--output", "json", "-"], Some(&text), None);
    let report = json_report(&out);
    assert_eq!(report["checked"], 1);
    assert_eq!(report["skipped"], 1);
    assert_eq!(report["errors"], 1);
    let finding = &report["findings"][0];
    assert_eq!(finding["file"], "<stdin>");
    assert_eq!(finding["field"], "spec.displayNmae");
    assert_eq!(finding["kind"], "Tenant");
    let line = text
        .lines()
        .position(|l| l.contains("displayNmae"))
        .unwrap()
        + 1;
    assert_eq!(
        finding["line"], line as u64,
        "the line of the field in the JSON"
    );
    assert_eq!(out.status.code(), Some(1));
    let summary = report["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("checked 1 plugboard object in 1 file: 1 error"),
        "{summary}"
    );
}

#[test]
fn allow_private_networks_lets_internal_endpoints_pass() {
    let base = fixtures().join("base.yaml");
    let file = fixtures().join("internal-endpoint.yaml");
    let args = [base.to_str().unwrap(), file.to_str().unwrap()];
    assert_eq!(validate(&args, None, None).status.code(), Some(1));
    let allowed = validate(
        &[&args[..], &["--allow-private-networks"]].concat(),
        None,
        None,
    );
    assert_eq!(
        allowed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&allowed.stdout)
    );
}

#[test]
fn an_unreadable_path_is_one_line_on_stderr_and_exit_1() {
    let out = validate(&["/nonexistent/manifests"], None, None);
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.starts_with("plugboard: cannot read /nonexistent/manifests"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// `--cluster` resolves what the files do not hold against the cluster, and only reads.
// Multi-threaded: the test waits on the child synchronously while the in-process API server
// it asks runs on this runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_resolves_references_the_set_lacks_without_writing() {
    let cluster = support::TestCluster::start().await;
    let ns = cluster.namespace().to_owned();
    let base = std::fs::read_to_string(fixtures().join("base.yaml")).unwrap();
    let objects: Vec<Value> = serde_yaml::Deserializer::from_str(&base)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    let client = cluster.client();
    for mut object in objects {
        object["metadata"]["namespace"] = json!(ns);
        let object: kube::api::DynamicObject = serde_json::from_value(object).unwrap();
        let gvk = kube::core::GroupVersionKind::try_from(object.types.as_ref().unwrap()).unwrap();
        let resource = kube::core::ApiResource::from_gvk(&gvk);
        kube::Api::<kube::api::DynamicObject>::namespaced_with(client.clone(), &ns, &resource)
            .create(&Default::default(), &object)
            .await
            .expect("creates a base object");
    }
    let connection = |name: &str, connector: &str| {
        format!(
            "apiVersion: plugboard.dev/v1alpha1\nkind: Connection\nmetadata: {{name: {name}, namespace: {ns}}}\n\
             spec:\n  tenantRef: {{name: globex}}\n  connectorRef: {{name: {connector}}}\n  authOptionKey: key\n\
             \x20 inputFrom:\n  - field: apiKey\n    secretKeyRef: {{name: kit-input, key: apiKey}}\n"
        )
    };
    let dir = std::env::temp_dir().join(format!("plugboard-validate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = cluster.kubeconfig(&dir);
    let mark = cluster.mark_writes().await;

    let found = connection("found", "kit");
    let out = validate(
        &["-o", "json", "--cluster", "-"],
        Some(&found),
        Some(&kubeconfig),
    );
    let report = json_report(&out);
    assert_eq!(
        report["findings"],
        json!([]),
        "everything is in the cluster"
    );
    assert_eq!(out.status.code(), Some(0));

    let offline = validate(&["-o", "json", "-"], Some(&found), None);
    let offline = json_report(&offline);
    assert_eq!(
        (&offline["errors"], &offline["warnings"]),
        (&json!(0), &json!(2)),
        "without --cluster the tenant and the connector are only not in this set: {offline}"
    );

    let missing = connection("missing", "nowhere");
    let out = validate(&["--cluster", "-"], Some(&missing), Some(&kubeconfig));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(&format!(
            "<stdin>:6: Connection/{ns}/missing: spec.connectorRef.name: names Connector {ns}/nowhere, \
             which is neither in this set nor in the cluster; create it or fix the name"
        )),
        "{text}"
    );
    assert_eq!(out.status.code(), Some(1));
    cluster
        .assert_no_writes_since(&mark, "plugboard validate --cluster")
        .await;
    let _ = std::fs::remove_dir_all(&dir);
    cluster.cleanup().await;
}
