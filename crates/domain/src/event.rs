//! The analytics event: one per request the gateway answers, schema v1
//! (documented in docs/events.md). Built from what the request was and
//! what we answered, enriched before it is written, never holding the raw
//! client address. Its stored fields, with their types, are listed once in
//! [`EVENT_FIELDS`], which the writer, the table DDL and the docs are
//! tested against.

use crate::text::{self, Escape};
use crate::time::DayText;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

mod schema;
pub use schema::{Field, JsonType, SqlType, EVENT_FIELDS};

pub const SCHEMA_VERSION: u32 = 1;
/// User agents are kept this long at most.
pub const MAX_USER_AGENT: usize = 256;

/// An event borrows what the request and the caller's [`EventScratch`]
/// hold, so building one allocates nothing; read back (replay, reports,
/// tests) its fields are owned.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Event<'a> {
    /// Schema version.
    pub v: u32,
    /// RFC 3339 UTC, milliseconds.
    pub time: Cow<'a, str>,
    pub request_id: Cow<'a, str>,
    pub host: Cow<'a, str>,
    /// Mapping id (`host/prefix`), if a mapping matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mapping: Option<Cow<'a, str>>,
    /// Public repository name (or file path for `http` mappings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Cow<'a, str>>,
    /// Upstream registry base URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_name: Option<Cow<'a, str>>,
    pub method: Cow<'a, str>,
    /// ping, token, manifest, blob, tags, referrers, file, or `invalid`.
    pub kind: Cow<'a, str>,
    /// Tag or digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<Cow<'a, str>>,
    pub status: u16,
    /// redirect or proxy (absent when refused before a decision).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<Cow<'a, str>>,
    /// Content type of a proxied answer (manifest media type).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_type: Option<Cow<'a, str>>,
    /// HMAC of address and user agent; absent when DNT / Sec-GPC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<Cow<'a, str>>,
    /// HMAC of the address alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_id: Option<Cow<'a, str>>,
    /// /24 (IPv4) or /48 (IPv6).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_org: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org: Option<Cow<'a, str>>,
    /// business, cloud, isp, education
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_kind: Option<Cow<'a, str>>,
    /// 0..1: how sure the organization attribution is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_confidence: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<Cow<'a, str>>,
    /// Cloud provider whose published ranges hold the address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud: Option<Cow<'a, str>>,
    pub runtime: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime_version: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arch: Option<Cow<'a, str>>,
    /// Kernel hints: `wsl` for Docker Desktop / WSL kernels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel: Option<Cow<'a, str>>,
    /// CI provider, from the user agent or the address ranges.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ci: Option<Cow<'a, str>>,
    /// User agent, truncated to MAX_USER_AGENT bytes.
    pub ua: Cow<'a, str>,
    /// Time spent answering, microseconds.
    pub duration_us: u64,
    /// `auto`: served by the mapping's fallback because the primary fails;
    /// `manual`: the operator marked the primary down.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failover: Option<Cow<'a, str>>,
}

impl Event<'_> {
    /// The UTC day the event belongs to, its `dt=` partition: the date of
    /// its time. None when the time is not RFC 3339.
    pub fn day(&self) -> Option<DayText> {
        DayText::of_rfc3339(&self.time)
    }

    /// Appends the event as one line of JSON (no newline): byte for byte
    /// what serde_json writes for it (a test holds the two together), but
    /// keys are written as constants and values that need no escaping (hex
    /// ids, times, validated names: nearly all of them) are copied as they
    /// are. This runs once per request.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"v\":");
        let mut json = JsonFields { out };
        json.digits(self.v.into());
        json.str(text_key!("time"), &self.time);
        json.str(text_key!("request_id"), &self.request_id);
        json.str(text_key!("host"), &self.host);
        json.opt_str(text_key!("mapping"), self.mapping.as_deref());
        json.opt_str(text_key!("name"), self.name.as_deref());
        json.opt_str(text_key!("upstream"), self.upstream.as_deref());
        json.opt_str(text_key!("upstream_name"), self.upstream_name.as_deref());
        json.str(text_key!("method"), &self.method);
        json.str(text_key!("kind"), &self.kind);
        json.opt_str(text_key!("reference"), self.reference.as_deref());
        json.uint(key!("status"), self.status.into());
        json.opt_str(text_key!("mode"), self.mode.as_deref());
        json.opt_str(text_key!("media_type"), self.media_type.as_deref());
        json.opt_str(text_key!("client_id"), self.client_id.as_deref());
        json.opt_str(text_key!("network_id"), self.network_id.as_deref());
        json.opt_str(text_key!("prefix"), self.prefix.as_deref());
        if let Some(value) = self.asn {
            json.uint(key!("asn"), value.into());
        }
        json.opt_str(text_key!("as_org"), self.as_org.as_deref());
        json.opt_str(text_key!("org"), self.org.as_deref());
        json.opt_str(text_key!("org_kind"), self.org_kind.as_deref());
        if let Some(value) = self.org_confidence {
            json.float(key!("org_confidence"), value);
        }
        json.opt_str(text_key!("country"), self.country.as_deref());
        json.opt_str(text_key!("cloud"), self.cloud.as_deref());
        json.str(text_key!("runtime"), &self.runtime);
        json.opt_str(
            text_key!("runtime_version"),
            self.runtime_version.as_deref(),
        );
        json.opt_str(text_key!("os"), self.os.as_deref());
        json.opt_str(text_key!("arch"), self.arch.as_deref());
        json.opt_str(text_key!("kernel"), self.kernel.as_deref());
        json.opt_str(text_key!("ci"), self.ci.as_deref());
        json.str(text_key!("ua"), &self.ua);
        json.uint(key!("duration_us"), self.duration_us);
        json.opt_str(text_key!("failover"), self.failover.as_deref());
        json.out.push(b'}');
    }
}

