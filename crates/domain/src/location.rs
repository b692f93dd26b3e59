//! Every URL the gateway hands out or calls is built here, from a mapping's
//! registry base and validated names, never from request text.

use crate::reference::Reference;
use std::fmt::Write;

pub fn ping(base: &str) -> String {
    format!("{base}/v2/")
}

pub fn manifest(base: &str, repository: &str, reference: Reference<'_>) -> String {
    format!("{base}/v2/{repository}/manifests/{}", reference.as_str())
}

pub fn blob(base: &str, repository: &str, digest: &str) -> String {
    format!("{base}/v2/{repository}/blobs/{digest}")
}

pub fn tags(base: &str, repository: &str, n: Option<u32>, last: Option<&str>) -> String {
    let mut url = format!("{base}/v2/{repository}/tags/list");
    let mut sep = '?';
    if let Some(n) = n {
        let _ = write!(url, "{sep}n={n}");
        sep = '&';
    }
    if let Some(last) = last {
        let _ = write!(url, "{sep}last={last}");
    }
    url
}

pub fn referrers(
    base: &str,
    repository: &str,
    digest: &str,
    artifact_type: Option<&str>,
) -> String {
    let mut url = format!("{base}/v2/{repository}/referrers/{digest}");
    if let Some(t) = artifact_type {
        url.push_str("?artifactType=");
        url.extend(percent_encoding::utf8_percent_encode(
            t,
            percent_encoding::NON_ALPHANUMERIC,
        ));
    }
    url
}

/// An `http` mapping's target for a path below its prefix: `{path}` in the
/// base is replaced, otherwise the path is appended.
pub fn file(base: &str, rest: &str) -> String {
    if base.contains("{path}") {
        base.replace("{path}", rest)
    } else if rest.is_empty() {
        base.to_string()
    } else {
        format!("{base}/{rest}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds() {
        let b = "https://ghcr.io";
        assert_eq!(
            manifest(b, "a/b", Reference::Tag("v1")),
            "https://ghcr.io/v2/a/b/manifests/v1"
        );
        assert_eq!(
            tags(b, "a", Some(5), Some("v1")),
            "https://ghcr.io/v2/a/tags/list?n=5&last=v1"
        );
        assert_eq!(
            tags(b, "a", None, Some("v1")),
            "https://ghcr.io/v2/a/tags/list?last=v1"
        );
        assert_eq!(
            referrers(b, "a", "sha256:x", Some("application/vnd.x+json")),
            "https://ghcr.io/v2/a/referrers/sha256:x?artifactType=application%2Fvnd%2Ex%2Bjson"
        );
        assert_eq!(
            file("https://github.com/a/b/releases/download", "v1/x.tgz"),
            "https://github.com/a/b/releases/download/v1/x.tgz"
        );
        assert_eq!(
            file("https://h/{path}?raw=1", "x.tgz"),
            "https://h/x.tgz?raw=1"
        );
    }
}
