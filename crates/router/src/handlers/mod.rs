//! The request handler: one dispatcher, one small handler per endpoint.
//!
//! Each handler returns an [`Answer`]: the response, the path it took and
//! what it served, borrowed from the request and the host's mappings. The
//! dispatcher hands the answer to the event path, the access line and the
//! request counter, so handlers never write into a shared record.

mod files;
mod ping;
mod registry;
mod token;

use crate::headers::header_str;
use crate::{access_log, reply, Gateway, MAX_HEADER_BYTES};
use axum::body::Body;
use axum::http::{header, Request, Response};
use http::request::Parts;
use pullgate_domain::client::ClientFamily;
use pullgate_domain::decision::Path;
use pullgate_domain::error::{refusals, RegistryError};
use pullgate_domain::mapping::{is_valid_authority, HostMappings, Mapping};
use pullgate_domain::route::{self, Method, Route};
use pullgate_domain::store::MappingSource;
use std::borrow::Cow;
use std::sync::Arc;
use std::time::SystemTime;

/// What a handler did with a request.
pub(crate) struct Answer<'t> {
    pub(crate) response: Response<Body>,
    /// Redirect or proxy; `None` when neither applies (refusals, a `/v2/`
    /// answered for several registries).
    pub(crate) taken: Option<Path>,
    pub(crate) served: Option<Served<'t>>,
}

/// The mapping a request was matched to, and the names on both sides.
pub(crate) struct Served<'t> {
    pub(crate) mapping: &'t Mapping,
    /// The public name (for files: the path) the client asked for.
    pub(crate) name: &'t str,
    /// The upstream's base URL.
    pub(crate) upstream: &'t str,
    /// The repository at the upstream (registry mappings only).
    pub(crate) upstream_name: Option<Cow<'t, str>>,
    /// The tag or digest asked for, where the endpoint has one.
    pub(crate) reference: Option<&'t str>,
    /// `auto` when the gateway sent the request to the fallback because
    /// the primary fails, `manual` when the operator marked it down.
    pub(crate) failover: Option<&'static str>,
}

impl<'t> Answer<'t> {
    /// Refused before the request was matched to anything.
    pub(crate) fn refused(error: RegistryError) -> Self {
        Answer {
            response: reply::error(&error),
            taken: None,
            served: None,
        }
    }

    /// A handler's outcome. A failure after the match (upstream down, say)
    /// keeps the path and what was asked for, so the event still counts it
    /// against its mapping.
    pub(crate) fn new(
        outcome: Result<Response<Body>, RegistryError>,
        taken: Option<Path>,
        served: Option<Served<'t>>,
    ) -> Self {
        let response = outcome.unwrap_or_else(|error| reply::error(&error));
        Answer {
            response,
            taken,
            served,
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

/// Answers one request, then records it (event, access line).
pub(crate) async fn handle<S: MappingSource>(
    gateway: &Gateway<S>,
    request: Request<Body>,
) -> Response<Body> {
    // The wall clock, read once at each end, gives the event its time (when
    // the answer was ready) and both the event and the access line their
    // duration: a clock read costs as much as a small field of the event.
    // A clock step backwards during a request reads as zero duration.
    let started = SystemTime::now();
    let (parts, body) = request.into_parts();
    // The host's mappings outlive the dispatch so the answer can borrow
    // from them.
    let mut mappings = None;
    let route = parse_route(&parts);
    let kind = route.as_ref().ok().map(Route::kind);
    let answer = match route {
        Ok(route) => {
            let dispatched = dispatch(gateway, &parts, route, body, &mut mappings);
            match gateway.config.entry.request_budget {
                None => dispatched.await,
                Some(budget) => tokio::time::timeout(budget, dispatched)
                    .await
                    .unwrap_or_else(|_| {
                        tracing::warn!(
                            budget_ms = budget.as_millis() as u64,
                            "request out of time; answering 504"
                        );
                        Err(refusals::UPSTREAM_TIMEOUT)
                    }),
            }
            .unwrap_or_else(Answer::refused)
        }
        Err(error) => Answer::refused(error),
    };
    let answered = SystemTime::now();
    let elapsed = answered.duration_since(started).unwrap_or_default();
    let user_agent = header_str(&parts.headers, header::USER_AGENT).unwrap_or("");
    if let Some(events) = &gateway.events {
        events.record(&parts, kind, &answer, user_agent, answered, elapsed);
    }
    access_log::write(&parts, kind, &answer, user_agent, elapsed);
    gateway
        .requests
        .count(kind, answer.taken, answer.response.status());
    answer.response
}

/// Size limits, then the path grammar (parsed once, by the domain).
fn parse_route(parts: &Parts) -> Result<Route<'_>, RegistryError> {
    let header_bytes: usize = parts
        .headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return Err(refusals::HEADERS_TOO_LARGE);
    }
    let method = Method::parse(parts.method.as_str());
    route::parse(method, parts.uri.path(), parts.uri.query())
}

/// Host → the host's mappings, then the endpoint's handler. An error is a
/// refusal before any mapping matched.
async fn dispatch<'t, S: MappingSource>(
    gateway: &Gateway<S>,
    parts: &'t Parts,
    route: Route<'t>,
    body: Body,
    held_mappings: &'t mut Option<Arc<HostMappings>>,
) -> Result<Answer<'t>, RegistryError> {
    let host_name = header_str(&parts.headers, header::HOST)
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
    let mappings = gateway.upstream.health.apply(mappings);
    let host = HostContext {
        name: host_name,
        scheme: gateway.config.public_scheme,
        mappings: held_mappings.insert(mappings),
    };
    let client =
        ClientFamily::from_user_agent(header_str(&parts.headers, header::USER_AGENT).unwrap_or(""));
    let upstream = &gateway.upstream;
    Ok(match &route {
        Route::Ping => ping::answer(&host, client, &parts.headers),
        Route::Token => token::answer(upstream, parts, body, &host).await,
        Route::File { path } => files::answer(upstream, parts, &host, path).await?,
        Route::Manifest { name, .. }
        | Route::Blob { name, .. }
        | Route::Tags { name, .. }
        | Route::Referrers { name, .. } => {
            registry::answer(upstream, parts, &host, client, &route, name).await?
        }
    })
}
