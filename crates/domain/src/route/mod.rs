//! Request parsing: method + raw path + raw query → [`Route`].
//!
//! Works on the raw (still percent-encoded) path. Registry names, tags and
//! digests never contain '%', so any percent-encoding on a registry path is
//! refused instead of decoded: `%2F` can never smuggle a slash and `%2e%2e`
//! can never become `..`.

use crate::error::{refusals, RegistryError};
use crate::reference::{is_valid_digest, is_valid_name, is_valid_tag, Reference};
use std::borrow::Cow;

/// Longest request path we look at. Names are ≤ 255 bytes, so a registry
/// path is far shorter; release-file paths get the same generous bound.
pub const MAX_PATH_LEN: usize = 2048;
/// Largest `n` accepted on tags/list (distribution's own default maximum).
pub const MAX_TAGS_PAGE: u32 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Other,
}

impl Method {
    pub fn parse(method: &str) -> Self {
        match method {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            _ => Method::Other,
        }
    }
}

/// The endpoint kinds the gateway knows; also the event's "endpoint kind".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointKind {
    Ping,
    Token,
    Manifest,
    Blob,
    Tags,
    Referrers,
    File,
}

impl EndpointKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointKind::Ping => "ping",
            EndpointKind::Token => "token",
            EndpointKind::Manifest => "manifest",
            EndpointKind::Blob => "blob",
            EndpointKind::Tags => "tags",
            EndpointKind::Referrers => "referrers",
            EndpointKind::File => "file",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route<'a> {
    /// `GET /v2/`
    Ping,
    /// `GET|POST /token`: our own token endpoint (proxy mode).
    Token,
    Manifest {
        name: &'a str,
        reference: Reference<'a>,
    },
    Blob {
        name: &'a str,
        digest: &'a str,
    },
    Tags {
        name: &'a str,
        n: Option<u32>,
        last: Option<&'a str>,
    },
    Referrers {
        name: &'a str,
        digest: &'a str,
        artifact_type: Option<Cow<'a, str>>,
    },
    /// Anything outside `/v2/` and `/token`: a path for an `http` mapping,
    /// without its leading '/'.
    File {
        path: &'a str,
    },
}

impl Route<'_> {
    pub fn kind(&self) -> EndpointKind {
        match self {
            Route::Ping => EndpointKind::Ping,
            Route::Token => EndpointKind::Token,
            Route::Manifest { .. } => EndpointKind::Manifest,
            Route::Blob { .. } => EndpointKind::Blob,
            Route::Tags { .. } => EndpointKind::Tags,
            Route::Referrers { .. } => EndpointKind::Referrers,
            Route::File { .. } => EndpointKind::File,
        }
    }

    /// The repository name for registry routes.
    pub fn name(&self) -> Option<&str> {
        match self {
            Route::Manifest { name, .. }
            | Route::Blob { name, .. }
            | Route::Tags { name, .. }
            | Route::Referrers { name, .. } => Some(name),
            _ => None,
        }
    }
}

