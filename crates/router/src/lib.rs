//! The one HTTP router of pullgate. `pullgate serve` runs it on hyper, the
//! gateway Lambda function runs it through lambda_http: what the tests
//! exercise locally is what runs in AWS.
//!
//! Request flow (one handler, no framework routing: the path grammar is
//! parsed once, by the domain):
//! 1. size limits and Host → the host's mappings (unknown host: 404);
//! 2. `route::parse` → ping / token / manifest / blob / tags / referrers / file;
//! 3. mapping by longest prefix (unmapped: 404 `NAME_UNKNOWN`);
//! 4. `decision::path_for` → 307 built from the mapping, or proxy
//!    (`proxy.rs`), with our token endpoint (`token.rs`) in front.

mod proxy;
mod reply;
mod token;
mod upstream;

use axum::body::Body;
use axum::http::{header, Request, Response};
use pullgate_domain::client::ClientFamily;
use pullgate_domain::decision::{self, Path, PingAnswer};
use pullgate_domain::enrich::Enricher;
use pullgate_domain::error::{refusals, RegistryError};
use pullgate_domain::event::{self, RequestFacts};
use pullgate_domain::inline_str::InlineStr;
use pullgate_domain::location;
use pullgate_domain::mapping::{is_valid_authority, HostMappings, Mapping, Target};
use pullgate_domain::privacy::ClientHasher;
use pullgate_domain::route::{self, EndpointKind, Method, Route};
use pullgate_domain::sink::EventSink;
use pullgate_domain::store::MappingSource;
use pullgate_domain::time::UtcMillis;
use std::borrow::Cow;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub use upstream::UpstreamClient;

/// Total bytes of request headers we read; larger requests get 431.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// The client's address, as the entry point knows it (socket peer locally,
/// API Gateway's `sourceIp` in Lambda), put into the request's extensions.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Scheme clients use to reach us: realms and rewritten URLs use it.
    pub public_scheme: &'static str,
    pub upstream_timeout: Duration,
    /// How long an upstream's auth discovery is trusted.
    pub auth_cache_ttl: Duration,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            public_scheme: "https",
            upstream_timeout: Duration::from_secs(30),
            auth_cache_ttl: Duration::from_secs(600),
        }
    }
}

pub struct Gateway<S> {
    store: S,
    config: GatewayConfig,
    upstream: UpstreamClient,
    events: Option<Events>,
}

/// The event path: each answered request becomes one event, built after the
/// answer is ready and handed to a sink that never blocks on I/O.
pub struct Events {
    pub sink: Arc<dyn EventSink>,
    pub hasher: ClientHasher,
    pub enricher: Arc<dyn Enricher>,
    request_ids: RequestIds,
}

impl Events {
    pub fn new(
        sink: Arc<dyn EventSink>,
        hasher: ClientHasher,
        enricher: Arc<dyn Enricher>,
    ) -> Self {
        Events {
            sink,
            hasher,
            enricher,
            request_ids: RequestIds::new(),
        }
    }
}

/// The request id an entry point already has (Lambda's), if any.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Process-unique request ids: a random prefix and a counter. Each thread
/// takes counter values in blocks, so workers do not contend on one shared
/// counter for every request (ids stay unique, not ordered by time).
struct RequestIds {
    prefix: String,
}

/// Counter values are handed to threads this many at a time.
const REQUEST_ID_BLOCK: u64 = 4096;
/// Process-wide, so ids stay unique across gateways in one process.
static NEXT_REQUEST_ID_BLOCK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

thread_local! {
    /// This thread's block: the next value and the end of the block.
    static REQUEST_ID_RANGE: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
}

fn next_request_number() -> u64 {
    REQUEST_ID_RANGE.with(|range| {
        let (mut next, mut end) = range.get();
        if next == end {
            next = NEXT_REQUEST_ID_BLOCK
                .fetch_add(REQUEST_ID_BLOCK, std::sync::atomic::Ordering::Relaxed);
            end = next + REQUEST_ID_BLOCK;
        }
        range.set((next + 1, end));
        next
    })
}

