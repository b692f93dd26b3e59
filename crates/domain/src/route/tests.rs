use super::*;
use crate::error::ErrorCode;

const SHA: &str = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

fn get(path: &str) -> Result<Route<'_>, RegistryError> {
    let (p, q) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    parse(Method::Get, p, q)
}

#[test]
fn accepted_routes() {
    let blob = format!("/v2/acme/app/blobs/{SHA}");
    let by_digest = format!("/v2/acme/app/manifests/{SHA}");
    let referrers =
        format!("/v2/app/referrers/{SHA}?artifactType=application%2Fvnd.example%2Bjson");
    let cases: Vec<(&str, Route)> = vec![
        ("/v2/", Route::Ping),
        ("/v2", Route::Ping),
        ("/token", Route::Token),
        (
            "/v2/app/manifests/latest",
            Route::Manifest {
                name: "app",
                reference: Reference::Tag("latest"),
            },
        ),
        (
            &by_digest,
            Route::Manifest {
                name: "acme/app",
                reference: Reference::Digest(SHA),
            },
        ),
        (
            // "manifests" is a legal name component
            "/v2/a/manifests/manifests/v1",
            Route::Manifest {
                name: "a/manifests",
                reference: Reference::Tag("v1"),
            },
        ),
        (
            &blob,
            Route::Blob {
                name: "acme/app",
                digest: SHA,
            },
        ),
        (
            "/v2/app/tags/list",
            Route::Tags {
                name: "app",
                n: None,
                last: None,
            },
        ),
        (
            "/v2/app/tags/list?n=10&last=v1&evil=http://x",
            Route::Tags {
                name: "app",
                n: Some(10),
                last: Some("v1"),
            },
        ),
        (
            &referrers,
            Route::Referrers {
                name: "app",
                digest: SHA,
                artifact_type: Some(Cow::Borrowed("application/vnd.example+json")),
            },
        ),
        (
            "/charts/index.yaml",
            Route::File {
                path: "charts/index.yaml",
            },
        ),
        (
            "/releases/v1.2.3/app_1.2.3_linux-amd64.tar.gz",
            Route::File {
                path: "releases/v1.2.3/app_1.2.3_linux-amd64.tar.gz",
            },
        ),
    ];
    for (path, expected) in cases {
        assert_eq!(get(path), Ok(expected), "{path}");
    }
}

