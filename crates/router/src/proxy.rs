//! Proxy mode: manifests, tags and referrers relayed with the client's own
//! Accept lines and Authorization; blobs answered with the upstream's
//! storage location so their bytes never pass through the gateway.

use crate::handlers::HostContext;
use crate::headers::bearer_token;
use crate::reply::{self, ANONYMOUS_TOKEN};
use crate::upstream::{unreadable, UpstreamClient};
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use futures_util::TryStreamExt;
use http::request::Parts;
use pullgate_domain::challenge::{self, UpstreamAuth};
use pullgate_domain::error::{refusals, RegistryError};
use pullgate_domain::mapping::{Mapping, Upstream};
use pullgate_domain::scope;

/// Upstream error bodies and tag lists are read whole; bound them.
const MAX_SMALL_BODY: usize = 4 * 1024 * 1024;
/// Helm index files of big repositories reach tens of MiB.
const MAX_INDEX_BODY: usize = 64 * 1024 * 1024;

/// Request headers relayed upstream as received (Accept apart, below).
const FORWARDED_REQUEST_HEADERS: [HeaderName; 4] = [
    header::USER_AGENT,
    header::IF_NONE_MATCH,
    header::RANGE,
    header::ACCEPT_ENCODING,
];

/// Response headers relayed to the client.
const FORWARDED_RESPONSE_HEADERS: [&str; 11] = [
    "content-type",
    "content-length",
    "content-range",
    "accept-ranges",
    "docker-content-digest",
    "docker-distribution-api-version",
    "etag",
    "last-modified",
    "oci-subject",
    "oci-filters-applied",
    "content-encoding",
];

/// One proxied registry request.
pub struct Call<'a> {
    pub parts: &'a Parts,
    pub host: &'a HostContext<'a>,
    pub mapping: &'a Mapping,
    pub upstream: &'a Upstream,
    pub public_name: &'a str,
    pub upstream_name: &'a str,
    pub url: &'a str,
    /// Sent instead of the client's `Authorization` (`credentials.rs`);
    /// an error (credentials unavailable) is every upstream call's answer.
    pub authorization: Result<Option<HeaderValue>, RegistryError>,
}

fn request_headers(parts: &Parts) -> HeaderMap {
    let mut headers = HeaderMap::new();
    // Accept goes upstream one media type per line: merged into one line,
    // registries refuse OCI manifests, and API Gateway merges the lines a
    // client sent into one comma-separated value before we see them.
    for value in parts.headers.get_all(header::ACCEPT) {
        let Ok(text) = value.to_str() else {
            headers.append(header::ACCEPT, value.clone());
            continue;
        };
        for media_type in text.split(',').map(str::trim).filter(|m| !m.is_empty()) {
            if let Ok(line) = HeaderValue::from_str(media_type) {
                headers.append(header::ACCEPT, line);
            }
        }
    }
    for name in FORWARDED_REQUEST_HEADERS {
        for value in parts.headers.get_all(&name) {
            headers.append(name.clone(), value.clone());
        }
    }
    if let Some(auth) = parts.headers.get(header::AUTHORIZATION) {
        if bearer_token(&parts.headers) != Some(ANONYMOUS_TOKEN) {
            headers.insert(header::AUTHORIZATION, auth.clone());
        }
    }
    headers
}

/// The client's request upstream, as it asked (HEAD or GET).
pub(crate) async fn send(
    client: &UpstreamClient,
    call: &Call<'_>,
) -> Result<reqwest::Response, RegistryError> {
    let method = if call.parts.method == http::Method::HEAD {
        reqwest::Method::HEAD
    } else {
        reqwest::Method::GET
    };
    send_as(client, call, method).await
}

/// The client's request upstream with `method` (a HEAD to resolve a tag
/// for a GET: HEADs do not count against Docker Hub's pull limit).
pub(crate) async fn send_as(
    client: &UpstreamClient,
    call: &Call<'_>,
    method: reqwest::Method,
) -> Result<reqwest::Response, RegistryError> {
    let mut headers = request_headers(call.parts);
    if let Some(authorization) = call.authorization.clone()? {
        headers.insert(header::AUTHORIZATION, authorization);
    }
    let request = client.http.request(method, call.url).headers(headers);
    client.send(request).await.map_err(|e| {
        tracing::warn!(upstream = %call.upstream.registry.base, error = %e, "upstream request failed");
        refusals::UPSTREAM_UNAVAILABLE
    })
}

fn copy_response_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for name in FORWARDED_RESPONSE_HEADERS {
        for value in from.get_all(name) {
            if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
                to.append(name, value.clone());
            }
        }
    }
}