impl RequestIds {
    fn new() -> Self {
        let mut seed = [0u8; 6];
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed);
        let prefix = seed.iter().map(|b| format!("{b:02x}")).collect();
        RequestIds { prefix }
    }

    fn next(&self) -> InlineStr<48> {
        self.format(next_request_number())
    }

    /// `prefix-counter`, the counter as 10 hex digits (more as needed),
    /// written by hand: this runs once per request.
    fn format(&self, n: u64) -> InlineStr<48> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut digits = [b'0'; 16];
        for (i, digit) in digits.iter_mut().rev().enumerate() {
            *digit = HEX[((n >> (4 * i)) & 0xf) as usize];
        }
        let width = (16 - n.leading_zeros() as usize / 4).max(10);
        let mut id = InlineStr::new();
        let _ = id.write_str(&self.prefix);
        let _ = id.write_str("-");
        let _ = id.write_str(std::str::from_utf8(&digits[16 - width..]).unwrap_or("0"));
        id
    }
}

impl<S: MappingSource> Gateway<S> {
    pub fn new(store: S, config: GatewayConfig) -> Self {
        let upstream = UpstreamClient::new(config.upstream_timeout, config.auth_cache_ttl);
        Gateway {
            store,
            config,
            upstream,
            events: None,
        }
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
        async move { Ok::<_, std::convert::Infallible>(handle(&gateway, request).await) }
    }))
}

/// What one request was, for the access log and the event: borrowed from
/// the request and from the host's mappings, so it costs nothing to keep.
#[derive(Debug, Default)]
struct Trace<'t> {
    kind: Option<EndpointKind>,
    taken: Option<Path>,
    mapping: Option<&'t Mapping>,
    name: Option<&'t str>,
    upstream: Option<&'t str>,
    upstream_name: Option<Cow<'t, str>>,
    reference: Option<&'t str>,
}

async fn handle<S: MappingSource>(gateway: &Gateway<S>, request: Request<Body>) -> Response<Body> {
    // The wall clock, read once at each end, gives the event its time (when
    // the answer was ready) and both the event and the access line their
    // duration: a clock read costs as much as a small field of the event.
    // A clock step backwards during a request reads as zero duration.
    let started = SystemTime::now();
    let (parts, body) = request.into_parts();
    // The host's mappings outlive `serve` so the trace can borrow from them.
    let mut mappings = None;
    let mut trace = Trace::default();
    let response = match serve(gateway, &parts, body, &mut mappings, &mut trace).await {
        Ok(response) => response,
        Err(error) => reply::error(&error),
    };
    let answered = SystemTime::now();
    let elapsed = answered.duration_since(started).unwrap_or_default();
    let ua = header_str(&parts.headers, header::USER_AGENT).unwrap_or("");
    if let Some(events) = &gateway.events {
        record_event(events, &parts, &trace, &response, ua, answered, elapsed);
    }
    let path = parts.uri.path();
    tracing::info!(
        target: "pullgate::access",
        method = parts.method.as_str(),
        path = event::truncate(path, 256),
        status = response.status().as_u16(),
        kind = trace.kind.map(EndpointKind::as_str).unwrap_or("-"),
        taken = trace.taken.map(Path::as_str).unwrap_or("-"),
        client = %ClientPrefix(parts.extensions.get::<ClientAddr>()),
        ua = event::truncate(ua, 160),
        micros = elapsed.as_micros() as u64,
    );
    response
}

/// Global Privacy Control; a constant name, so a lookup does not parse it.
const SEC_GPC: header::HeaderName = header::HeaderName::from_static("sec-gpc");

