//! `plugboard dev`, run as a person runs it: a child process started on the quickstart, then
//! used with the real `kubectl` (charts/install-helm.sh installs it; `KUBECTL` names it)
//! through the kubeconfig it writes, stopped with Ctrl-C (SIGINT), and started again on the
//! same `--data`.
//!
//! This is the one test here that needs no cluster by design: the API server is the
//! product's own, so `PLUGBOARD_TEST_KUBECONFIG` does not apply.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a Connection may take to reach Connected: the operator starts, the test request
/// goes out. Generous for a loaded CI machine; the run itself takes a second or two.
const READY_WITHIN: Duration = Duration::from_secs(60);
/// What the issue asks of Ctrl-C.
const STOPS_WITHIN: Duration = Duration::from_secs(5);

fn kubectl() -> PathBuf {
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tools/kubectl");
    let path = std::env::var_os("KUBECTL").map_or(tools, PathBuf::from);
    assert!(
        path.is_file(),
        "kubectl not found at {}: run charts/install-helm.sh (scripts/test does)",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Dev {
    /// A failed test does not leave a server behind on the machine.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A running `plugboard dev` and the lines it has printed.
struct Dev {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Dev {
    fn start(dir: &Path, files: &[&str]) -> Dev {
        let mut command = Command::new(env!("CARGO_BIN_EXE_plugboard"));
        command
            .arg("dev")
            .arg("--data")
            .arg(dir.join("data"))
            .arg("--kubeconfig-out")
            .arg(dir.join("kubeconfig"))
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", free_port()))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for f in files {
            command
                .arg("-f")
                .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join(f));
        }
        let mut child = command.spawn().expect("plugboard dev starts");
        let stdout = child.stdout.take().unwrap();
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = send.send(line);
            }
        });
        Dev {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a printed line containing `text`.
    fn wait_for(&mut self, text: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(line) = self.seen.iter().find(|l| l.contains(text)) {
                return line.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!(
                    "plugboard dev never printed {text:?}; it printed {:#?}",
                    self.seen
                ),
            }
        }
    }

    /// Ctrl-C, and the time it took to exit.
    fn interrupt(&mut self) -> (std::process::ExitStatus, Duration, Vec<String>) {
        let sent = Instant::now();
        let pid = self.child.id().to_string();
        let killed = Command::new("kill").args(["-INT", &pid]).status().unwrap();
        assert!(killed.success(), "SIGINT sent");
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                self.seen.extend(self.lines.try_iter());
                return (status, sent.elapsed(), std::mem::take(&mut self.seen));
            }
            if sent.elapsed() > STOPS_WITHIN * 3 {
                let _ = self.child.kill();
                panic!("plugboard dev did not stop on Ctrl-C");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn run_kubectl(kubeconfig: &Path, args: &[&str]) -> String {
    let out = Command::new(kubectl())
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_quickstart_connects_kubectl_works_and_a_restart_on_the_same_data_keeps_everything() {
    let dir = std::env::temp_dir().join(format!("plugboard-dev-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");

    let mut dev = Dev::start(&dir, &["examples/quickstart"]);
    dev.wait_for("applied 5 objects", READY_WITHIN);
    let connected = dev.wait_for("Connection demo/globex-echo: Ready=True", READY_WITHIN);
    assert!(connected.contains("State=Connected"), "{connected}");

    kubectl_gets_creates_and_watches(&mut dev, &dir, &kubeconfig);

    let (status, took, _) = dev.interrupt();
    assert!(status.success(), "plugboard dev exited {status}");
    assert!(took < STOPS_WITHIN, "Ctrl-C took {took:?}");

    // The same --data, no manifests: everything is still there, and still connected.
    let mut again = Dev::start(&dir, &[]);
    let line = again.wait_for("Connection demo/globex-echo:", READY_WITHIN);
    assert!(line.contains("Ready=True"), "{line}");
    let namespaces = run_kubectl(&kubeconfig, &["get", "ns", "-o", "name"]);
    assert!(
        namespaces.contains("namespace/kept-across-restarts"),
        "{namespaces}"
    );
    let tenants = run_kubectl(&kubeconfig, &["get", "tenants", "-n", "demo", "-o", "name"]);
    assert!(
        tenants.contains("tenant.plugboard.dev/initech"),
        "{tenants}"
    );
    let (status, took, printed) = again.interrupt();
    assert!(status.success(), "the second plugboard dev exited {status}");
    assert!(took < STOPS_WITHIN, "Ctrl-C took {took:?}");
    assert_eq!(
        printed.last().map(String::as_str),
        Some("plugboard dev: stopped")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// kubectl against the embedded server: get, create and watch; and an oauth2 Connection
/// created that way gets its consent link printed.
fn kubectl_gets_creates_and_watches(dev: &mut Dev, dir: &Path, kubeconfig: &Path) {
    let kubeconfig = kubeconfig.to_owned();
    let state = run_kubectl(
        &kubeconfig,
        &[
            "get",
            "connection",
            "globex-echo",
            "-n",
            "demo",
            "-o",
            "jsonpath={.status.state}",
        ],
    );
    assert_eq!(state, "Connected");
    let mut watch = KillOnDrop(
        Command::new(kubectl())
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["get", "tenants", "-n", "demo", "--watch", "-o", "name"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // The server has no /openapi, which kubectl's client-side validation reads; it
    // validates itself (apiserver/README.md).
    let manifests = "apiVersion: v1\nkind: Namespace\nmetadata: {name: kept-across-restarts}\n---\n\
        apiVersion: plugboard.dev/v1alpha1\nkind: Tenant\nmetadata: {name: initech, namespace: demo}\nspec: {displayName: Initech}\n---\n\
        apiVersion: v1\nkind: Secret\nmetadata: {name: app, namespace: demo}\nstringData: {clientId: id, clientSecret: not-a-secret}\n---\n\
        apiVersion: plugboard.dev/v1alpha1\nkind: Connector\nmetadata: {name: consent, namespace: demo}\nspec:\n  displayName: Consent\n  auth:\n    type: oauth2\n    authorizeUri: https://provider.example.com/authorize\n    tokenUri: https://provider.example.com/token\n    clientSecretRef: {name: app}\n---\n\
        apiVersion: plugboard.dev/v1alpha1\nkind: Connection\nmetadata: {name: initech-consent, namespace: demo}\nspec:\n  tenantRef: {name: initech}\n  connectorRef: {name: consent}\n";
    let file = dir.join("more.yaml");
    std::fs::write(&file, manifests).unwrap();
    let created = run_kubectl(
        &kubeconfig,
        &["create", "--validate=false", "-f", file.to_str().unwrap()],
    );
    assert!(
        created.contains("namespace/kept-across-restarts created"),
        "{created}"
    );
    assert!(
        created.contains("tenant.plugboard.dev/initech created"),
        "{created}"
    );
    let mut watched = BufReader::new(watch.0.stdout.take().unwrap()).lines();
    let mut names = Vec::new();
    while !names.iter().any(|n: &String| n.ends_with("/initech")) {
        names.push(watched.next().expect("the watch goes on").unwrap());
    }
    drop(watch);
    assert!(names.iter().any(|n| n.ends_with("/globex")), "{names:?}");
    // An oauth2 Connection waits for a person: its consent link is printed to open, on the
    // operator's local address.
    let link = dev.wait_for("open to connect demo/initech-consent:", READY_WITHIN);
    assert!(link.contains(": http://127.0.0.1:"), "{link}");
    assert!(link.contains("/connect/demo/initech-consent/"), "{link}");
}
