//! Mappings: which public names a host serves and where they really live.
//!
//! Lookup is host + longest name prefix. The table is built once (from a
//! file, or from a store's items) and then only read on the request path.

use crate::reference::is_valid_name;
use crate::store::host_candidates;
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

/// How a mapping answers registry clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// 307 for everything.
    Redirect,
    /// Own /v2/ challenge and token endpoint; manifests proxied; blobs sent
    /// to the upstream's storage location.
    Proxy,
    /// Redirect where the client is known to cope, proxy otherwise.
    #[default]
    Auto,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Redirect => "redirect",
            Mode::Proxy => "proxy",
            Mode::Auto => "auto",
        }
    }
}

impl std::str::FromStr for Mode {
    type Err = MappingError;

    /// The names the mapping file uses (store items and `pullgate map` too).
    fn from_str(text: &str) -> Result<Self, MappingError> {
        match text {
            "redirect" => Ok(Mode::Redirect),
            "proxy" => Ok(Mode::Proxy),
            "auto" => Ok(Mode::Auto),
            other => Err(MappingError::Mode(other.to_string())),
        }
    }
}

/// A registry endpoint: scheme + authority, e.g. `https://registry-1.docker.io`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    /// `scheme://authority`, no trailing slash.
    pub base: String,
    /// Docker Hub: single-component names live under `library/`.
    pub docker_hub: bool,
}

/// Where a mapped repository lives: a registry and a repository prefix there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub registry: Arc<Registry>,
    /// Repository (prefix) at the registry; empty maps a whole namespace.
    pub repository: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Oci {
        upstream: Upstream,
        fallback: Option<Upstream>,
    },
    /// Classic Helm repositories and release files.
    Http {
        /// Base URL, no trailing slash; `{path}` in it is replaced by the
        /// requested path below the prefix.
        base: String,
        /// Rewrite `index.yaml` so chart URLs point back at the gateway.
        rewrite_index: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// Public host, lowercase, with a port only if the mapping names one.
    pub host: String,
    /// Public name prefix ("" = everything on the host).
    pub name: String,
    pub target: Target,
    pub mode: Mode,
    /// Primary marked down by the operator: the fallback serves instead.
    pub down: bool,
    /// "host/name", formatted once: every event names it.
    id: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MappingError {
    #[error("invalid host {0:?}: expected a DNS name or IP address, optionally with :port")]
    Host(String),
    #[error("invalid public name {0:?}: expected an OCI repository name such as acme/app")]
    Name(String),
    #[error("invalid upstream {0:?}: expected [https://]registry.example/repository, e.g. docker.io/acme/app")]
    Upstream(String),
    #[error("invalid http upstream {0:?}: expected an http(s):// base URL")]
    HttpUpstream(String),
    #[error("invalid mode {0:?}: expected redirect, proxy or auto")]
    Mode(String),
    #[error("invalid kind {0:?}: expected oci or http")]
    Kind(String),
    #[error("mapping {0} is defined twice")]
    Duplicate(String),
    #[error("mapping {0}: a fallback needs kind oci")]
    FallbackOnHttp(String),
    #[error("mapping {0}: marked down but has no fallback")]
    DownWithoutFallback(String),
    #[error("mapping file: {0}")]
    File(String),
}

impl Mapping {
    /// "host/name", the mapping's identity in logs and events.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The upstream that serves now: the fallback while the primary is down.
    pub fn active_upstream(&self) -> Option<&Upstream> {
        match &self.target {
            Target::Oci { upstream, fallback } => Some(match (self.down, fallback) {
                (true, Some(fallback)) => fallback,
                _ => upstream,
            }),
            Target::Http { .. } => None,
        }
    }

    /// The remainder of `name` below this mapping's prefix, if it matches.
    fn remainder<'n>(&self, name: &'n str) -> Option<&'n str> {
        if self.name.is_empty() {
            return Some(name);
        }
        match name.strip_prefix(self.name.as_str())? {
            "" => Some(""),
            rest => rest.strip_prefix('/'),
        }
    }

    /// Whether clients see the same repository name the upstream uses: the
    /// condition under which redirecting clients authenticate upstream
    /// themselves (their token scope names the public name).
    pub fn keeps_names(&self) -> bool {
        match self.active_upstream() {
            Some(up) => {
                // A whole Docker Hub namespace renames `x` to `library/x`.
                let adds_library = up.registry.docker_hub && up.repository.is_empty();
                up.repository == self.name && !adds_library
            }
            None => true,
        }
    }
}

