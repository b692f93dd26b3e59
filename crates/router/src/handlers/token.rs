//! Our token endpoint (proxy mode). Clients challenged by our `/v2/` come
//! here; we translate every `scope` to upstream names, swap `service` for the
//! upstream's, keep every other parameter verbatim, and let the upstream's
//! own realm issue the token, with the client's Basic credentials passed
//! through, or for an anonymous client of a mapping with credentials, the
//! mapping's (only for that mapping's repositories: `token_scopes`). The
//! realm is fetched only where the realm rule allows (`realm.rs`). The
//! token is the upstream's: proxied requests carry it upstream.

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
use pullgate_domain::route::query_pairs;
use pullgate_domain::token_scopes;

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

    let mut saw_scope = false;
    let mut scope_values: Vec<String> = Vec::new();
    // Where the rewritten scopes go: where the client's first one was.
    let mut scopes_at = None;
    let mut params: Vec<(&str, String)> = Vec::new();
    for (key, value) in query_pairs(raw) {
        match key {
            "scope" => {
                saw_scope = true;
                scopes_at.get_or_insert(params.len());
                let plus_as_space = value.replace('+', " ");
                let decoded = percent_decode_str(&plus_as_space)
                    .decode_utf8()
                    .map_err(|_| refusals::QUERY_INVALID)?;
                scope_values.push(decoded.into_owned());
            }
            // Replaced by the upstream's own service below.
            "service" => {}
            _ => params.push((key, value.to_string())),
        }
    }
    let anonymous = crate::credentials::is_anonymous(&parts.headers);
    let planned = token_scopes::plan(
        scope_values.iter().map(String::as_str),
        host.mappings,
        anonymous,
    )?;
    if saw_scope && planned.registry.is_none() {
        return Err(refusals::SCOPE_DENIED);
    }
    let at = scopes_at.unwrap_or(params.len());
    params.splice(at..at, planned.scopes.iter().map(|s| ("scope", encode(s))));
    // No scope (docker login): the host's registry, if it has just one.
    let registry = planned
        .registry
        .or_else(|| host.mappings.single_registry().cloned());
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
    let realm_client = client
        .realms
        .client_for(&challenge.realm, &registry.base)
        .await
        .map_err(|e| {
            tracing::warn!(upstream = %registry.base, error = %e, "token realm refused");
            refusals::UPSTREAM_UNAVAILABLE
        })?;
    let publisher = match &planned.credentials {
        Some(source) => Some(crate::credentials::basic(&client.credentials, source).await?),
        None => None,
    };
    if publisher.is_some() {
        // The account asked for is the publisher's, not one a client names.
        params.retain(|(key, _)| *key != "account");
    }
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
    if let Some(publisher) = publisher {
        headers.insert(header::AUTHORIZATION, publisher);
    }
    let request = if is_post {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        realm_client.post(&challenge.realm).body(query)
    } else {
        let sep = if challenge.realm.contains('?') {
            '&'
        } else {
            '?'
        };
        realm_client.get(format!("{}{sep}{query}", challenge.realm))
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
