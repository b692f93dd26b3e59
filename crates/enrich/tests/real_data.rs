//! Enrichment against real published data: the ip-location-db ASN and
//! country packages from npm, installed by tests/install-deps.sh into
//! .cache/ip-location-db (or PULLGATE_IPDB_DIR). Missing data fails the test.

use pullgate_domain::enrich::{Enricher, OrgKind};
use pullgate_enrich::{FileEnricher, Override};
use std::path::PathBuf;
use std::sync::OnceLock;

fn data_dir() -> PathBuf {
    std::env::var_os("PULLGATE_IPDB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.cache/ip-location-db")
        })
}

fn enricher() -> &'static FileEnricher {
    static LOADED: OnceLock<FileEnricher> = OnceLock::new();
    LOADED.get_or_init(|| {
        let dir = data_dir();
        let mut e = FileEnricher::new();
        for (kind, file) in [
            ("asn", "asn/asn-ipv4.csv"),
            ("asn", "asn/asn-ipv6.csv"),
            ("country", "country/geo-whois-asn-country-ipv4.csv"),
            ("country", "country/geo-whois-asn-country-ipv6.csv"),
        ] {
            let path = dir.join(file);
            let loaded = if kind == "asn" {
                e.load_asn_csv(&path)
            } else {
                e.load_country_csv(&path)
            };
            let n = loaded.unwrap_or_else(|err| {
                panic!("{err}: run tests/install-deps.sh to install the @ip-location-db packages")
            });
            assert!(n > 10_000, "{file}: only {n} ranges");
        }
        e.add_override(Override {
            asn: None,
            cidr: Some("203.0.113.0/24".into()),
            name: "Globex".into(),
            kind: None,
        })
        .unwrap();
        e
    })
}

#[test]
fn well_known_addresses() {
    let e = enricher();
    let cases = [
        ("8.8.8.8", 15169, "US", OrgKind::Cloud),
        ("1.1.1.1", 13335, "AU", OrgKind::Cloud),
        ("2001:4860:4860::8888", 15169, "US", OrgKind::Cloud),
        ("2606:4700:4700::1111", 13335, "US", OrgKind::Cloud),
    ];
    for (addr, asn, country, kind) in cases {
        let info = e.lookup(addr.parse().unwrap());
        assert_eq!(info.asn, Some(asn), "{addr}: {info:?}");
        assert_eq!(info.country.as_deref(), Some(country), "{addr}: {info:?}");
        assert_eq!(info.org_kind, Some(kind), "{addr}: {info:?}");
        assert!(info.as_org.is_some_and(|o| !o.is_empty()));
    }
    println!(
        "loaded {} ranges, {} MiB",
        e.ranges(),
        e.memory_bytes() / (1024 * 1024)
    );
}

#[test]
fn private_and_documentation_ranges_have_no_asn() {
    let e = enricher();
    assert_eq!(e.lookup("10.1.2.3".parse().unwrap()).asn, None);
    assert_eq!(e.lookup("127.0.0.1".parse().unwrap()).asn, None);
}

#[test]
fn operator_overrides_win() {
    let info = enricher().lookup("203.0.113.9".parse().unwrap());
    assert_eq!(info.org.as_deref(), Some("Globex"));
    assert_eq!(info.org_kind, Some(OrgKind::Business));
    assert_eq!(info.org_confidence, Some(1.0));
}

#[test]
fn published_provider_ranges_mark_cloud_and_ci() {
    let dir = std::env::temp_dir().join(format!("pullgate-providers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let aws = dir.join("ip-ranges.json");
    std::fs::write(&aws, r#"{"syncToken":"1","prefixes":[{"ip_prefix":"3.5.140.0/22","service":"AMAZON"},{"ip_prefix":"3.5.140.0/24","service":"EC2"}],"ipv6_prefixes":[]}"#).unwrap();
    let github = dir.join("meta.json");
    std::fs::write(&github, r#"{"actions":["4.148.0.0/16"]}"#).unwrap();
    let mut e = FileEnricher::new();
    e.load_provider_ranges(&aws).unwrap();
    e.load_provider_ranges(&github).unwrap();
    let info = e.lookup("3.5.141.7".parse().unwrap());
    assert_eq!(
        (info.cloud.as_deref(), info.org_kind),
        (Some("aws"), Some(OrgKind::Cloud))
    );
    let info = e.lookup("4.148.9.9".parse().unwrap());
    assert_eq!(
        (info.cloud.as_deref(), info.ci.as_deref()),
        (Some("azure"), Some("github-actions"))
    );
    assert_eq!(e.lookup("8.8.8.8".parse().unwrap()).cloud, None);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn maxmind_format_database() {
    let mut e = FileEnricher::new();
    let path = data_dir().join("country-mmdb/geo-whois-asn-country.mmdb");
    e.load_mmdb(&path)
        .unwrap_or_else(|err| panic!("{err}: run tests/install-deps.sh (ip-location-db MMDB)"));
    for (addr, country) in [
        ("8.8.8.8", "US"),
        ("1.1.1.1", "AU"),
        ("2001:4860:4860::8888", "US"),
    ] {
        assert_eq!(
            e.lookup(addr.parse().unwrap()).country.as_deref(),
            Some(country),
            "{addr}"
        );
    }
    assert_eq!(e.lookup("10.0.0.1".parse().unwrap()).country, None);
}
