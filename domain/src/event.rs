//! The analytics event: one per request the gateway answers, schema v1
//! (documented in docs/events.md). Built from what the request was and
//! what we answered, enriched before it is written, never holding the raw
//! client address.

use serde::{Deserialize, Serialize};

pub const SCHEMA_VERSION: u32 = 1;
/// User agents are kept this long at most.
pub const MAX_USER_AGENT: usize = 256;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Schema version.
    pub v: u32,
    /// RFC 3339 UTC, milliseconds.
    pub time: String,
    pub request_id: String,
    pub host: String,
    /// Mapping id (`host/prefix`), if a mapping matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mapping: Option<String>,
    /// Public repository name (or file path for `http` mappings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Upstream registry base URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_name: Option<String>,
    pub method: String,
    /// ping, token, manifest, blob, tags, referrers, file, or `invalid`.
    pub kind: String,
    /// Tag or digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    pub status: u16,
    /// redirect or proxy (absent when refused before a decision).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Content type of a proxied answer (manifest media type).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// HMAC of address and user agent; absent when DNT / Sec-GPC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// HMAC of the address alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_id: Option<String>,
    /// /24 (IPv4) or /48 (IPv6).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_org: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// business, cloud, isp, education
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_kind: Option<String>,
    /// 0..1: how sure the organization attribution is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_confidence: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// Cloud provider whose published ranges hold the address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud: Option<String>,
    pub runtime: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// Kernel hints: `wsl` for Docker Desktop / WSL kernels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
    /// CI provider, from the user agent or the address ranges.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ci: Option<String>,
    /// User agent, truncated to MAX_USER_AGENT bytes.
    pub ua: String,
    /// Time spent answering, microseconds.
    pub duration_us: u64,
}

/// Truncates at a character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_omits_absent_fields() {
        let e = Event {
            v: SCHEMA_VERSION,
            kind: "manifest".into(),
            runtime: "docker".into(),
            ..Event::default()
        };
        let json = serde_json::to_string(&e).unwrap();
        assert!(!json.contains("client_id"));
        assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), e);
        assert_eq!(truncate("héllo", 2), "h");
    }
}

/// What the gateway knows about one answered request, borrowed from it.
#[derive(Debug, Clone, Default)]
pub struct RequestFacts<'a> {
    pub time: crate::time::UtcMillis,
    pub request_id: &'a str,
    pub host: &'a str,
    pub method: &'a str,
    pub user_agent: &'a str,
    pub addr: Option<std::net::IpAddr>,
    pub dnt: Option<&'a str>,
    pub gpc: Option<&'a str>,
    pub kind: Option<crate::route::EndpointKind>,
    pub mapping: Option<&'a str>,
    pub name: Option<&'a str>,
    pub upstream: Option<&'a str>,
    pub upstream_name: Option<&'a str>,
    pub reference: Option<&'a str>,
    pub status: u16,
    pub mode: Option<&'static str>,
    pub media_type: Option<&'a str>,
    pub duration_us: u64,
}

/// Builds the stored event: user agent parsed, address hashed, truncated
/// and enriched, and then dropped.
pub fn build(
    facts: &RequestFacts<'_>,
    hasher: &crate::privacy::ClientHasher,
    enricher: &dyn crate::enrich::Enricher,
) -> Event {
    let ua = crate::useragent::UserAgent::parse(facts.user_agent);
    let owned = |s: Option<&str>| s.map(str::to_string);
    let mut event = Event {
        v: SCHEMA_VERSION,
        time: facts.time.rfc3339(),
        request_id: facts.request_id.to_string(),
        host: facts.host.to_string(),
        mapping: owned(facts.mapping),
        name: owned(facts.name),
        upstream: owned(facts.upstream),
        upstream_name: owned(facts.upstream_name),
        method: facts.method.to_string(),
        kind: facts.kind.map_or("invalid", |k| k.as_str()).to_string(),
        reference: owned(facts.reference),
        status: facts.status,
        mode: facts.mode.map(str::to_string),
        media_type: owned(facts.media_type),
        runtime: ua.runtime.to_string(),
        runtime_version: owned(ua.version),
        os: owned(ua.client_os().or(ua.os)),
        arch: owned(ua.arch),
        kernel: ua.is_wsl().then(|| "wsl".to_string()),
        ci: ua.ci.map(str::to_string),
        ua: truncate(facts.user_agent, MAX_USER_AGENT).to_string(),
        duration_us: facts.duration_us,
        ..Event::default()
    };
    if let Some(addr) = facts.addr {
        if !crate::privacy::opted_out(facts.dnt, facts.gpc) {
            let ids = hasher.ids(addr, facts.user_agent, facts.time.day_number());
            event.client_id = Some(ids.client_id);
            event.network_id = Some(ids.network_id);
        }
        event.prefix = Some(crate::privacy::network_prefix(addr));
        let info = enricher.lookup(addr);
        event.asn = info.asn;
        event.as_org = info.as_org.as_deref().map(str::to_string);
        event.country = info.country.as_deref().map(str::to_string);
        event.org = info.org.as_deref().map(str::to_string);
        event.org_kind = info.org_kind.map(|k| k.as_str().to_string());
        event.org_confidence = info.org_confidence;
        event.cloud = info.cloud.as_deref().map(str::to_string);
        if event.ci.is_none() {
            event.ci = info.ci.as_deref().map(str::to_string);
        }
    }
    event
}

#[cfg(test)]
mod build_tests {
    use super::*;
    use crate::enrich::NoEnrichment;
    use crate::privacy::{ClientHasher, Rotation};

    #[test]
    fn raw_address_never_reaches_the_event() {
        let facts = RequestFacts {
            request_id: "r1",
            host: "images.acme.dev",
            method: "GET",
            user_agent: "docker/24.0.7 kernel/5.15.1-microsoft-standard-WSL2 os/linux arch/amd64 UpstreamClient(Docker-Client/24.0.7 \\(windows\\))",
            addr: Some("198.51.100.23".parse().unwrap()),
            kind: Some(crate::route::EndpointKind::Manifest),
            status: 307,
            mode: Some("redirect"),
            ..RequestFacts::default()
        };
        let hasher = ClientHasher::new(b"k", Rotation::Day);
        let e = build(&facts, &hasher, &NoEnrichment);
        let json = serde_json::to_string(&e).unwrap();
        assert!(!json.contains("198.51.100.23"), "{json}");
        assert_eq!(e.prefix.as_deref(), Some("198.51.100.0/24"));
        assert_eq!(
            (e.runtime.as_str(), e.runtime_version.as_deref()),
            ("docker", Some("24.0.7"))
        );
        assert_eq!(
            (e.os.as_deref(), e.arch.as_deref(), e.kernel.as_deref()),
            (Some("windows"), Some("amd64"), Some("wsl"))
        );
        assert!(e.client_id.is_some());
        let opted = build(
            &RequestFacts {
                dnt: Some("1"),
                ..facts.clone()
            },
            &hasher,
            &NoEnrichment,
        );
        assert!(opted.client_id.is_none() && opted.network_id.is_none());
    }
}
