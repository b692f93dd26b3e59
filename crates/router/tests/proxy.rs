//! The proxy path against an in-process upstream registry (`support/`):
//! a mapping in proxy mode whose public name (`app`) differs from the
//! upstream's (`acme/app`), reached over plain http on loopback as the e2e
//! suite reaches its registries. Covers what only a real upstream shows:
//! token scopes and realms rewritten between the two names, blob storage
//! locations handed over untouched, and tag-list pagination pointing back
//! at us.

mod support;

use axum::body::Body;
use http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use pullgate_domain::mapping::MappingTable;
use pullgate_router::{router, Gateway, GatewayConfig, ManifestCacheSettings};
use support::{TokenAnswer, Upstream, MANIFEST_DIGEST, MANIFEST_TYPE, REPOSITORY, TOKEN};
use tower::ServiceExt;

const HOST: &str = "images.test";
const DIGEST: &str = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
/// The token endpoint's limit on what a realm may answer (token.rs).
const MAX_TOKEN_RESPONSE: usize = 1024 * 1024;

fn gateway(upstream: &Upstream) -> axum::Router {
    gateway_with(upstream, test_config())
}

fn gateway_with(upstream: &Upstream, config: GatewayConfig) -> axum::Router {
    let mappings = format!(
        r#"
[[mappings]]
host = "{HOST}"
name = "app"
upstream = "{}/{REPOSITORY}"
mode = "proxy"
"#,
        upstream.base
    );
    let table = MappingTable::from_toml(&mappings).unwrap();
    router(Gateway::new(table, config).unwrap())
}

fn test_config() -> GatewayConfig {
    GatewayConfig {
        public_scheme: "http",
        ..GatewayConfig::default()
    }
}

struct Reply {
    status: StatusCode,
    headers: http::HeaderMap,
    body: String,
}

