//! A small upstream registry for in-process tests, speaking the protocol
//! the gateway relies on: `/v2/` and every repository endpoint answer 401
//! with a Bearer challenge naming its own `/token` realm; the realm hands
//! out one token; manifests and tag lists are served to holders of it;
//! blobs answer 307 to a storage URL, as registries backed by object stores
//! do. It records what it was asked, the Authorization its realm and its
//! repository endpoints saw included, so tests can check what reached it.
//! It can instead want Basic credentials (htpasswd registries, ECR), or
//! name another realm in its challenge.
//! Listens on 127.0.0.1:0: tests run in parallel without sharing a port.
// Each test file uses a part of the fixture.
#![allow(dead_code)]

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use std::sync::{Arc, Mutex};

/// The upstream's repository the tests map a public name onto.
pub const REPOSITORY: &str = "acme/app";
/// The token the realm hands out; repository endpoints want it.
pub const TOKEN: &str = "upstream-token";
/// What the upstream calls itself in its challenges.
pub const SERVICE: &str = "upstream";
pub const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The SHA-256 of the one manifest body, `{"schemaVersion":2}`.
pub const MANIFEST_DIGEST: &str =
    "sha256:bafebd36189ad3688b7b3915ea55d461e0bfcfbdde11e54b0a123999fb6be50f";

/// How the realm answers token requests.
#[derive(Debug, Clone, Copy)]
pub enum TokenAnswer {
    /// `{"token": TOKEN}`.
    Token,
    /// A body of this many bytes, with a Content-Length.
    Sized(usize),
    /// A body of this many bytes, chunked (no Content-Length).
    Chunked(usize),
}

/// One request the upstream received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: Method,
    pub path: String,
    /// The raw query (GET) or form body (POST), as it arrived.
    pub params: String,
    pub authorization: Option<String>,
}

/// How the upstream wants to be authenticated.
#[derive(Debug, Clone)]
pub enum Auth {
    /// A Bearer challenge naming a realm: its own `/token`, or `realm`.
    Bearer { realm: Option<String> },
    /// A Basic challenge (htpasswd, ECR): repository endpoints want
    /// exactly this `Authorization` value.
    Basic { authorization: String },
}

pub struct Upstream {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    state: Arc<Shared>,
}

struct Shared {
    base: String,
    token_answer: TokenAnswer,
    auth: Auth,
    received: Mutex<Vec<Received>>,
}

impl Upstream {
    pub async fn start(token_answer: TokenAnswer) -> Upstream {
        Self::start_with(token_answer, Auth::Bearer { realm: None }).await
    }

    pub async fn start_with(token_answer: TokenAnswer, auth: Auth) -> Upstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Shared {
            base: base.clone(),
            token_answer,
            auth,
            received: Mutex::new(Vec::new()),
        });
        let app = axum::Router::new()
            .route("/token", get(token).post(token))
            .fallback(any(registry))
            .with_state(state.clone());
        // Bound before the first request is sent: connections queue, so no
        // test needs to wait for the server to be up.
        tokio::spawn(async move { axum::serve(listener, app).await });
        Upstream { base, state }
    }

    /// What the upstream was asked, in order.
    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// The requests whose path starts with `prefix`.
    pub fn received_at(&self, prefix: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.path.starts_with(prefix))
            .collect()
    }

    /// Where blob bytes really are: a signed object-store URL.
    pub fn storage_url(&self, digest: &str) -> String {
        storage_url(&self.base, digest)
    }
}

fn storage_url(base: &str, digest: &str) -> String {
    format!("{base}/storage/{digest}?X-Signature=s3cr3t")
}

impl Shared {
    fn record(&self, method: &Method, uri: &Uri, params: String, headers: &HeaderMap) {
        self.received.lock().unwrap().push(Received {
            method: method.clone(),
            path: uri.path().to_string(),
            params,
            authorization: headers
                .get(header::AUTHORIZATION)
                .map(|v| v.to_str().unwrap().to_string()),
        });
    }

