//! Calls to upstream registries, and what we learnt about how each one
//! authenticates (cached: the request path must not ask twice). Every call
//! goes through [`UpstreamClient::send`] and every body read through
//! [`UpstreamClient::read_limited`], which time and count them (`metrics.rs`).

use crate::health::UpstreamHealth;
use crate::manifest_cache::{ManifestCache, ManifestCacheSettings};
use crate::metrics::{Failure, UpstreamMetrics};
use bytes::Bytes;
use futures_util::TryStreamExt;
use pullgate_domain::challenge::{self, UpstreamAuth};
use pullgate_domain::credentials::{CredentialCache, LocalCredentials};
use pullgate_domain::error::{refusals, RegistryError};
use pullgate_domain::location;
use pullgate_domain::mapping::Registry;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

pub struct UpstreamClient {
    pub(crate) http: reqwest::Client,
    /// Proxied manifests by digest, shared by every mapping (keys name the
    /// upstream registry and repository).
    pub(crate) manifests: ManifestCache,
    /// Which failover primaries are failing (`health.rs`).
    pub(crate) health: Arc<UpstreamHealth>,
    auth_cache: RwLock<HashMap<String, (UpstreamAuth, Instant)>>,
    auth_ttl: Duration,
    /// Mappings' upstream credentials (`credentials.rs`) and the clients
    /// that fetch token realms (`realm.rs`).
    pub(crate) credentials: std::sync::Arc<CredentialCache>,
    pub(crate) realms: crate::realm::RealmClients,
    /// What the entry point can return (Lambda's limits, or none).
    pub(crate) entry: crate::EntryLimits,
    metrics: UpstreamMetrics,
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No client at all rather than one that follows redirects: a followed
    /// blob redirect would pull the bytes through the gateway.
    #[error("cannot build the HTTP client for upstream registries: {0}")]
    Build(#[source] reqwest::Error),
    #[error("upstream request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("upstream {0} answered /v2/ with {1} and no usable challenge")]
    NoChallenge(String, u16),
}

/// Why an upstream answer's body was not read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the answer from {origin} is larger than the {limit}-byte limit")]
    TooLarge { origin: String, limit: usize },
    #[error("reading the answer from {origin} failed: {source}")]
    Read {
        origin: String,
        #[source]
        source: reqwest::Error,
    },
}

pub(crate) const USER_AGENT: &str = concat!("pullgate/", env!("CARGO_PKG_VERSION"));

impl UpstreamClient {
    pub fn new(
        timeout: Duration,
        auth_ttl: Duration,
        manifests: ManifestCacheSettings,
    ) -> Result<Self, UpstreamError> {
        Ok(UpstreamClient {
            http: http_client(timeout, USER_AGENT)?,
            manifests: ManifestCache::new(manifests),
            health: Arc::new(UpstreamHealth::default()),
            auth_cache: RwLock::new(HashMap::new()),
            auth_ttl,
            credentials: std::sync::Arc::new(CredentialCache::new(std::sync::Arc::new(
                LocalCredentials::new(crate::NO_AWS_CREDENTIALS),
            ))),
            realms: crate::realm::RealmClients::new(timeout, auth_ttl),
            entry: crate::EntryLimits::SERVER,
            metrics: UpstreamMetrics::register(),
        })
    }

    pub(crate) fn with_entry_limits(mut self, entry: crate::EntryLimits) -> Self {
        self.entry = entry;
        self
    }