fn status_of(response: &reqwest::Response) -> StatusCode {
    StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY)
}

/// Streams the upstream answer to the client, headers filtered. A 429
/// becomes the spec's `TOOMANYREQUESTS` with the upstream's Retry-After.
pub(crate) fn stream(response: reqwest::Response) -> Response<Body> {
    if response.status() == reqwest::StatusCode::TOO_MANY_REQUESTS {
        return rate_limited(&response);
    }
    let mut out = Response::new(Body::empty());
    *out.status_mut() = status_of(&response);
    copy_response_headers(response.headers(), out.headers_mut());
    *out.body_mut() = Body::from_stream(response.bytes_stream().map_err(std::io::Error::other));
    out
}

fn rate_limited(response: &reqwest::Response) -> Response<Body> {
    metrics::counter!("pullgate_upstream_rate_limited_total").increment(1);
    tracing::warn!(
        upstream = %response.url().origin().ascii_serialization(),
        retry_after = response.headers().get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()),
        "upstream rate limit reached"
    );
    let mut out = reply::error(&refusals::UPSTREAM_RATE_LIMITED);
    if let Some(retry_after) = response.headers().get(header::RETRY_AFTER) {
        out.headers_mut()
            .insert(header::RETRY_AFTER, retry_after.clone());
    }
    out
}

/// The upstream said 401: send the client to OUR token endpoint, with the
/// upstream's scope translated back to public names.
pub(crate) async fn unauthorized(
    client: &UpstreamClient,
    call: &Call<'_>,
    response: reqwest::Response,
) -> Result<Response<Body>, RegistryError> {
    let parsed = response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .and_then(challenge::parse);
    let (scope, error) = match &parsed {
        Some(UpstreamAuth::Bearer(c)) => {
            let scopes = c.scope.as_deref().map(|s| {
                scope::rewrite_all(s, |n| call.host.mappings.public_name_for(call.mapping, n))
                    .join(" ")
            });
            (scopes.filter(|s| !s.is_empty()), c.error.clone())
        }
        _ => (None, None),
    };
    // Without an upstream scope, ask for pull on the public name.
    let scope = scope.unwrap_or_else(|| format!("repository:{}:pull", call.public_name));
    // Without the upstream's error body the client still gets ours.
    let body = client
        .read_limited(response, MAX_SMALL_BODY)
        .await
        .map_err(|e| tracing::warn!(error = %e, "upstream 401 body not read; sending ours"))
        .ok();
    Ok(reply::challenge(
        &call.host.public_base(),
        call.host.name,
        Some(&scope),
        error.as_deref(),
        body,
    ))
}

/// Manifests and referrers: relayed as they are.
pub async fn pass_through(
    client: &UpstreamClient,
    call: &Call<'_>,
) -> Result<Response<Body>, RegistryError> {
    let response = send(client, call).await?;
    if response.status() == reqwest::StatusCode::UNAUTHORIZED {
        return unauthorized(client, call, response).await;
    }
    Ok(stream(response))
}

/// Blobs: never their bytes. An upstream that needs no token gets the
/// client sent straight to it; otherwise we ask with the client's token and
/// hand over the storage location the upstream answers with.
pub async fn blob(
    client: &UpstreamClient,
    call: &Call<'_>,
) -> Result<Response<Body>, RegistryError> {
    match client.auth(&call.upstream.registry).await {
        Ok(UpstreamAuth::None) => return Ok(reply::redirect(call.url)),
        Ok(_) => {}
        // Asking for the blob itself, with the client's credentials, still
        // works when only the discovery failed.
        Err(e) => tracing::warn!(
            upstream = %call.upstream.registry.base,
            error = %e,
            "auth discovery failed; asking for the blob with the client's credentials"
        ),
    }
    let response = send(client, call).await?;
    let status = response.status();
    if status == reqwest::StatusCode::UNAUTHORIZED {
        return unauthorized(client, call, response).await;
    }
    if status.is_redirection() {
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|l| absolute_location(&call.upstream.registry.base, l))
            .ok_or_else(|| {
                // The location itself is not logged: storage URLs are signed.
                tracing::warn!(
                    upstream = %call.upstream.registry.base,
                    status = status.as_u16(),
                    "blob redirect without a usable Location"
                );
                refusals::UPSTREAM_UNAVAILABLE
            })?;
        return Ok(reply::redirect(&location));
    }
    if status.is_success() && call.parts.method == http::Method::GET {
        if let Some(limit) = client.entry.max_response_body {
            // Behind Lambda a relayed body is one response of at most
            // 6 MB: a layer would fail as a bare 500. Small blobs (image
            // configs) fit; what does not, or has no stated length, gets
            // an error that says why.
            let length = response.content_length();
            if length.is_none_or(|n| n > limit as u64) {
                tracing::warn!(
                    upstream = %call.upstream.registry.base,
                    name = call.upstream_name,
                    length,
                    limit,
                    "upstream served blob bytes without a storage redirect, too large to relay here"
                );
                return Err(refusals::RESPONSE_TOO_LARGE);
            }
        }
        // The upstream serves bytes itself and needs the token we cannot
        // hand to a redirected client: relaying is the only way that works.
        tracing::warn!(
            upstream = %call.upstream.registry.base,
            name = call.upstream_name,
            "upstream served blob bytes without a storage redirect; relaying them"
        );
    }
    Ok(stream(response))
}

