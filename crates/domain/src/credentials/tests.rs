use super::*;
use crate::mapping::{MappingError, MappingTable};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

fn ecr(account: &str, region: &str) -> CredentialSource {
    CredentialSource::Ecr(EcrRegistry {
        account: Some(account.into()),
        region: Some(region.into()),
    })
}

/// The credentials a one-mapping file gives its primary upstream.
fn mapped(
    upstream: &str,
    mode: &str,
    credentials: Option<&str>,
) -> Result<Option<CredentialSource>, MappingError> {
    let field = credentials.map_or(String::new(), |c| format!("credentials = {c:?}\n"));
    let toml = format!(
        "[[mappings]]\nhost = \"h\"\nname = \"app\"\nupstream = \"{upstream}\"\nmode = \"{mode}\"\n{field}"
    );
    let table = MappingTable::from_toml(&toml)?;
    let mapping = &table.host("h").unwrap().oci()[0];
    Ok(mapping
        .active_upstream()
        .and_then(|u| u.credentials.as_deref().cloned()))
}

/// What a mapping file's credentials field validates to.
type Outcome = Result<Option<CredentialSource>, MappingError>;

#[test]
fn the_credentials_field_grammar() {
    let ecr_host = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/acme/app";
    let err = |value: &str, why: &'static str| Err(MappingError::Credentials(value.into(), why));
    // (upstream, mode, credentials, result)
    let cases: Vec<(&str, &str, Option<&str>, Outcome)> = vec![
        ("ghcr.io/acme/app", "proxy", None, Ok(None)),
        ("ghcr.io/acme/app", "proxy", Some("env:GHCR"), Ok(Some(CredentialSource::Env("GHCR".into())))),
        ("ghcr.io/acme/app", "auto", Some("env:_X1"), Ok(Some(CredentialSource::Env("_X1".into())))),
        ("ghcr.io/acme/app", "proxy", Some(" file:/etc/pullgate/ghcr.json "), Ok(Some(CredentialSource::File("/etc/pullgate/ghcr.json".into())))),
        (
            "ghcr.io/acme/app",
            "proxy",
            Some("secretsmanager:arn:aws:secretsmanager:eu-west-1:123456789012:secret:pullgate/hub-AbCdEf"),
            Ok(Some(CredentialSource::SecretsManager("arn:aws:secretsmanager:eu-west-1:123456789012:secret:pullgate/hub-AbCdEf".into()))),
        ),
        ("ghcr.io/acme/app", "proxy", Some("secretsmanager:pullgate/hub"), Ok(Some(CredentialSource::SecretsManager("pullgate/hub".into())))),
        // `ecr` on a host that is no ECR registry: the role's own registry.
        ("http://127.0.0.1:5000/app", "proxy", Some("ecr"), Ok(Some(CredentialSource::Ecr(EcrRegistry::default())))),
        // An ECR host implies `ecr`, its account and region read from it…
        (ecr_host, "proxy", None, Ok(Some(ecr("123456789012", "eu-west-1")))),
        (ecr_host, "auto", None, Ok(Some(ecr("123456789012", "eu-west-1")))),
        (ecr_host, "proxy", Some("ecr"), Ok(Some(ecr("123456789012", "eu-west-1")))),
        // …but not in redirect mode (the client brings its own), nor
        // against `none` or another source.
        (ecr_host, "redirect", None, Ok(None)),
        (ecr_host, "proxy", Some("none"), Ok(None)),
        (ecr_host, "proxy", Some("env:ECR"), Ok(Some(CredentialSource::Env("ECR".into())))),
        ("public.ecr.aws/acme/app", "proxy", None, Ok(None)),
        ("123456789012.dkr.ecr-fips.us-east-1.amazonaws.com/a", "proxy", None, Ok(Some(ecr("123456789012", "us-east-1")))),
        ("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/a", "proxy", None, Ok(Some(ecr("123456789012", "cn-north-1")))),
        ("12345.dkr.ecr.us-east-1.amazonaws.com/a", "proxy", None, Ok(None)),
        ("evil.123456789012.dkr.ecr.us-east-1.amazonaws.com/a", "proxy", None, Ok(None)),
        // Refusals.
        ("ghcr.io/acme/app", "proxy", Some(""), err("", "empty: expected env:PREFIX, file:/path, secretsmanager:ID, ecr or none")),
        ("ghcr.io/acme/app", "proxy", Some("vault:x"), err("vault:…", "unknown scheme: expected env:PREFIX, file:/path, secretsmanager:ID, ecr or none")),
        // A secret written into the field is never quoted back.
        ("ghcr.io/acme/app", "proxy", Some("hunter2"), err("…", "unknown scheme: expected env:PREFIX, file:/path, secretsmanager:ID, ecr or none")),
        ("ghcr.io/acme/app", "proxy", Some("env:"), err("env:", "empty name after the scheme")),
        ("ghcr.io/acme/app", "proxy", Some("file:"), err("file:", "empty name after the scheme")),
        ("ghcr.io/acme/app", "proxy", Some("secretsmanager:"), err("secretsmanager:", "empty name after the scheme")),
        ("ghcr.io/acme/app", "proxy", Some("env:1X"), err("env:1X", "env: needs a variable prefix of letters, digits and _ (PREFIX_USERNAME, PREFIX_PASSWORD)")),
        ("ghcr.io/acme/app", "proxy", Some("env:A-B"), err("env:A-B", "env: needs a variable prefix of letters, digits and _ (PREFIX_USERNAME, PREFIX_PASSWORD)")),
        ("ghcr.io/acme/app", "proxy", Some("file:creds.json"), err("file:creds.json", "file: needs an absolute path")),
        ("ghcr.io/acme/app", "proxy", Some("secretsmanager:a b"), err("secretsmanager:a b", "secretsmanager: needs a secret name or ARN")),
        ("ghcr.io/acme/app", "redirect", Some("env:GHCR"), Err(MappingError::CredentialsWithRedirect("h/app".into()))),
        (ecr_host, "redirect", Some("ecr"), Err(MappingError::CredentialsWithRedirect("h/app".into()))),
        ("ghcr.io/acme/app", "redirect", Some("none"), Ok(None)),
    ];
    for (upstream, mode, credentials, expected) in cases {
        assert_eq!(
            mapped(upstream, mode, credentials),
            expected,
            "{upstream} {mode} {credentials:?}"
        );
    }
}