/// A field's `,"name":` prefix as one constant, so that writing it is one
/// copy rather than three (an event has up to 35 fields, and every request
/// writes one).
macro_rules! key {
    ($name:literal) => {
        concat!(",\"", $name, "\":")
    };
}
use key;

/// A string field's prefix, the value's opening quote included: one copy
/// fewer per string (most fields are strings).
macro_rules! text_key {
    ($name:literal) => {
        concat!(",\"", $name, "\":\"")
    };
}
use text_key;

/// Writes `,"key":value` pairs after the first; `key` is the whole prefix
/// (`key!`, `text_key!` for strings). Strings are escaped exactly as
/// serde_json escapes them.
struct JsonFields<'o> {
    out: &'o mut Vec<u8>,
}

impl JsonFields<'_> {
    fn key(&mut self, key: &str) {
        self.out.extend_from_slice(key.as_bytes());
    }

    /// `key` ends with the opening quote (`text_key!`).
    fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        text::write_escaped(self.out, value, Escape::Json);
        self.out.push(b'"');
    }

    fn opt_str(&mut self, key: &str, value: Option<&str>) {
        if let Some(value) = value {
            self.str(key, value);
        }
    }

    fn uint(&mut self, key: &str, value: u64) {
        self.key(key);
        self.digits(value);
    }

    fn digits(&mut self, value: u64) {
        self.out
            .extend_from_slice(text::decimal(value, 0).as_bytes());
    }

    fn float(&mut self, key: &str, value: f32) {
        self.key(key);
        // serde_json's shortest round-trip form (ryu): one definition of
        // how floats are written, and rare (only some events have one).
        let _ = serde_json::to_writer(&mut *self.out, &value);
    }
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
mod tests;

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
    pub failover: Option<&'static str>,
}

/// What an event borrows that the request does not hold: the formatted
/// time, the network prefix, the client ids and the enrichment. The caller
/// keeps it for as long as the event lives (one per request, on the stack).
#[derive(Debug, Default)]
pub struct EventScratch {
    time: crate::inline_str::InlineStr<32>,
    prefix: crate::privacy::PrefixText,
    ids: Option<crate::privacy::ClientIds>,
    network: crate::enrich::NetworkInfo,
}

/// Builds the stored event: user agent parsed, address hashed, truncated
/// and enriched, and then dropped.
pub fn build<'a>(
    facts: &RequestFacts<'a>,
    scratch: &'a mut EventScratch,
    hasher: &crate::privacy::ClientHasher,
    enricher: &dyn crate::enrich::Enricher,
) -> Event<'a> {
    let ua = crate::useragent::UserAgent::parse(facts.user_agent);
    scratch.time = facts.time.rfc3339();
    if let Some(addr) = facts.addr {
        scratch.ids = (!crate::privacy::opted_out(facts.dnt, facts.gpc))
            .then(|| hasher.ids(addr, facts.user_agent, facts.time.day_number()));
        scratch.prefix = crate::privacy::network_prefix(addr);
        scratch.network = enricher.lookup(addr);
    }
    let scratch: &'a EventScratch = scratch;
    let text = |s: Option<&'a str>| s.map(Cow::Borrowed);
    let shared = |s: &'a Option<std::sync::Arc<str>>| s.as_deref().map(Cow::Borrowed);
    let network = &scratch.network;
    let known_addr = facts.addr.is_some();
    Event {
        v: SCHEMA_VERSION,
        time: Cow::Borrowed(scratch.time.as_str()),
        request_id: Cow::Borrowed(facts.request_id),
        host: Cow::Borrowed(facts.host),
        mapping: text(facts.mapping),
        name: text(facts.name),
        upstream: text(facts.upstream),
        upstream_name: text(facts.upstream_name),
        method: Cow::Borrowed(facts.method),
        kind: Cow::Borrowed(facts.kind.map_or("invalid", |k| k.as_str())),
        reference: text(facts.reference),
        status: facts.status,
        mode: text(facts.mode),
        media_type: text(facts.media_type),
        client_id: scratch
            .ids
            .as_ref()
            .map(|ids| Cow::Borrowed(ids.client_id.as_str())),
        network_id: scratch
            .ids
            .as_ref()
            .map(|ids| Cow::Borrowed(ids.network_id.as_str())),
        prefix: known_addr.then(|| Cow::Borrowed(scratch.prefix.as_str())),
        asn: network.asn,
        as_org: shared(&network.as_org),
        org: shared(&network.org),
        org_kind: network.org_kind.map(|k| Cow::Borrowed(k.as_str())),
        org_confidence: network.org_confidence,
        country: shared(&network.country),
        cloud: shared(&network.cloud),
        runtime: Cow::Borrowed(ua.runtime),
        runtime_version: text(ua.version),
        os: text(ua.client_os().or(ua.os)),
        arch: text(ua.arch),
        kernel: ua.is_wsl().then_some(Cow::Borrowed("wsl")),
        ci: ua.ci.map(Cow::Borrowed).or_else(|| shared(&network.ci)),
        ua: Cow::Borrowed(truncate(facts.user_agent, MAX_USER_AGENT)),
        duration_us: facts.duration_us,
        failover: text(facts.failover),
    }
}
