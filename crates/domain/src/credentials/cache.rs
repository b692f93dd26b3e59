//! The cache in front of any [`CredentialResolver`]: a request that finds
//! fresh credentials never reaches the resolver.
//! - Sources without an expiry (environment, files, Secrets Manager) are
//!   kept for [`TTL`], so a rotated secret is picked up within minutes.
//! - Sources with one (ECR tokens: 12 hours) are kept until
//!   [`EXPIRY_MARGIN`] before it, never less than [`MIN_TTL`] (moto, for
//!   one, answers an expiry in the past).
//! - Past its refresh time an entry is still served while one caller
//!   refreshes it, and while the refresh fails, until it is no longer
//!   usable; a failure with nothing to serve is remembered for
//!   [`RETRY_AFTER`], so a broken secret costs one call per few seconds,
//!   not one per request.
//! - Each resolver call is bounded by [`CALL_TIMEOUT`].

use super::{CredentialError, CredentialResolver, CredentialSource, Credentials};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

pub const TTL: Duration = Duration::from_secs(5 * 60);
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(15 * 60);
pub const MIN_TTL: Duration = Duration::from_secs(60);
pub const RETRY_AFTER: Duration = Duration::from_secs(5);
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);

struct Slot {
    value: Result<Arc<Credentials>, CredentialError>,
    refresh_at: Instant,
    /// Served until then while a refresh is due or failing.
    usable_until: Instant,
    refreshing_since: Option<Instant>,
}

pub struct CredentialCache {
    resolver: Arc<dyn CredentialResolver>,
    slots: Mutex<HashMap<CredentialSource, Slot>>,
}

enum Plan {
    Answer(Result<Arc<Credentials>, CredentialError>),
    Fetch { stale: Option<Arc<Credentials>> },
}

impl CredentialCache {
    pub fn new(resolver: Arc<dyn CredentialResolver>) -> Self {
        CredentialCache {
            resolver,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The slots even after a panic under the lock: an entry cannot be
    /// left half written, and refusing them would turn the cache off.
    fn slots(&self) -> MutexGuard<'_, HashMap<CredentialSource, Slot>> {
        crate::sync::lock_healed(&self.slots, "the credential cache")
    }

    fn plan(&self, source: &CredentialSource, now: Instant) -> Plan {
        let mut slots = self.slots();
        let Some(slot) = slots.get_mut(source) else {
            return Plan::Fetch { stale: None };
        };
        if now < slot.refresh_at {
            return Plan::Answer(slot.value.clone());
        }
        let stale = slot
            .value
            .as_ref()
            .ok()
            .filter(|_| now < slot.usable_until)
            .cloned();
        if let (Some(since), Some(stale)) = (slot.refreshing_since, &stale) {
            if now.duration_since(since) < CALL_TIMEOUT {
                return Plan::Answer(Ok(stale.clone()));
            }
        }
        slot.refreshing_since = Some(now);
        Plan::Fetch { stale }
    }

    /// The credentials `source` names, from the cache when fresh.
    pub async fn get(
        &self,
        source: &CredentialSource,
    ) -> Result<Arc<Credentials>, CredentialError> {
        let stale = match self.plan(source, Instant::now()) {
            Plan::Answer(answer) => return answer,
            Plan::Fetch { stale } => stale,
        };
        let fetched = tokio::time::timeout(CALL_TIMEOUT, self.resolver.resolve(source))
            .await
            .unwrap_or_else(|_| {
                Err(CredentialError::Backend {
                    source_ref: source.to_string(),
                    reason: format!("no answer within {} s", CALL_TIMEOUT.as_secs()),
                })
            });
        let now = Instant::now();
        let slot = match (fetched, stale) {
            (Ok(resolved), _) => {
                let (refresh_in, usable_for) = lifetimes(resolved.valid_for);
                Slot {
                    value: Ok(Arc::new(resolved.credentials)),
                    refresh_at: now + refresh_in,
                    usable_until: now + usable_for,
                    refreshing_since: None,
                }
            }
            (Err(error), Some(stale)) => {
                tracing::warn!(credentials = %source, error = %error, "refreshing upstream credentials failed; using the last ones");
                let usable_until = self
                    .slots()
                    .get(source)
                    .map_or(now, |slot| slot.usable_until);
                Slot {
                    value: Ok(stale),
                    refresh_at: now + RETRY_AFTER,
                    usable_until,
                    refreshing_since: None,
                }
            }
            (Err(error), None) => Slot {
                value: Err(error),
                refresh_at: now + RETRY_AFTER,
                usable_until: now,
                refreshing_since: None,
            },
        };
        let answer = slot.value.clone();
        self.slots().insert(source.clone(), slot);
        answer
    }
}

/// How long until a refresh, and how long the entry may serve in all.
fn lifetimes(valid_for: Option<Duration>) -> (Duration, Duration) {
    match valid_for {
        None => (TTL, TTL * 2),
        Some(valid) => {
            let refresh = valid.saturating_sub(EXPIRY_MARGIN).max(MIN_TTL);
            let usable = valid.saturating_sub(MIN_TTL).max(refresh);
            (refresh, usable)
        }
    }
}