fn header_str(headers: &http::HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn record_event(
    events: &Events,
    parts: &http::request::Parts,
    trace: &Trace<'_>,
    response: &Response<Body>,
    user_agent: &str,
    answered: SystemTime,
    elapsed: Duration,
) {
    let generated;
    let request_id = match parts.extensions.get::<RequestId>() {
        Some(id) => id.0.as_str(),
        None => {
            generated = events.request_ids.next();
            generated.as_str()
        }
    };
    let relayed = matches!(
        trace.kind,
        Some(EndpointKind::Manifest | EndpointKind::Referrers)
    );
    let media_type = (relayed && trace.taken == Some(Path::Proxy))
        .then(|| header_str(response.headers(), header::CONTENT_TYPE))
        .flatten();
    let facts = RequestFacts {
        time: UtcMillis::from_system(answered),
        request_id,
        host: header_str(&parts.headers, header::HOST).unwrap_or(""),
        method: parts.method.as_str(),
        user_agent,
        addr: parts.extensions.get::<ClientAddr>().map(|a| a.0),
        dnt: header_str(&parts.headers, header::DNT),
        gpc: header_str(&parts.headers, SEC_GPC),
        kind: trace.kind,
        mapping: trace.mapping.map(Mapping::id),
        name: trace.name,
        upstream: trace.upstream,
        upstream_name: trace.upstream_name.as_deref(),
        reference: trace.reference,
        status: response.status().as_u16(),
        mode: trace.taken.map(Path::as_str),
        media_type,
        duration_us: elapsed.as_micros() as u64,
    };
    let mut scratch = event::EventScratch::default();
    events.sink.submit(&event::build(
        &facts,
        &mut scratch,
        &events.hasher,
        events.enricher.as_ref(),
    ));
}

/// The client in access lines: its network prefix (/24, /48), as events
/// keep it, never the address (logs are storage too: CloudWatch keeps the
/// Lambda's); "-" when unknown. No allocation.
struct ClientPrefix<'a>(Option<&'a ClientAddr>);

impl std::fmt::Display for ClientPrefix<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(addr) => f.write_str(&pullgate_domain::privacy::network_prefix(addr.0)),
            None => f.write_str("-"),
        }
    }
}

/// Everything a handler needs to know about the host it answers for.
pub(crate) struct HostContext<'a> {
    /// The Host header as the client sent it (validated): realms use it.
    pub(crate) name: &'a str,
    pub(crate) mappings: &'a HostMappings,
    scheme: &'static str,
}

impl HostContext<'_> {
    /// `scheme://host` as the client reached us; only proxied answers need
    /// it, so the redirect path never builds it.
    pub(crate) fn public_base(&self) -> String {
        format!("{}://{}", self.scheme, self.name)
    }
}

