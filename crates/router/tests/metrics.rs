//! What the router counts, read back from a `DebuggingRecorder` set for
//! the test's thread (tokio tests run on one thread, the handler's futures
//! included): each request moves `pullgate_requests_total` by exactly one,
//! with its kind, status and path; upstream calls are timed and their
//! failures counted by reason. And the admin paths (`/metrics`, `/healthz`,
//! `/readyz`) are no registry paths: the public router refuses them.

// Shared with proxy.rs and credentials.rs (its own allow covers the
// parts this file does not use).
mod support;

use axum::body::Body;
use http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use pullgate_domain::mapping::MappingTable;
use pullgate_router::{router, Gateway, GatewayConfig};
use std::collections::BTreeMap;
use support::{TokenAnswer, Upstream, REPOSITORY, TOKEN};
use tower::ServiceExt;

const MAPPINGS: &str = r#"
[[mappings]]
host = "images.acme.dev"
name = "app"
upstream = "docker.io/acme/app"
mode = "redirect"

[[mappings]]
host = "images.acme.dev"
name = "tools"
upstream = "ghcr.io/acme/tools"
mode = "redirect"
"#;

/// Every series recorded since the last snapshot (a snapshot drains what
/// it reads): `name{label=value,...}` (labels sorted) → value.
fn recorded(snapshotter: &Snapshotter) -> BTreeMap<String, DebugValue> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let mut labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            labels.sort();
            (format!("{}{{{}}}", key.name(), labels.join(",")), value)
        })
        .collect()
}

/// The counters of a snapshot whose series starts with `prefix`.
fn counters(recorded: &BTreeMap<String, DebugValue>, prefix: &str) -> BTreeMap<String, u64> {
    recorded
        .iter()
        .filter(|(series, _)| series.starts_with(prefix))
        .map(|(series, value)| match value {
            DebugValue::Counter(n) => (series.clone(), *n),
            other => panic!("{series} is no counter: {other:?}"),
        })
        .collect()
}

async fn send(app: &axum::Router, method: &str, host: &str, path: &str) -> (StatusCode, String) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, host)
        .header(header::USER_AGENT, "containerd/1.7.13")
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn each_request_is_counted_once_with_its_kind_status_and_path() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let table = MappingTable::from_toml(MAPPINGS).unwrap();
    let app = router(Gateway::new(table, GatewayConfig::default()).unwrap());

    let host = "images.acme.dev";
    let asked = [
        ("GET", host, "/v2/app/manifests/1.0", StatusCode::TEMPORARY_REDIRECT),
        ("HEAD", host, "/v2/app/manifests/1.0", StatusCode::TEMPORARY_REDIRECT),
        ("GET", host, "/v2/tools/blobs/sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", StatusCode::TEMPORARY_REDIRECT),
        ("GET", host, "/v2/unmapped/manifests/1.0", StatusCode::NOT_FOUND),
        // Two registries: the ping is answered here, neither redirected nor proxied.
        ("GET", host, "/v2/", StatusCode::OK),
        ("GET", "unknown.example", "/v2/app/manifests/1.0", StatusCode::NOT_FOUND),
        // Refused before any route parsed: kind `other`.
        ("PUT", host, "/v2/app/manifests/1.0", StatusCode::METHOD_NOT_ALLOWED),
        ("GET", host, "/v2/_catalog", StatusCode::FORBIDDEN),
    ];
    for (method, host, path, status) in asked {
        assert_eq!(
            send(&app, method, host, path).await.0,
            status,
            "{method} {path}"
        );
    }
    let expected = [
        ("blob", "redirect", "307", 1),
        ("manifest", "local", "404", 2),
        ("manifest", "redirect", "307", 2),
        ("other", "local", "403", 1),
        ("other", "local", "405", 1),
        ("ping", "local", "200", 1),
    ]
    .map(|(kind, path, status, n)| {
        (
            format!("pullgate_requests_total{{kind={kind},path={path},status={status}}}"),
            n,
        )
    });
    assert_eq!(
        counters(&recorded(&snapshotter), "pullgate_requests_total"),
        BTreeMap::from(expected)
    );

    // A snapshot takes what was counted since the last one: once more, and
    // the kept handle moves by exactly one, no other.
    send(&app, "GET", host, "/v2/app/manifests/1.0").await;
    let moved: Vec<_> = counters(&recorded(&snapshotter), "pullgate_requests_total")
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(
        moved,
        [(
            "pullgate_requests_total{kind=manifest,path=redirect,status=307}".to_string(),
            1
        )]
    );
}

