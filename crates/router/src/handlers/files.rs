//! Files below `http` mappings (release files, classic Helm repositories):
//! a 307 to the file, or a Helm index fetched and rewritten.

use super::{Answer, HostContext, Served};
use crate::upstream::UpstreamClient;
use crate::{proxy, reply};
use http::request::Parts;
use pullgate_domain::decision::{self, Path};
use pullgate_domain::error::{refusals, RegistryError};
use pullgate_domain::location;
use pullgate_domain::mapping::Target;
use pullgate_domain::route::Method;

/// `path` is the request path without its leading '/'.
pub(super) async fn answer<'t>(
    client: &UpstreamClient,
    parts: &'t Parts,
    host: &HostContext<'t>,
    path: &'t str,
) -> Result<Answer<'t>, RegistryError> {
    let matched = host.mappings.lookup_file(path).ok_or(refusals::NOT_FOUND)?;
    let Target::Http {
        base,
        rewrite_index,
    } = &matched.mapping.target
    else {
        return Err(refusals::NOT_FOUND);
    };
    let target = location::file(base, matched.rest);
    let method = Method::parse(parts.method.as_str());
    let taken = decision::file_path(base, *rewrite_index, matched.rest, method);
    let response = match taken {
        Path::Redirect => Ok(reply::redirect(&target)),
        Path::Proxy => {
            // Chart URLs come back under the mapping's public prefix.
            let public = if matched.mapping.name.is_empty() {
                host.public_base()
            } else {
                format!("{}/{}", host.public_base(), matched.mapping.name)
            };
            proxy::helm_index(client, parts, &target, base, &public).await
        }
    };
    let served = Served {
        mapping: matched.mapping,
        name: path,
        upstream: base,
        upstream_name: None,
        reference: None,
        failover: None,
    };
    Ok(Answer::new(response, Some(taken), Some(served)))
}
