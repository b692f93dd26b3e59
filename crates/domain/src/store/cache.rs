//! An in-memory cache in front of any `MappingSource` (the DynamoDB table in
//! Lambda; any store `pullgate serve` is given). It knows nothing of the
//! store behind it:
//! - answers, found or not, are kept for a TTL: a scanner trying random
//!   hosts costs one store read per host per TTL, not one per request
//!   (unknown *names* of a known host never reach the store at all: a host's
//!   mappings are read whole);
//! - each store call is bounded by a timeout;
//! - when the store fails or times out, the last good copy keeps serving
//!   and the store is asked again only after `retry_after`;
//! - when an entry expires, one caller refreshes it while concurrent callers
//!   keep getting the last copy (no thundering herd on the store). A cold
//!   miss has no copy to serve, so concurrent cold misses each ask (in
//!   Lambda one environment serves one request at a time anyway).
//!
//! Every lookup counts one [`Outcome`] in `pullgate_mapping_cache_total`.

mod outcome;

use super::{host_candidates, MappingSource, StoreError};
use crate::mapping::HostMappings;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

pub use outcome::Outcome;
use outcome::OutcomeCounters;

#[derive(Debug, Clone)]
pub struct CacheSettings {
    /// How long a host's mappings are served before the store is asked again.
    pub ttl: Duration,
    /// How long "no such host" is remembered.
    pub negative_ttl: Duration,
    /// Upper bound of one store call.
    pub call_timeout: Duration,
    /// After a failed refresh, how long the last copy serves before the next try.
    pub retry_after: Duration,
    /// Hosts remembered at most (random Host headers must not grow memory).
    pub max_hosts: usize,
}

impl CacheSettings {
    /// The defaults, stated once (`pullgate_settings::defaults` names them
    /// for the entry points and says why each is what it is).
    pub const DEFAULT: CacheSettings = CacheSettings {
        ttl: Duration::from_secs(60),
        negative_ttl: Duration::from_secs(60),
        call_timeout: Duration::from_millis(1500),
        retry_after: Duration::from_secs(5),
        max_hosts: 10_000,
    };
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings::DEFAULT
    }
}

struct Slot {
    value: Option<Arc<HostMappings>>,
    expires: Instant,
    /// A caller is refreshing this entry since then.
    refreshing_since: Option<Instant>,
}

pub struct CachedMappings<S> {
    source: S,
    settings: CacheSettings,
    slots: Mutex<HashMap<String, Slot>>,
    counters: OutcomeCounters,
}

/// What the cache decided under its lock.
enum Plan {
    Serve(Option<Arc<HostMappings>>, Outcome),
    /// Ask the store; `stale` is the copy to fall back on.
    Fetch {
        stale: Option<Option<Arc<HostMappings>>>,
    },
}

impl<S: MappingSource> CachedMappings<S> {
    pub fn new(source: S, settings: CacheSettings) -> Self {
        CachedMappings {
            source,
            settings,
            slots: Mutex::new(HashMap::new()),
            counters: OutcomeCounters::register(),
        }
    }

    fn count(&self, outcome: Outcome) {
        self.counters.count(outcome);
    }

    pub fn source(&self) -> &S {
        &self.source
    }

    /// The slots even when a thread panicked holding their lock. Refusing
    /// them would quietly turn the cache off (every request a store read);
    /// and a panic cannot leave them half updated in a way that matters:
    /// the worst is one entry's refresh marked in flight, which expires
    /// after `call_timeout` as an abandoned refresh does. Said once, then
    /// the lock is healed.
    fn slots(&self) -> MutexGuard<'_, HashMap<String, Slot>> {
        crate::sync::lock_healed(&self.slots, "the mapping cache")
    }

    fn plan(&self, key: &str, now: Instant) -> Plan {
        let mut slots = self.slots();
        let Some(slot) = slots.get_mut(key) else {
            return Plan::Fetch { stale: None };
        };
        if now < slot.expires {
            let outcome = match slot.value {
                Some(_) => Outcome::Hit,
                None => Outcome::NegativeHit,
            };
            return Plan::Serve(slot.value.clone(), outcome);
        }
        // A refresh in flight (not abandoned: younger than a call can
        // take) serves everyone else the last copy.
        if let Some(since) = slot.refreshing_since {
            if now.duration_since(since) < self.settings.call_timeout {
                return Plan::Serve(slot.value.clone(), Outcome::Stale);
            }
        }
        slot.refreshing_since = Some(now);
        Plan::Fetch {
            stale: Some(slot.value.clone()),
        }
    }

    fn store(&self, key: String, value: Option<Arc<HostMappings>>, expires: Instant) {
        let mut slots = self.slots();
        if slots.len() >= self.settings.max_hosts && !slots.contains_key(&key) {
            let now = Instant::now();
            slots.retain(|_, slot| slot.expires > now && slot.value.is_some());
            if slots.len() >= self.settings.max_hosts {
                slots.clear();
            }
        }
        slots.insert(
            key,
            Slot {
                value,
                expires,
                refreshing_since: None,
            },
        );
    }
}

