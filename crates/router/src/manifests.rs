//! Proxied manifest GETs through the manifest cache (`manifest_cache.rs`):
//! the reference is resolved with a HEAD upstream (free under Docker Hub's
//! pull limit, and it is the upstream that decides whether this client may
//! read it), the body comes from the cache by digest, and only a miss GETs
//! upstream. HEADs, conditional and range requests, and everything while
//! the cache is off, are relayed as before — except HEADs behind an entry
//! point that takes a response's length from its body (API Gateway,
//! `EntryLimits::manifest_head_with_body`): those are answered like GETs,
//! body included, so the client is told the manifest's true length
//! (docker and containerd size the manifest from a HEAD's Content-Length).
//! The body comes from the cache, and the client's next step, the GET by
//! digest, is then a hit: a pull costs no more upstream GETs than before.

use crate::manifest_cache::{CachedManifest, ManifestCache};
use crate::proxy::{self, Call};
use crate::upstream::{unreadable, UpstreamClient};
use axum::body::Body;
use axum::http::{header, HeaderValue, Response, StatusCode};
use pullgate_domain::error::RegistryError;
use pullgate_domain::reference::Reference;
use ring::digest::{digest, SHA256};
use std::fmt::Write;

/// Manifests and indexes are kilobytes; the spec lets registries refuse
/// over 4 MiB, and so do we for the cache.
const MAX_MANIFEST: usize = 4 * 1024 * 1024;
const DOCKER_CONTENT_DIGEST: &str = "docker-content-digest";

pub async fn get(
    client: &UpstreamClient,
    call: &Call<'_>,
    reference: Reference<'_>,
) -> Result<Response<Body>, RegistryError> {
    let cache = &client.manifests;
    let headers = &call.parts.headers;
    let answered_like_get = call.parts.method == http::Method::GET
        || (call.parts.method == http::Method::HEAD && client.entry.manifest_head_with_body);
    if !answered_like_get
        || !cache.settings().is_on()
        || headers.contains_key(header::IF_NONE_MATCH)
        || headers.contains_key(header::RANGE)
    {
        return proxy::pass_through(client, call).await;
    }
    let repository = format!("{}/{}", call.upstream.registry.base, call.upstream_name);
    let reference_key = reference_key(&repository, reference.as_str(), call);
    let digest = match cache.resolved(&reference_key) {
        Some(digest) => digest,
        None => {
            let head = proxy::send_as(client, call, reqwest::Method::HEAD).await?;
            let resolved = head
                .status()
                .is_success()
                .then(|| digest_header(head.headers()))
                .flatten()
                .filter(|d| !reference.is_digest() || d == reference.as_str());
            // Unauthorized, not found, rate limited, no digest given: the
            // GET gives the client the upstream's own answer and body (a
            // refused GET is no pull: no limit counts it).
            let Some(resolved) = resolved else {
                return proxy::pass_through(client, call).await;
            };
            cache.remember_resolved(reference_key, resolved.clone());
            resolved
        }
    };
    let manifest_key = format!("{repository}@{digest}");
    if let Some(manifest) = cache.get(&manifest_key) {
        metrics::counter!("pullgate_manifest_cache_total", "result" => "hit").increment(1);
        return Ok(serve(&manifest));
    }
    metrics::counter!("pullgate_manifest_cache_total", "result" => "miss").increment(1);
    fetch(client, cache, call, manifest_key, &digest).await
}

/// A miss: GET upstream, keep the body when it is the digest the HEAD
/// named (a body that does not hash to it is served, never kept).
async fn fetch(
    client: &UpstreamClient,
    cache: &ManifestCache,
    call: &Call<'_>,
    manifest_key: String,
    expected: &str,
) -> Result<Response<Body>, RegistryError> {
    // A GET even for a HEAD answered like one (see the module's notes).
    let response = proxy::send_as(client, call, reqwest::Method::GET).await?;
    if response.status() == reqwest::StatusCode::UNAUTHORIZED {
        return proxy::unauthorized(client, call, response).await;
    }
    if response.status() != reqwest::StatusCode::OK {
        return Ok(proxy::stream(response));
    }
    let (Some(content_type), Some(digest)) = (
        response.headers().get(header::CONTENT_TYPE).cloned(),
        response.headers().get(DOCKER_CONTENT_DIGEST).cloned(),
    ) else {
        return Ok(proxy::stream(response));
    };
    let body = client
        .read_limited(response, MAX_MANIFEST)
        .await
        .map_err(|e| unreadable("manifest", e))?;
    let manifest = CachedManifest {
        content_type,
        digest,
        body,
    };
    let named = manifest.digest.to_str().ok();
    if named == Some(expected) && sha256_digest(&manifest.body) == expected {
        cache.insert(manifest_key, manifest.clone());
    } else {
        tracing::warn!(
            upstream = %call.upstream.registry.base,
            name = call.upstream_name,
            "manifest body does not match the digest the upstream named; served, not cached"
        );
    }
    Ok(serve(&manifest))
}

fn serve(manifest: &CachedManifest) -> Response<Body> {
    let mut response = Response::new(Body::from(manifest.body.clone()));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, manifest.content_type.clone());
    headers.insert(DOCKER_CONTENT_DIGEST, manifest.digest.clone());
    headers.insert(
        header::CONTENT_LENGTH,
        HeaderValue::from(manifest.body.len()),
    );
    headers.insert(
        crate::reply::API_VERSION,
        HeaderValue::from_static("registry/2.0"),
    );
    response
}

/// The digest header when it is one we can check (sha256).
fn digest_header(headers: &reqwest::header::HeaderMap) -> Option<String> {
    let value = headers.get(DOCKER_CONTENT_DIGEST)?.to_str().ok()?;
    pullgate_domain::reference::is_valid_digest(value)
        .then(|| value.starts_with("sha256:"))
        .filter(|sha256| *sha256)
        .map(|_| value.to_string())
}

fn sha256_digest(body: &[u8]) -> String {
    let mut out = String::with_capacity(71);
    out.push_str("sha256:");
    for byte in digest(&SHA256, body).as_ref() {
        // Writing to a String cannot fail.
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// What one client's HEAD answered for: the repository and reference, the
/// media types it accepts (they choose the manifest a tag resolves to) and
/// a fingerprint of its credentials (one client's access is never
/// another's; the credentials themselves are not kept).
fn reference_key(repository: &str, reference: &str, call: &Call<'_>) -> String {
    let mut key = format!("{repository}:{reference}\n");
    for accept in call.parts.headers.get_all(header::ACCEPT) {
        key.push_str(accept.to_str().unwrap_or("?"));
        key.push(',');
    }
    key.push('\n');
    match call.parts.headers.get(header::AUTHORIZATION) {
        Some(auth) => {
            for byte in &digest(&SHA256, auth.as_bytes()).as_ref()[..16] {
                let _ = write!(key, "{byte:02x}");
            }
        }
        None => key.push('-'),
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_of_a_body_is_its_sha256() {
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
