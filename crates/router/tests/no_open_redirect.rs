//! Property test: whatever path, query, host and user agent a client sends,
//! the gateway never panics and never redirects anywhere the mappings did
//! not name. Runs a bounded number of cases (PROPTEST_CASES to change).

use axum::body::Body;
use http::{header, Request};
use proptest::prelude::*;
use pullgate_domain::mapping::MappingTable;
use pullgate_router::{router, Gateway, GatewayConfig};
use tower::ServiceExt;

const MAPPINGS: &str = r#"
[[mappings]]
host = "images.acme.dev"
name = "app"
upstream = "docker.io/acme/app"
mode = "redirect"
[[mappings]]
host = "images.acme.dev"
name = "charts"
kind = "http"
upstream = "https://charts.acme.dev/stable"
"#;

const ALLOWED_PREFIXES: [&str; 2] = [
    "https://registry-1.docker.io/v2/acme/app",
    "https://charts.acme.dev/stable/",
];

fn path_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/v2/".to_string()),
        Just("app".to_string()),
        Just("/".to_string()),
        Just("..".to_string()),
        Just("%2F".to_string()),
        Just("%2e%2e".to_string()),
        Just("manifests/".to_string()),
        Just("blobs/".to_string()),
        Just("tags/list".to_string()),
        Just("charts/".to_string()),
        Just("sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824".to_string()),
        Just("//evil.example".to_string()),
        Just("@evil.example".to_string()),
        Just("?n=1&last=".to_string()),
        "[a-zA-Z0-9._~:/?#@!$&'()*+,;=%-]{0,12}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, .. ProptestConfig::default() })]
    #[test]
    fn never_redirects_outside_the_mappings(
        pieces in proptest::collection::vec(path_piece(), 0..8),
        method in prop_oneof![Just("GET"), Just("HEAD"), Just("POST"), Just("PUT"), Just("DELETE")],
    ) {
        let path = format!("/{}", pieces.concat());
        let Ok(uri) = path.parse::<http::Uri>() else { return Ok(()) };
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let table = MappingTable::from_toml(MAPPINGS).unwrap();
        let app = router(Gateway::new(table, GatewayConfig::default()).unwrap());
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::HOST, "images.acme.dev")
            .header(header::USER_AGENT, "docker/24.0")
            .body(Body::empty())
            .unwrap();
        let response = runtime.block_on(app.oneshot(request)).unwrap();
        if let Some(location) = response.headers().get(header::LOCATION) {
            let location = location.to_str().unwrap();
            prop_assert!(
                ALLOWED_PREFIXES.iter().any(|p| location.starts_with(p)),
                "{path} redirected to {location}"
            );
            prop_assert!(!location.split(['/', '?']).any(|s| s == ".." || s == "."), "{path} redirected to {location}");
            prop_assert!(!location.contains('%'), "{path} redirected to {location}");
        }
    }
}