async fn call(app: &axum::Router, request: http::request::Builder, body: Body) -> Reply {
    let request = request
        .header(header::HOST, HOST)
        .header(header::USER_AGENT, "containers/5.24")
        .body(body)
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

async fn get(app: &axum::Router, path: &str, token: Option<&str>) -> Reply {
    let mut request = Request::builder().uri(path);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    call(app, request, Body::empty()).await
}

fn error_code(reply: &Reply) -> String {
    let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    body["errors"][0]["code"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn token_requests_reach_the_upstream_realm_in_upstream_names() {
    let upstream = Upstream::start(TokenAnswer::Token).await;
    let app = gateway(&upstream);
    // Every scope renamed (one value may hold several), `service` replaced
    // by the upstream's and moved last, everything else verbatim.
    let client_params = "service=images.test\
        &scope=repository%3Aapp%3Apull\
        &scope=repository:app/sub:pull,push+repository:app:pull\
        &account=a%40b&offline_token=true";
    let upstream_params = "scope=repository%3Aacme%2Fapp%3Apull\
        &scope=repository%3Aacme%2Fapp%2Fsub%3Apull%2Cpush\
        &scope=repository%3Aacme%2Fapp%3Apull\
        &account=a%40b&offline_token=true&service=upstream";
    let get_request = Request::builder().uri(format!("/token?{client_params}"));
    let post_request = Request::builder()
        .method(Method::POST)
        .uri("/token")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    for (request, body) in [
        (get_request, Body::empty()),
        (post_request, Body::from(client_params)),
    ] {
        let request = request.header(header::AUTHORIZATION, "Basic dXNlcjpwdw==");
        let reply = call(&app, request, body).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(reply.body, format!(r#"{{"token":"{TOKEN}"}}"#));
    }
    let asked = upstream.received_at("/token");
    let seen: Vec<_> = asked
        .iter()
        .map(|r| {
            (
                r.method.as_str(),
                r.params.as_str(),
                r.authorization.as_deref(),
            )
        })
        .collect();
    let basic = Some("Basic dXNlcjpwdw==");
    assert_eq!(
        seen,
        [
            ("GET", upstream_params, basic),
            ("POST", upstream_params, basic)
        ]
    );
}

#[tokio::test]
async fn an_upstream_401_sends_the_client_to_our_token_endpoint_in_public_names() {
    let upstream = Upstream::start(TokenAnswer::Token).await;
    let app = gateway(&upstream);
    let refused = get(&app, "/v2/app/manifests/v1", None).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        refused.headers[header::WWW_AUTHENTICATE],
        format!(
            r#"Bearer realm="http://{HOST}/token",service="{HOST}",scope="repository:app:pull""#
        )
        .as_str()
    );
    // The upstream's own error body reaches the client.
    assert!(
        refused.body.contains("upstream wants a token"),
        "{}",
        refused.body
    );

    // The client follows the challenge: a token from our endpoint (the
    // upstream's), then the manifest with it.
    let token = get(
        &app,
        "/token?scope=repository:app:pull&service=images.test",
        None,
    )
    .await;
    let token: serde_json::Value = serde_json::from_str(&token.body).unwrap();
    let token = token["token"].as_str().unwrap();
    let manifest = get(&app, "/v2/app/manifests/v1", Some(token)).await;
    assert_eq!(manifest.status, StatusCode::OK, "{}", manifest.body);
    assert_eq!(manifest.headers[header::CONTENT_TYPE], MANIFEST_TYPE);
    assert_eq!(manifest.body, r#"{"schemaVersion":2}"#);
    // Each GET is resolved with a HEAD first (the manifest cache); the
    // refused HEAD is followed by the GET whose body the client saw.
    let manifests = upstream.received_at("/v2/acme/app/manifests/v1");
    let methods: Vec<&str> = manifests.iter().map(|r| r.method.as_str()).collect();
    assert_eq!(methods, ["HEAD", "GET", "HEAD", "GET"]);
    assert_eq!(
        manifests[3].authorization.as_deref(),
        Some(format!("Bearer {TOKEN}").as_str())
    );
}

#[tokio::test]
async fn a_manifest_pulled_again_comes_from_the_cache_after_a_free_head() {
    let upstream = Upstream::start(TokenAnswer::Token).await;
    let config = GatewayConfig {
        manifest_cache: ManifestCacheSettings {
            reference_ttl: std::time::Duration::ZERO,
            ..ManifestCacheSettings::DEFAULT
        },
        ..test_config()
    };
    let app = gateway_with(&upstream, config);
    for _ in 0..3 {
        let manifest = get(&app, "/v2/app/manifests/v1", Some(TOKEN)).await;
        assert_eq!(manifest.status, StatusCode::OK, "{}", manifest.body);
        assert_eq!(manifest.headers[header::CONTENT_TYPE], MANIFEST_TYPE);
        assert_eq!(manifest.headers["docker-content-digest"], MANIFEST_DIGEST);
        assert_eq!(manifest.headers[header::CONTENT_LENGTH], "19");
        assert_eq!(manifest.body, r#"{"schemaVersion":2}"#);
    }
    let methods: Vec<String> = upstream
        .received_at("/v2/acme/app/manifests/v1")
        .iter()
        .map(|r| r.method.to_string())
        .collect();
    assert_eq!(methods, ["HEAD", "GET", "HEAD", "HEAD"]);
    // By digest: the HEAD still asks the upstream whether this client may.
    let by_digest = get(
        &app,
        &format!("/v2/app/manifests/{MANIFEST_DIGEST}"),
        Some(TOKEN),
    )
    .await;
    assert_eq!(by_digest.status, StatusCode::OK);
    let refused = get(
        &app,
        &format!("/v2/app/manifests/{MANIFEST_DIGEST}"),
        Some("stolen"),
    )
    .await;
    assert_eq!(
        refused.status,
        StatusCode::UNAUTHORIZED,
        "the cache never answers for the upstream's access check"
    );
}

#[tokio::test]
async fn blobs_are_a_redirect_to_the_upstream_storage_never_their_bytes() {
    let upstream = Upstream::start(TokenAnswer::Token).await;
    let app = gateway(&upstream);
    let reply = get(&app, &format!("/v2/app/blobs/{DIGEST}"), Some(TOKEN)).await;
    assert_eq!(reply.status, StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(
        reply.headers[header::LOCATION],
        upstream.storage_url(DIGEST).as_str()
    );
    assert_eq!(reply.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(reply.body, "");
    // Asked with the client's token, in the upstream's name; the storage
    // URL was never fetched by the gateway.
    let blobs = upstream.received_at(&format!("/v2/acme/app/blobs/{DIGEST}"));
    assert_eq!(blobs.len(), 1);
    assert_eq!(
        blobs[0].authorization.as_deref(),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert!(upstream.received_at("/storage/").is_empty());
}

#[tokio::test]
async fn tag_lists_name_the_public_repository_and_page_back_through_us() {
    let upstream = Upstream::start(TokenAnswer::Token).await;
    let app = gateway(&upstream);
    let reply = get(&app, "/v2/app/tags/list?n=2", Some(TOKEN)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let list: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(
        list,
        serde_json::json!({"name": "app", "tags": ["v1", "v2"]})
    );
    assert_eq!(
        reply.headers[header::LINK],
        r#"</v2/app/tags/list?n=2&last=v2>; rel="next""#
    );
    let asked = upstream.received_at("/v2/acme/app/tags/list");
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].params, "n=2");
}

#[tokio::test]
async fn an_oversized_token_answer_is_refused_with_and_without_content_length() {
    for answer in [
        TokenAnswer::Sized(MAX_TOKEN_RESPONSE + 1),
        TokenAnswer::Chunked(MAX_TOKEN_RESPONSE + 1),
    ] {
        let upstream = Upstream::start(answer).await;
        let app = gateway(&upstream);
        let reply = get(&app, "/token?scope=repository:app:pull", None).await;
        assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{answer:?}");
        assert_eq!(error_code(&reply), "UNAVAILABLE", "{answer:?}");
        assert_eq!(upstream.received_at("/token").len(), 1, "{answer:?}");
        // The fixture really sends both framings.
        let direct = reqwest::get(format!("{}/token", upstream.base))
            .await
            .unwrap();
        let sized = matches!(answer, TokenAnswer::Sized(_));
        assert_eq!(direct.content_length().is_some(), sized, "{answer:?}");
    }
}

#[tokio::test]
async fn a_token_answer_of_exactly_the_limit_is_relayed() {
    for answer in [
        TokenAnswer::Sized(MAX_TOKEN_RESPONSE),
        TokenAnswer::Chunked(MAX_TOKEN_RESPONSE),
    ] {
        let upstream = Upstream::start(answer).await;
        let app = gateway(&upstream);
        let reply = get(&app, "/token?scope=repository:app:pull", None).await;
        assert_eq!(reply.status, StatusCode::OK, "{answer:?}");
        assert_eq!(reply.body.len(), MAX_TOKEN_RESPONSE, "{answer:?}");
    }
}

#[tokio::test]
async fn an_upstream_rate_limit_reaches_the_client_as_toomanyrequests_with_retry_after() {
    let upstream = Upstream::start(TokenAnswer::Token).await;
    let app = gateway(&upstream);
    let limited = get(&app, "/v2/app/manifests/limited", Some(TOKEN)).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers[header::RETRY_AFTER], "3600");
    let body: serde_json::Value = serde_json::from_str(&limited.body).unwrap();
    assert_eq!(body["errors"][0]["code"], "TOOMANYREQUESTS");
}
