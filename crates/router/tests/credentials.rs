//! A mapping's upstream credentials against the in-process upstream
//! (`support/`): used for anonymous clients only, at the token realm of a
//! token upstream and on the registry calls to a Basic-auth upstream;
//! never for a scope outside the mapping; a client's own credentials pass
//! through unchanged; realms the realm rule refuses are never fetched.

mod support;

use axum::body::Body;
use http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use pullgate_domain::credentials::{CredentialCache, LocalCredentials};
use pullgate_domain::mapping::MappingTable;
use pullgate_router::{router, Gateway, GatewayConfig};
use std::sync::Arc;
use support::{Auth, TokenAnswer, Upstream, MANIFEST_DIGEST, REPOSITORY, TOKEN};
use tower::ServiceExt;

const HOST: &str = "images.test";
const DIGEST: &str = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
/// `alice:wonderland`, the mapping's credentials.
const PUBLISHER: &str = "Basic YWxpY2U6d29uZGVybGFuZA==";
/// A client's own credentials, `bob:builder`.
const CLIENTS_OWN: &str = "Basic Ym9iOmJ1aWxkZXI=";

/// `private/app` (with credentials) and `app` (without) on one upstream.
fn gateway(upstream: &Upstream, credentials: &str) -> axum::Router {
    let mappings = format!(
        r#"
[[mappings]]
host = "{HOST}"
name = "private/app"
upstream = "{base}/{REPOSITORY}"
mode = "proxy"
credentials = "{credentials}"

[[mappings]]
host = "{HOST}"
name = "app"
upstream = "{base}/public/app"
mode = "proxy"
"#,
        base = upstream.base
    );
    let table = MappingTable::from_toml(&mappings).unwrap();
    let config = GatewayConfig {
        public_scheme: "http",
        ..GatewayConfig::default()
    };
    let local = LocalCredentials::with_env("no AWS here", |name| match name {
        "PRIV_USERNAME" => Some("alice".into()),
        "PRIV_PASSWORD" => Some("wonderland".into()),
        _ => None,
    });
    let cache = Arc::new(CredentialCache::new(Arc::new(local)));
    router(Gateway::new(table, config).unwrap().with_credentials(cache))
}

struct Reply {
    status: StatusCode,
    headers: http::HeaderMap,
    body: String,
}

