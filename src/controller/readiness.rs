//! Whether a watch cache has its first full list, awaitable by any number of reconciles.
//!
//! kube-runtime's `Store::wait_until_ready` wakes only the most recent of several waiters that
//! wait at the same time: it polls one one-shot channel, which keeps a single waker. Reconciles
//! that started together right after a start waited on it, and all but one of them never woke
//! (seen as 63 of 1,000 Connections never reconciled after a restart). Worse, the controller's
//! own start gate waits on the same store, so a reconcile of another kind (a Tenant counting
//! Connections) could leave the Connection controller never starting at all. So each cache
//! here gets a flag of its own, raised when its watch stream passes the end of the first list,
//! and the controller's start gate stays the only waiter on kube-runtime's.

use futures::{Stream, StreamExt};
use kube::runtime::watcher;
use tokio::sync::watch;

/// Raises the flag when the watch stream it observes completes its first list. Dropped with
/// the stream, which tells waiters the cache will not fill.
pub struct Raiser(watch::Sender<bool>);

/// Awaits the flag.
#[derive(Clone, Debug)]
pub struct Ready(watch::Receiver<bool>);

/// A new, lowered flag.
pub fn flag() -> (Raiser, Ready) {
    let (tx, rx) = watch::channel(false);
    (Raiser(tx), Ready(rx))
}

impl Raiser {
    /// Passes the stream on, raising the flag at its first `InitDone`. The reflector upstream
    /// has by then swapped the complete list into its store.
    pub fn on<K, S>(self, events: S) -> impl Stream<Item = S::Item> + use<K, S>
    where
        S: Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
    {
        events.inspect(move |event| {
            if let Ok(watcher::Event::InitDone) = event {
                self.0.send_replace(true);
            }
        })
    }
}

impl Ready {
    /// Waits until the cache has its first full list; false if its watch ended first.
    pub async fn wait(&self) -> bool {
        let mut rx = self.0.clone();
        rx.wait_for(|ready| *ready).await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    #[tokio::test]
    async fn every_waiter_wakes_when_the_first_list_completes() {
        let (raiser, ready) = flag();
        let (tx, rx) = futures::channel::mpsc::unbounded();
        let events = raiser.on::<ConfigMap, _>(rx);
        // Many waiters, each its own task, all waiting before the list completes.
        let waiters: Vec<_> = (0..64)
            .map(|_| {
                let ready = ready.clone();
                tokio::spawn(async move { ready.wait().await })
            })
            .collect();
        tokio::task::yield_now().await;
        let pump = tokio::spawn(events.for_each(|_| async {}));
        tx.unbounded_send(Ok(watcher::Event::Init)).unwrap();
        tx.unbounded_send(Ok(watcher::Event::InitDone)).unwrap();
        for waiter in waiters {
            let woke = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
                .await
                .expect("every waiter wakes")
                .unwrap();
            assert!(woke);
        }
        drop(tx);
        pump.await.unwrap();
        // Raised once, it stays raised for later waiters even after the stream is gone.
        assert!(ready.wait().await);
    }

    #[tokio::test]
    async fn a_watch_that_ends_before_its_first_list_is_not_ready() {
        let (raiser, ready) = flag();
        let (tx, rx) = futures::channel::mpsc::unbounded();
        let pump = tokio::spawn(raiser.on::<ConfigMap, _>(rx).for_each(|_| async {}));
        tx.unbounded_send(Ok(watcher::Event::Init)).unwrap();
        drop(tx);
        pump.await.unwrap();
        assert!(!ready.wait().await);
    }
}