/// Upstream storage locations are absolute http(s) URLs; a path is taken
/// relative to the registry.
fn absolute_location(base: &str, location: &str) -> Option<String> {
    if location.starts_with("https://") || location.starts_with("http://") {
        Some(location.to_string())
    } else if location.starts_with('/') && !location.starts_with("//") {
        Some(format!("{base}{location}"))
    } else {
        None
    }
}

/// Tag lists name the repository: the client must see the public name, and
/// the pagination link must point back at us.
pub async fn tags(
    client: &UpstreamClient,
    call: &Call<'_>,
) -> Result<Response<Body>, RegistryError> {
    let response = send(client, call).await?;
    let status = response.status();
    if status == reqwest::StatusCode::UNAUTHORIZED {
        return unauthorized(client, call, response).await;
    }
    if !status.is_success() || call.parts.method == http::Method::HEAD {
        return Ok(stream(response));
    }
    let next = response
        .headers()
        .get(header::LINK)
        .and_then(|v| v.to_str().ok())
        .and_then(|link| next_page_link(call.public_name, link));
    let body = client
        .read_limited(response, MAX_SMALL_BODY)
        .await
        .map_err(|e| unreadable("tag list", e))?;
    let mut list: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
        tracing::warn!(upstream = %call.upstream.registry.base, error = %e, "tag list is not JSON");
        refusals::UPSTREAM_UNAVAILABLE
    })?;
    if let Some(obj) = list.as_object_mut() {
        obj.insert("name".into(), call.public_name.into());
    }
    let mut out = Response::new(Body::from(list.to_string()));
    let headers = out.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(next) = next.and_then(|n| HeaderValue::from_str(&n).ok()) {
        headers.insert(header::LINK, next);
    }
    Ok(out)
}

/// Rebuilds `</v2/NAME/tags/list?n=..&last=..>; rel="next"` for the public
/// name from the upstream's link, keeping only validated `n` and `last`.
fn next_page_link(public_name: &str, link: &str) -> Option<String> {
    let target = link.trim().strip_prefix('<')?.split_once('>')?.0;
    let query = target.split_once('?')?.1;
    let path = format!("/v2/{public_name}/tags/list");
    match pullgate_domain::route::parse(pullgate_domain::route::Method::Get, &path, Some(query))
        .ok()?
    {
        pullgate_domain::route::Route::Tags { n, last, .. } => {
            let url = pullgate_domain::location::tags("", public_name, n, last);
            Some(format!("<{url}>; rel=\"next\""))
        }
        _ => None,
    }
}

/// A classic Helm repository's index, with chart URLs under the upstream
/// base rewritten to come back through the gateway (so downloads count).
pub async fn helm_index(
    client: &UpstreamClient,
    parts: &Parts,
    target: &str,
    upstream_base: &str,
    public_base: &str,
) -> Result<Response<Body>, RegistryError> {
    let mut headers = HeaderMap::new();
    if let Some(ua) = parts.headers.get(header::USER_AGENT) {
        headers.insert(header::USER_AGENT, ua.clone());
    }
    let response = client
        .send(client.http.get(target).headers(headers))
        .await
        .map_err(|e| {
            tracing::warn!(upstream = %upstream_base, error = %e, "helm index request failed");
            refusals::UPSTREAM_UNAVAILABLE
        })?;
    if !response.status().is_success() {
        return Ok(stream(response));
    }
    let body = client
        .read_limited(response, MAX_INDEX_BODY)
        .await
        .map_err(|e| unreadable("helm index", e))?;
    let text = String::from_utf8_lossy(&body).replace(upstream_base, public_base);
    let mut out = match client.entry.max_response_body {
        Some(limit) if text.len() > limit => gzipped_index(&parts.headers, text, limit)?,
        _ => Response::new(Body::from(text)),
    };
    out.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-yaml"),
    );
    Ok(out)
}

