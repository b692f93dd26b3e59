//! Manifests, blobs, tag lists and referrers: a 307 built from the mapping,
//! or proxied (`proxy.rs`) for clients that cannot follow one.

use super::{Answer, HostContext, Served};
use crate::upstream::UpstreamClient;
use crate::{credentials, proxy, reply};
use http::request::Parts;
use pullgate_domain::client::ClientFamily;
use pullgate_domain::decision::{self, Path};
use pullgate_domain::error::{refusals, RegistryError};
use pullgate_domain::location;
use pullgate_domain::route::{EndpointKind, Route};

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
    let response = match taken {
        Path::Redirect => Ok(reply::redirect(&target)),
        Path::Proxy => {
            let call = proxy::Call {
                parts,
                host,
                mapping: matched.mapping,
                upstream,
                public_name: name,
                upstream_name: &repository,
                url: &target,
                authorization: credentials::for_registry_call(client, &parts.headers, upstream)
                    .await,
            };
            match route {
                Route::Manifest { reference, .. } => {
                    crate::manifests::get(client, &call, *reference).await
                }
                _ => match route.kind() {
                    EndpointKind::Blob => proxy::blob(client, &call).await,
                    EndpointKind::Tags => proxy::tags(client, &call).await,
                    _ => proxy::pass_through(client, &call).await,
                },
            }
        }
    };
    let served = Served {
        mapping: matched.mapping,
        name,
        upstream: base,
        upstream_name: Some(repository),
        reference: reference_of(route),
    };
    Ok(Answer::new(response, Some(taken), Some(served)))
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
