//! The OAuth 1.0a provider of `tests/peers/oauth1_provider.py` (Python's oauthlib endpoints
//! behind a stdlib HTTP server), run as a child process for one test.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The consumer key every test registers.
pub const CONSUMER_KEY: &str = "plugboard-test-key";
/// The shared consumer secret of the HMAC and PLAINTEXT consumers.
pub const CONSUMER_SECRET: &str = "consumer-secret-0123456789";
/// The consumer key of the RSA-SHA1 consumer.
pub const RSA_CONSUMER_KEY: &str = "plugboard-rsa-key";

/// The running provider; stopped when dropped.
pub struct OAuth1Provider {
    child: Child,
    pub url: String,
    http: reqwest::Client,
    _config: tempfile_path::TempPath,
}

/// Where oauthlib was installed: `scripts/test` puts it under `target/tools/python`.
fn python_path() -> PathBuf {
    if let Ok(path) = std::env::var("PLUGBOARD_PYTHONPATH") {
        return PathBuf::from(path);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/tools/python")
}

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The PEM private key the RSA-SHA1 consumer signs with.
pub fn rsa_private_key() -> String {
    fixture("rs256-test-key.pem")
}

impl OAuth1Provider {
    /// Starts the provider with the two test consumers.
    pub async fn start() -> Self {
        let python = python_path();
        assert!(
            python.join("oauthlib").exists(),
            "oauthlib is not installed under {}: run scripts/test, which installs it",
            python.display()
        );
        let config = json!({
            "clients": {
                CONSUMER_KEY: {"secret": CONSUMER_SECRET},
                RSA_CONSUMER_KEY: {"rsa_public_key": fixture("rs256-test-key.pub.pem")},
            },
            "skew_seconds": 0,
        });
        let config_path = tempfile_path::TempPath::write(&config.to_string());
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers/oauth1_provider.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg("--config")
            .arg(config_path.path())
            .env("PYTHONPATH", &python)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let url = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = lines.next_line().await.expect("reads its output") {
                if let Some(url) = line.strip_prefix("listening on ") {
                    return url.trim().to_owned();
                }
            }
            panic!("the OAuth 1.0a provider exited before it listened");
        })
        .await
        .expect("the OAuth 1.0a provider listens within 20 s");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            child,
            url,
            http: reqwest::Client::new(),
            _config: config_path,
        }
    }

    /// Scripts the provider's next answers (`request_token_problem`, `skew_seconds`).
    pub async fn control(&self, body: Value) {
        let answer = self
            .http
            .post(format!("{}/control", self.url))
            .json(&body)
            .send()
            .await
            .expect("the provider answers");
        assert!(answer.status().is_success(), "{:?}", answer.text().await);
    }

    /// What the provider saw: revoked tokens, nonces, requests and their verdicts.
    pub async fn state(&self) -> Value {
        self.http
            .get(format!("{}/control/state", self.url))
            .send()
            .await
            .expect("the provider answers")
            .json()
            .await
            .expect("JSON state")
    }
}

impl Drop for OAuth1Provider {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// A file removed when dropped, for the provider's configuration.
mod tempfile_path {
    use std::path::{Path, PathBuf};

    pub struct TempPath(PathBuf);

    impl TempPath {
        pub fn write(text: &str) -> Self {
            let path = std::env::temp_dir().join(format!(
                "plugboard-oauth1-{:016x}.json",
                rand::random::<u64>()
            ));
            std::fs::write(&path, text).expect("writes the provider's configuration");
            Self(path)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}
