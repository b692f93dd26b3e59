//! Calls to upstream registries, and what we learnt about how each one
//! authenticates (cached: the request path must not ask twice).

use pullgate_domain::challenge::{self, UpstreamAuth};
use pullgate_domain::location;
use pullgate_domain::mapping::Registry;
use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

pub struct UpstreamClient {
    pub(crate) http: reqwest::Client,
    auth_cache: RwLock<HashMap<String, (UpstreamAuth, Instant)>>,
    auth_ttl: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("upstream request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("upstream {0} answered /v2/ with {1} and no usable challenge")]
    NoChallenge(String, u16),
}

impl UpstreamClient {
    pub fn new(timeout: Duration, auth_ttl: Duration) -> Self {
        let http = reqwest::Client::builder()
            // Blob answers are storage locations handed to the client; we
            // never follow them ourselves.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("pullgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        UpstreamClient {
            http,
            auth_cache: RwLock::new(HashMap::new()),
            auth_ttl,
        }
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
        let response = self.http.get(location::ping(&registry.base)).send().await?;
        let status = response.status().as_u16();
        let auth = if response.status().is_success() {
            UpstreamAuth::None
        } else {
            response
                .headers()
                .get(http::header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .and_then(challenge::parse)
                .ok_or_else(|| UpstreamError::NoChallenge(registry.base.clone(), status))?
        };
        if let Ok(mut cache) = self.auth_cache.write() {
            cache.insert(registry.base.clone(), (auth.clone(), Instant::now()));
        }
        Ok(auth)
    }
}
