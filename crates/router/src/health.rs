//! Upstream health, for automatic failover (the rule: the domain's
//! `mapping/failover.rs`). The primaries of mappings with a fallback are
//! watched from the first request that names them. A proxied request to
//! one that fails (no connection, a timeout, a 5xx) trips it; the probe
//! (`HealthProbe`, run by the entry point beside the workers) asks each
//! watched primary's `/v2/` every few seconds, tripping the ones that do
//! not answer — the only way to see a primary fail for redirected clients,
//! who talk to it directly — and clearing the ones that answer again.
//!
//! The request path pays one atomic load while nothing is failing, and a
//! read lock per request for hosts that have a fallback.

use pullgate_domain::mapping::{HostMappings, Registry};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

/// A primary nobody asked for in this long is no longer probed.
const FORGET_AFTER: Duration = Duration::from_secs(600);

#[derive(Default)]
pub struct UpstreamHealth {
    watched: RwLock<HashMap<String, Watched>>,
    /// How many watched registries are failing: zero is the fast path.
    failing: AtomicUsize,
}

struct Watched {
    registry: Arc<Registry>,
    failing: bool,
    /// A request named it since the last probe round (set under the read
    /// lock: no write lock per request).
    asked: AtomicBool,
    /// Since when no request named it.
    idle_since: Instant,
}

/// Why a registry was tripped, for the log line and the counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trip {
    /// A proxied request got no answer or a 5xx.
    Request,
    /// The probe of `/v2/` got no answer or a 5xx.
    Probe,
}

impl Trip {
    fn as_str(self) -> &'static str {
        match self {
            Trip::Request => "request",
            Trip::Probe => "probe",
        }
    }
}

impl UpstreamHealth {
    fn read(&self) -> RwLockReadGuard<'_, HashMap<String, Watched>> {
        // Every update leaves the map whole; a panic elsewhere cannot
        // leave half an entry.
        self.watched.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<String, Watched>> {
        self.watched.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The host's mappings as they serve now: watched primaries noted, and
    /// switched to their fallbacks where the primary is failing.
    pub fn apply(&self, mappings: Arc<HostMappings>) -> Arc<HostMappings> {
        if mappings.failover_primaries().next().is_none() {
            return mappings;
        }
        let unwatched: Vec<Arc<Registry>> = {
            let watched = self.read();
            mappings
                .failover_primaries()
                .filter(|r| match watched.get(&r.base) {
                    Some(w) => {
                        w.asked.store(true, Ordering::Relaxed);
                        false
                    }
                    None => true,
                })
                .cloned()
                .collect()
        };
        if !unwatched.is_empty() {
            let mut watched = self.write();
            for registry in unwatched {
                watched.entry(registry.base.clone()).or_insert(Watched {
                    registry,
                    failing: false,
                    asked: AtomicBool::new(true),
                    idle_since: Instant::now(),
                });
            }
        }
        if self.failing.load(Ordering::Acquire) == 0 {
            return mappings;
        }
        let watched = self.read();
        let failing = |r: &Registry| watched.get(&r.base).is_some_and(|w| w.failing);
        match mappings.failed_over(failing) {
            Some(switched) => Arc::new(switched),
            None => mappings,
        }
    }

    pub fn is_failing(&self, base: &str) -> bool {
        self.failing.load(Ordering::Acquire) > 0 && self.read().get(base).is_some_and(|w| w.failing)
    }

    /// The registry failed: its mappings switch to their fallbacks until
    /// the probe sees it answer again.
    pub fn trip(&self, base: &str, why: Trip) {
        let mut watched = self.write();
        let Some(entry) = watched.get_mut(base) else {
            return;
        };
        if !entry.failing {
            entry.failing = true;
            self.failing.fetch_add(1, Ordering::AcqRel);
            metrics::counter!("pullgate_upstream_failovers_total", "by" => why.as_str())
                .increment(1);
            tracing::warn!(
                upstream = base,
                by = why.as_str(),
                "upstream failing: its mappings switch to their fallbacks"
            );
        }
    }

    fn clear(&self, base: &str) {
        let mut watched = self.write();
        if let Some(entry) = watched.get_mut(base) {
            if entry.failing {
                entry.failing = false;
                self.failing.fetch_sub(1, Ordering::AcqRel);
                tracing::info!(
                    upstream = base,
                    "upstream answers again: its mappings switch back"
                );
            }
        }
    }

    /// The registries to probe; forgets those no request named for a while.
    fn to_probe(&self) -> Vec<Arc<Registry>> {
        let mut watched = self.write();
        watched.retain(|_, w| {
            if w.asked.swap(false, Ordering::Relaxed) {
                w.idle_since = Instant::now();
            }
            w.failing || w.idle_since.elapsed() < FORGET_AFTER
        });
        watched.values().map(|w| w.registry.clone()).collect()
    }
}

/// The background probe of watched primaries.
pub struct HealthProbe {
    health: Arc<UpstreamHealth>,
    http: reqwest::Client,
    every: Duration,
}

impl HealthProbe {
    pub(crate) fn new(health: Arc<UpstreamHealth>, http: reqwest::Client, every: Duration) -> Self {
        HealthProbe {
            health,
            http,
            every,
        }
    }

    /// Probes every `every` until the process ends.
    pub async fn run(self) {
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.probe_once().await;
        }
    }

    /// One round: `/v2/` of each watched primary. Any answer below 500 (a
    /// 401 challenge included) is a registry that serves.
    pub async fn probe_once(&self) {
        for registry in self.health.to_probe() {
            let url = pullgate_domain::location::ping(&registry.base);
            let answered = match self.http.get(&url).timeout(self.every).send().await {
                Ok(response) => !response.status().is_server_error(),
                Err(_) => false,
            };
            if answered {
                self.health.clear(&registry.base);
            } else {
                self.health.trip(&registry.base, Trip::Probe);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pullgate_domain::mapping::MappingTable;

    fn mappings() -> Arc<HostMappings> {
        MappingTable::from_toml(
            "[[mappings]]\nhost = \"images.example\"\nname = \"app\"\nupstream = \"primary.example/acme/app\"\nfallback = \"ghcr.io/acme/app\"\n",
        )
        .unwrap()
        .host("images.example")
        .cloned()
        .unwrap()
    }

    #[test]
    fn a_tripped_primary_switches_its_mappings_until_cleared() {
        let health = UpstreamHealth::default();
        let served = health.apply(mappings());
        assert!(!served.lookup("app").unwrap().mapping.down);
        // Unwatched registries are not tripped (nothing names them).
        health.trip("https://other.example", Trip::Request);
        assert_eq!(health.failing.load(Ordering::Acquire), 0);

        health.trip("https://primary.example", Trip::Request);
        health.trip("https://primary.example", Trip::Probe);
        assert_eq!(health.failing.load(Ordering::Acquire), 1, "counted once");
        let switched = health.apply(mappings());
        let app = switched.lookup("app").unwrap();
        assert!(app.mapping.failed_over);
        assert_eq!(app.upstream().unwrap().registry.base, "https://ghcr.io");

        health.clear("https://primary.example");
        assert!(!health.is_failing("https://primary.example"));
        assert!(!health.apply(mappings()).lookup("app").unwrap().mapping.down);
    }
}
