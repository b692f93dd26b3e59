//! The OCI distribution grammar for repository names, tags and digests.
//!
//! Hand-written byte scanners instead of regexes: these run on every request
//! and must not allocate.

/// Longest repository name distribution accepts (registry/name limit).
pub const MAX_NAME_LEN: usize = 255;
/// Longest tag the OCI spec allows (1 + 127).
pub const MAX_TAG_LEN: usize = 128;

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`
pub fn is_valid_name(name: &str) -> bool {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return false;
    }
    name.split('/').all(is_valid_path_component)
}

fn is_valid_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !alnum(first) || !alnum(last) {
        return false;
    }
    // Separators: '.', '_', '__' or any run of '-'. Never mixed, never '...'.
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if alnum(b) {
            i += 1;
            continue;
        }
        let run_start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &bytes[run_start..i];
        let ok = match sep {
            b"." | b"_" | b"__" => true,
            dashes => dashes.iter().all(|&c| c == b'-'),
        };
        if !ok {
            return false;
        }
    }
    true
}

/// `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`
pub fn is_valid_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    let Some(&first) = bytes.first() else {
        return false;
    };
    bytes.len() <= MAX_TAG_LEN
        && (first.is_ascii_alphanumeric() || first == b'_')
        && bytes[1..]
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// A digest of a registered algorithm with an encoded part of the right
/// length: `sha256:<64 lowercase hex>` or `sha512:<128 lowercase hex>`.
/// Other algorithms are grammatical but no registry we front serves them, so
/// they are refused rather than forwarded.
pub fn is_valid_digest(digest: &str) -> bool {
    let Some((algorithm, encoded)) = digest.split_once(':') else {
        return false;
    };
    let expected_len = match algorithm {
        "sha256" => 64,
        "sha512" => 128,
        _ => return false,
    };
    encoded.len() == expected_len
        && encoded
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A manifest reference: a tag or a digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference<'a> {
    Tag(&'a str),
    Digest(&'a str),
}

impl<'a> Reference<'a> {
    /// Digests contain ':', tags never do.
    pub fn parse(reference: &'a str) -> Option<Self> {
        if reference.contains(':') {
            is_valid_digest(reference).then_some(Reference::Digest(reference))
        } else {
            is_valid_tag(reference).then_some(Reference::Tag(reference))
        }
    }

    pub fn as_str(&self) -> &'a str {
        match self {
            Reference::Tag(s) | Reference::Digest(s) => s,
        }
    }

    pub fn is_digest(&self) -> bool {
        matches!(self, Reference::Digest(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    #[test]
    fn names() {
        for ok in [
            "a",
            "app",
            "acme/app",
            "library/alpine",
            "a.b_c__d-e---f/g",
            "0/1/2",
            "ghcr.io/x",
        ] {
            assert!(is_valid_name(ok), "{ok} should be valid");
        }
        for bad in [
            "", "App", "/app", "app/", "a//b", "a..b", "..", "a/../b", "a/./b", "a___b", "a._b",
            "-a", "a-", "a%2fb", "a b", "a\r\nb", "a:b", "_catalog",
        ] {
            assert!(!is_valid_name(bad), "{bad:?} should be invalid");
        }
        assert!(is_valid_name(&"a".repeat(255)));
        assert!(!is_valid_name(&"a".repeat(256)));
    }

    #[test]
    fn tags() {
        for ok in ["latest", "v1.2.3", "_x", "A-b.c_d", &"t".repeat(128)] {
            assert!(is_valid_tag(ok), "{ok} should be valid");
        }
        for bad in ["", ".x", "-x", "a/b", "a:b", "a%20", &"t".repeat(129), "é"] {
            assert!(!is_valid_tag(bad), "{bad:?} should be invalid");
        }
    }

    #[test]
    fn digests() {
        assert!(is_valid_digest(SHA));
        assert!(is_valid_digest(&format!("sha512:{}", "a".repeat(128))));
        for bad in [
            "sha256:",
            "sha256:abc",
            &SHA.to_uppercase(),
            &format!("{SHA}0"),
            "md5:d41d8cd98f00b204e9800998ecf8427e",
            &format!("sha256:{}", "g".repeat(64)),
            "sha256",
        ] {
            assert!(!is_valid_digest(bad), "{bad:?} should be invalid");
        }
    }

    #[test]
    fn references() {
        assert_eq!(Reference::parse("v1"), Some(Reference::Tag("v1")));
        assert_eq!(Reference::parse(SHA), Some(Reference::Digest(SHA)));
        assert_eq!(Reference::parse("sha256:zz"), None);
        assert_eq!(Reference::parse(""), None);
    }
}