impl Upstream {
    /// The upstream repository for a public name whose remainder below the
    /// mapping prefix is `rest`.
    pub fn repository_for<'a>(&'a self, rest: &'a str) -> Cow<'a, str> {
        let joined: Cow<str> = match (self.repository.is_empty(), rest.is_empty()) {
            (_, true) => Cow::Borrowed(&self.repository),
            (true, false) => Cow::Borrowed(rest),
            (false, false) => Cow::Owned(format!("{}/{}", self.repository, rest)),
        };
        if self.registry.docker_hub && !joined.contains('/') {
            Cow::Owned(format!("library/{joined}"))
        } else {
            joined
        }
    }

    /// Parses `[scheme://]registry[/repository]`. Without a registry part
    /// (`acme/app`), the name is on Docker Hub, as docker itself reads it.
    pub fn parse(spec: &str) -> Result<Self, MappingError> {
        let err = || MappingError::Upstream(spec.to_string());
        let (scheme, rest) = match spec.split_once("://") {
            Some(("https", rest)) => ("https", rest),
            Some(("http", rest)) => ("http", rest),
            Some(_) => return Err(err()),
            None => ("https", spec),
        };
        let rest = rest.trim_end_matches('/');
        let (first, repository) = rest.split_once('/').unwrap_or((rest, ""));
        let explicit_registry = scheme != "https" || spec.contains("://");
        let looks_like_registry =
            first.contains('.') || first.contains(':') || first == "localhost";
        let (authority, repository) = if explicit_registry || looks_like_registry {
            (first, repository)
        } else {
            ("docker.io", rest)
        };
        let authority = authority.to_ascii_lowercase();
        if !is_valid_authority(&authority) {
            return Err(err());
        }
        if !repository.is_empty() && !is_valid_name(repository) {
            return Err(err());
        }
        let docker_hub = matches!(
            authority.as_str(),
            "docker.io" | "index.docker.io" | "registry-1.docker.io"
        );
        let base = if docker_hub {
            "https://registry-1.docker.io".to_string()
        } else {
            format!("{scheme}://{authority}")
        };
        let repository = if docker_hub && !repository.is_empty() && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository.to_string()
        };
        Ok(Upstream {
            registry: Arc::new(Registry { base, docker_hub }),
            repository,
        })
    }
}

/// `host[:port]` or `[v6]:port`: the characters DNS names and IP literals use.
pub fn is_valid_authority(authority: &str) -> bool {
    if authority.is_empty() || authority.len() > 260 {
        return false;
    }
    let port_ok = |port: &str| {
        !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit())
    };
    if let Some(v6) = authority.strip_prefix('[') {
        let Some((addr, rest)) = v6.split_once(']') else {
            return false;
        };
        let addr_ok = !addr.is_empty() && addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
        return addr_ok && (rest.is_empty() || rest.strip_prefix(':').is_some_and(port_ok));
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    // Case-insensitive: Host headers may carry capitals (DNS ignores case).
    let host_ok = !host.is_empty()
        && !host.starts_with(['-', '.'])
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    host_ok && port.is_none_or(port_ok)
}

/// One host's mappings, longest prefix first.
#[derive(Debug, Clone, Default)]
pub struct HostMappings {
    oci: Vec<Mapping>,
    http: Vec<Mapping>,
}

/// A matched mapping and the public name's remainder below its prefix.
#[derive(Debug, Clone, Copy)]
pub struct Matched<'m, 'n> {
    pub mapping: &'m Mapping,
    pub rest: &'n str,
}