#[test]
fn credentials_are_refused_on_http_mappings() {
    let toml = "[[mappings]]\nhost = \"h\"\nname = \"charts\"\nkind = \"http\"\n\
                upstream = \"https://charts.example\"\ncredentials = \"env:X\"\n";
    assert_eq!(
        MappingTable::from_toml(toml).unwrap_err(),
        MappingError::CredentialsOnHttp("h/charts".into())
    );
}

#[test]
fn the_mapping_credentials_are_the_primary_s_and_an_ecr_fallback_gets_ecr() {
    let toml = "[[mappings]]\nhost = \"h\"\nname = \"app\"\nupstream = \"ghcr.io/acme/app\"\n\
                fallback = \"quay.io/acme/app\"\ncredentials = \"env:GHCR\"\ndown = true\n\
                [[mappings]]\nhost = \"h\"\nname = \"b\"\nupstream = \"ghcr.io/acme/b\"\n\
                fallback = \"123456789012.dkr.ecr.us-east-1.amazonaws.com/b\"\ndown = true\n";
    let table = MappingTable::from_toml(toml).unwrap();
    let host = table.host("h").unwrap();
    let app = host.lookup("app").unwrap().mapping;
    assert_eq!(app.active_upstream().unwrap().credentials, None);
    assert!(!app.has_credentials());
    let b = host.lookup("b").unwrap().mapping;
    assert_eq!(
        b.active_upstream().unwrap().credentials.as_deref(),
        Some(&ecr("123456789012", "us-east-1"))
    );
}

#[test]
fn the_reference_reads_back_as_written() {
    for value in [
        "env:HUB",
        "file:/run/secrets/hub.json",
        "secretsmanager:pullgate/hub",
        "ecr",
    ] {
        let source = CredentialSource::parse(value, "ghcr.io").unwrap().unwrap();
        assert_eq!(source.to_string(), value);
    }
}

#[test]
fn debug_never_shows_the_password_and_basic_is_rfc_7617() {
    let credentials = Credentials {
        username: "alice".into(),
        password: "wonderland".into(),
    };
    let shown = format!(
        "{credentials:?} {:?}",
        Resolved {
            credentials: credentials.clone(),
            valid_for: None
        }
    );
    assert!(!shown.contains("wonderland"), "{shown}");
    assert!(shown.contains("alice"), "{shown}");
    assert_eq!(
        credentials.basic_authorization(),
        "Basic YWxpY2U6d29uZGVybGFuZA=="
    );
}

