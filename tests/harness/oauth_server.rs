//! `oauth2-mock-server` (npm), a real OAuth 2 server, run as a child process for one test.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The running server; stopped when dropped.
pub struct OAuthServer {
    child: Child,
    pub url: String,
}

fn binary() -> PathBuf {
    if let Ok(path) = std::env::var("PLUGBOARD_OAUTH2_MOCK_SERVER") {
        return PathBuf::from(path);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target/tools/oauth2-mock-server/node_modules/.bin/oauth2-mock-server")
}

impl OAuthServer {
    pub async fn start() -> Self {
        let path = binary();
        assert!(
            path.exists(),
            "oauth2-mock-server is not installed at {}: run scripts/test, which installs it",
            path.display()
        );
        let mut child = Command::new(&path)
            .args(["-a", "127.0.0.1", "-p", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("oauth2-mock-server starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let url = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = lines.next_line().await.expect("reads its output") {
                if let Some(url) = line.strip_prefix("OAuth 2 server listening on ") {
                    return url.trim().to_owned();
                }
            }
            panic!("oauth2-mock-server exited before it listened");
        })
        .await
        .expect("oauth2-mock-server listens within 20 s");
        // Keep draining its output so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self { child, url }
    }
}

impl Drop for OAuthServer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
