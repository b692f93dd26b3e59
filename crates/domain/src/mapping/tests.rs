use super::*;

fn table(toml: &str) -> MappingTable {
    MappingTable::from_toml(toml).expect("valid mapping file")
}

#[test]
fn upstream_parsing() {
    let cases = [
        (
            "docker.io/acme/app",
            "https://registry-1.docker.io",
            "acme/app",
        ),
        (
            "docker.io/alpine",
            "https://registry-1.docker.io",
            "library/alpine",
        ),
        ("alpine", "https://registry-1.docker.io", "library/alpine"),
        ("acme/app", "https://registry-1.docker.io", "acme/app"),
        ("ghcr.io/acme/app", "https://ghcr.io", "acme/app"),
        ("http://127.0.0.1:5000/app", "http://127.0.0.1:5000", "app"),
        ("localhost:5000/a/b", "https://localhost:5000", "a/b"),
        ("quay.io", "https://quay.io", ""),
        (
            "https://public.ecr.aws/acme/app/",
            "https://public.ecr.aws",
            "acme/app",
        ),
    ];
    for (spec, base, repo) in cases {
        let up = Upstream::parse(spec).unwrap();
        assert_eq!(
            (up.registry.base.as_str(), up.repository.as_str()),
            (base, repo),
            "{spec}"
        );
    }
    for bad in [
        "ftp://x/y",
        "ghcr.io/Acme",
        "http://",
        "evil.com/../x",
        "a b/c",
        "ghcr.io@evil.com/x",
    ] {
        assert!(Upstream::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn longest_prefix_wins() {
    let t = table(
        r#"
        [[mappings]]
        host = "images.acme.dev"
        name = ""
        upstream = "ghcr.io/acme"
        [[mappings]]
        host = "images.acme.dev"
        name = "app"
        upstream = "docker.io/acme/app"
        [[mappings]]
        host = "images.acme.dev"
        name = "app/tools"
        upstream = "quay.io/acme/tools"
        "#,
    );
    let host = t.host("Images.ACME.dev:443").unwrap();
    let cases = [
        ("app", "https://registry-1.docker.io", "acme/app"),
        ("app/sub", "https://registry-1.docker.io", "acme/app/sub"),
        ("app/tools", "https://quay.io", "acme/tools"),
        ("app/tools/x", "https://quay.io", "acme/tools/x"),
        ("apple", "https://ghcr.io", "acme/apple"),
        ("other/thing", "https://ghcr.io", "acme/other/thing"),
    ];
    for (name, base, repo) in cases {
        let m = host.lookup(name).unwrap();
        let up = m.upstream().unwrap();
        assert_eq!(up.registry.base, base, "{name}");
        assert_eq!(up.repository_for(m.rest), repo, "{name}");
        assert_eq!(host.public_name_for(m.mapping, repo).as_deref(), Some(name));
    }
    assert!(t.host("other.dev").is_none());
}

#[test]
fn unmapped_names_are_not_found() {
    let t = table(
        r#"
        [[mappings]]
        host = "images.acme.dev"
        name = "app"
        upstream = "docker.io/acme/app"
        "#,
    );
    let host = t.host("images.acme.dev").unwrap();
    assert!(host.lookup("apple").is_none());
    assert!(host.lookup("ap").is_none());
    assert!(host.lookup("other").is_none());
}

#[test]
fn docker_hub_whole_namespace_adds_library() {
    let t = table(
        r#"
        [[mappings]]
        host = "localhost"
        upstream = "docker.io"
        "#,
    );
    let host = t.host("localhost:8080").unwrap();
    let m = host.lookup("alpine").unwrap();
    assert_eq!(
        m.upstream().unwrap().repository_for(m.rest),
        "library/alpine"
    );
    assert!(!m.mapping.keeps_names());
    let m = host.lookup("library/alpine").unwrap();
    assert_eq!(
        m.upstream().unwrap().repository_for(m.rest),
        "library/alpine"
    );
}

#[test]
fn fallback_serves_while_down() {
    let t = table(
        r#"
        [[mappings]]
        host = "h"
        name = "app"
        upstream = "docker.io/acme/app"
        fallback = "ghcr.io/acme/app"
        down = true
        "#,
    );
    let m = t.host("h").unwrap().lookup("app").unwrap();
    assert_eq!(m.upstream().unwrap().registry.base, "https://ghcr.io");
}

#[test]
fn bad_files_are_refused_with_a_reason() {
    let cases = [
        (
            r#"[[mappings]]
host = "h/x"
upstream = "ghcr.io/a""#,
            "invalid host",
        ),
        (
            r#"[[mappings]]
host = "h"
name = "Bad"
upstream = "ghcr.io/a""#,
            "invalid public name",
        ),
        (
            r#"[[mappings]]
host = "h"
upstream = "ftp://x""#,
            "invalid upstream",
        ),
        (
            r#"[[mappings]]
host = "h"
upstream = "ghcr.io/a"
mode = "yolo""#,
            "mapping file",
        ),
        (
            r#"[[mappings]]
host = "h"
upstream = "ghcr.io/a"
down = true"#,
            "no fallback",
        ),
        (
            r#"[[mappings]]
host = "h"
upstream = "ghcr.io/a"
[[mappings]]
host = "h"
upstream = "ghcr.io/b""#,
            "defined twice",
        ),
    ];
    for (text, needle) in cases {
        let err = MappingTable::from_toml(text).unwrap_err().to_string();
        assert!(err.contains(needle), "{err} should mention {needle}");
    }
}