#[test]
fn json_credentials_and_errors_that_quote_nothing() {
    assert_eq!(
        Credentials::from_json(r#"{"username":"u","password":"p","extra":1}"#),
        Ok(Credentials {
            username: "u".into(),
            password: "p".into()
        })
    );
    for bad in [
        r#"{"username":"u","password":12345678}"#,
        "hunter2",
        r#"{"username":"u"}"#,
    ] {
        let error = Credentials::from_json(bad).unwrap_err();
        assert!(
            !error.contains("12345678") && !error.contains("hunter2"),
            "{error}"
        );
    }
    assert_eq!(
        Credentials::from_json(r#"{"username":"u","password":""}"#),
        Err("username or password is empty")
    );
}

#[test]
fn the_local_resolver_reads_variables_and_files_and_names_the_flag_for_aws() {
    let local = LocalCredentials::with_env("build with --features aws", |name| match name {
        "HUB_USERNAME" => Some("alice".into()),
        "HUB_PASSWORD" => Some("wonderland".into()),
        "HALF_USERNAME" => Some("bob".into()),
        _ => None,
    });
    let got = local
        .resolve_now(&CredentialSource::Env("HUB".into()))
        .unwrap();
    assert_eq!(
        (
            got.credentials.username.as_str(),
            got.credentials.password.as_str()
        ),
        ("alice", "wonderland")
    );
    let missing = local
        .resolve_now(&CredentialSource::Env("HALF".into()))
        .unwrap_err();
    assert_eq!(
        missing.to_string(),
        "credentials env:HALF: HALF_PASSWORD is not set or empty"
    );

    let dir = std::env::temp_dir().join(format!("pullgate-creds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("hub.json");
    std::fs::write(&file, r#"{"username":"carol","password":"s3cr3t-file"}"#).unwrap();
    let source = CredentialSource::File(file.display().to_string());
    assert_eq!(
        local.resolve_now(&source).unwrap().credentials.username,
        "carol"
    );
    std::fs::write(&file, "s3cr3t-file").unwrap();
    let invalid = local.resolve_now(&source).unwrap_err().to_string();
    assert!(!invalid.contains("s3cr3t"), "{invalid}");
    assert!(
        invalid.ends_with("not a JSON object with string fields username and password"),
        "{invalid}"
    );
    let absent = local
        .resolve_now(&CredentialSource::File("/nonexistent/pullgate.json".into()))
        .unwrap_err()
        .to_string();
    assert!(
        absent.starts_with("credentials file:/nonexistent/pullgate.json: cannot read"),
        "{absent}"
    );
    std::fs::remove_dir_all(&dir).unwrap();

    let aws = local
        .resolve_now(&CredentialSource::SecretsManager("hub".into()))
        .unwrap_err();
    assert_eq!(
        aws.to_string(),
        "credentials secretsmanager:hub: build with --features aws"
    );
}

/// A resolver counting its calls; `valid_for` as an ECR token would give.
struct Counting {
    calls: AtomicUsize,
    valid_for: Option<std::time::Duration>,
    failing: std::sync::atomic::AtomicBool,
}

impl CredentialResolver for Counting {
    fn resolve<'a>(&'a self, _: &'a CredentialSource) -> ResolveFuture<'a> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        let failing = self.failing.load(Ordering::SeqCst);
        let valid_for = self.valid_for;
        Box::pin(async move {
            if failing {
                return Err(CredentialError::Backend {
                    source_ref: "x".into(),
                    reason: "down".into(),
                });
            }
            Ok(Resolved {
                credentials: Credentials {
                    username: "u".into(),
                    password: format!("p{n}"),
                },
                valid_for,
            })
        })
    }
}

fn counting(valid_for: Option<std::time::Duration>) -> Arc<Counting> {
    Arc::new(Counting {
        calls: AtomicUsize::new(0),
        valid_for,
        failing: Default::default(),
    })
}

#[tokio::test(start_paused = true)]
async fn the_cache_asks_once_per_ttl_and_keeps_ecr_tokens_until_shortly_before_expiry() {
    use std::time::Duration;
    let source = CredentialSource::Env("X".into());
    // (valid_for, when the second call happens)
    for (valid_for, refresh_after) in [
        (None, cache::TTL),
        (
            Some(Duration::from_secs(12 * 3600)),
            Duration::from_secs(12 * 3600) - cache::EXPIRY_MARGIN,
        ),
        // An expiry already past (moto's): still a minute, not every request.
        (Some(Duration::ZERO), cache::MIN_TTL),
    ] {
        let resolver = counting(valid_for);
        let cache = CredentialCache::new(resolver.clone());
        for _ in 0..100 {
            assert_eq!(cache.get(&source).await.unwrap().password, "p0");
        }
        assert_eq!(resolver.calls.load(Ordering::SeqCst), 1, "{valid_for:?}");
        tokio::time::advance(refresh_after - Duration::from_secs(1)).await;
        cache.get(&source).await.unwrap();
        assert_eq!(resolver.calls.load(Ordering::SeqCst), 1, "{valid_for:?}");
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(
            cache.get(&source).await.unwrap().password,
            "p1",
            "{valid_for:?}"
        );
        assert_eq!(resolver.calls.load(Ordering::SeqCst), 2, "{valid_for:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_failing_source_costs_one_call_per_retry_interval_and_the_last_copy_serves() {
    let source = CredentialSource::Env("X".into());
    let resolver = counting(None);
    resolver.failing.store(true, Ordering::SeqCst);
    let cache = CredentialCache::new(resolver.clone());
    for _ in 0..10 {
        assert!(cache.get(&source).await.is_err());
    }
    assert_eq!(resolver.calls.load(Ordering::SeqCst), 1);
    tokio::time::advance(cache::RETRY_AFTER).await;
    resolver.failing.store(false, Ordering::SeqCst);
    assert_eq!(cache.get(&source).await.unwrap().password, "p1");
    // Due for a refresh that fails: the last credentials keep serving.
    resolver.failing.store(true, Ordering::SeqCst);
    tokio::time::advance(cache::TTL).await;
    assert_eq!(cache.get(&source).await.unwrap().password, "p1");
    assert_eq!(cache.get(&source).await.unwrap().password, "p1");
    assert_eq!(resolver.calls.load(Ordering::SeqCst), 3);
}
