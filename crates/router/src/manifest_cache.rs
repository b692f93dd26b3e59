//! Proxied manifests, kept in memory so a tag pulled a thousand times costs
//! the upstream a handful of manifest GETs (Docker Hub counts GETs against
//! its pull limit; HEADs are free):
//! - manifests by digest, which never change: a byte budget, the least
//!   recently used evicted first;
//! - what an upstream HEAD said a reference is, for a short TTL (0: ask
//!   every time). The key holds the client's Accept lines and a fingerprint
//!   of its Authorization, so one client's access is never another's and a
//!   tag resolves to the media type the client asked for.

use bytes::Bytes;
use http::HeaderValue;
use pullgate_domain::sync::lock_healed;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone)]
pub struct ManifestCacheSettings {
    /// Bytes of manifest bodies kept at most; 0 turns the cache off.
    pub max_bytes: usize,
    /// How long an upstream's answer to "what digest is this reference?"
    /// is trusted; 0: a HEAD upstream for every request.
    pub reference_ttl: Duration,
    /// References remembered at most (random tags must not grow memory).
    pub max_references: usize,
}

impl ManifestCacheSettings {
    pub const DEFAULT: ManifestCacheSettings = ManifestCacheSettings {
        max_bytes: pullgate_settings::defaults::MANIFEST_CACHE_BYTES,
        reference_ttl: pullgate_settings::defaults::MANIFEST_REFERENCE_TTL,
        max_references: 10_000,
    };

    pub fn is_on(&self) -> bool {
        self.max_bytes > 0
    }
}

/// A manifest as the upstream served it: the three headers a client reads,
/// exactly as given (Content-Length is the body's length).
#[derive(Debug, Clone)]
pub struct CachedManifest {
    pub content_type: HeaderValue,
    pub digest: HeaderValue,
    pub body: Bytes,
}

pub struct ManifestCache {
    settings: ManifestCacheSettings,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    manifests: HashMap<String, (Arc<CachedManifest>, u64)>,
    /// Use order: tick → key; the smallest tick is the least recently used.
    order: BTreeMap<u64, String>,
    tick: u64,
    bytes: usize,
    references: HashMap<String, (String, Instant)>,
}

impl ManifestCache {
    pub fn new(settings: ManifestCacheSettings) -> Self {
        ManifestCache {
            settings,
            state: Mutex::new(State::default()),
        }
    }

    pub fn settings(&self) -> &ManifestCacheSettings {
        &self.settings
    }

    /// The state even after a panic elsewhere: every update below leaves it
    /// whole (entries are inserted or not), so a poisoned lock is healed.
    fn state(&self) -> MutexGuard<'_, State> {
        lock_healed(&self.state, "the manifest cache")
    }

    /// The digest an upstream HEAD gave for `reference_key` within the TTL.
    pub fn resolved(&self, reference_key: &str) -> Option<String> {
        if self.settings.reference_ttl.is_zero() {
            return None;
        }
        let state = self.state();
        let (digest, at) = state.references.get(reference_key)?;
        (at.elapsed() < self.settings.reference_ttl).then(|| digest.clone())
    }

    pub fn remember_resolved(&self, reference_key: String, digest: String) {
        if self.settings.reference_ttl.is_zero() {
            return;
        }
        let mut state = self.state();
        if state.references.len() >= self.settings.max_references {
            let ttl = self.settings.reference_ttl;
            state.references.retain(|_, (_, at)| at.elapsed() < ttl);
            if state.references.len() >= self.settings.max_references {
                // All fresh: a flood of distinct references. Forgetting them
                // costs HEADs, never a wrong answer.
                state.references.clear();
            }
        }
        state
            .references
            .insert(reference_key, (digest, Instant::now()));
    }

    pub fn get(&self, manifest_key: &str) -> Option<Arc<CachedManifest>> {
        let mut state = self.state();
        state.tick += 1;
        let tick = state.tick;
        let (manifest, used) = state.manifests.get_mut(manifest_key)?;
        let (manifest, previous) = (manifest.clone(), std::mem::replace(used, tick));
        state.order.remove(&previous);
        state.order.insert(tick, manifest_key.to_string());
        Some(manifest)
    }

    /// Keeps `manifest`, evicting the least recently used ones over the
    /// budget. A manifest larger than the whole budget is not kept.
    pub fn insert(&self, manifest_key: String, manifest: CachedManifest) {
        let size = manifest.body.len();
        if size > self.settings.max_bytes {
            return;
        }
        let mut state = self.state();
        state.tick += 1;
        let tick = state.tick;
        if let Some((old, used)) = state
            .manifests
            .insert(manifest_key.clone(), (Arc::new(manifest), tick))
        {
            state.bytes -= old.body.len();
            state.order.remove(&used);
        }
        state.order.insert(tick, manifest_key);
        state.bytes += size;
        while state.bytes > self.settings.max_bytes {
            let Some((_, oldest)) = state.order.pop_first() else {
                break;
            };
            if let Some((evicted, _)) = state.manifests.remove(&oldest) {
                state.bytes -= evicted.body.len();
            }
        }
    }

    /// Bytes of manifest bodies held.
    pub fn bytes(&self) -> usize {
        self.state().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(size: usize) -> CachedManifest {
        CachedManifest {
            content_type: HeaderValue::from_static("application/vnd.oci.image.manifest.v1+json"),
            digest: HeaderValue::from_static("sha256:x"),
            body: Bytes::from(vec![b'{'; size]),
        }
    }

    fn settings(max_bytes: usize, ttl_secs: u64) -> ManifestCacheSettings {
        ManifestCacheSettings {
            max_bytes,
            reference_ttl: Duration::from_secs(ttl_secs),
            max_references: 3,
        }
    }

    #[test]
    fn the_least_recently_used_go_first_and_the_budget_holds() {
        let cache = ManifestCache::new(settings(300, 5));
        cache.insert("a".into(), manifest(100));
        cache.insert("b".into(), manifest(100));
        cache.insert("c".into(), manifest(100));
        assert!(cache.get("a").is_some()); // a is now the most recent
        cache.insert("d".into(), manifest(100));
        assert!(cache.get("b").is_none(), "b was the least recently used");
        assert!(cache.get("a").is_some() && cache.get("c").is_some() && cache.get("d").is_some());
        assert_eq!(cache.bytes(), 300);
        cache.insert("huge".into(), manifest(301));
        assert!(cache.get("huge").is_none());
        assert_eq!(cache.bytes(), 300);
        // Replacing an entry counts its bytes once.
        cache.insert("a".into(), manifest(50));
        assert_eq!(cache.bytes(), 250);
    }

    #[tokio::test(start_paused = true)]
    async fn resolved_references_expire_after_the_ttl_and_zero_keeps_none() {
        let cache = ManifestCache::new(settings(300, 5));
        cache.remember_resolved("r:1".into(), "sha256:a".into());
        assert_eq!(cache.resolved("r:1").as_deref(), Some("sha256:a"));
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(cache.resolved("r:1"), None);

        let uncached = ManifestCache::new(settings(300, 0));
        uncached.remember_resolved("r:1".into(), "sha256:a".into());
        assert_eq!(uncached.resolved("r:1"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn references_are_bounded() {
        let cache = ManifestCache::new(settings(300, 5));
        for i in 0..10 {
            cache.remember_resolved(format!("r:{i}"), "sha256:a".into());
        }
        assert!(cache.state().references.len() <= 3);
        assert_eq!(cache.resolved("r:9").as_deref(), Some("sha256:a"));
    }
}