    /// Sends one request upstream, timed until the answer's head arrived
    /// (a relayed body streams afterwards, at the client's pace); a failure
    /// or a 5xx answer is counted by its reason.
    pub(crate) async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let started = Instant::now();
        let sent = request.send().await;
        self.metrics.took(started.elapsed());
        match &sent {
            Ok(response) if response.status().is_server_error() => {
                self.metrics.failed(Failure::Status5xx)
            }
            Ok(_) => {}
            Err(error) => self.metrics.failed(Failure::of(error)),
        }
        sent
    }

    /// [`read_limited`], with a body that is not read counted by why.
    pub(crate) async fn read_limited(
        &self,
        response: reqwest::Response,
        limit: usize,
    ) -> Result<Bytes, BodyError> {
        let read = read_limited(response, limit).await;
        match &read {
            Err(BodyError::TooLarge { .. }) => self.metrics.failed(Failure::TooLarge),
            Err(BodyError::Read { .. }) => self.metrics.failed(Failure::Read),
            Ok(_) => {}
        }
        read
    }

    /// How the registry authenticates: from its own `/v2/` challenge,
    /// cached for the TTL. Failures are not cached.
    pub async fn auth(&self, registry: &Registry) -> Result<UpstreamAuth, UpstreamError> {
        if let Ok(cache) = self.auth_cache.read() {
            if let Some((auth, at)) = cache.get(&registry.base) {
                if at.elapsed() < self.auth_ttl {
                    return Ok(auth.clone());
                }
            }
        }
        let response = self
            .send(self.http.get(location::ping(&registry.base)))
            .await?;
        let status = response.status().as_u16();
        let auth = if response.status().is_success() {
            UpstreamAuth::None
        } else {
            response
                .headers()
                .get(http::header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .and_then(challenge::parse)
                .ok_or_else(|| {
                    self.metrics.failed(Failure::NoChallenge);
                    UpstreamError::NoChallenge(registry.base.clone(), status)
                })?
        };
        if let Ok(mut cache) = self.auth_cache.write() {
            cache.insert(registry.base.clone(), (auth.clone(), Instant::now()));
        }
        Ok(auth)
    }
}

pub(crate) fn http_client(
    timeout: Duration,
    user_agent: &str,
) -> Result<reqwest::Client, UpstreamError> {
    reqwest::Client::builder()
        // Blob answers are storage locations handed to the client; we
        // never follow them ourselves.
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(user_agent)
        .build()
        .map_err(UpstreamError::Build)
}

/// Reads an upstream answer whole, but never more than `limit` bytes: the
/// upstreams (and the token realms they name) are servers we do not
/// control. A Content-Length over the limit is refused before reading;
/// without one (chunked), reading stops once the limit is passed.
async fn read_limited(response: reqwest::Response, limit: usize) -> Result<Bytes, BodyError> {
    // Scheme, host and port only: paths and queries of realms may carry
    // what a client asked for, and logs are storage too.
    let origin = response.url().origin().ascii_serialization();
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge { origin, limit });
    }
    let mut body = Vec::new();
    let mut chunks = response.bytes_stream();
    loop {
        let chunk = match chunks.try_next().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(source) => {
                let source = source.without_url();
                return Err(BodyError::Read { origin, source });
            }
        };
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge { origin, limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

/// An upstream answer we could not read: logged with the limit it broke,
/// and the client gets `UPSTREAM_UNAVAILABLE` (the upstream misbehaved, not
/// the client). `what` names the answer in the log line.
pub(crate) fn unreadable(what: &'static str, error: BodyError) -> RegistryError {
    tracing::warn!(answer = what, error = %error, "upstream answer not read");
    refusals::UPSTREAM_UNAVAILABLE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_that_cannot_be_built_is_an_error_not_a_default_client() {
        // A user agent that is no header value makes reqwest's builder fail.
        let built = http_client(Duration::from_secs(1), "pullgate\n");
        assert!(matches!(built, Err(UpstreamError::Build(_))), "{built:?}");
        let message = built.unwrap_err().to_string();
        assert!(
            message.starts_with("cannot build the HTTP client for upstream registries"),
            "{message}"
        );
        assert!(http_client(Duration::from_secs(1), USER_AGENT).is_ok());
    }

    #[test]
    fn an_oversized_answer_is_upstream_unavailable_and_its_log_names_the_limit() {
        let error = BodyError::TooLarge {
            origin: "http://127.0.0.1:5000".into(),
            limit: 1024,
        };
        assert_eq!(
            error.to_string(),
            "the answer from http://127.0.0.1:5000 is larger than the 1024-byte limit"
        );
        assert_eq!(unreadable("token", error), refusals::UPSTREAM_UNAVAILABLE);
    }
}
