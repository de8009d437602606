//! The command line as a person meets it: a bad setting is one line on standard error and
//! exit status 1, before the operator touches any cluster.

use std::process::Command;

/// Runs `plugboard run` with the given arguments and a kubeconfig that names no reachable
/// server, so that any failure seen must come from the argument checks that run first.
fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let dir = std::env::temp_dir().join(format!("plugboard-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n\
         users: [{name: u, user: {}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n\
         current-context: x\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_plugboard"))
        .arg("run")
        .args(args)
        .env("KUBECONFIG", &kubeconfig)
        .envs(env.iter().copied())
        .output()
        .expect("the binary runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_vault_default_store_without_an_address_is_refused_at_start_with_one_line() {
    let (code, stderr) = run(&["--default-store", "vault"], &[]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        "plugboard: --default-store vault needs --vault-address (chart: vault.address)"
    );
    let (code, stderr) = run(
        &[
            "--vault-address",
            "https://bao:8200",
            "--vault-auth",
            "token",
        ],
        &[],
    );
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        "plugboard: --vault-auth token needs PLUGBOARD_VAULT_TOKEN (chart: vault.tokenSecret)"
    );
}

#[test]
fn the_default_store_is_read_from_the_environment_the_chart_sets() {
    let (code, stderr) = run(&[], &[("PLUGBOARD_DEFAULT_STORE", "vault")]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("--default-store vault"), "{stderr}");
}

#[test]
fn an_unknown_default_store_names_the_values_it_takes() {
    let (code, stderr) = run(&["--default-store", "s3"], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("invalid value 's3' for '--default-store") && stderr.contains("kubernetes"),
        "{stderr}"
    );
}

#[test]
fn with_a_kubernetes_default_store_start_goes_on_to_the_cluster() {
    // Past the argument checks, the next failure is the unreachable API server.
    let (code, stderr) = run(&["--default-store", "kubernetes"], &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.starts_with(
            "plugboard: cannot reach the Kubernetes API server at https://127.0.0.1:1/"
        ),
        "{stderr}"
    );
}

#[test]
fn a_bad_log_filter_is_one_line() {
    let (code, stderr) = run(&["--log-level", "plugboard=loud"], &[]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("plugboard: --log-level"), "{stderr}");
}
