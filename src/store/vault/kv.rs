//! The KV version 2 secrets engine over HTTP: read a secret's newest version, write one with
//! check-and-set, set its custom metadata, delete it with all its versions.
//!
//! Answers are sorted the way the store needs them: unreachable or sealed (transient),
//! forbidden, misconfigured (no such mount), a check-and-set mismatch. Vault's error texts
//! are passed on; they name paths and policies, never the data written.

use std::collections::BTreeMap;

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

pub use super::fault::KvError;
use super::fault::messages;
use super::login::Login;

/// One version of a secret as read.
pub struct Entry {
    pub data: BTreeMap<String, SecretString>,
    pub version: u64,
    pub custom_metadata: BTreeMap<String, String>,
}

/// A KV v2 mount on one server.
#[derive(Debug)]
pub struct Kv {
    http: reqwest::Client,
    address: String,
    mount: String,
    login: Login,
}

impl Kv {
    pub fn new(http: reqwest::Client, address: &str, mount: &str, login: Login) -> Self {
        Self {
            http,
            address: address.trim_end_matches('/').to_owned(),
            mount: mount.trim_matches('/').to_owned(),
            login,
        }
    }

    pub fn mount(&self) -> &str {
        &self.mount
    }

    /// The newest version of `path`; `None` when there is none, or it was deleted.
    pub async fn read(&self, path: &str) -> Result<Option<Entry>, KvError> {
        let (code, answer) = self.send(Method::GET, "data", path, None).await?;
        match code {
            200 => Ok(Some(entry(&answer))),
            404 if !no_mount(&answer) => Ok(None),
            _ => Err(self.refused(code, &answer, path)),
        }
    }

    /// The current version number of `path` (0: none), deleted versions counted.
    pub async fn current_version(&self, path: &str) -> Result<u64, KvError> {
        let (code, answer) = self.send(Method::GET, "metadata", path, None).await?;
        match code {
            200 => Ok(answer
                .pointer("/data/current_version")
                .and_then(Value::as_u64)
                .unwrap_or(0)),
            404 if !no_mount(&answer) => Ok(0),
            _ => Err(self.refused(code, &answer, path)),
        }
    }

    /// Writes `data` as a new version of `path`, only if the current version is `cas` (0: only
    /// if there is none). Returns the new version.
    pub async fn write(
        &self,
        path: &str,
        data: &BTreeMap<String, SecretString>,
        cas: u64,
    ) -> Result<u64, KvError> {
        let values: serde_json::Map<String, Value> = data
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.expose_secret().to_owned())))
            .collect();
        let body = json!({"options": {"cas": cas}, "data": values});
        let (code, answer) = self.send(Method::POST, "data", path, Some(body)).await?;
        match code {
            200 | 204 => Ok(answer
                .pointer("/data/version")
                .and_then(Value::as_u64)
                .unwrap_or(cas + 1)),
            400 if messages(&answer).contains("check-and-set") => Err(KvError::CasMismatch),
            _ => Err(self.refused(code, &answer, path)),
        }
    }

    /// Replaces the custom metadata of `path`.
    pub async fn set_custom_metadata(
        &self,
        path: &str,
        metadata: &BTreeMap<String, String>,
    ) -> Result<(), KvError> {
        let body = json!({"custom_metadata": metadata});
        let (code, answer) = self
            .send(Method::POST, "metadata", path, Some(body))
            .await?;
        match code {
            200 | 204 => Ok(()),
            _ => Err(self.refused(code, &answer, path)),
        }
    }

    /// Deletes `path` with every version and its metadata; whether there was anything.
    pub async fn delete(&self, path: &str) -> Result<bool, KvError> {
        if self.current_version(path).await? == 0 {
            return Ok(false);
        }
        let (code, answer) = self.send(Method::DELETE, "metadata", path, None).await?;
        match code {
            200 | 204 | 404 => Ok(code != 404),
            _ => Err(self.refused(code, &answer, path)),
        }
    }

    /// Sends one request, logging in again once when the token is refused (it may have been
    /// revoked, or expired early).
    async fn send(
        &self,
        method: Method,
        kind: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), KvError> {
        let url = format!("{}/v1/{}/{kind}/{path}", self.address, self.mount);
        let first = self.once(&method, &url, body.as_ref()).await?;
        if first.0 != 403 || !self.login.renewable() {
            return Ok(first);
        }
        self.login.forget().await;
        self.once(&method, &url, body.as_ref()).await
    }

    async fn once(
        &self,
        method: &Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), KvError> {
        let token = self.login.token(&self.http, &self.address).await?;
        let mut request = self
            .http
            .request(method.clone(), url)
            .header("X-Vault-Token", token.expose_secret())
            .header("X-Vault-Request", "true");
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|err| KvError::unreachable(&self.address, &err))?;
        let code = response.status().as_u16();
        Ok((code, response.json().await.unwrap_or(Value::Null)))
    }

    fn refused(&self, code: u16, answer: &Value, path: &str) -> KvError {
        let at = format!("{}/data/{path}", self.mount);
        match code {
            403 => KvError::Forbidden(format!(
                "permission denied on {at} ({}): the operator's policy needs create, read and \
                 update on {at}, and delete on {}/metadata/{path}",
                messages(answer),
                self.mount
            )),
            // A path no mount serves ("no handler for route"), or a KV version 1 mount.
            404 | 405 => KvError::Misconfigured(format!(
                "no KV version 2 engine is mounted at {}/ ({}); enable one (bao secrets enable -path={} kv-v2) or set --vault-mount",
                self.mount,
                messages(answer),
                self.mount
            )),
            429 | 500 | 502 | 503 | 504 => KvError::Unavailable(format!(
                "OpenBao/Vault is sealed or not ready (HTTP {code}: {})",
                messages(answer)
            )),
            _ => KvError::status(code, answer),
        }
    }
}

/// A 404 for the mount, not the secret: no engine serves the path.
fn no_mount(answer: &Value) -> bool {
    messages(answer).contains("no handler for route")
}

fn entry(answer: &Value) -> Entry {
    let strings = |pointer: &str| -> BTreeMap<String, String> {
        answer
            .pointer(pointer)
            .and_then(Value::as_object)
            .map(|map| {
                map.iter()
                    .map(|(k, v)| {
                        let text = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                        (k.clone(), text)
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    Entry {
        data: strings("/data/data")
            .into_iter()
            .map(|(k, v)| (k, SecretString::from(v)))
            .collect(),
        version: answer
            .pointer("/data/metadata/version")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        custom_metadata: strings("/data/metadata/custom_metadata"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_reads_data_version_and_custom_metadata() {
        let answer = json!({"data": {"data": {"apiKey": "k", "n": 3},
            "metadata": {"version": 4, "custom_metadata": {"managed-by": "plugboard"}}}});
        let entry = entry(&answer);
        assert_eq!(entry.version, 4);
        assert_eq!(entry.data["apiKey"].expose_secret(), "k");
        assert_eq!(entry.data["n"].expose_secret(), "3");
        assert_eq!(entry.custom_metadata["managed-by"], "plugboard");
    }
}
