//! The mapping's upstream credentials on the request path: used only for
//! anonymous clients (no `Authorization`, or our anonymous token); a
//! client's own credentials pass through unchanged. The values come from
//! the credential cache (`pullgate_domain::credentials::cache`), so a
//! request finds them in memory; they go into header values marked
//! sensitive and never into a log line, an event or a body.

use crate::headers::bearer_token;
use crate::reply::ANONYMOUS_TOKEN;
use crate::upstream::UpstreamClient;
use axum::http::{header, HeaderMap, HeaderValue};
use pullgate_domain::challenge::UpstreamAuth;
use pullgate_domain::credentials::{CredentialCache, CredentialSource};
use pullgate_domain::error::{refusals, RegistryError};
use pullgate_domain::mapping::Upstream;

/// The client brings no credentials of its own.
pub(crate) fn is_anonymous(headers: &HeaderMap) -> bool {
    match headers.get(header::AUTHORIZATION) {
        None => true,
        Some(_) => bearer_token(headers) == Some(ANONYMOUS_TOKEN),
    }
}

/// `Authorization: Basic …` for `source`, from the cache.
pub(crate) async fn basic(
    cache: &CredentialCache,
    source: &CredentialSource,
) -> Result<HeaderValue, RegistryError> {
    let credentials = cache.get(source).await.map_err(|error| {
        // The error names the source (a variable, a path, a secret id),
        // never a value.
        tracing::warn!(credentials = %source, %error, "upstream credentials unavailable");
        refusals::UPSTREAM_CREDENTIALS_UNAVAILABLE
    })?;
    let mut value = HeaderValue::from_str(&credentials.basic_authorization()).map_err(|_| {
        tracing::warn!(credentials = %source, "upstream credentials are not a valid header value");
        refusals::UPSTREAM_CREDENTIALS_UNAVAILABLE
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// What a proxied registry request sends upstream instead of the client's
/// `Authorization`: the mapping's Basic credentials, for an anonymous
/// client of a Basic-auth upstream (htpasswd registries; ECR, whose
/// registry API takes `AWS:<token>`). Token upstreams need none here: the
/// client carries the token our endpoint got with the credentials.
pub(crate) async fn for_registry_call(
    client: &UpstreamClient,
    headers: &HeaderMap,
    upstream: &Upstream,
) -> Result<Option<HeaderValue>, RegistryError> {
    let Some(source) = &upstream.credentials else {
        return Ok(None);
    };
    if !is_anonymous(headers) {
        return Ok(None);
    }
    match client.auth(&upstream.registry).await {
        Ok(UpstreamAuth::Basic) => basic(&client.credentials, source).await.map(Some),
        Ok(_) => Ok(None),
        Err(error) => {
            tracing::warn!(upstream = %upstream.registry.base, %error, "auth discovery failed");
            Err(refusals::UPSTREAM_UNAVAILABLE)
        }
    }
}
