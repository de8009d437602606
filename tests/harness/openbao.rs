//! OpenBao's real server (`bao server -dev`), run as a child process for one test: in memory,
//! unsealed, a KV version 2 engine at `secret/`, and a root token the test uses to look at
//! what the operator wrote, tamper with it, seal the server and write policies.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The running server; stopped when dropped.
pub struct OpenBao {
    child: Child,
    pub address: String,
    unseal_key: String,
    http: reqwest::Client,
}

const ROOT: &str = "plugboard-test-root";

fn binary() -> PathBuf {
    if let Ok(path) = std::env::var("PLUGBOARD_OPENBAO") {
        return PathBuf::from(path);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/tools/bao")
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds a free port");
    listener.local_addr().expect("has an address").port()
}

impl OpenBao {
    /// Starts a server on a free port. The dev server also listens on the next port up (its
    /// cluster address), which a test running beside this one may hold: a server that exits
    /// before it is ready is started again on another port.
    pub async fn start() -> Self {
        let path = binary();
        assert!(
            path.exists(),
            "OpenBao is not installed at {}: run scripts/test, which installs it",
            path.display()
        );
        for _ in 0..5 {
            if let Some(bao) = Self::try_start(&path).await {
                bao.wait_unsealed().await;
                return bao;
            }
        }
        panic!("bao server exited before it was ready, five times");
    }

    async fn try_start(path: &std::path::Path) -> Option<Self> {
        let port = free_port();
        let mut child = Command::new(path)
            .args(["server", "-dev", &format!("-dev-root-token-id={ROOT}")])
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .env("HOME", std::env::temp_dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("bao server starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let unseal_key = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(key) = line.trim().strip_prefix("Unseal Key: ") {
                    return Some(key.trim().to_owned());
                }
            }
            None
        })
        .await
        .expect("bao server starts within 30 s")?;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Some(Self {
            child,
            address: format!("http://127.0.0.1:{port}"),
            unseal_key,
            http: reqwest::Client::new(),
        })
    }

    pub fn root_token(&self) -> String {
        ROOT.to_owned()
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}/v1/{path}", self.address))
            .header("X-Vault-Token", ROOT);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("OpenBao answers");
        let code = response.status().as_u16();
        (code, response.json().await.unwrap_or(Value::Null))
    }

    async fn wait_unsealed(&self) {
        for _ in 0..100 {
            let (code, _) = self.call(reqwest::Method::GET, "sys/health", None).await;
            if code == 200 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("OpenBao did not become healthy");
    }

    /// The newest data at `secret/data/<path>`, and its version; none when there is none.
    pub async fn read(&self, path: &str) -> Option<(Value, u64)> {
        let (code, answer) = self
            .call(reqwest::Method::GET, &format!("secret/data/{path}"), None)
            .await;
        (code == 200).then(|| {
            let version = answer
                .pointer("/data/metadata/version")
                .and_then(Value::as_u64);
            (answer["data"]["data"].clone(), version.unwrap_or(0))
        })
    }

    /// The current version of `path`, deleted versions counted (0: none at all).
    pub async fn current_version(&self, path: &str) -> u64 {
        let (_, answer) = self
            .call(
                reqwest::Method::GET,
                &format!("secret/metadata/{path}"),
                None,
            )
            .await;
        answer
            .pointer("/data/current_version")
            .and_then(Value::as_u64)
            .unwrap_or(0)
    }

    /// The custom metadata of `path`.
    pub async fn custom_metadata(&self, path: &str) -> Value {
        let (_, answer) = self
            .call(
                reqwest::Method::GET,
                &format!("secret/metadata/{path}"),
                None,
            )
            .await;
        answer["data"]["custom_metadata"].clone()
    }

    /// Writes `data` at `path` as someone other than the operator would.
    pub async fn write(&self, path: &str, data: Value) {
        let (code, answer) = self
            .call(
                reqwest::Method::POST,
                &format!("secret/data/{path}"),
                Some(json!({"data": data})),
            )
            .await;
        assert_eq!(code, 200, "{answer}");
    }

    /// Deletes `path` with all its versions, behind the operator's back.
    pub async fn destroy(&self, path: &str) {
        let (code, _) = self
            .call(
                reqwest::Method::DELETE,
                &format!("secret/metadata/{path}"),
                None,
            )
            .await;
        assert_eq!(code, 204);
    }

    /// A token whose only policy is `hcl`.
    pub async fn token_with_policy(&self, name: &str, hcl: &str) -> String {
        let (code, answer) = self
            .call(
                reqwest::Method::PUT,
                &format!("sys/policies/acl/{name}"),
                Some(json!({"policy": hcl})),
            )
            .await;
        assert!(code == 204 || code == 200, "{answer}");
        let (code, answer) = self
            .call(
                reqwest::Method::POST,
                "auth/token/create",
                Some(json!({"policies": [name], "no_default_policy": true, "ttl": "1h"})),
            )
            .await;
        assert_eq!(code, 200, "{answer}");
        answer["auth"]["client_token"].as_str().unwrap().to_owned()
    }

    pub async fn seal(&self) {
        let (code, answer) = self.call(reqwest::Method::PUT, "sys/seal", None).await;
        assert_eq!(code, 204, "{answer}");
    }

    pub async fn unseal(&self) {
        let (code, answer) = self
            .call(
                reqwest::Method::PUT,
                "sys/unseal",
                Some(json!({"key": self.unseal_key})),
            )
            .await;
        assert_eq!(code, 200, "{answer}");
        self.wait_unsealed().await;
    }

    /// Operator settings that use this server, logged in with `token`.
    pub fn store(&self, token: &str) -> std::sync::Arc<plugboard::store::vault::VaultStore> {
        self.store_at("secret", token)
    }

    /// As `store`, with the KV mount `mount` (one the server may not have).
    pub fn store_at(
        &self,
        mount: &str,
        token: &str,
    ) -> std::sync::Arc<plugboard::store::vault::VaultStore> {
        let config = plugboard::store::vault::Config {
            address: self.address.clone(),
            mount: mount.to_owned(),
            prefix: "plugboard".to_owned(),
            ca_file: None,
            auth: plugboard::store::vault::token(token.to_owned()),
            default: false,
        };
        std::sync::Arc::new(
            plugboard::store::vault::VaultStore::new(config, Duration::from_secs(5))
                .expect("a valid store"),
        )
    }
}

impl Drop for OpenBao {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