impl Matched<'_, '_> {
    pub fn upstream(&self) -> Option<&Upstream> {
        self.mapping.active_upstream()
    }
}

impl HostMappings {
    pub fn new(mut mappings: Vec<Mapping>) -> Self {
        mappings.sort_by(|a, b| b.name.len().cmp(&a.name.len()).then(a.name.cmp(&b.name)));
        let (http, oci) = mappings
            .into_iter()
            .partition(|m| matches!(m.target, Target::Http { .. }));
        HostMappings { oci, http }
    }

    pub fn oci(&self) -> &[Mapping] {
        &self.oci
    }

    /// The registry that serves every registry mapping of the host right
    /// now (fallbacks included while their primary is down), if there is
    /// just one: where `/v2/` can send a client, and the realm a token
    /// request without a scope (docker login) is meant for.
    pub fn single_registry(&self) -> Option<&Arc<Registry>> {
        let mut registries = self
            .oci
            .iter()
            .filter_map(Mapping::active_upstream)
            .map(|u| &u.registry);
        let first = registries.next()?;
        registries.all(|r| r.base == first.base).then_some(first)
    }

    pub fn http(&self) -> &[Mapping] {
        &self.http
    }

    /// Longest-prefix match of a repository name among the registry mappings.
    pub fn lookup<'m, 'n>(&'m self, name: &'n str) -> Option<Matched<'m, 'n>> {
        Self::longest(&self.oci, name)
    }

    /// Longest-prefix match of a file path among the `http` mappings.
    pub fn lookup_file<'m, 'n>(&'m self, path: &'n str) -> Option<Matched<'m, 'n>> {
        Self::longest(&self.http, path)
    }

    fn longest<'m, 'n>(list: &'m [Mapping], name: &'n str) -> Option<Matched<'m, 'n>> {
        list.iter().find_map(|mapping| {
            mapping
                .remainder(name)
                .map(|rest| Matched { mapping, rest })
        })
    }

    /// Reverse lookup: the public name for an upstream repository, used to
    /// rewrite names in upstream answers (scopes, tag lists).
    pub fn public_name_for(&self, mapping: &Mapping, upstream_repository: &str) -> Option<String> {
        let up = mapping.active_upstream()?;
        let rest = if up.repository.is_empty() {
            upstream_repository
                .strip_prefix("library/")
                .filter(|_| up.registry.docker_hub)
                .unwrap_or(upstream_repository)
        } else {
            match upstream_repository.strip_prefix(up.repository.as_str())? {
                "" => "",
                rest => rest.strip_prefix('/')?,
            }
        };
        Some(match (mapping.name.is_empty(), rest.is_empty()) {
            (true, _) => rest.to_string(),
            (false, true) => mapping.name.clone(),
            (false, false) => format!("{}/{}", mapping.name, rest),
        })
    }
}

/// All hosts' mappings.
#[derive(Debug, Clone, Default)]
pub struct MappingTable {
    hosts: HashMap<String, Arc<HostMappings>>,
}

impl MappingTable {
    pub fn new(mappings: Vec<Mapping>) -> Result<Self, MappingError> {
        let mut by_host: HashMap<String, Vec<Mapping>> = HashMap::new();
        for m in mappings {
            let list = by_host.entry(m.host.clone()).or_default();
            if list
                .iter()
                .any(|o| o.name == m.name && same_kind(&o.target, &m.target))
            {
                return Err(MappingError::Duplicate(m.id().to_string()));
            }
            list.push(m);
        }
        Ok(MappingTable {
            hosts: by_host
                .into_iter()
                .map(|(h, list)| (h, Arc::new(HostMappings::new(list))))
                .collect(),
        })
    }

    /// Finds a host's mappings from a Host header, trying the keys of
    /// [`host_candidates`] in order.
    pub fn host(&self, host_header: &str) -> Option<&Arc<HostMappings>> {
        host_candidates(host_header)
            .iter()
            .find_map(|key| self.hosts.get(key))
    }

