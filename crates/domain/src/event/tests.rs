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

#[test]
fn the_day_is_the_date_of_the_time() {
    let at = |time: &'static str| Event {
        time: time.into(),
        ..Event::default()
    };
    let day = at("2026-11-22T23:59:59.999Z").day();
    assert_eq!(
        day.map(|d| d.as_str().to_string()).as_deref(),
        Some("2026-11-22")
    );
    assert_eq!(at("").day(), None);
    assert_eq!(at("10000-01-01T00:00:00.000Z").day(), None);
}

/// Events built from request facts: what reaches storage.
mod build {
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
        let mut scratch = EventScratch::default();
        let e = build(&facts, &mut scratch, &hasher, &NoEnrichment);
        let json = serde_json::to_string(&e).unwrap();
        assert!(!json.contains("198.51.100.23"), "{json}");
        assert_eq!(e.prefix.as_deref(), Some("198.51.100.0/24"));
        assert_eq!(
            (&*e.runtime, e.runtime_version.as_deref()),
            ("docker", Some("24.0.7"))
        );
        assert_eq!(
            (e.os.as_deref(), e.arch.as_deref(), e.kernel.as_deref()),
            (Some("windows"), Some("amd64"), Some("wsl"))
        );
        assert!(e.client_id.is_some());
        let mut scratch = EventScratch::default();
        let opted = build(
            &RequestFacts {
                dnt: Some("1"),
                ..facts.clone()
            },
            &mut scratch,
            &hasher,
            &NoEnrichment,
        );
        assert!(opted.client_id.is_none() && opted.network_id.is_none());
    }

    fn written(event: &Event<'_>) -> String {
        let mut out = Vec::new();
        event.write_json(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_direct_writer_writes_what_serde_writes() {
        let full = Event {
            v: SCHEMA_VERSION,
            time: "2026-11-25T03:09:38.196Z".into(),
            request_id: "69719277f2e9-0000000000".into(),
            host: "images.acme.dev".into(),
            mapping: Some("images.acme.dev/app".into()),
            name: Some("app".into()),
            upstream: Some("https://registry-1.docker.io".into()),
            upstream_name: Some("acme/app".into()),
            method: "GET".into(),
            kind: "manifest".into(),
            reference: Some("sha256:abc".into()),
            status: 307,
            mode: Some("proxy".into()),
            media_type: Some("application/vnd.oci.image.index.v1+json".into()),
            client_id: Some("4b68bfd02d79b779a80c170fe408cb3a".into()),
            network_id: Some("e0fc56933f0d7888aa26d581209b2d7b".into()),
            prefix: Some("2001:db8:1234::/48".into()),
            asn: Some(4_294_967_295),
            as_org: Some("Ünïcode \"Quoted\" AS\\Org\u{7f}".into()),
            org: Some("Acme\nCorp\t".into()),
            org_kind: Some("business".into()),
            org_confidence: Some(0.7),
            country: Some("DE".into()),
            cloud: Some("aws".into()),
            runtime: "docker".into(),
            runtime_version: Some("24.0.7".into()),
            os: Some("windows".into()),
            arch: Some("amd64".into()),
            kernel: Some("wsl".into()),
            ci: Some("github-actions".into()),
            ua: "docker/24.0.7 UpstreamClient(Docker-Client/24.0.7 \\(windows\\)) \u{1}".into(),
            duration_us: u64::MAX,
            failover: Some("auto".into()),
        };
        assert_eq!(written(&full), serde_json::to_string(&full).unwrap());
        let sparse = Event {
            v: SCHEMA_VERSION,
            ..Event::default()
        };
        assert_eq!(written(&sparse), serde_json::to_string(&sparse).unwrap());
        for confidence in [0.0f32, 1.0, 0.25, 0.1, 1e-7] {
            let e = Event {
                org_confidence: Some(confidence),
                ..sparse.clone()
            };
            assert_eq!(written(&e), serde_json::to_string(&e).unwrap());
        }
    }

    proptest::proptest! {
        #[test]
        fn the_direct_writer_agrees_on_any_text(text in "\\PC*|[\\x00-\\x7f]{0,40}", n in proptest::num::u64::ANY) {
            let e = Event {
                v: SCHEMA_VERSION,
                host: text.clone().into(),
                ua: text.clone().into(),
                org: Some(text.into()),
                duration_us: n,
                ..Event::default()
            };
            proptest::prop_assert_eq!(written(&e), serde_json::to_string(&e).unwrap());
        }
    }
}
