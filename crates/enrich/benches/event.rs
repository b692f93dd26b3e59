//! Cost of building, enriching and serializing one event with the real
//! ip-location-db ASN and country data loaded (target: under 5 µs).
//!
//!   cargo bench -p pullgate-enrich --bench event
//!
//! "new client" cycles through 100,000 addresses (more than the per-thread
//! id cache holds, so both HMACs run every time); "repeat client" is the
//! same client again, as the requests of one pull are.

use criterion::{criterion_group, criterion_main, Criterion};
use pullgate_domain::event::{self, EventScratch, RequestFacts};
use pullgate_domain::privacy::{ClientHasher, Rotation};
use pullgate_domain::route::EndpointKind;
use pullgate_domain::time::UtcMillis;
use pullgate_enrich::FileEnricher;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

const UA: &str = "docker/24.0.7 go/go1.20.10 git-commit/311b9ff kernel/6.1.0-13-amd64 os/linux arch/amd64 UpstreamClient(Docker-Client/24.0.7 \\(linux\\))";

fn load() -> FileEnricher {
    let dir = std::env::var_os("PULLGATE_IPDB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.cache/ip-location-db")
        });
    let mut e = FileEnricher::new();
    let started = std::time::Instant::now();
    for f in ["asn/asn-ipv4.csv", "asn/asn-ipv6.csv"] {
        e.load_asn_csv(&dir.join(f))
            .expect("run tests/install-deps.sh for the ip-location-db data");
    }
    for f in [
        "country/geo-whois-asn-country-ipv4.csv",
        "country/geo-whois-asn-country-ipv6.csv",
    ] {
        e.load_country_csv(&dir.join(f))
            .expect("run tests/install-deps.sh for the ip-location-db data");
    }
    eprintln!(
        "enrichment data: {} ranges, {:.1} MiB in tables, loaded in {:.2} s",
        e.ranges(),
        e.memory_bytes() as f64 / (1024.0 * 1024.0),
        started.elapsed().as_secs_f64()
    );
    e
}

fn facts(addr: IpAddr) -> RequestFacts<'static> {
    RequestFacts {
        time: UtcMillis::now(),
        request_id: "5f2c9d0e1a7b-0000000042",
        host: "images.acme.dev",
        method: "GET",
        user_agent: UA,
        addr: Some(addr),
        kind: Some(EndpointKind::Manifest),
        mapping: Some("images.acme.dev/app"),
        name: Some("app"),
        upstream: Some("https://registry-1.docker.io"),
        upstream_name: Some("acme/app"),
        reference: Some("1.4.2"),
        status: 307,
        mode: Some("redirect"),
        duration_us: 12,
        ..RequestFacts::default()
    }
}

fn bench(c: &mut Criterion) {
    let enricher = load();
    let hasher = ClientHasher::new(b"benchmark-key", Rotation::Month);
    // Public addresses spread over the IPv4 space.
    let addrs: Vec<IpAddr> = (0..100_000u32)
        .map(|i| {
            IpAddr::V4(Ipv4Addr::from(
                0x0800_0000u32.wrapping_add(i.wrapping_mul(40_503)),
            ))
        })
        .collect();
    let mut i = 0;
    c.bench_function("event: new client (build + enrich + 2 HMAC)", |b| {
        b.iter(|| {
            i = (i + 1) % addrs.len();
            let mut scratch = EventScratch::default();
            let event = event::build(&facts(addrs[i]), &mut scratch, &hasher, &enricher);
            black_box(event.client_id.is_some())
        })
    });
    c.bench_function("event: repeat client (build + enrich)", |b| {
        b.iter(|| {
            let mut scratch = EventScratch::default();
            let event = event::build(&facts(addrs[7]), &mut scratch, &hasher, &enricher);
            black_box(event.client_id.is_some())
        })
    });
    c.bench_function("event: repeat client, serialized to JSON", |b| {
        let mut out = Vec::with_capacity(1024);
        b.iter(|| {
            out.clear();
            let mut scratch = EventScratch::default();
            let e = event::build(&facts(addrs[7]), &mut scratch, &hasher, &enricher);
            e.write_json(&mut out);
            black_box(out.len())
        })
    });
    // What bench/redirect.sh's requests cost: wrk sends no user agent, the
    // address is loopback, and the gateway there runs without enrichment.
    c.bench_function("event: bench/redirect.sh's request, serialized", |b| {
        let mut out = Vec::with_capacity(1024);
        let loopback = RequestFacts {
            user_agent: "",
            addr: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            ..facts(addrs[7])
        };
        b.iter(|| {
            out.clear();
            let mut scratch = EventScratch::default();
            let e = event::build(
                &loopback,
                &mut scratch,
                &hasher,
                &pullgate_domain::enrich::NoEnrichment,
            );
            e.write_json(&mut out);
            black_box(out.len())
        })
    });
    // A user agent with quotes and a control byte: the escaping path that
    // a few clients' events take (everything else is copied unescaped).
    c.bench_function("event: repeat client, escaped user agent, serialized", |b| {
        let mut out = Vec::with_capacity(1024);
        let hostile = RequestFacts {
            user_agent: "docker/24.0.7 \"quoted\" kernel/6.1.0\t os/linux arch/amd64 \\ UpstreamClient(Docker-Client/24.0.7 \\(linux\\))",
            ..facts(addrs[7])
        };
        b.iter(|| {
            out.clear();
            let mut scratch = EventScratch::default();
            let e = event::build(&hostile, &mut scratch, &hasher, &enricher);
            e.write_json(&mut out);
            black_box(out.len())
        })
    });
    c.bench_function("enrichment lookup alone", |b| {
        b.iter(|| {
            i = (i + 1) % addrs.len();
            black_box(pullgate_domain::enrich::Enricher::lookup(
                &enricher, addrs[i],
            ))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
