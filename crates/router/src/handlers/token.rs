//! Our token endpoint (proxy mode). Clients challenged by our `/v2/` come
//! here; we translate every `scope` to upstream names, swap `service` for the
//! upstream's, keep every other parameter verbatim, and let the upstream's
//! own realm issue the token, with the client's Basic credentials passed
//! through. The token is the upstream's: proxied requests carry it upstream.

use super::{Answer, HostContext};
use crate::reply::ANONYMOUS_TOKEN;
use crate::upstream::{unreadable, UpstreamClient};
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use http::request::Parts;
use http_body_util::BodyExt;
use percent_encoding::{percent_decode_str, utf8_percent_encode, NON_ALPHANUMERIC};
use pullgate_domain::challenge::UpstreamAuth;
use pullgate_domain::decision::Path;
use pullgate_domain::error::{refusals, RegistryError};
use pullgate_domain::mapping::Registry;
use pullgate_domain::route::query_pairs;
use pullgate_domain::scope;
use std::sync::Arc;

const MAX_FORM_BYTES: usize = 64 * 1024;
const MAX_TOKEN_RESPONSE: usize = 1024 * 1024;

/// Token requests only exist on the proxy path: a redirected client asks
/// the upstream's realm itself.
pub(super) async fn answer<'t>(
    client: &UpstreamClient,
    parts: &Parts,
    body: Body,
    host: &HostContext<'_>,
) -> Answer<'t> {
    Answer::new(
        exchange(client, parts, body, host).await,
        Some(Path::Proxy),
        None,
    )
}

/// The client's token request, translated and sent to the upstream realm;
/// its answer relayed.
async fn exchange(
    client: &UpstreamClient,
    parts: &Parts,
    body: Body,
    host: &HostContext<'_>,
) -> Result<Response<Body>, RegistryError> {
    let is_post = parts.method == http::Method::POST;
    let form = if is_post {
        let limited = http_body_util::Limited::new(body, MAX_FORM_BYTES);
        let bytes = limited
            .collect()
            .await
            .map_err(|_| refusals::QUERY_INVALID)?
            .to_bytes();
        Some(String::from_utf8(bytes.to_vec()).map_err(|_| refusals::QUERY_INVALID)?)
    } else {
        None
    };
    let raw = form
        .as_deref()
        .unwrap_or_else(|| parts.uri.query().unwrap_or(""));

    let mut registry: Option<Arc<Registry>> = None;
    let mut saw_scope = false;
    let mut params: Vec<(&str, String)> = Vec::new();
    for (key, value) in query_pairs(raw) {
        match key {
            "scope" => {
                saw_scope = true;
                let plus_as_space = value.replace('+', " ");
                let decoded = percent_decode_str(&plus_as_space)
                    .decode_utf8()
                    .map_err(|_| refusals::QUERY_INVALID)?;
                let rewritten = scope::rewrite_all(&decoded, |name| {
                    let matched = host.mappings.lookup(name)?;
                    let upstream = matched.upstream()?;
                    // One token comes from one realm: scopes for other
                    // registries are dropped.
                    let same = registry
                        .get_or_insert_with(|| upstream.registry.clone())
                        .base
                        == upstream.registry.base;
                    same.then(|| upstream.repository_for(matched.rest).into_owned())
                });
                params.extend(rewritten.iter().map(|s| ("scope", encode(s))));
            }
            // Replaced by the upstream's own service below.
            "service" => {}
            _ => params.push((key, value.to_string())),
        }
    }
    if saw_scope && registry.is_none() {
        return Err(refusals::SCOPE_DENIED);
    }
    // No scope (docker login): the host's registry, if it has just one.
    let registry = registry.or_else(|| host.mappings.single_registry().cloned());
    let Some(registry) = registry else {
        return Ok(anonymous_token());
    };
    let auth = client.auth(&registry).await.map_err(|e| {
        tracing::warn!(upstream = %registry.base, error = %e, "auth discovery failed");
        refusals::UPSTREAM_UNAVAILABLE
    })?;
    let challenge = match auth {
        UpstreamAuth::Bearer(challenge) => challenge,
        UpstreamAuth::None | UpstreamAuth::Basic => return Ok(anonymous_token()),
    };
    if let Some(service) = &challenge.service {
        params.push(("service", encode(service)));
    }
    let query: String = params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");

    let mut headers = HeaderMap::new();
    for name in [header::AUTHORIZATION, header::USER_AGENT, header::ACCEPT] {
        if let Some(value) = parts.headers.get(&name) {
            headers.insert(name, value.clone());
        }
    }
    let request = if is_post {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        client.http.post(&challenge.realm).body(query)
    } else {
        let sep = if challenge.realm.contains('?') {
            '&'
        } else {
            '?'
        };
        client.http.get(format!("{}{sep}{query}", challenge.realm))
    };
    let response = client.send(request.headers(headers)).await.map_err(|e| {
        tracing::warn!(realm = %challenge.realm, error = %e, "token request failed");
        refusals::UPSTREAM_UNAVAILABLE
    })?;
    let status =
        StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
    let body = client
        .read_limited(response, MAX_TOKEN_RESPONSE)
        .await
        .map_err(|e| unreadable("token", e))?;
    let mut out = Response::new(Body::from(body));
    *out.status_mut() = status;
    if let Some(content_type) = content_type {
        out.headers_mut().insert(header::CONTENT_TYPE, content_type);
    }
    Ok(out)
}

fn encode(value: &str) -> String {
    utf8_percent_encode(value, NON_ALPHANUMERIC).to_string()
}

/// For upstreams that need no token: challenged clients still need one.
fn anonymous_token() -> Response<Body> {
    let body = format!(
        r#"{{"token":"{ANONYMOUS_TOKEN}","access_token":"{ANONYMOUS_TOKEN}","expires_in":3600}}"#
    );
    let mut response = Response::new(Body::from(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