impl<S: MappingSource> MappingSource for CachedMappings<S> {
    async fn host(&self, host: &str) -> Result<Option<Arc<HostMappings>>, StoreError> {
        // One entry however a client spells the host: the store's own first
        // lookup key (the store tries the port-less one itself).
        let candidates = host_candidates(host);
        let key = candidates.exact();
        let now = Instant::now();
        let stale = match self.plan(key, now) {
            Plan::Serve(value, outcome) => {
                self.count(outcome);
                return Ok(value);
            }
            Plan::Fetch { stale } => stale,
        };
        let fetched = tokio::time::timeout(self.settings.call_timeout, self.source.host(key))
            .await
            .unwrap_or_else(|_| Err(StoreError::Timeout(self.settings.call_timeout)));
        match (fetched, stale) {
            (Ok(value), stale) => {
                self.count(match stale {
                    Some(_) => Outcome::Refresh,
                    None => Outcome::Miss,
                });
                let ttl = match value {
                    Some(_) => self.settings.ttl,
                    None => self.settings.negative_ttl,
                };
                self.store(key.to_string(), value.clone(), Instant::now() + ttl);
                Ok(value)
            }
            (Err(error), Some(last)) => {
                tracing::warn!(host = %key, error = %error.with_causes(), "mapping store failed; serving the last good copy");
                self.count(Outcome::Stale);
                self.store(
                    key.to_string(),
                    last.clone(),
                    Instant::now() + self.settings.retry_after,
                );
                Ok(last)
            }
            (Err(error), None) => {
                self.count(Outcome::Error);
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::MappingTable;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    /// An in-memory adapter of our own port, counting calls; it can be
    /// made to fail or to hang.
    struct Counted {
        table: MappingTable,
        calls: AtomicUsize,
        failing: AtomicBool,
        hanging: AtomicBool,
    }

    impl MappingSource for Counted {
        async fn host(&self, host: &str) -> Result<Option<Arc<HostMappings>>, StoreError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.hanging.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            if self.failing.load(Ordering::SeqCst) {
                return Err(StoreError::unavailable(std::io::Error::new(
                    std::io::ErrorKind::ConnectionRefused,
                    "connection refused",
                )));
            }
            Ok(self.table.host(host).cloned())
        }
    }

    fn cache() -> CachedMappings<Counted> {
        let table = MappingTable::from_toml(
            r#"
            [[mappings]]
            host = "images.acme.dev"
            name = "app"
            upstream = "docker.io/acme/app"
            "#,
        )
        .unwrap();
        CachedMappings::new(
            Counted {
                table,
                calls: AtomicUsize::new(0),
                failing: AtomicBool::new(false),
                hanging: AtomicBool::new(false),
            },
            CacheSettings {
                ttl: Duration::from_secs(60),
                negative_ttl: Duration::from_secs(30),
                call_timeout: Duration::from_secs(1),
                retry_after: Duration::from_secs(5),
                max_hosts: 3,
            },
        )
    }

    fn calls(c: &CachedMappings<Counted>) -> usize {
        c.source.calls.load(Ordering::SeqCst)
    }

    #[tokio::test(start_paused = true)]
    async fn hits_are_served_from_memory_until_the_ttl() {
        let c = cache();
        for spelling in ["images.acme.dev", "Images.ACME.dev", "images.acme.dev"] {
            assert!(c.host(spelling).await.unwrap().is_some());
        }
        assert_eq!(calls(&c), 1);
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(c.host("images.acme.dev").await.unwrap().is_some());
        assert_eq!(calls(&c), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn unknown_hosts_are_cached_negatively() {
        let c = cache();
        for _ in 0..100 {
            assert!(c.host("scanner.example").await.unwrap().is_none());
        }
        assert_eq!(calls(&c), 1);
        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(c.host("scanner.example").await.unwrap().is_none());
        assert_eq!(calls(&c), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn the_last_good_copy_serves_while_the_store_fails() {
        let c = cache();
        assert!(c.host("images.acme.dev").await.unwrap().is_some());
        c.source.failing.store(true, Ordering::SeqCst);
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(c.host("images.acme.dev").await.unwrap().is_some());
        assert_eq!(calls(&c), 2);
        // Not asked again before retry_after.
        for _ in 0..10 {
            assert!(c.host("images.acme.dev").await.unwrap().is_some());
        }
        assert_eq!(calls(&c), 2);
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(c.host("images.acme.dev").await.unwrap().is_some());
        assert_eq!(calls(&c), 3);
        // With no copy at all, the failure is the answer.
        assert!(c.host("new.acme.dev").await.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_store_is_cut_off_and_the_last_copy_serves() {
        let c = cache();
        assert!(c.host("images.acme.dev").await.unwrap().is_some());
        c.source.hanging.store(true, Ordering::SeqCst);
        tokio::time::advance(Duration::from_secs(61)).await;
        let started = Instant::now();
        assert!(c.host("images.acme.dev").await.unwrap().is_some());
        assert_eq!(started.elapsed(), Duration::from_secs(1));
        let err = c.host("cold.acme.dev").await.unwrap_err();
        assert!(
            err.to_string().contains("no answer within 1000 ms"),
            "{err}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn one_caller_refreshes_while_others_get_the_last_copy() {
        let c = Arc::new(cache());
        assert!(c.host("images.acme.dev").await.unwrap().is_some());
        c.source.hanging.store(true, Ordering::SeqCst);
        tokio::time::advance(Duration::from_secs(61)).await;
        let refresher = tokio::spawn({
            let c = c.clone();
            async move { c.host("images.acme.dev").await }
        });
        tokio::task::yield_now().await;
        assert_eq!(calls(&c), 2, "the refresher is asking");
        for _ in 0..50 {
            assert!(c.host("images.acme.dev").await.unwrap().is_some());
        }
        assert_eq!(calls(&c), 2, "nobody else asked");
        assert!(refresher.await.unwrap().unwrap().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_poisoned_lock_keeps_the_cache_working() {
        let c = cache();
        assert!(c.host("images.acme.dev").await.unwrap().is_some());
        poison(&c.slots);
        for _ in 0..10 {
            assert!(c.host("images.acme.dev").await.unwrap().is_some());
        }
        assert_eq!(calls(&c), 1, "still served from memory");
        poison(&c.slots);
        for _ in 0..10 {
            assert!(c.host("scanner.example").await.unwrap().is_none());
        }
        assert_eq!(calls(&c), 2, "new answers are still kept");
    }

    /// Leaves `mutex` poisoned: a thread panics while holding it.
    fn poison<T: Send>(mutex: &Mutex<T>) {
        std::thread::scope(|scope| {
            let panicked = scope
                .spawn(|| {
                    let _held = mutex.lock();
                    panic!("poisoning the lock on purpose");
                })
                .join();
            assert!(panicked.is_err());
        });
        assert!(mutex.is_poisoned());
    }

    #[tokio::test(start_paused = true)]
    async fn every_lookup_counts_one_outcome() {
        use metrics_util::debugging::{DebugValue, DebuggingRecorder};
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        // The handles bind to the recorder present when the cache is built.
        let c = metrics::with_local_recorder(&recorder, cache);
        assert!(c.host("images.acme.dev").await.unwrap().is_some()); // miss
        assert!(c.host("images.acme.dev").await.unwrap().is_some()); // hit
        assert!(c.host("scanner.example").await.unwrap().is_none()); // miss
        assert!(c.host("scanner.example").await.unwrap().is_none()); // negative_hit
        c.source.failing.store(true, Ordering::SeqCst);
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(c.host("images.acme.dev").await.unwrap().is_some()); // stale
        assert!(c.host("new.acme.dev").await.is_err()); // error
        c.source.failing.store(false, Ordering::SeqCst);
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(c.host("images.acme.dev").await.unwrap().is_some()); // refresh
        let mut counted: Vec<(String, u64)> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let key = key.key();
                assert_eq!(key.name(), "pullgate_mapping_cache_total");
                let result = key.labels().find(|l| l.key() == "result").unwrap();
                let DebugValue::Counter(n) = value else {
                    panic!("{value:?}")
                };
                (result.value().to_string(), n)
            })
            .collect();
        counted.sort();
        let expected = [
            ("error", 1),
            ("hit", 1),
            ("miss", 2),
            ("negative_hit", 1),
            ("refresh", 1),
            ("stale", 1),
        ];
        assert_eq!(counted, expected.map(|(r, n)| (r.to_string(), n)));
    }

    #[tokio::test(start_paused = true)]
    async fn memory_is_bounded() {
        let c = cache();
        for i in 0..20 {
            let _ = c.host(&format!("h{i}.example")).await;
        }
        assert!(c.slots.lock().unwrap().len() <= 3);
    }
}
