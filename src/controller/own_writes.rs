//! The operator's memory of its own recent writes, so that a reconcile never acts on a cached
//! object that does not yet show them.
//!
//! The watch caches lag the API server by a few milliseconds. A Connection whose reconcile has
//! just written its credentials Secret and then its status is reconciled again at once (the
//! Secret's watch event triggers it), and the Connection in the cache may still carry the old
//! status. Acting on it repeats the work: a refresh requested by annotation, or one whose old
//! `nextRefreshAt` has passed, is made a second time, and the status is written twice. Each
//! write here records the resourceVersion it was made against; a reconcile that finds the
//! cache still at that version waits for the cache instead.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kube::{Resource, ResourceExt};

/// How long a recorded write may keep a reconcile waiting for the cache. The cache catches up
/// within milliseconds; past this the watch is broken or the write never changed the object,
/// and acting on the cache is the lesser evil than waiting forever.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(10);

/// How soon a reconcile that found the cache behind its own last writes looks again: the
/// cache catches up within milliseconds, and waiting a little keeps it from spinning.
pub const CATCH_UP: Duration = Duration::from_millis(200);

/// The key of the `K` named `namespace/name` in [`OwnWrites`].
pub fn key<K: Resource<DynamicType = ()>>(namespace: &str, name: &str) -> String {
    format!("{}/{namespace}/{name}", K::kind(&()))
}

fn key_of<K: Resource<DynamicType = ()>>(obj: &K) -> String {
    key::<K>(&obj.namespace().unwrap_or_default(), &obj.name_any())
}

/// Writes whose effect the caches may not show yet, by object.
#[derive(Debug, Default)]
pub struct OwnWrites {
    pending: Mutex<HashMap<String, Pending>>,
}

#[derive(Debug)]
struct Pending {
    /// The resourceVersion the write was made against (none: the object did not exist); the
    /// cache is stale while it shows this.
    before: Option<String>,
    at: Instant,
}

impl OwnWrites {
    /// Records a write to `key` that moved it from resourceVersion `before` (none: it did not
    /// exist) to `after`. A write that changed nothing (the same version, or none returned)
    /// leaves nothing to wait for.
    pub fn wrote(&self, key: String, before: Option<&str>, after: Option<&str>) {
        if after.is_some() && before != after {
            self.changed(key, before);
        }
    }

    /// Records a write to `key`, made against resourceVersion `before`, that is known to have
    /// changed it (adding a finalizer always does).
    pub fn changed(&self, key: String, before: Option<&str>) {
        let mut pending = self.lock();
        // An entry is otherwise forgotten only when its object is next reconciled, which for
        // a Connected one is its next refresh: every object written once would keep one.
        // Expired entries mean nothing, and dropping them just before the map would grow
        // costs one pass per doubling.
        if pending.len() == pending.capacity() {
            pending.retain(|_, write| write.at.elapsed() < CATCH_UP_LIMIT);
        }
        pending.insert(
            key,
            Pending {
                before: before.map(str::to_owned),
                at: Instant::now(),
            },
        );
    }

    /// Whether the cached `key`, at resourceVersion `cached` (none: not in the cache), does not
    /// yet show this operator's last write to it. Forgets the write once the cache has moved past it.
    pub fn not_yet_seen(&self, key: &str, cached: Option<&str>) -> bool {
        let mut pending = self.lock();
        let Some(write) = pending.get(key) else {
            return false;
        };
        if cached == write.before.as_deref() && write.at.elapsed() < CATCH_UP_LIMIT {
            return true;
        }
        pending.remove(key);
        false
    }

    /// Forgets `key`, for an object that is gone.
    pub fn forget(&self, key: &str) {
        self.lock().remove(key);
    }

    /// Records a write that turned the cached `before` into the returned `after`.
    pub fn wrote_object<K: Resource<DynamicType = ()>>(&self, before: &K, after: &K) {
        self.wrote(
            key_of(before),
            before.meta().resource_version.as_deref(),
            after.meta().resource_version.as_deref(),
        );
    }

    /// Whether the cached `obj` does not yet show this operator's last write to it.
    pub fn behind<K: Resource<DynamicType = ()>>(&self, obj: &K) -> bool {
        self.not_yet_seen(&key_of(obj), obj.meta().resource_version.as_deref())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        // A panic elsewhere while holding the lock leaves a plain map behind, still usable.
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_is_stale_until_it_moves_past_the_version_written_against() {
        let writes = OwnWrites::default();
        writes.wrote("Connection/ns/a".into(), Some("10"), Some("11"));
        assert!(writes.not_yet_seen("Connection/ns/a", Some("10")));
        assert!(!writes.not_yet_seen("Connection/ns/b", Some("10")));
        assert!(!writes.not_yet_seen("Connection/ns/a", Some("11")));
        // Seen once, the write is forgotten: the map does not grow with every write.
        assert_eq!(writes.len(), 0);
        assert!(!writes.not_yet_seen("Connection/ns/a", Some("10")));
    }

    #[test]
    fn a_write_that_changed_nothing_is_not_waited_for() {
        let writes = OwnWrites::default();
        writes.wrote("Secret/ns/a".into(), Some("7"), Some("7"));
        writes.wrote("Secret/ns/b".into(), Some("8"), None);
        assert!(!writes.not_yet_seen("Secret/ns/a", Some("7")));
        assert!(!writes.not_yet_seen("Secret/ns/b", Some("8")));
        assert_eq!(writes.len(), 0);
    }

    #[test]
    fn a_created_object_is_awaited_until_the_cache_has_it() {
        let writes = OwnWrites::default();
        writes.wrote("Secret/ns/a".into(), None, Some("3"));
        assert!(writes.not_yet_seen("Secret/ns/a", None));
        assert!(!writes.not_yet_seen("Secret/ns/a", Some("3")));
    }

    #[test]
    fn someone_elses_newer_version_ends_the_wait() {
        let writes = OwnWrites::default();
        writes.wrote("Connection/ns/a".into(), Some("10"), Some("11"));
        assert!(!writes.not_yet_seen("Connection/ns/a", Some("12")));
    }

    #[test]
    fn expired_writes_are_dropped_before_the_map_grows() {
        let writes = OwnWrites::default();
        let long_ago = Instant::now().checked_sub(CATCH_UP_LIMIT * 2);
        let Some(long_ago) = long_ago else {
            return; // a machine up for less than 20 s: nothing can have expired yet
        };
        for i in 0..100 {
            let old = Pending {
                before: Some("1".into()),
                at: long_ago,
            };
            writes.lock().insert(format!("Secret/ns/old-{i}"), old);
        }
        for i in 0..200 {
            writes.wrote(format!("Secret/ns/new-{i}"), Some("1"), Some("2"));
        }
        assert_eq!(writes.len(), 200, "only the recent writes are kept");
        assert!(writes.not_yet_seen("Secret/ns/new-7", Some("1")));
    }

    #[test]
    fn forget_drops_a_deleted_object() {
        let writes = OwnWrites::default();
        writes.wrote("Connection/ns/a".into(), Some("1"), Some("2"));
        writes.forget("Connection/ns/a");
        assert_eq!(writes.len(), 0);
    }
}
