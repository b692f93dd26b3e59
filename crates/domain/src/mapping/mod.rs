//! Mappings: which public names a host serves and where they really live.
//!
//! Lookup is host + longest name prefix. The table is built once (from a
//! file, or from a store's items) and then only read on the request path.

mod failover;
mod spec;

pub use spec::{specs_from_toml, MappingSpec};

use crate::credentials::CredentialSource;
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
    /// Where the credentials the gateway uses here for anonymous clients
    /// live (`credentials` on the primary; an ECR fallback gets `ecr`).
    pub credentials: Option<Arc<CredentialSource>>,
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
    /// Primary not serving: the fallback serves instead. Set by the
    /// operator (`down = true`), or by the gateway while the primary fails
    /// (then `failed_over` too: `failover.rs`).
    pub down: bool,
    /// The gateway switched this mapping to its fallback because the
    /// primary failed (not the operator's `down`).
    pub failed_over: bool,
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
    #[error("invalid credentials {0:?}: {1}")]
    Credentials(String, &'static str),
    #[error("mapping {0}: credentials need kind oci (http mappings are redirects)")]
    CredentialsOnHttp(String),
    #[error("mapping {0}: credentials cannot be used in redirect mode (a redirected client talks to the upstream itself); use proxy or auto")]
    CredentialsWithRedirect(String),
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

    /// Whether the upstream serving now is asked with the mapping's
    /// credentials (for anonymous clients): such a mapping is proxied.
    pub fn has_credentials(&self) -> bool {
        self.active_upstream()
            .is_some_and(|up| up.credentials.is_some())
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

    /// The registry's `host[:port]`.
    pub fn authority(&self) -> &str {
        let base = &self.registry.base;
        base.split_once("://").map_or(base.as_str(), |(_, a)| a)
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
            credentials: None,
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

fn same_kind(a: &Target, b: &Target) -> bool {
    matches!(
        (a, b),
        (Target::Oci { .. }, Target::Oci { .. }) | (Target::Http { .. }, Target::Http { .. })
    )
}

#[cfg(test)]
mod tests;
