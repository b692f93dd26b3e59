//! Reading the request headers handlers, events and the access line need.

use axum::http::{header, HeaderMap, HeaderName};

/// Global Privacy Control; a constant name, so a lookup does not parse it.
pub(crate) const SEC_GPC: HeaderName = HeaderName::from_static("sec-gpc");

/// A header's value as text; absent, or not visible ASCII, is `None`.
pub(crate) fn header_str(headers: &HeaderMap, name: HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The bearer token a client presents, if any.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}