#[tokio::test]
async fn the_admin_paths_are_no_registry_paths_on_the_public_router() {
    let recorder = DebuggingRecorder::new();
    let _local = metrics::set_default_local_recorder(&recorder);
    let table = MappingTable::from_toml(MAPPINGS).unwrap();
    let app = router(Gateway::new(table, GatewayConfig::default()).unwrap());
    // Something to expose, had the router exposed anything.
    send(&app, "GET", "images.acme.dev", "/v2/app/manifests/1.0").await;
    for path in ["/metrics", "/healthz", "/readyz"] {
        for host in ["images.acme.dev", "unknown.example"] {
            let (status, body) = send(&app, "GET", host, path).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{host}{path}");
            assert!(body.contains("NAME_UNKNOWN"), "{host}{path}: {body}");
            assert!(
                !body.contains("pullgate_") && !body.contains("# TYPE") && body != "ok",
                "{host}{path}: {body}"
            );
        }
    }
}

fn proxy_gateway(base: &str) -> axum::Router {
    let mappings = format!(
        "[[mappings]]\nhost = \"images.test\"\nname = \"app\"\nupstream = \"{base}/{REPOSITORY}\"\nmode = \"proxy\"\n"
    );
    let table = MappingTable::from_toml(&mappings).unwrap();
    let config = GatewayConfig {
        public_scheme: "http",
        ..GatewayConfig::default()
    };
    router(Gateway::new(table, config).unwrap())
}

fn upstream_calls(recorded: &BTreeMap<String, DebugValue>) -> usize {
    match recorded.get("pullgate_upstream_request_duration_seconds{}") {
        Some(DebugValue::Histogram(samples)) => samples.len(),
        other => panic!("no upstream histogram: {other:?}"),
    }
}

#[tokio::test]
async fn upstream_calls_are_timed_and_their_failures_counted_by_reason() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);

    // A relayed manifest by tag, not cached yet: two upstream calls (a HEAD
    // resolves the tag, a GET fetches the body), no failure.
    let upstream = Upstream::start(TokenAnswer::Token).await;
    let app = proxy_gateway(&upstream.base);
    let request = Request::builder()
        .uri("/v2/app/manifests/v1")
        .header(header::HOST, "images.test")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(upstream_calls(&recorded(&snapshotter)), 2);

    // A token answer over the limit: the call is timed, the body refused.
    let oversized = Upstream::start(TokenAnswer::Sized(1024 * 1024 + 1)).await;
    let app = proxy_gateway(&oversized.base);
    let (status, _) = send(
        &app,
        "GET",
        "images.test",
        "/token?scope=repository:app:pull",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);

    // Nobody listening: a connect failure.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let app = proxy_gateway(&base);
    let (status, _) = send(&app, "GET", "images.test", "/v2/app/manifests/v1").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);

    let recorded = recorded(&snapshotter);
    let errors = counters(&recorded, "pullgate_upstream_errors_total");
    let nonzero: Vec<_> = errors.iter().filter(|(_, n)| **n > 0).collect();
    assert_eq!(
        nonzero,
        [
            (
                &"pullgate_upstream_errors_total{reason=connect}".to_string(),
                &1
            ),
            (
                &"pullgate_upstream_errors_total{reason=too_large}".to_string(),
                &1
            ),
        ]
    );
    // Every reason is there from zero, so a rate never starts from nothing.
    assert_eq!(errors.len(), 7, "{errors:?}");
    // Since the manifest: discovery and token request, the failed connect.
    assert_eq!(upstream_calls(&recorded), 3);
}
