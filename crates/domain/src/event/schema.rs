//! The event schema as data: every field in the order `Event::write_json`
//! writes it, with its JSON and SQL types. The writer, the table DDL
//! (`infra/sql/events_table.sql`, checked in pullgate-report, which
//! includes it) and the field table of `docs/events.md` are all tested
//! against this list, so a field added in one place and forgotten in
//! another fails a test rather than a query.

/// One stored field of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub json: JsonType,
    pub sql: SqlType,
}

/// A value's JSON type, as docs/events.md names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonType {
    Int,
    Float,
    String,
}

impl JsonType {
    pub fn as_str(self) -> &'static str {
        match self {
            JsonType::Int => "int",
            JsonType::Float => "float",
            JsonType::String => "string",
        }
    }
}

/// A column's type in the Athena DDL (the embedded engine maps these too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlType {
    Int,
    /// For u32 and u64 values, which `int` (32-bit signed) cannot hold.
    BigInt,
    Double,
    String,
}

impl SqlType {
    pub fn as_str(self) -> &'static str {
        match self {
            SqlType::Int => "int",
            SqlType::BigInt => "bigint",
            SqlType::Double => "double",
            SqlType::String => "string",
        }
    }
}

const fn field(name: &'static str, json: JsonType, sql: SqlType) -> Field {
    Field { name, json, sql }
}

const fn text(name: &'static str) -> Field {
    field(name, JsonType::String, SqlType::String)
}

/// Schema v1, in `write_json` order.
pub const EVENT_FIELDS: &[Field] = &[
    field("v", JsonType::Int, SqlType::Int),
    text("time"),
    text("request_id"),
    text("host"),
    text("mapping"),
    text("name"),
    text("upstream"),
    text("upstream_name"),
    text("method"),
    text("kind"),
    text("reference"),
    field("status", JsonType::Int, SqlType::Int),
    text("mode"),
    text("media_type"),
    text("client_id"),
    text("network_id"),
    text("prefix"),
    field("asn", JsonType::Int, SqlType::BigInt),
    text("as_org"),
    text("org"),
    text("org_kind"),
    field("org_confidence", JsonType::Float, SqlType::Double),
    text("country"),
    text("cloud"),
    text("runtime"),
    text("runtime_version"),
    text("os"),
    text("arch"),
    text("kernel"),
    text("ci"),
    text("ua"),
    field("duration_us", JsonType::Int, SqlType::BigInt),
    text("failover"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, SCHEMA_VERSION};
    use serde::de::{Deserializer, MapAccess, Visitor};

    /// A JSON object's members in the order they were written (serde_json's
    /// own map sorts them).
    struct Members(Vec<(String, serde_json::Value)>);

    impl<'de> serde::Deserialize<'de> for Members {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct InOrder;
            impl<'de> Visitor<'de> for InOrder {
                type Value = Members;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                    let mut members = Vec::new();
                    while let Some(member) = map.next_entry()? {
                        members.push(member);
                    }
                    Ok(Members(members))
                }
            }
            d.deserialize_map(InOrder)
        }
    }

    /// Every field present.
    fn full() -> Event<'static> {
        let s = |text: &'static str| Some(text.into());
        Event {
            v: SCHEMA_VERSION,
            time: "2026-11-25T03:09:38.196Z".into(),
            request_id: "69719277f2e9-0000000000".into(),
            host: "images.acme.dev".into(),
            mapping: s("images.acme.dev/app"),
            name: s("app"),
            upstream: s("https://registry-1.docker.io"),
            upstream_name: s("acme/app"),
            method: "GET".into(),
            kind: "manifest".into(),
            reference: s("1.4.2"),
            status: 307,
            mode: s("proxy"),
            media_type: s("application/vnd.oci.image.index.v1+json"),
            client_id: s("4b68bfd02d79b779a80c170fe408cb3a"),
            network_id: s("e0fc56933f0d7888aa26d581209b2d7b"),
            prefix: s("198.51.100.0/24"),
            asn: Some(64_500),
            as_org: s("ACME-AS"),
            org: s("Acme"),
            org_kind: s("business"),
            org_confidence: Some(0.7),
            country: s("DE"),
            cloud: s("aws"),
            runtime: "docker".into(),
            runtime_version: s("24.0.7"),
            os: s("linux"),
            arch: s("amd64"),
            kernel: s("wsl"),
            ci: s("github-actions"),
            ua: "docker/24.0.7".into(),
            duration_us: 12,
            failover: s("auto"),
        }
    }

    #[test]
    fn write_json_writes_the_schema_fields_in_order_with_their_types() {
        let mut line = Vec::new();
        full().write_json(&mut line);
        let Members(members) = serde_json::from_slice(&line).unwrap();
        let written: Vec<&str> = members.iter().map(|(name, _)| name.as_str()).collect();
        let declared: Vec<&str> = EVENT_FIELDS.iter().map(|f| f.name).collect();
        assert_eq!(written, declared);
        for ((name, value), field) in members.iter().zip(EVENT_FIELDS) {
            let typed = match field.json {
                JsonType::Int => value.is_u64(),
                JsonType::Float => value.is_f64(),
                JsonType::String => value.is_string(),
            };
            assert!(typed, "{name}: {value} is not {:?}", field.json);
        }
    }

    #[test]
    fn field_names_are_unique() {
        let mut names: Vec<&str> = EVENT_FIELDS.iter().map(|f| f.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), EVENT_FIELDS.len());
    }
}