#[test]
fn refused_routes() {
    let long_name = format!("/v2/{}/manifests/latest", "a".repeat(256));
    let long_path = format!("/v2/app/manifests/{}", "a".repeat(3000));
    let cases: Vec<(Method, &str, ErrorCode, u16)> = vec![
        (Method::Get, "/v2/_catalog", ErrorCode::Denied, 403),
        (Method::Get, "/v2/_catalog?n=100", ErrorCode::Denied, 403),
        (
            Method::Post,
            "/v2/app/blobs/uploads/",
            ErrorCode::Unsupported,
            405,
        ),
        (
            Method::Other,
            "/v2/app/manifests/latest",
            ErrorCode::Unsupported,
            405,
        ),
        (Method::Other, "/v2/", ErrorCode::Unsupported, 405),
        (Method::Other, "/token", ErrorCode::Unsupported, 405),
        (
            Method::Post,
            "/charts/index.yaml",
            ErrorCode::Unsupported,
            405,
        ),
        (
            Method::Get,
            "/v2/App/manifests/latest",
            ErrorCode::NameInvalid,
            400,
        ),
        (
            Method::Get,
            "/v2/a/../b/manifests/latest",
            ErrorCode::NameInvalid,
            400,
        ),
        (
            Method::Get,
            "/v2/../manifests/latest",
            ErrorCode::NameInvalid,
            400,
        ),
        (
            Method::Get,
            "/v2/a%2Fb/manifests/latest",
            ErrorCode::NameInvalid,
            400,
        ),
        (
            Method::Get,
            "/v2/a%2e%2e/manifests/latest",
            ErrorCode::NameInvalid,
            400,
        ),
        (
            Method::Get,
            "/v2/a\r\nb/manifests/latest",
            ErrorCode::NameInvalid,
            400,
        ),
        (
            Method::Get,
            "/v2/a%0d%0ab/manifests/latest",
            ErrorCode::NameInvalid,
            400,
        ),
        (
            Method::Get,
            "/v2/a b/manifests/latest",
            ErrorCode::NameInvalid,
            400,
        ),
        (
            Method::Get,
            "/v2//app/manifests/latest",
            ErrorCode::NameInvalid,
            400,
        ),
        (Method::Get, &long_name, ErrorCode::NameInvalid, 400),
        (Method::Get, &long_path, ErrorCode::NameInvalid, 414),
        (
            Method::Get,
            "/v2/app/manifests/-bad",
            ErrorCode::ManifestUnknown,
            404,
        ),
        (
            Method::Get,
            "/v2/app/manifests/sha256:abc",
            ErrorCode::DigestInvalid,
            400,
        ),
        (
            Method::Get,
            "/v2/app/blobs/latest",
            ErrorCode::DigestInvalid,
            400,
        ),
        (
            Method::Get,
            "/v2/app/blobs/sha256:../../etc",
            ErrorCode::Unsupported,
            404,
        ),
        (
            Method::Get,
            "/v2/app/referrers/x",
            ErrorCode::DigestInvalid,
            400,
        ),
        (
            Method::Get,
            "/v2/app/tags/list?n=abc",
            ErrorCode::Unsupported,
            400,
        ),
        (
            Method::Get,
            "/v2/app/tags/list?last=a/b",
            ErrorCode::Unsupported,
            400,
        ),
        (
            Method::Get,
            "/v2/app/tags/list?n=99999999",
            ErrorCode::Unsupported,
            400,
        ),
        (
            Method::Get,
            "/v2/app/blobs/uploads/1234",
            ErrorCode::Unsupported,
            404,
        ),
        (Method::Get, "/v2/app", ErrorCode::Unsupported, 404),
        (
            Method::Get,
            "/v2/manifests/latest",
            ErrorCode::Unsupported,
            404,
        ),
        (Method::Get, "/", ErrorCode::NameUnknown, 404),
        (
            Method::Get,
            "/charts/../secret",
            ErrorCode::NameUnknown,
            404,
        ),
        (
            Method::Get,
            "/charts/%2e%2e/secret",
            ErrorCode::NameUnknown,
            404,
        ),
        (Method::Get, "/charts//x", ErrorCode::NameUnknown, 404),
        (Method::Get, "//evil.example/x", ErrorCode::NameUnknown, 404),
    ];
    for (method, path, code, status) in cases {
        let (p, q) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path, None),
        };
        let err = parse(method, p, q).expect_err(path);
        assert_eq!((err.code, err.status), (code, status), "{path:?}");
    }
}

#[test]
fn media_types() {
    assert!(is_valid_media_type(
        "application/vnd.oci.image.manifest.v1+json"
    ));
    assert!(!is_valid_media_type("application"));
    assert!(!is_valid_media_type("a/b/c"));
    assert!(!is_valid_media_type("a/b\r\n"));
}

/// Arbitrary input never panics the parser and never yields a route built
/// from unvalidated parts.
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 8_000, .. ProptestConfig::default() })]
        /// Arbitrary bytes never panic the parser, and whatever it accepts
        /// is made only of validated parts.
        #[test]
        fn parser_accepts_only_valid_parts(path in "\\PC{0,300}", query in proptest::option::of("\\PC{0,64}")) {
            if let Ok(route) = parse(Method::Get, &path, query.as_deref()) {
                if let Some(name) = route.name() {
                    prop_assert!(is_valid_name(name));
                }
                match &route {
                    Route::Manifest { reference, .. } => {
                        let ok = match reference {
                            Reference::Tag(t) => is_valid_tag(t),
                            Reference::Digest(d) => is_valid_digest(d),
                        };
                        prop_assert!(ok);
                    }
                    Route::Blob { digest, .. } | Route::Referrers { digest, .. } => prop_assert!(is_valid_digest(digest)),
                    Route::File { path } => prop_assert!(!path.split('/').any(|s| s == ".." || s.is_empty()) && !path.contains('%')),
                    _ => {}
                }
            }
        }
    }
}
