//! The per-host limit on concurrent provider requests.
//!
//! Thousands of Connections may share one provider (every Connection of a connector calls the
//! same token and test endpoints). Without a limit, a start, a connector edit or a burst of
//! token expiries sends one request per Connection at once: a provider sees that as abuse and
//! answers 429, and every one of those reconciles then backs off. With the limit, requests to
//! one host queue here and reach the provider at most `PER_HOST` at a time, while requests to
//! other hosts do not wait behind them.
//!
//! The limit is process-wide (`global`), not per controller context: a replica that loses and
//! regains leadership builds a new context, and the provider must still see one client.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use url::Url;

/// Requests one operator sends to one host at the same time. Eight hide the latency of a
/// provider well (at 50 ms per request, 160 requests a second to one host, so 1,000
/// Connections of one connector connect in under ten seconds), yet stay below the
/// concurrent-request and burst limits providers commonly put on one API client, so that a
/// start or a wave of token expiries is not answered with 429s.
pub const PER_HOST: usize = 8;

/// Semaphores by origin (scheme, host, port). An entry exists only while a request to its
/// host is in flight or waiting, so hosts rendered from user input do not accumulate.
#[derive(Debug)]
pub struct HostLimits {
    per_host: usize,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// The right to send one request to one host; dropping it lets the next one go.
#[derive(Debug)]
pub struct Permit<'a> {
    limits: &'a HostLimits,
    origin: String,
    permit: Option<OwnedSemaphorePermit>,
}

impl HostLimits {
    pub fn new(per_host: usize) -> Self {
        Self {
            per_host: per_host.max(1),
            hosts: Mutex::default(),
        }
    }

    /// Waits until a request to `url`'s host may be sent.
    pub async fn acquire(&self, url: &Url) -> Permit<'_> {
        let origin = origin(url);
        let semaphore = self
            .lock()
            .entry(origin.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_host)))
            .clone();
        let permit = semaphore
            .acquire_owned()
            .await
            .expect("these semaphores are never closed");
        Permit {
            limits: self,
            origin,
            permit: Some(permit),
        }
    }

    /// How many hosts have a request in flight or waiting.
    pub fn hosts(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Semaphore>>> {
        // A panic while holding this lock leaves the map consistent (every operation on it is
        // a single insert, lookup or remove), so a poisoned lock is still usable.
        self.hosts.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        drop(self.permit.take());
        let mut hosts = self.limits.lock();
        // Only the map holds the semaphore: nobody is waiting for or holding a permit.
        if hosts
            .get(&self.origin)
            .is_some_and(|s| Arc::strong_count(s) == 1)
        {
            hosts.remove(&self.origin);
        }
    }
}

/// The key requests share a limit by: `https://api.example.com:443`.
fn origin(url: &Url) -> String {
    format!(
        "{}://{}:{}",
        url.scheme(),
        url.host_str().unwrap_or_default().to_ascii_lowercase(),
        url.port_or_known_default().unwrap_or_default()
    )
}

/// The limit every provider call in this process goes through.
pub fn global() -> &'static HostLimits {
    static LIMITS: LazyLock<HostLimits> = LazyLock::new(|| HostLimits::new(PER_HOST));
    &LIMITS
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Runs `calls` tasks through `limits`, each holding its permit across a yield, and
    /// returns the most that held a permit at once.
    async fn peak(limits: &HostLimits, urls: &[&str], calls: usize) -> usize {
        let inside = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let tasks = (0..calls).map(|i| {
            let url = Url::parse(urls[i % urls.len()]).unwrap();
            let (inside, most) = (&inside, &most);
            async move {
                let _permit = limits.acquire(&url).await;
                let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                for _ in 0..3 {
                    tokio::task::yield_now().await;
                }
                inside.fetch_sub(1, Ordering::SeqCst);
            }
        });
        futures::future::join_all(tasks).await;
        most.load(Ordering::SeqCst)
    }

    #[tokio::test]
    async fn one_host_never_sees_more_than_the_limit() {
        let limits = HostLimits::new(3);
        assert_eq!(peak(&limits, &["https://api.example.com/a"], 50).await, 3);
        assert_eq!(limits.hosts(), 0, "idle hosts are forgotten");
    }

    #[tokio::test]
    async fn hosts_do_not_share_a_limit() {
        let limits = HostLimits::new(2);
        let urls = ["https://a.example.com/x", "https://B.example.com:443/y"];
        assert_eq!(peak(&limits, &urls, 40).await, 4);
        assert_eq!(limits.hosts(), 0);
    }

    #[test]
    fn the_origin_includes_scheme_and_port() {
        let key = |u: &str| origin(&Url::parse(u).unwrap());
        assert_eq!(key("https://API.x.com/v1"), key("https://api.x.com:443/v2"));
        assert_ne!(key("https://api.x.com/"), key("http://api.x.com/"));
        assert_ne!(key("http://127.0.0.1:8080/"), key("http://127.0.0.1:8081/"));
    }
}