/// Parses one request. `path` is the raw path, `query` the raw query string
/// without '?'.
pub fn parse<'a>(
    method: Method,
    path: &'a str,
    query: Option<&'a str>,
) -> Result<Route<'a>, RegistryError> {
    if path.len() > MAX_PATH_LEN || query.is_some_and(|q| q.len() > MAX_PATH_LEN) {
        return Err(refusals::PATH_TOO_LONG);
    }
    if path == "/token" {
        return match method {
            Method::Get | Method::Post => Ok(Route::Token),
            _ => Err(refusals::METHOD_UNSUPPORTED),
        };
    }
    let rest = match path.strip_prefix("/v2") {
        Some("") | Some("/") => {
            return match method {
                Method::Get | Method::Head => Ok(Route::Ping),
                _ => Err(refusals::METHOD_UNSUPPORTED),
            }
        }
        Some(rest) if rest.starts_with('/') => &rest[1..],
        _ => return parse_file(method, path),
    };
    // Pushes, deletes and uploads are refused before anything else is read.
    if !matches!(method, Method::Get | Method::Head) {
        return Err(refusals::METHOD_UNSUPPORTED);
    }
    if rest == "_catalog" || rest.starts_with("_catalog?") {
        return Err(refusals::CATALOG_DENIED);
    }
    if rest.bytes().any(|b| b == b'%' || !b.is_ascii_graphic()) {
        return Err(refusals::NAME_INVALID);
    }
    // The last two segments say what is asked; everything before is the name.
    let (head, last) = rest.rsplit_once('/').ok_or(refusals::PATH_UNSUPPORTED)?;
    let (name, kind) = head.rsplit_once('/').ok_or(refusals::PATH_UNSUPPORTED)?;
    let route = match (kind, last) {
        ("manifests", reference) => Route::Manifest {
            name,
            reference: Reference::parse(reference).ok_or(if reference.contains(':') {
                refusals::DIGEST_INVALID
            } else {
                refusals::MANIFEST_UNKNOWN_TAG
            })?,
        },
        ("blobs", digest) => {
            if !is_valid_digest(digest) {
                return Err(refusals::DIGEST_INVALID);
            }
            Route::Blob { name, digest }
        }
        ("tags", "list") => {
            let (n, last) = parse_tags_query(query)?;
            Route::Tags { name, n, last }
        }
        ("referrers", digest) => {
            if !is_valid_digest(digest) {
                return Err(refusals::DIGEST_INVALID);
            }
            Route::Referrers {
                name,
                digest,
                artifact_type: parse_referrers_query(query)?,
            }
        }
        _ => return Err(refusals::PATH_UNSUPPORTED),
    };
    if !is_valid_name(name) {
        return Err(refusals::NAME_INVALID);
    }
    Ok(route)
}

/// Paths for `http` mappings (Helm repositories, release files): plain
/// segments of unreserved characters, no '.' or '..' segments, no
/// percent-encoding, no empty segments.
fn parse_file(method: Method, path: &str) -> Result<Route<'_>, RegistryError> {
    if !matches!(method, Method::Get | Method::Head) {
        return Err(refusals::METHOD_UNSUPPORTED);
    }
    let path = path.strip_prefix('/').ok_or(refusals::NOT_FOUND)?;
    if path.is_empty() || !path.split('/').all(is_safe_file_segment) {
        return Err(refusals::NOT_FOUND);
    }
    Ok(Route::File { path })
}

fn is_safe_file_segment(segment: &str) -> bool {
    !segment.is_empty()
        && segment != "."
        && segment != ".."
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+'))
}

/// Iterates `key=value` pairs of a raw query string, values still encoded.
pub fn query_pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
}

fn parse_tags_query(query: Option<&str>) -> Result<(Option<u32>, Option<&str>), RegistryError> {
    let mut n = None;
    let mut last = None;
    for (key, value) in query.map(query_pairs).into_iter().flatten() {
        match key {
            "n" => {
                let parsed: u32 = value.parse().map_err(|_| refusals::QUERY_INVALID)?;
                if parsed > MAX_TAGS_PAGE {
                    return Err(refusals::QUERY_INVALID);
                }
                n = Some(parsed);
            }
            "last" => {
                if !is_valid_tag(value) {
                    return Err(refusals::QUERY_INVALID);
                }
                last = Some(value);
            }
            // Unknown parameters are dropped, never forwarded.
            _ => {}
        }
    }
    Ok((n, last))
}

fn parse_referrers_query(query: Option<&str>) -> Result<Option<Cow<'_, str>>, RegistryError> {
    let mut artifact_type = None;
    for (key, value) in query.map(query_pairs).into_iter().flatten() {
        if key == "artifactType" {
            let decoded = percent_encoding::percent_decode_str(value)
                .decode_utf8()
                .map_err(|_| refusals::QUERY_INVALID)?;
            if !is_valid_media_type(&decoded) {
                return Err(refusals::QUERY_INVALID);
            }
            artifact_type = Some(decoded);
        }
    }
    Ok(artifact_type)
}

/// RFC 6838 `type/subtype` with restricted-name characters only.
pub fn is_valid_media_type(value: &str) -> bool {
    let restricted = |s: &str| {
        !s.is_empty()
            && s.len() <= 127
            && s.bytes().all(|b| {
                b.is_ascii_alphanumeric()
                    || matches!(
                        b,
                        b'!' | b'#' | b'$' | b'&' | b'-' | b'^' | b'_' | b'.' | b'+'
                    )
            })
    };
    matches!(value.split_once('/'), Some((t, s)) if restricted(t) && restricted(s))
}

#[cfg(test)]
mod tests;