async fn serve<'t, S: MappingSource>(
    gateway: &Gateway<S>,
    parts: &'t http::request::Parts,
    body: Body,
    held_mappings: &'t mut Option<Arc<HostMappings>>,
    trace: &mut Trace<'t>,
) -> Result<Response<Body>, RegistryError> {
    let header_bytes: usize = parts
        .headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return Err(refusals::HEADERS_TOO_LARGE);
    }
    let method = Method::parse(parts.method.as_str());
    let route = route::parse(method, parts.uri.path(), parts.uri.query())?;
    trace.kind = Some(route.kind());

    let host_name = parts
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))
        .filter(|h| is_valid_authority(h))
        .ok_or(refusals::HOST_MISSING)?;
    let mappings = gateway
        .store
        .host(host_name)
        .await
        .map_err(|e| {
            tracing::error!(error = %e.with_causes(), "mapping store failed");
            refusals::UPSTREAM_UNAVAILABLE
        })?
        .ok_or(refusals::HOST_UNKNOWN)?;
    let mappings: &'t HostMappings = held_mappings.insert(mappings);
    let host = HostContext {
        name: host_name,
        scheme: gateway.config.public_scheme,
        mappings,
    };
    let client = ClientFamily::from_user_agent(
        parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or(""),
    );

    match &route {
        Route::Ping => Ok(match decision::ping(host.mappings, client) {
            PingAnswer::RedirectTo(base) => {
                trace.taken = Some(Path::Redirect);
                reply::redirect(&location::ping(base))
            }
            PingAnswer::Ok => reply::ping_ok(),
            PingAnswer::Challenge => {
                trace.taken = Some(Path::Proxy);
                // A client that already holds a token (docker login checks
                // this way) is welcome; pulls are authorized upstream.
                if reply::bearer_token(&parts.headers).is_some() {
                    reply::ping_ok()
                } else {
                    reply::challenge(&host.public_base(), host.name, None, None, None)
                }
            }
        }),
        Route::Token => {
            trace.taken = Some(Path::Proxy);
            token::serve(&gateway.upstream, parts, body, &host).await
        }
        Route::File { path } => {
            let matched = host.mappings.lookup_file(path).ok_or(refusals::NOT_FOUND)?;
            let Target::Http {
                base,
                rewrite_index,
            } = &matched.mapping.target
            else {
                return Err(refusals::NOT_FOUND);
            };
            let target = location::file(base, matched.rest);
            trace.mapping = Some(matched.mapping);
            trace.name = Some(path);
            trace.upstream = Some(base);
            let is_index = matched.rest == "index.yaml" || matched.rest.ends_with("/index.yaml");
            if *rewrite_index && is_index && !base.contains("{path}") && method == Method::Get {
                trace.taken = Some(Path::Proxy);
                let public = if matched.mapping.name.is_empty() {
                    host.public_base()
                } else {
                    format!("{}/{}", host.public_base(), matched.mapping.name)
                };
                proxy::helm_index(&gateway.upstream, parts, &target, base, &public).await
            } else {
                trace.taken = Some(Path::Redirect);
                Ok(reply::redirect(&target))
            }
        }
        Route::Manifest { name, .. }
        | Route::Blob { name, .. }
        | Route::Tags { name, .. }
        | Route::Referrers { name, .. } => {
            let matched = host.mappings.lookup(name).ok_or(refusals::NAME_UNKNOWN)?;
            let upstream = matched
                .mapping
                .active_upstream()
                .ok_or(refusals::NAME_UNKNOWN)?;
            let repository = upstream.repository_for(matched.rest);
            let base = upstream.registry.base.as_str();
            let target = registry_url(&route, base, &repository).ok_or(refusals::NAME_UNKNOWN)?;
            trace.mapping = Some(matched.mapping);
            trace.name = Some(name);
            trace.upstream = Some(base);
            trace.upstream_name = Some(repository.clone());
            trace.reference = match &route {
                Route::Manifest { reference, .. } => Some(reference.as_str()),
                Route::Blob { digest, .. } | Route::Referrers { digest, .. } => Some(digest),
                _ => None,
            };
            let taken = decision::path_for(host.mappings, matched.mapping, client);
            trace.taken = Some(taken);
            match taken {
                Path::Redirect => Ok(reply::redirect(&target)),
                Path::Proxy => {
                    let call = proxy::Call {
                        parts,
                        host: &host,
                        mapping: matched.mapping,
                        upstream,
                        public_name: name,
                        upstream_name: &repository,
                        url: &target,
                    };
                    match route.kind() {
                        EndpointKind::Blob => proxy::blob(&gateway.upstream, &call).await,
                        EndpointKind::Tags => proxy::tags(&gateway.upstream, &call).await,
                        _ => proxy::pass_through(&gateway.upstream, &call).await,
                    }
                }
            }
        }
    }
}

/// The upstream URL a registry route asks for.
fn registry_url(route: &Route<'_>, base: &str, repository: &str) -> Option<String> {
    Some(match route {
        Route::Manifest { reference, .. } => location::manifest(base, repository, *reference),
        Route::Blob { digest, .. } => location::blob(base, repository, digest),
        Route::Tags { n, last, .. } => location::tags(base, repository, *n, *last),
        Route::Referrers {
            digest,
            artifact_type,
            ..
        } => location::referrers(base, repository, digest, artifact_type.as_deref()),
        Route::Ping | Route::Token | Route::File { .. } => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::RequestIds;

    #[test]
    fn request_ids_are_prefix_and_ten_or_more_hex_digits() {
        let ids = RequestIds::new();
        let (prefix, counter) = ids
            .format(0)
            .split_once('-')
            .map(|(p, c)| (p.len(), c.to_string()))
            .unwrap();
        assert_eq!((prefix, counter.as_str()), (12, "0000000000"));
        assert!(ids.format(1).ends_with("-0000000001"));
        assert!(ids.format(0xabc_def0_1234).ends_with("-abcdef01234"));
    }

    #[test]
    fn request_ids_are_unique_across_threads() {
        let ids = std::sync::Arc::new(RequestIds::new());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let ids = ids.clone();
                std::thread::spawn(move || {
                    (0..3 * super::REQUEST_ID_BLOCK)
                        .map(|_| ids.next().as_str().to_string())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all = std::collections::HashSet::new();
        for thread in threads {
            for id in thread.join().unwrap() {
                assert!(all.insert(id));
            }
        }
        assert_eq!(all.len() as u64, 12 * super::REQUEST_ID_BLOCK);
    }
}
