//! Building the responses the gateway gives itself.

use axum::body::Body;
use axum::http::{header, HeaderValue, Response, StatusCode};
use pullgate_domain::challenge;
use pullgate_domain::error::RegistryError;

pub const API_VERSION: &str = "Docker-Distribution-API-Version";
const API_VERSION_VALUE: HeaderValue = HeaderValue::from_static("registry/2.0");
const JSON: HeaderValue = HeaderValue::from_static("application/json");
const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");

/// The token we hand out when the upstream needs none: clients that were
/// challenged must get *a* token; it is never sent upstream.
pub const ANONYMOUS_TOKEN: &str = "pullgate-anonymous";

fn build(status: StatusCode, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
}

/// 307 to a URL built from a mapping. `no-store`: a cached redirect is a
/// pull that is never counted.
pub fn redirect(location: &str) -> Response<Body> {
    match HeaderValue::from_str(location) {
        Ok(value) => {
            let mut response = build(StatusCode::TEMPORARY_REDIRECT, Body::empty());
            let headers = response.headers_mut();
            headers.insert(header::LOCATION, value);
            headers.insert(header::CACHE_CONTROL, NO_STORE);
            headers.insert(API_VERSION, API_VERSION_VALUE);
            response
        }
        // Locations are built from validated parts; this cannot happen, and
        // if it did the client must not get a broken redirect.
        Err(_) => error(&pullgate_domain::error::refusals::UPSTREAM_UNAVAILABLE),
    }
}

pub fn error(error: &RegistryError) -> Response<Body> {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = build(status, Body::from(error.body()));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, JSON);
    headers.insert(API_VERSION, API_VERSION_VALUE);
    if status == StatusCode::METHOD_NOT_ALLOWED {
        headers.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    }
    response
}

pub fn ping_ok() -> Response<Body> {
    let mut response = build(StatusCode::OK, Body::from("{}"));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, JSON);
    headers.insert(API_VERSION, API_VERSION_VALUE);
    response
}

/// 401 with our own Bearer challenge. `body` is the upstream's error body
/// when we relay one of its 401s.
pub fn challenge(
    public_base: &str,
    service: &str,
    scope: Option<&str>,
    error_param: Option<&str>,
    body: Option<bytes::Bytes>,
) -> Response<Body> {
    let body = body.unwrap_or_else(|| {
        bytes::Bytes::from_static(
            br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
        )
    });
    let mut response = build(StatusCode::UNAUTHORIZED, Body::from(body));
    let value = challenge::ours(public_base, service, scope, error_param);
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(header::WWW_AUTHENTICATE, value);
    }
    headers.insert(header::CONTENT_TYPE, JSON);
    headers.insert(API_VERSION, API_VERSION_VALUE);
    response
}
