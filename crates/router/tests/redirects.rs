//! Table tests of the router in redirect mode and of every refusal: what a
//! client sends, what it gets back. No network: redirects are built from the
//! mapping alone, refusals happen before any upstream is asked.

use axum::body::Body;
use http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use pullgate_domain::mapping::MappingTable;
use pullgate_router::{router, Gateway, GatewayConfig};
use tower::ServiceExt;

const SHA: &str = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

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

[[mappings]]
host = "single.acme.dev"
name = "acme/app"
upstream = "ghcr.io/acme/app"
mode = "auto"

[[mappings]]
host = "images.acme.dev"
name = "charts"
kind = "http"
upstream = "https://github.com/acme/charts/releases/download"
"#;

pub fn app() -> axum::Router {
    let table = MappingTable::from_toml(MAPPINGS).unwrap();
    router(Gateway::new(table, GatewayConfig::default()).unwrap())
}

pub async fn call(
    method: &str,
    host: Option<&str>,
    path: &str,
    ua: &str,
) -> (StatusCode, http::HeaderMap, String) {
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header(header::USER_AGENT, ua);
    if let Some(host) = host {
        builder = builder.header(header::HOST, host);
    }
    let response = app()
        .oneshot(builder.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn redirects_are_built_from_the_mapping() {
    let by_digest = format!("/v2/app/manifests/{SHA}");
    let blob = format!("/v2/tools/x/blobs/{SHA}");
    let cases = [
        (
            "/v2/app/manifests/1.0",
            "https://registry-1.docker.io/v2/acme/app/manifests/1.0".to_string(),
        ),
        (
            by_digest.as_str(),
            format!("https://registry-1.docker.io/v2/acme/app/manifests/{SHA}"),
        ),
        (
            blob.as_str(),
            format!("https://ghcr.io/v2/acme/tools/x/blobs/{SHA}"),
        ),
        (
            "/v2/app/tags/list?n=5&last=v1&next=https://evil.example",
            "https://registry-1.docker.io/v2/acme/app/tags/list?n=5&last=v1".to_string(),
        ),
        ("/v2/", "".to_string()),
        (
            "/charts/app-1.0.0/app-1.0.0.tgz",
            "https://github.com/acme/charts/releases/download/app-1.0.0/app-1.0.0.tgz".to_string(),
        ),
    ];
    for (path, location) in cases {
        for method in ["GET", "HEAD"] {
            let (status, headers, _) =
                call(method, Some("images.acme.dev"), path, "skopeo/1.9").await;
            if location.is_empty() {
                // Two registries behind one host: the ping is answered here.
                assert_eq!(status, StatusCode::OK, "{path}");
                continue;
            }
            assert_eq!(status, StatusCode::TEMPORARY_REDIRECT, "{method} {path}");
            assert_eq!(headers[header::LOCATION], location.as_str(), "{path}");
            assert_eq!(headers[header::CACHE_CONTROL], "no-store", "{path}");
        }
    }
}

#[tokio::test]
async fn auto_mode_redirects_docker_and_containerd_only() {
    let path = "/v2/acme/app/manifests/v1";
    for ua in ["docker/24.0.7 go/go1.20", "containerd/1.6.20"] {
        let (status, headers, _) = call("HEAD", Some("single.acme.dev"), path, ua).await;
        assert_eq!(status, StatusCode::TEMPORARY_REDIRECT, "{ua}");
        assert_eq!(
            headers[header::LOCATION],
            "https://ghcr.io/v2/acme/app/manifests/v1"
        );
        let (status, headers, _) = call("GET", Some("single.acme.dev"), "/v2/", ua).await;
        assert_eq!(status, StatusCode::TEMPORARY_REDIRECT, "{ua}");
        assert_eq!(headers[header::LOCATION], "https://ghcr.io/v2/");
    }
    // containers/image gets our own challenge: it will be proxied.
    let (status, headers, _) =
        call("GET", Some("single.acme.dev"), "/v2/", "containers/5.24").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        headers[header::WWW_AUTHENTICATE],
        r#"Bearer realm="https://single.acme.dev/token",service="single.acme.dev""#
    );
    assert!(headers.contains_key("docker-distribution-api-version"));
}

#[tokio::test]
async fn refusals_have_oci_bodies_and_never_redirect() {
    let long = format!("/v2/{}/manifests/latest", "a/".repeat(1100));
    let cases: Vec<(&str, Option<&str>, &str, u16, &str)> = vec![
        (
            "GET",
            Some("images.acme.dev"),
            "/v2/unmapped/manifests/latest",
            404,
            "NAME_UNKNOWN",
        ),
        (
            "GET",
            Some("images.acme.dev"),
            "/v2/application/manifests/latest",
            404,
            "NAME_UNKNOWN",
        ),
        (
            "GET",
            Some("other.dev"),
            "/v2/app/manifests/latest",
            404,
            "NAME_UNKNOWN",
        ),
        ("GET", Some("other.dev"), "/v2/", 404, "NAME_UNKNOWN"),
        ("GET", None, "/v2/app/manifests/latest", 400, "NAME_INVALID"),
        (
            "GET",
            Some("evil.dev/x"),
            "/v2/app/manifests/latest",
            400,
            "NAME_INVALID",
        ),
        (
            "PUT",
            Some("images.acme.dev"),
            "/v2/app/manifests/latest",
            405,
            "UNSUPPORTED",
        ),
        (
            "POST",
            Some("images.acme.dev"),
            "/v2/app/blobs/uploads/",
            405,
            "UNSUPPORTED",
        ),
        (
            "PATCH",
            Some("images.acme.dev"),
            "/v2/app/blobs/uploads/abc",
            405,
            "UNSUPPORTED",
        ),
        (
            "DELETE",
            Some("images.acme.dev"),
            "/v2/app/manifests/latest",
            405,
            "UNSUPPORTED",
        ),
        (
            "GET",
            Some("images.acme.dev"),
            "/v2/_catalog",
            403,
            "DENIED",
        ),
        (
            "GET",
            Some("images.acme.dev"),
            "/v2/app/../tools/manifests/latest",
            400,
            "NAME_INVALID",
        ),
        (
            "GET",
            Some("images.acme.dev"),
            "/v2/app%2F..%2Ftools/manifests/latest",
            400,
            "NAME_INVALID",
        ),
        (
            "GET",
            Some("images.acme.dev"),
            "/v2/app/manifests/sha256:123",
            400,
            "DIGEST_INVALID",
        ),
        (
            "GET",
            Some("images.acme.dev"),
            "/v2/app/blobs/v1",
            400,
            "DIGEST_INVALID",
        ),
        (
            "GET",
            Some("images.acme.dev"),
            "/v2/app/manifests/%0d%0aLocation:x",
            400,
            "NAME_INVALID",
        ),
        ("GET", Some("images.acme.dev"), &long, 414, "NAME_INVALID"),
        (
            "GET",
            Some("images.acme.dev"),
            "/charts/../../etc/passwd",
            404,
            "NAME_UNKNOWN",
        ),
        (
            "GET",
            Some("images.acme.dev"),
            "/unmapped/file.tgz",
            404,
            "NAME_UNKNOWN",
        ),
    ];
    for (method, host, path, status, code) in cases {
        let (got, headers, body) = call(method, host, path, "curl/8").await;
        assert_eq!(got.as_u16(), status, "{method} {path}: {body}");
        assert!(!headers.contains_key(header::LOCATION), "{method} {path}");
        let v: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|_| panic!("{path}: {body}"));
        assert_eq!(v["errors"][0]["code"], code, "{method} {path}");
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    }
}

#[tokio::test]
async fn oversized_headers_are_refused() {
    let request = Request::builder()
        .uri("/v2/app/manifests/latest")
        .header(header::HOST, "images.acme.dev")
        .header("x-padding", "a".repeat(20_000))
        .body(Body::empty())
        .unwrap();
    let response = app().oneshot(request).await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    assert!(!response.headers().contains_key(header::LOCATION));
}