    pub fn hosts(&self) -> impl Iterator<Item = (&String, &Arc<HostMappings>)> {
        self.hosts.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// Parses the TOML mapping file (`[[mappings]]` entries).
    pub fn from_toml(text: &str) -> Result<Self, MappingError> {
        let mappings = specs_from_toml(text)?
            .into_iter()
            .map(MappingSpec::validate)
            .collect::<Result<Vec<_>, _>>()?;
        MappingTable::new(mappings)
    }
}

/// The entries of a TOML mapping file as written, before validation
/// (`pullgate map` edits files entry by entry).
pub fn specs_from_toml(text: &str) -> Result<Vec<MappingSpec>, MappingError> {
    #[derive(Deserialize)]
    struct File {
        #[serde(default)]
        mappings: Vec<MappingSpec>,
    }
    let file: File = toml::from_str(text).map_err(|e| MappingError::File(e.to_string()))?;
    Ok(file.mappings)
}

fn same_kind(a: &Target, b: &Target) -> bool {
    matches!(
        (a, b),
        (Target::Oci { .. }, Target::Oci { .. }) | (Target::Http { .. }, Target::Http { .. })
    )
}

/// A mapping as written by an operator (file, CLI, store item), before
/// validation.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MappingSpec {
    pub host: String,
    #[serde(default)]
    pub name: String,
    pub upstream: String,
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub fallback: Option<String>,
    #[serde(default)]
    pub down: bool,
    #[serde(default = "default_true")]
    pub rewrite_index: bool,
}

fn default_true() -> bool {
    true
}

impl MappingSpec {
    pub fn validate(self) -> Result<Mapping, MappingError> {
        let host = self.host.trim().to_ascii_lowercase();
        if !is_valid_authority(&host) {
            return Err(MappingError::Host(self.host));
        }
        let name = self.name.trim_matches('/').to_string();
        let kind = self.kind.as_deref().unwrap_or("oci");
        let target = match kind {
            "oci" => {
                if !name.is_empty() && !is_valid_name(&name) {
                    return Err(MappingError::Name(self.name));
                }
                Target::Oci {
                    upstream: Upstream::parse(&self.upstream)?,
                    fallback: self.fallback.as_deref().map(Upstream::parse).transpose()?,
                }
            }
            "http" => {
                if !name.is_empty() && !name.split('/').all(|s| is_valid_name(s) || s.contains('.'))
                {
                    return Err(MappingError::Name(self.name));
                }
                Target::Http {
                    base: parse_http_base(&self.upstream)?,
                    rewrite_index: self.rewrite_index,
                }
            }
            other => return Err(MappingError::Kind(other.to_string())),
        };
        let id = if name.is_empty() {
            host.clone()
        } else {
            format!("{host}/{name}")
        };
        let mapping = Mapping {
            host,
            name,
            target,
            mode: self.mode,
            down: self.down,
            id,
        };
        match &mapping.target {
            Target::Http { .. } if self.fallback.is_some() => {
                Err(MappingError::FallbackOnHttp(mapping.id().to_string()))
            }
            Target::Oci { fallback: None, .. } if mapping.down => {
                Err(MappingError::DownWithoutFallback(mapping.id().to_string()))
            }
            _ => Ok(mapping),
        }
    }
}

fn parse_http_base(spec: &str) -> Result<String, MappingError> {
    let err = || MappingError::HttpUpstream(spec.to_string());
    let rest = spec
        .strip_prefix("https://")
        .or_else(|| spec.strip_prefix("http://"))
        .ok_or_else(err)?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if !is_valid_authority(&authority.to_ascii_lowercase()) {
        return Err(err());
    }
    let path_ok = path.bytes().all(|b| {
        b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/' | b'+' | b'{' | b'}')
    });
    if !path_ok || path.contains("..") {
        return Err(err());
    }
    Ok(spec.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
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
}