    /// 401 with our challenge; `scope` as a registry names it for the
    /// request it refused.
    fn challenge(&self, scope: Option<&str>) -> Response {
        let realm = match &self.auth {
            Auth::Basic { .. } => {
                return (
                    StatusCode::UNAUTHORIZED,
                    [(header::WWW_AUTHENTICATE, r#"Basic realm="upstream""#)],
                    r#"{"errors":[{"code":"UNAUTHORIZED","message":"upstream wants Basic"}]}"#,
                )
                    .into_response()
            }
            Auth::Bearer { realm: Some(realm) } => realm.clone(),
            Auth::Bearer { realm: None } => format!("{}/token", self.base),
        };
        let mut value = format!(r#"Bearer realm="{realm}",service="{SERVICE}""#);
        if let Some(scope) = scope {
            value.push_str(&format!(r#",scope="{scope}""#));
        }
        (
            StatusCode::UNAUTHORIZED,
            [
                (header::WWW_AUTHENTICATE, value),
                (header::CONTENT_TYPE, "application/json".to_string()),
            ],
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"upstream wants a token"}]}"#,
        )
            .into_response()
    }
}

async fn token(
    State(state): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = if method == Method::POST {
        String::from_utf8(body.to_vec()).unwrap()
    } else {
        query.unwrap_or_default()
    };
    state.record(&method, &uri, params, &headers);
    let json = [(header::CONTENT_TYPE, "application/json")];
    match state.token_answer {
        TokenAnswer::Token => (json, format!(r#"{{"token":"{TOKEN}"}}"#)).into_response(),
        TokenAnswer::Sized(bytes) => (json, vec![b' '; bytes]).into_response(),
        TokenAnswer::Chunked(bytes) => {
            let chunk = Bytes::from(vec![b' '; 64 * 1024]);
            let mut chunks = Vec::new();
            let mut left = bytes;
            while left > 0 {
                let n = left.min(chunk.len());
                chunks.push(Ok::<_, std::io::Error>(chunk.slice(..n)));
                left -= n;
            }
            let body = Body::from_stream(futures_util::stream::iter(chunks));
            (json, body).into_response()
        }
    }
}

/// `/v2/` and the repository endpoints of the one repository it has.
async fn registry(
    State(state): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    state.record(
        &method,
        &uri,
        uri.query().unwrap_or("").to_string(),
        &headers,
    );
    let path = uri.path();
    if path == "/v2/" {
        return state.challenge(None);
    }
    if path.starts_with("/storage/") {
        return (StatusCode::OK, "blob bytes from storage").into_response();
    }
    let Some(endpoint) = path
        .strip_prefix("/v2/")
        .and_then(|p| p.strip_prefix(REPOSITORY))
        .and_then(|p| p.strip_prefix('/'))
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let wanted = match &state.auth {
        Auth::Basic { authorization } => authorization.clone(),
        Auth::Bearer { .. } => format!("Bearer {TOKEN}"),
    };
    let authorized = headers
        .get(header::AUTHORIZATION)
        .is_some_and(|v| v == wanted.as_str());
    if !authorized {
        return state.challenge(Some(&format!("repository:{REPOSITORY}:pull")));
    }
    if endpoint == "manifests/limited" {
        // Docker Hub's documented answer past its pull limit.
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "3600")],
            r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit"}]}"#,
        )
            .into_response();
    }
    if endpoint.starts_with("manifests/") {
        (
            [
                (header::CONTENT_TYPE, MANIFEST_TYPE),
                (
                    header::HeaderName::from_static("docker-content-digest"),
                    MANIFEST_DIGEST,
                ),
            ],
            r#"{"schemaVersion":2}"#,
        )
            .into_response()
    } else if endpoint == "tags/list" {
        (
            [
                (header::CONTENT_TYPE, "application/json".to_string()),
                (
                    header::LINK,
                    format!(r#"</v2/{REPOSITORY}/tags/list?last=v2&n=2>; rel="next""#),
                ),
            ],
            format!(r#"{{"name":"{REPOSITORY}","tags":["v1","v2"]}}"#),
        )
            .into_response()
    } else if let Some(digest) = endpoint.strip_prefix("blobs/") {
        (
            StatusCode::TEMPORARY_REDIRECT,
            [(header::LOCATION, storage_url(&state.base, digest))],
        )
            .into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}
