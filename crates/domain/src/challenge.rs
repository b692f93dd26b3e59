//! `WWW-Authenticate` challenges: reading the upstream's, writing our own.

/// A parsed `Bearer` challenge (RFC 6750 as registries use it).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BearerChallenge {
    pub realm: String,
    pub service: Option<String>,
    pub scope: Option<String>,
    pub error: Option<String>,
}

/// How an upstream wants clients to authenticate, from its `/v2/` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamAuth {
    /// `/v2/` answered 200: no token needed.
    None,
    Bearer(BearerChallenge),
    /// Basic (htpasswd) registries: credentials go straight through.
    Basic,
}

/// Parses a `WWW-Authenticate` value. Returns `None` for schemes other than
/// Bearer and Basic or for a Bearer challenge without a realm.
pub fn parse(header: &str) -> Option<UpstreamAuth> {
    let header = header.trim();
    let (scheme, params) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(UpstreamAuth::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut challenge = BearerChallenge::default();
    for (key, value) in params_of(params) {
        match key.to_ascii_lowercase().as_str() {
            "realm" => challenge.realm = value,
            "service" => challenge.service = Some(value),
            "scope" => challenge.scope = Some(value),
            "error" => challenge.error = Some(value),
            _ => {}
        }
    }
    (!challenge.realm.is_empty()).then_some(UpstreamAuth::Bearer(challenge))
}

/// `key=value` and `key="quoted \"value\""` pairs separated by commas.
fn params_of(mut s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    loop {
        s = s.trim_start_matches([' ', ',', '\t']);
        let Some((key, rest)) = s.split_once('=') else {
            return out;
        };
        let key = key.trim().to_string();
        let rest = rest.trim_start();
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            out.push((key, value));
            s = &quoted[end.min(quoted.len())..];
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            out.push((key, rest[..end].trim().to_string()));
            s = &rest[end..];
        }
    }
}

/// Our own challenge, pointing clients at the gateway's token endpoint.
/// `public_base` is `scheme://host` of the mapped host; `scope` must already
/// be built from validated names.
pub fn ours(public_base: &str, service: &str, scope: Option<&str>, error: Option<&str>) -> String {
    let mut out = format!(r#"Bearer realm="{public_base}/token",service="{service}""#);
    if let Some(scope) = scope {
        out.push_str(&format!(r#",scope="{scope}""#));
    }
    if let Some(error) = error.filter(|e| e.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
    {
        out.push_str(&format!(r#",error="{error}""#));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_real_challenges() {
        let hub = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull",error="insufficient_scope""#;
        assert_eq!(
            parse(hub),
            Some(UpstreamAuth::Bearer(BearerChallenge {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/alpine:pull".into()),
                error: Some("insufficient_scope".into()),
            }))
        );
        let ghcr = r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:user/image:pull""#;
        assert!(
            matches!(parse(ghcr), Some(UpstreamAuth::Bearer(c)) if c.service.as_deref() == Some("ghcr.io"))
        );
        assert_eq!(
            parse(r#"Basic realm="Registry Realm""#),
            Some(UpstreamAuth::Basic)
        );
        assert_eq!(parse("Bearer service=x"), None);
        assert_eq!(parse("Negotiate"), None);
        let unquoted = parse("bearer realm=https://r/t, service=s").unwrap();
        assert!(
            matches!(unquoted, UpstreamAuth::Bearer(c) if c.realm == "https://r/t" && c.service.as_deref() == Some("s"))
        );
        let escaped = parse(r#"Bearer realm="https://r/t?a=\"b\"""#).unwrap();
        assert!(matches!(escaped, UpstreamAuth::Bearer(c) if c.realm == r#"https://r/t?a="b""#));
    }

    #[test]
    fn writes_ours() {
        assert_eq!(
            ours(
                "https://images.acme.dev",
                "images.acme.dev",
                Some("repository:app:pull"),
                Some("insufficient_scope")
            ),
            r#"Bearer realm="https://images.acme.dev/token",service="images.acme.dev",scope="repository:app:pull",error="insufficient_scope""#
        );
        assert_eq!(
            ours("http://h", "h", None, Some("bad\"x")),
            r#"Bearer realm="http://h/token",service="h""#
        );
    }
}
