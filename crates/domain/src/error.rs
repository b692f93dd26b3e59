//! OCI distribution error responses: every refusal a registry client sees is
//! one of these, with a status and a JSON body it can show its user.

use std::fmt;

/// Error codes from the OCI distribution spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    NameUnknown,
    NameInvalid,
    DigestInvalid,
    ManifestUnknown,
    Unsupported,
    Denied,
    Unauthorized,
    SizeInvalid,
    /// Upstream unreachable or answered something we cannot pass on.
    Unavailable,
    /// The upstream's rate limit (Docker Hub's pull limit) was reached.
    TooManyRequests,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NameUnknown => "NAME_UNKNOWN",
            ErrorCode::NameInvalid => "NAME_INVALID",
            ErrorCode::DigestInvalid => "DIGEST_INVALID",
            ErrorCode::ManifestUnknown => "MANIFEST_UNKNOWN",
            ErrorCode::Unsupported => "UNSUPPORTED",
            ErrorCode::Denied => "DENIED",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::SizeInvalid => "SIZE_INVALID",
            ErrorCode::Unavailable => "UNAVAILABLE",
            ErrorCode::TooManyRequests => "TOOMANYREQUESTS",
        }
    }
}

/// A refusal: HTTP status, OCI code and a message for humans.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {}: {message}", code.as_str())]
pub struct RegistryError {
    pub status: u16,
    pub code: ErrorCode,
    pub message: &'static str,
}

impl RegistryError {
    pub const fn new(status: u16, code: ErrorCode, message: &'static str) -> Self {
        Self {
            status,
            code,
            message,
        }
    }

    /// The OCI error body: `{"errors":[{"code":...,"message":...}]}`.
    pub fn body(&self) -> String {
        let mut out = String::with_capacity(64 + self.message.len());
        out.push_str(r#"{"errors":[{"code":""#);
        out.push_str(self.code.as_str());
        out.push_str(r#"","message":"#);
        // Messages are our own constants, but escape anyway so the body is
        // always valid JSON.
        out.push_str(&serde_json::Value::from(self.message).to_string());
        out.push_str("}]}");
        out
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The refusals the gateway gives, named once so tests and docs agree.
pub mod refusals {
    use super::{ErrorCode::*, RegistryError};

    pub const HOST_UNKNOWN: RegistryError =
        RegistryError::new(404, NameUnknown, "no registry is served at this host");
    pub const NAME_UNKNOWN: RegistryError = RegistryError::new(
        404,
        NameUnknown,
        "repository name not known to this registry",
    );
    pub const NAME_INVALID: RegistryError =
        RegistryError::new(400, NameInvalid, "invalid repository name");
    pub const DIGEST_INVALID: RegistryError =
        RegistryError::new(400, DigestInvalid, "invalid digest");
    /// A tag that breaks the tag grammar names no manifest: the spec's
    /// endpoint table gives a manifest request 200 or 404 only, and
    /// `TAG_INVALID` is a legacy code (digests keep `DIGEST_INVALID`).
    pub const MANIFEST_UNKNOWN_TAG: RegistryError = RegistryError::new(
        404,
        ManifestUnknown,
        "manifest unknown: the reference is not a valid tag",
    );
    pub const METHOD_UNSUPPORTED: RegistryError = RegistryError::new(
        405,
        Unsupported,
        "this registry is read-only: only GET and HEAD are supported",
    );
    pub const CATALOG_DENIED: RegistryError =
        RegistryError::new(403, Denied, "catalog listing is not offered");
    pub const PATH_UNSUPPORTED: RegistryError =
        RegistryError::new(404, Unsupported, "unsupported registry API path");
    pub const NOT_FOUND: RegistryError = RegistryError::new(404, NameUnknown, "not found");
    pub const PATH_TOO_LONG: RegistryError =
        RegistryError::new(414, NameInvalid, "request path too long");
    pub const HEADERS_TOO_LARGE: RegistryError =
        RegistryError::new(431, SizeInvalid, "request headers too large");
    pub const QUERY_INVALID: RegistryError =
        RegistryError::new(400, Unsupported, "invalid query parameters");
    pub const HOST_MISSING: RegistryError =
        RegistryError::new(400, NameInvalid, "missing or invalid Host header");
    /// An upstream 429, in the spec's words for it (Docker Hub's body is
    /// not relayed: its message names the gateway's address, not the
    /// client's).
    pub const UPSTREAM_RATE_LIMITED: RegistryError = RegistryError::new(
        429,
        TooManyRequests,
        "the upstream registry's rate limit was reached; retry later",
    );
    pub const UPSTREAM_UNAVAILABLE: RegistryError = RegistryError::new(
        502,
        Unavailable,
        "the upstream registry could not be reached",
    );
    /// The request's time budget ran out (upstream calls too slow): an
    /// answer of ours before the entry point's own timeout cuts it off.
    pub const UPSTREAM_TIMEOUT: RegistryError = RegistryError::new(
        504,
        Unavailable,
        "the upstream registry did not answer in time",
    );
    /// The answer would exceed what the entry point can return (Lambda's
    /// 6 MB response limit), and there is no smaller form of it.
    pub const RESPONSE_TOO_LARGE: RegistryError = RegistryError::new(
        502,
        Unsupported,
        "the upstream's answer is too large for this gateway to relay (Lambda's 6 MB response limit); pull from a gateway run with `pullgate serve`, or ask the publisher for a redirected mapping",
    );
    /// The mapping's credentials would be used (the client is anonymous)
    /// and a scope names a repository outside that mapping.
    pub const CREDENTIALS_SCOPE_DENIED: RegistryError = RegistryError::new(
        403,
        Denied,
        "token scope names a repository outside the mapping whose upstream credentials would be used",
    );
    /// The mapping's credentials could not be had (the log says why).
    pub const UPSTREAM_CREDENTIALS_UNAVAILABLE: RegistryError = RegistryError::new(
        502,
        Unavailable,
        "the gateway could not get its credentials for the upstream registry",
    );
    pub const SCOPE_DENIED: RegistryError = RegistryError::new(
        403,
        Denied,
        "token scope names no repository served at this host",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_oci_json() {
        let body = refusals::NAME_UNKNOWN.body();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["errors"][0]["code"], "NAME_UNKNOWN");
        assert_eq!(
            v["errors"][0]["message"],
            "repository name not known to this registry"
        );
    }
}
