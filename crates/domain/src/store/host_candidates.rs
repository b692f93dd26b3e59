//! The one rule for finding a host's mappings from a Host header: which
//! keys to look under, in which order. Every store goes through it (the
//! static table, DynamoDB, the cache in front of either), so a header finds
//! the same mappings whichever store serves it.

use std::borrow::Cow;

/// The keys a Host header's mappings are stored under, in the order they
/// are tried: the header lowercased (DNS names ignore case), exact
/// `host:port` first, then the host without its port.
pub fn host_candidates(host_header: &str) -> HostCandidates<'_> {
    // The request path calls this for every request, and clients send
    // lowercase hosts: copy only when there is something to lowercase.
    let exact = if host_header.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host_header.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host_header)
    };
    HostCandidates { exact }
}

/// The lookup keys of one Host header (see [`host_candidates`]).
#[derive(Debug, Clone)]
pub struct HostCandidates<'h> {
    exact: Cow<'h, str>,
}

impl HostCandidates<'_> {
    /// The whole header, lowercased: the first key, and the one a cache
    /// keeps the answer under.
    pub fn exact(&self) -> &str {
        &self.exact
    }

    /// The host without a numeric port, when the header has one. An empty
    /// port counts (`host:`); a colon ending the rest does not, so a bare
    /// IPv6 address (`::1`) is not cut, while `[::1]:8080` gives `[::1]`.
    pub fn without_port(&self) -> Option<&str> {
        match self.exact.rsplit_once(':') {
            Some((host, port))
                if !host.is_empty()
                    && !host.ends_with(':')
                    && port.bytes().all(|b| b.is_ascii_digit()) =>
            {
                Some(host)
            }
            _ => None,
        }
    }

    /// The keys in lookup order; the port-less one is only worked out when
    /// the exact key missed.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.exact()).chain(std::iter::once_with(|| self.without_port()).flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::host_candidates;

    #[test]
    fn host_headers_give_their_lookup_keys_in_order() {
        let cases: &[(&str, &[&str])] = &[
            ("images.acme.dev", &["images.acme.dev"]),
            ("Images.ACME.dev", &["images.acme.dev"]),
            (
                "images.acme.dev:8443",
                &["images.acme.dev:8443", "images.acme.dev"],
            ),
            (
                "IMAGES.acme.dev:443",
                &["images.acme.dev:443", "images.acme.dev"],
            ),
            ("[::1]:8080", &["[::1]:8080", "[::1]"]),
            ("[::1]", &["[::1]"]),
            ("::1", &["::1"]),
            // An empty port is still cut off, as it always was.
            ("images.acme.dev:", &["images.acme.dev:", "images.acme.dev"]),
            ("images.acme.dev:http", &["images.acme.dev:http"]),
            // A trailing dot is not stripped: it is a different key.
            ("images.acme.dev.", &["images.acme.dev."]),
            (
                "images.acme.dev.:80",
                &["images.acme.dev.:80", "images.acme.dev."],
            ),
            // No empty host key (DynamoDB refuses empty key strings).
            (":80", &[":80"]),
        ];
        for (header, expected) in cases {
            let candidates = host_candidates(header);
            let keys: Vec<&str> = candidates.iter().collect();
            assert_eq!(&keys, expected, "{header}");
        }
    }

    #[test]
    fn lowercase_headers_are_not_copied() {
        let header = "images.acme.dev:8443";
        let candidates = host_candidates(header);
        assert!(std::ptr::eq(candidates.exact(), header));
        assert!(!std::ptr::eq(
            host_candidates("Images.acme.dev").exact(),
            "Images.acme.dev"
        ));
    }
}