async fn get(app: &axum::Router, path: &str, authorization: Option<&str>) -> Reply {
    let mut request = Request::builder()
        .uri(path)
        .header(header::HOST, HOST)
        .header(header::USER_AGENT, "containers/5.24");
    if let Some(authorization) = authorization {
        request = request.header(header::AUTHORIZATION, authorization);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let reply = Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    // Whatever the answer, the publisher's secret is never in it.
    let everything = format!("{:?} {}", reply.headers, reply.body);
    assert!(
        !everything.contains("wonderland") && !everything.contains("YWxpY2U6d29uZGVybGFuZA"),
        "{everything}"
    );
    reply
}

fn error_code(reply: &Reply) -> String {
    let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    body["errors"][0]["code"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn an_anonymous_token_request_reaches_the_realm_with_the_mapping_credentials_pull_only() {
    let upstream = Upstream::start(TokenAnswer::Token).await;
    let app = gateway(&upstream, "env:PRIV");
    let anonymous = get(
        &app,
        "/token?scope=repository:private/app:pull,push&service=images.test&account=mallory",
        None,
    )
    .await;
    assert_eq!(anonymous.status, StatusCode::OK, "{}", anonymous.body);
    assert_eq!(anonymous.body, format!(r#"{{"token":"{TOKEN}"}}"#));
    // Our anonymous token is no credential either.
    let ours = get(
        &app,
        "/token?scope=repository:private/app:pull",
        Some("Bearer pullgate-anonymous"),
    )
    .await;
    assert_eq!(ours.status, StatusCode::OK);
    // A client with its own credentials: they pass unchanged, and so do
    // its scopes.
    let own = get(
        &app,
        "/token?scope=repository:private/app:pull,push&account=bob",
        Some(CLIENTS_OWN),
    )
    .await;
    assert_eq!(own.status, StatusCode::OK);
    let seen: Vec<(String, Option<String>)> = upstream
        .received_at("/token")
        .into_iter()
        .map(|r| (r.params, r.authorization))
        .collect();
    assert_eq!(
        seen,
        [
            (
                "scope=repository%3Aacme%2Fapp%3Apull&service=upstream".to_string(),
                Some(PUBLISHER.to_string())
            ),
            (
                "scope=repository%3Aacme%2Fapp%3Apull&service=upstream".to_string(),
                Some(PUBLISHER.to_string())
            ),
            (
                "scope=repository%3Aacme%2Fapp%3Apull%2Cpush&account=bob&service=upstream"
                    .to_string(),
                Some(CLIENTS_OWN.to_string())
            ),
        ]
    );
}

#[tokio::test]
async fn a_scope_outside_the_mapping_is_denied_when_the_publisher_s_credentials_would_be_used() {
    let upstream = Upstream::start(TokenAnswer::Token).await;
    let app = gateway(&upstream, "env:PRIV");
    for query in [
        "scope=repository:private/app:pull&scope=repository:app:pull",
        "scope=repository:app:pull+repository:private/app:pull",
        "scope=repository:private/app:pull&scope=repository:unmapped:pull",
    ] {
        let refused = get(&app, &format!("/token?{query}"), None).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{query}");
        assert_eq!(error_code(&refused), "DENIED", "{query}");
    }
    assert!(upstream.received_at("/token").is_empty());
    // Without the publisher's credentials in play, the old rules: the
    // mapping without credentials is served anonymously.
    let public = get(&app, "/token?scope=repository:app:pull", None).await;
    assert_eq!(public.status, StatusCode::OK);
    let asked = upstream.received_at("/token");
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].authorization, None);
}

#[tokio::test]
async fn a_basic_upstream_gets_the_mapping_credentials_for_anonymous_clients_only() {
    let upstream = Upstream::start_with(
        TokenAnswer::Token,
        Auth::Basic {
            authorization: PUBLISHER.to_string(),
        },
    )
    .await;
    let app = gateway(&upstream, "env:PRIV");
    // Challenged clients get our anonymous token: nothing upstream to ask.
    let token = get(&app, "/token?scope=repository:private/app:pull", None).await;
    assert!(token.body.contains("pullgate-anonymous"), "{}", token.body);
    for authorization in [None, Some("Bearer pullgate-anonymous")] {
        let manifest = get(&app, "/v2/private/app/manifests/v1", authorization).await;
        assert_eq!(manifest.status, StatusCode::OK, "{}", manifest.body);
        assert_eq!(manifest.headers["docker-content-digest"], MANIFEST_DIGEST);
        let blob = get(
            &app,
            &format!("/v2/private/app/blobs/{DIGEST}"),
            authorization,
        )
        .await;
        assert_eq!(blob.status, StatusCode::TEMPORARY_REDIRECT);
        assert_eq!(
            blob.headers[header::LOCATION],
            upstream.storage_url(DIGEST).as_str()
        );
    }
    let calls = upstream.received_at(&format!("/v2/{REPOSITORY}/"));
    assert!(!calls.is_empty());
    assert!(
        calls
            .iter()
            .all(|r| r.authorization.as_deref() == Some(PUBLISHER)),
        "{calls:?}"
    );
    // The client's own credentials go upstream unchanged (and are refused
    // there, which the client sees as our challenge).
    let own = get(&app, "/v2/private/app/manifests/v2", Some(CLIENTS_OWN)).await;
    assert_eq!(own.status, StatusCode::UNAUTHORIZED);
    let last = upstream.received_at(&format!("/v2/{REPOSITORY}/manifests/v2"));
    assert_eq!(last[0].authorization.as_deref(), Some(CLIENTS_OWN));
    // The mapping without credentials sends none.
    get(&app, "/v2/app/manifests/v1", None).await;
    let public = upstream.received_at("/v2/public/app/manifests/v1");
    assert!(
        public.iter().all(|r| r.authorization.is_none()),
        "{public:?}"
    );
}

#[tokio::test]
async fn credentials_that_cannot_be_had_are_a_502_that_names_nothing() {
    let upstream = Upstream::start_with(
        TokenAnswer::Token,
        Auth::Basic {
            authorization: PUBLISHER.to_string(),
        },
    )
    .await;
    for source in [
        "env:MISSING",
        "file:/nonexistent/pullgate-creds.json",
        "ecr",
    ] {
        let app = gateway(&upstream, source);
        let reply = get(&app, "/v2/private/app/manifests/v1", None).await;
        assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{source}");
        assert_eq!(error_code(&reply), "UNAVAILABLE", "{source}");
        assert!(!reply.body.contains("MISSING") && !reply.body.contains("nonexistent"));
    }
    assert!(upstream
        .received_at(&format!("/v2/{REPOSITORY}/manifests"))
        .is_empty());
}

#[tokio::test]
async fn a_realm_the_rule_refuses_is_never_fetched() {
    for realm in [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://10.0.0.1/token",
        "ftp://127.0.0.1/token",
    ] {
        let upstream = Upstream::start_with(
            TokenAnswer::Token,
            Auth::Bearer {
                realm: Some(realm.to_string()),
            },
        )
        .await;
        let app = gateway(&upstream, "env:PRIV");
        let started = std::time::Instant::now();
        for authorization in [None, Some(CLIENTS_OWN)] {
            let reply = get(
                &app,
                "/token?scope=repository:private/app:pull",
                authorization,
            )
            .await;
            assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{realm}");
            assert_eq!(error_code(&reply), "UNAVAILABLE", "{realm}");
        }
        // Refused before any connection was tried.
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{realm}"
        );
    }
}