/// An index over the entry point's limit, gzipped for a client that takes
/// it (helm does: Go's HTTP client asks for gzip and inflates itself).
/// YAML indexes shrink about tenfold, so the 64 MiB an index may have
/// still fits; a client that refuses gzip gets an error saying why.
fn gzipped_index(
    request: &HeaderMap,
    text: String,
    limit: usize,
) -> Result<Response<Body>, RegistryError> {
    let too_large = |reason: &str| {
        tracing::warn!(
            bytes = text.len(),
            limit,
            reason,
            "helm index too large to answer"
        );
        refusals::RESPONSE_TOO_LARGE
    };
    if !accepts_gzip(request) {
        return Err(too_large("the client does not accept gzip"));
    }
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(text.len() / 8),
        flate2::Compression::default(),
    );
    let compressed = std::io::Write::write_all(&mut encoder, text.as_bytes())
        .and_then(|()| encoder.finish())
        .map_err(|e| too_large(&format!("gzip failed: {e}")))?;
    if compressed.len() > limit {
        return Err(too_large("over the limit even gzipped"));
    }
    let mut out = Response::new(Body::from(compressed));
    let headers = out.headers_mut();
    headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    Ok(out)
}

/// Whether `Accept-Encoding` allows gzip (`gzip` or `*`, not with q=0).
/// API Gateway joins repeated lines with commas, as one line would be.
fn accepts_gzip(request: &HeaderMap) -> bool {
    request
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .is_some_and(|q| q.parse::<f32>().is_ok_and(|q| q <= 0.0))
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pagination_links_are_rebuilt_for_the_public_name() {
        assert_eq!(
            next_page_link("app", r#"</v2/acme/app/tags/list?last=v2&n=2>; rel="next""#).as_deref(),
            Some(r#"</v2/app/tags/list?n=2&last=v2>; rel="next""#)
        );
        assert_eq!(
            next_page_link("app", r#"<https://evil/x?last=%2F>; rel="next""#),
            None
        );
    }

    #[test]
    fn gzip_acceptance() {
        let accepts = |values: &[&str]| {
            let mut headers = HeaderMap::new();
            for v in values {
                headers.append(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
            }
            accepts_gzip(&headers)
        };
        assert!(accepts(&["gzip"]));
        assert!(accepts(&["br, GZIP;q=0.5"]));
        assert!(accepts(&["identity", "gzip"]));
        assert!(accepts(&["*"]));
        assert!(!accepts(&[]));
        assert!(!accepts(&["identity"]));
        assert!(!accepts(&["gzip;q=0"]));
        assert!(!accepts(&["gzip; q=0.000, br"]));
        assert!(!accepts(&["gzipx"]));
    }

    #[test]
    fn a_large_index_is_gzipped_within_the_limit() {
        let mut request = HeaderMap::new();
        let text = "entries:\n".to_string() + &"  - url: https://g/x.tgz\n".repeat(400_000);
        assert!(
            gzipped_index(&request, text.clone(), 1 << 20).is_err(),
            "no gzip accepted"
        );
        request.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
        let out = gzipped_index(&request, text.clone(), 1 << 20).unwrap();
        assert_eq!(out.headers()[header::CONTENT_ENCODING], "gzip");
        assert!(
            gzipped_index(&request, text, 100).is_err(),
            "over the limit gzipped"
        );
    }

    #[test]
    fn storage_locations() {
        assert_eq!(
            absolute_location("https://r", "https://cdn/x").as_deref(),
            Some("https://cdn/x")
        );
        assert_eq!(
            absolute_location("https://r", "/blob/x").as_deref(),
            Some("https://r/blob/x")
        );
        assert_eq!(absolute_location("https://r", "//evil/x"), None);
        assert_eq!(absolute_location("https://r", "javascript:x"), None);
    }

    #[test]
    fn accept_goes_upstream_one_media_type_per_line() {
        let request = http::Request::builder()
            .header(header::ACCEPT, "application/vnd.oci.image.index.v1+json")
            .header(
                header::ACCEPT,
                "application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json,",
            )
            .header(header::USER_AGENT, "containers/5.23.1")
            .body(())
            .unwrap();
        let (parts, ()) = request.into_parts();
        let headers = request_headers(&parts);
        let lines: Vec<_> = headers
            .get_all(header::ACCEPT)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(
            lines,
            [
                "application/vnd.oci.image.index.v1+json",
                "application/vnd.docker.distribution.manifest.list.v2+json",
                "application/vnd.oci.image.manifest.v1+json",
            ]
        );
        assert_eq!(
            headers.get(header::USER_AGENT).unwrap(),
            "containers/5.23.1"
        );
    }
}
