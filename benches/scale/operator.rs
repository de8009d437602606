//! The operator under measurement: the real `plugboard` binary as a child process, so that
//! its memory is its own (read from /proc) and not mixed with the test API server's and the
//! provider's, which run in the benchmark's process.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

/// The `plugboard` binary: `PLUGBOARD_BIN`, else the release build next to this benchmark
/// (built first with `cargo build --release --bin plugboard`).
pub fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("PLUGBOARD_BIN") {
        return path.into();
    }
    // The benchmark runs as target/release/deps/scale-<hash>.
    let exe = std::env::current_exe().expect("knows its own path");
    let release = exe
        .parent()
        .and_then(Path::parent)
        .expect("runs from a target directory");
    let bin = release.join("plugboard");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --release --bin plugboard` first, or set PLUGBOARD_BIN",
        bin.display()
    );
    bin
}

/// A running operator.
pub struct Operator {
    child: Child,
    pid: u32,
    metrics_url: String,
    http: reqwest::Client,
    /// Highest VmRSS sampled, in KiB (VmHWM is read at the end as well).
    sampled_peak: Arc<AtomicU64>,
    sampler: tokio::task::JoinHandle<()>,
    /// When the process was spawned.
    pub spawned: Instant,
}

/// The OpenBao server an operator started with `--store vault` keeps credentials in.
pub struct Vault {
    pub address: String,
    pub token: String,
}

/// Resident memory of a process, in KiB.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    pub rss_kib: u64,
    pub peak_kib: u64,
}

impl Operator {
    /// Starts `plugboard run` against the cluster of `kubeconfig`, watching every namespace,
    /// and waits until it answers on /readyz.
    pub async fn start(
        bin: &Path,
        kubeconfig: &Path,
        concurrency: Option<u16>,
        log_level: &str,
        vault: Option<&Vault>,
    ) -> Self {
        let port = free_port();
        let mut command = Command::new(bin);
        command
            .arg("run")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            // The provider runs on 127.0.0.1.
            .arg("--allow-private-networks")
            .args(["--log-level", log_level])
            .env("KUBECONFIG", kubeconfig)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if let Some(n) = concurrency {
            command.args(["--concurrency", &n.to_string()]);
        }
        if let Some(vault) = vault {
            command
                .args(["--default-store", "vault", "--vault-auth", "token"])
                .args(["--vault-address", &vault.address])
                .env("PLUGBOARD_VAULT_TOKEN", &vault.token);
        }
        let spawned = Instant::now();
        let child = command.spawn().expect("starts the plugboard binary");
        let pid = child.id().expect("a running child has an id");
        let sampled_peak = Arc::new(AtomicU64::new(0));
        let sampler = tokio::spawn(sample(pid, sampled_peak.clone()));
        let operator = Self {
            child,
            pid,
            metrics_url: format!("http://127.0.0.1:{port}/metrics"),
            http: reqwest::Client::new(),
            sampled_peak,
            sampler,
            spawned,
        };
        let ready = format!("http://127.0.0.1:{port}/readyz");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !operator
            .http
            .get(&ready)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            assert!(Instant::now() < deadline, "the operator did not get ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        operator
    }

    /// The operator's metrics text.
    pub async fn metrics(&self) -> String {
        match self.http.get(&self.metrics_url).send().await {
            Ok(response) => response.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// One sample (`name{labels}`) from the metrics, 0 when absent.
    pub async fn sample(&self, series: &str) -> f64 {
        value(&self.metrics().await, series)
    }

    /// Current and peak resident memory.
    pub fn memory(&self) -> Memory {
        let status = proc_status(self.pid);
        let peak = status.1.max(self.sampled_peak.load(Ordering::SeqCst));
        Memory {
            rss_kib: status.0,
            peak_kib: peak,
        }
    }

    /// Stops the operator (SIGKILL: what matters here is that the next one starts cold).
    pub async fn stop(mut self) {
        self.sampler.abort();
        let _ = self.child.kill().await;
    }
}

/// The value of one series in Prometheus text, 0 when absent.
pub fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// VmRSS and VmHWM of a process, in KiB.
fn proc_status(pid: u32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Samples VmRSS every 100 ms, keeping the highest: VmHWM already is the kernel's peak, this
/// is a cross-check that also works where VmHWM is not reported.
async fn sample(pid: u32, peak: Arc<AtomicU64>) {
    loop {
        peak.fetch_max(proc_status(pid).0, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn free_port() -> u16 {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").expect("binds 127.0.0.1");
    socket.local_addr().expect("has an address").port()
}
