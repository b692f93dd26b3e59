//! The one HTTP router of pullgate. `pullgate serve` runs it on hyper, the
//! gateway Lambda function runs it through lambda_http: what the tests
//! exercise locally is what runs in AWS.
//!
//! Request flow (one handler, no framework routing: the path grammar is
//! parsed once, by the domain), in `handlers/mod.rs`:
//! 1. size limits, then `route::parse` → ping / token / manifest / blob /
//!    tags / referrers / file;
//! 2. Host → the host's mappings (unknown host: 404);
//! 3. the endpoint's handler (`handlers/`): `ping`, `token` (our token
//!    endpoint, in front of proxied upstreams), `registry` (mapping by
//!    longest prefix, unmapped: 404 `NAME_UNKNOWN`; `decision::path_for` →
//!    307 built from the mapping, or `proxy.rs`), `files` (`http` mappings);
//!    each returns an `Answer`: the response, the path taken, what it served;
//! 4. the answer becomes an event (`events.rs`, when enabled), an access
//!    line (`access_log.rs`) and a count (`metrics.rs`).
//!
//! Upstream calls and the bounded reading of their bodies: `upstream.rs`;
//! proxied manifest GETs through the cache by digest: `manifests.rs`,
//! `manifest_cache.rs`;
//! the responses we build ourselves: `reply.rs`.

mod access_log;
pub mod client_addr;
mod credentials;
mod events;
mod handlers;
mod headers;
pub mod health;
pub mod manifest_cache;
mod manifests;
pub mod metrics;
mod proxy;
mod realm;
mod reply;
mod request_id;
mod upstream;

use axum::body::Body;
use axum::http::Request;
use pullgate_domain::credentials::CredentialCache;
use pullgate_domain::store::MappingSource;
use std::sync::Arc;
use std::time::Duration;

pub use client_addr::ClientAddr;
pub use events::Events;
pub use manifest_cache::ManifestCacheSettings;
pub use upstream::{UpstreamClient, UpstreamError};

/// What a `secretsmanager:` or `ecr` mapping gets from a gateway built
/// without the AWS resolver (`Gateway::with_credentials`).
pub const NO_AWS_CREDENTIALS: &str = "this gateway has no AWS credential resolver: pullgate-serve needs the `aws` feature (cargo build -p pullgate-server --features aws; the full pullgate has it)";

/// Total bytes of request headers we read; larger requests get 431.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// The request id an entry point already has (Lambda's), if any.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Scheme clients use to reach us: realms and rewritten URLs use it.
    pub public_scheme: &'static str,
    pub upstream_timeout: Duration,
    /// How long an upstream's auth discovery is trusted.
    pub auth_cache_ttl: Duration,
    /// Proxied manifests kept by digest (`manifest_cache.rs`).
    pub manifest_cache: ManifestCacheSettings,
    /// What the entry point can return; `pullgate serve` has no limits,
    /// Lambda has its own (`EntryLimits::LAMBDA`).
    pub entry: EntryLimits,
}

/// The limits of the entry point a gateway runs behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryLimits {
    /// The largest body a response may carry. A Helm index over it is
    /// gzipped for a client that accepts that; a blob over it is refused
    /// (`RESPONSE_TOO_LARGE`) rather than relayed.
    pub max_response_body: Option<usize>,
    /// The whole request's time, all its upstream calls included; past
    /// it the client gets 504 `UNAVAILABLE` and the event is written, so
    /// the entry point's own timeout never cuts a request off silently.
    pub request_budget: Option<std::time::Duration>,
    /// Proxied manifest HEADs answered with the manifest's body (from the
    /// manifest cache): an entry point that computes Content-Length from
    /// the body it is given (API Gateway) then tells the client the true
    /// length, and drops the body itself because the request was a HEAD.
    pub manifest_head_with_body: bool,
}

impl EntryLimits {
    /// `pullgate serve`: hyper streams any size and keeps a HEAD's
    /// Content-Length as the handler set it.
    pub const SERVER: EntryLimits = EntryLimits {
        max_response_body: None,
        request_budget: None,
        manifest_head_with_body: false,
    };

    /// Lambda behind API Gateway: responses of at most 6 MB as the
    /// function returns them, where lambda_http base64-encodes every body
    /// it does not take for text (gzip, YAML, blobs): 4 MiB of body is
    /// 5.6 MB encoded, leaving room for the headers and the JSON around it.
    pub fn lambda(request_budget: std::time::Duration) -> EntryLimits {
        EntryLimits {
            max_response_body: Some(4 * 1024 * 1024),
            request_budget: Some(request_budget),
            manifest_head_with_body: true,
        }
    }
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            public_scheme: "https",
            upstream_timeout: pullgate_settings::defaults::UPSTREAM_TIMEOUT,
            auth_cache_ttl: pullgate_settings::defaults::AUTH_CACHE_TTL,
            manifest_cache: ManifestCacheSettings::DEFAULT,
            entry: EntryLimits::SERVER,
        }
    }
}

pub struct Gateway<S> {
    store: S,
    config: GatewayConfig,
    upstream: UpstreamClient,
    /// The event path; off unless an entry point turns it on.
    events: Option<Events>,
    requests: metrics::RequestCounters,
}

/// Why a gateway could not be built: entry points stop at start-up with it.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("cannot start the gateway: {0}")]
    Upstream(#[from] UpstreamError),
}

impl<S: MappingSource> Gateway<S> {
    pub fn new(store: S, config: GatewayConfig) -> Result<Self, GatewayError> {
        let upstream = UpstreamClient::new(
            config.upstream_timeout,
            config.auth_cache_ttl,
            config.manifest_cache.clone(),
        )?
        .with_entry_limits(config.entry);
        Ok(Gateway {
            store,
            config,
            upstream,
            events: None,
            requests: metrics::RequestCounters::new(),
        })
    }

    /// Where mappings' upstream credentials come from: the entry point's
    /// resolver behind a cache it may keep a handle on (to warm it). The
    /// default resolves `env:` and `file:` sources only.
    pub fn with_credentials(mut self, credentials: Arc<CredentialCache>) -> Self {
        self.upstream.credentials = credentials;
        self
    }

    /// The probe that clears (and, for redirected clients, trips) failing
    /// failover primaries; the entry point runs it beside the workers.
    pub fn health_probe(&self, every: Duration) -> Result<health::HealthProbe, GatewayError> {
        let http = upstream::http_client(every, upstream::USER_AGENT)?;
        Ok(health::HealthProbe::new(
            self.upstream.health.clone(),
            http,
            every,
        ))
    }

    /// Turns the event path on.
    pub fn with_events(mut self, events: Events) -> Self {
        self.events = Some(events);
        self
    }
}

/// Builds the router around a gateway.
pub fn router<S: MappingSource>(gateway: Gateway<S>) -> axum::Router {
    let gateway = Arc::new(gateway);
    // One service for every path: the domain parses the path grammar once,
    // so the router needs neither route matching nor extractors.
    axum::Router::new().fallback_service(tower::service_fn(move |request: Request<Body>| {
        let gateway = gateway.clone();
        async move { Ok::<_, std::convert::Infallible>(handlers::handle(&gateway, request).await) }
    }))
}
