//! Manifests, blobs, tag lists and referrers: a 307 built from the mapping,
//! or proxied (`proxy.rs`) for clients that cannot follow one.

use super::{Answer, HostContext, Served};
use crate::health::Trip;
use crate::upstream::UpstreamClient;
use crate::{credentials, proxy, reply};
use axum::body::Body;
use http::request::Parts;
use http::Response;
use pullgate_domain::client::ClientFamily;
use pullgate_domain::decision::{self, Path};
use pullgate_domain::error::{refusals, RegistryError};
use pullgate_domain::location;
use pullgate_domain::mapping::{Mapping, Target, Upstream};
use pullgate_domain::route::{EndpointKind, Route};
use std::borrow::Cow;

/// `name` is the public repository name `route` asks for.
pub(super) async fn answer<'t>(
    client: &UpstreamClient,
    parts: &'t Parts,
    host: &HostContext<'t>,
    family: ClientFamily,
    route: &Route<'t>,
    name: &'t str,
) -> Result<Answer<'t>, RegistryError> {
    let matched = host.mappings.lookup(name).ok_or(refusals::NAME_UNKNOWN)?;
    let upstream = matched
        .mapping
        .active_upstream()
        .ok_or(refusals::NAME_UNKNOWN)?;
    let repository = upstream.repository_for(matched.rest);
    let base = upstream.registry.base.as_str();
    let target = registry_url(route, base, &repository).ok_or(refusals::NAME_UNKNOWN)?;
    let taken = decision::path_for(host.mappings, matched.mapping, family);
    let mut failover = failover_of(matched.mapping);
    let (response, upstream, repository) = match taken {
        Path::Redirect => (Ok(reply::redirect(&target)), upstream, repository),
        Path::Proxy => {
            let to = Proxied {
                upstream,
                repository,
                target,
            };
            let first = proxied(client, parts, host, route, matched.mapping, name, &to).await;
            match retry_on(&first, parts, matched.mapping) {
                // Nothing reached the client yet: the fallback answers,
                // and the primary is failing until the probe clears it.
                Some(fallback) => {
                    client.health.trip(base, Trip::Request);
                    failover = Some(AUTOMATIC);
                    let repository = fallback.repository_for(matched.rest);
                    let target = registry_url(route, &fallback.registry.base, &repository)
                        .ok_or(refusals::NAME_UNKNOWN)?;
                    let to = Proxied {
                        upstream: fallback,
                        repository,
                        target,
                    };
                    let second =
                        proxied(client, parts, host, route, matched.mapping, name, &to).await;
                    (second, fallback, to.repository)
                }
                None => (first, upstream, to.repository),
            }
        }
    };
    let served = Served {
        mapping: matched.mapping,
        name,
        upstream: upstream.registry.base.as_str(),
        upstream_name: Some(repository),
        reference: reference_of(route),
        failover,
    };
    Ok(Answer::new(response, Some(taken), Some(served)))
}

/// The event's word for a switch to the fallback made by the gateway.
const AUTOMATIC: &str = "auto";

/// Whether (and why) the mapping serves its fallback now.
fn failover_of(mapping: &Mapping) -> Option<&'static str> {
    match (mapping.failed_over, mapping.serves_fallback()) {
        (true, _) => Some(AUTOMATIC),
        (false, true) => Some("manual"),
        (false, false) => None,
    }
}

/// Where one proxied request goes.
struct Proxied<'a> {
    upstream: &'a Upstream,
    repository: Cow<'a, str>,
    target: String,
}

async fn proxied(
    client: &UpstreamClient,
    parts: &Parts,
    host: &HostContext<'_>,
    route: &Route<'_>,
    mapping: &Mapping,
    name: &str,
    to: &Proxied<'_>,
) -> Result<Response<Body>, RegistryError> {
    let call = proxy::Call {
        parts,
        host,
        mapping,
        upstream: to.upstream,
        public_name: name,
        upstream_name: &to.repository,
        url: &to.target,
        authorization: credentials::for_registry_call(client, &parts.headers, to.upstream).await,
    };
    match route {
        Route::Manifest { reference, .. } => crate::manifests::get(client, &call, *reference).await,
        _ => match route.kind() {
            EndpointKind::Blob => proxy::blob(client, &call).await,
            EndpointKind::Tags => proxy::tags(client, &call).await,
            _ => proxy::pass_through(client, &call).await,
        },
    }
}

/// The fallback to ask again, when the primary failed an idempotent
/// request before anything was sent to the client: no answer (our 502) or
/// a 5xx. Only mappings with a fallback not already serving it.
fn retry_on<'m>(
    outcome: &Result<Response<Body>, RegistryError>,
    parts: &Parts,
    mapping: &'m Mapping,
) -> Option<&'m Upstream> {
    let idempotent = parts.method == http::Method::GET || parts.method == http::Method::HEAD;
    let failed = match outcome {
        Err(error) => *error == refusals::UPSTREAM_UNAVAILABLE,
        Ok(response) => response.status().is_server_error(),
    };
    if !idempotent || !failed || mapping.failover_primary().is_none() {
        return None;
    }
    match &mapping.target {
        Target::Oci {
            fallback: Some(fallback),
            ..
        } => Some(fallback),
        _ => None,
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

/// The tag or digest a registry route names (tag lists name none).
fn reference_of<'t>(route: &Route<'t>) -> Option<&'t str> {
    match route {
        Route::Manifest { reference, .. } => Some(reference.as_str()),
        Route::Blob { digest, .. } | Route::Referrers { digest, .. } => Some(digest),
        _ => None,
    }
}
