//! Redirect or proxy: the per-request decision, kept consistent per host.
//!
//! The `/v2/` ping has no repository name, yet what it answers decides how a
//! client authenticates for the whole host: a client that got our challenge
//! must be proxied, one that was sent upstream must be redirected. So `auto`
//! redirects a client only when EVERY registry mapping of the host would
//! redirect it.

use crate::client::ClientFamily;
use crate::mapping::{HostMappings, Mapping, Mode};
use crate::route::Method;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    Redirect,
    Proxy,
}

impl Path {
    pub fn as_str(self) -> &'static str {
        match self {
            Path::Redirect => "redirect",
            Path::Proxy => "proxy",
        }
    }
}

/// The path a request for `mapping` takes for this client.
pub fn path_for(host: &HostMappings, mapping: &Mapping, client: ClientFamily) -> Path {
    match mapping.mode {
        Mode::Redirect => Path::Redirect,
        Mode::Proxy => Path::Proxy,
        // The publisher's credentials only help a client we proxy.
        Mode::Auto if mapping.has_credentials() => Path::Proxy,
        Mode::Auto if host_redirects(host, client) => Path::Redirect,
        Mode::Auto => Path::Proxy,
    }
}

/// Whether every registry mapping of the host redirects this client.
fn host_redirects(host: &HostMappings, client: ClientFamily) -> bool {
    host.oci().iter().all(|m| match m.mode {
        Mode::Redirect => true,
        Mode::Proxy => false,
        Mode::Auto => {
            !m.has_credentials()
                && client.follows_redirects_with_auth()
                && (m.keeps_names() || client.copes_with_renames())
        }
    })
}

/// What `GET /v2/` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PingAnswer<'a> {
    /// 307 to the upstream's `/v2/`: every mapping redirects this client and
    /// all of them live on this one registry.
    RedirectTo(&'a str),
    /// 200 `{}`: redirects, but to several registries.
    Ok,
    /// 200 `{}` on a proxied host to a client that already holds a bearer
    /// token (docker login checks this way): pulls are authorized upstream,
    /// so there is nothing for us to check.
    Welcome,
    /// 401 with our own Bearer challenge.
    Challenge,
}

impl PingAnswer<'_> {
    /// The path the ping took, for the access line and the event: none when
    /// it answers for several registries at once.
    pub fn path(&self) -> Option<Path> {
        match self {
            PingAnswer::RedirectTo(_) => Some(Path::Redirect),
            PingAnswer::Ok => None,
            PingAnswer::Welcome | PingAnswer::Challenge => Some(Path::Proxy),
        }
    }
}

/// `holds_token`: the client sent `Authorization: Bearer …`.
pub fn ping(host: &HostMappings, client: ClientFamily, holds_token: bool) -> PingAnswer<'_> {
    if host.oci().is_empty() || !host_redirects(host, client) {
        return if holds_token {
            PingAnswer::Welcome
        } else {
            PingAnswer::Challenge
        };
    }
    match host.single_registry() {
        Some(registry) => PingAnswer::RedirectTo(&registry.base),
        None => PingAnswer::Ok,
    }
}

/// The path a request for a file below an `http` mapping takes: a classic
/// Helm repository's `index.yaml` (at any depth) is fetched on `GET` and
/// its chart URLs rewritten to come back through us (so downloads count),
/// when the mapping asks for that and its base is a URL prefix chart URLs
/// can start with (a `{path}` template is not); everything else is a 307.
pub fn file_path(base: &str, rewrite_index: bool, rest: &str, method: Method) -> Path {
    let is_index = rest == "index.yaml" || rest.ends_with("/index.yaml");
    if rewrite_index && is_index && !base.contains("{path}") && method == Method::Get {
        Path::Proxy
    } else {
        Path::Redirect
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::MappingTable;
    use ClientFamily::*;

    fn host(entries: &[(&str, &str, &str)]) -> HostMappings {
        let toml: String = entries
            .iter()
            .map(|(name, upstream, mode)| {
                format!("[[mappings]]\nhost=\"h\"\nname=\"{name}\"\nupstream=\"{upstream}\"\nmode=\"{mode}\"\n")
            })
            .collect();
        let t = MappingTable::from_toml(&toml).unwrap();
        (**t.host("h").unwrap()).clone()
    }

    #[test]
    fn auto_redirects_only_clients_that_cope_with_unchanged_names() {
        let same = host(&[("acme/app", "ghcr.io/acme/app", "auto")]);
        let renamed = host(&[("app", "ghcr.io/acme/app", "auto")]);
        let cases = [
            (&same, Docker, Path::Redirect),
            (&same, Containerd, Path::Redirect),
            (&same, ContainersImage, Path::Proxy),
            (&same, Other, Path::Proxy),
            (&renamed, Docker, Path::Proxy),
            (&renamed, Containerd, Path::Redirect),
            (&renamed, ContainersImage, Path::Proxy),
        ];
        for (h, client, expected) in cases {
            let m = &h.oci()[0];
            assert_eq!(path_for(h, m, client), expected, "{} {client:?}", m.name);
        }
    }

    #[test]
    fn auto_proxies_a_mapping_with_credentials_and_so_its_whole_host() {
        let toml = "[[mappings]]\nhost=\"h\"\nname=\"acme/app\"\nupstream=\"ghcr.io/acme/app\"\n\
                    credentials=\"env:GHCR\"\n\
                    [[mappings]]\nhost=\"h\"\nname=\"acme/tools\"\nupstream=\"ghcr.io/acme/tools\"\n";
        let t = MappingTable::from_toml(toml).unwrap();
        let h = t.host("h").unwrap();
        for m in h.oci() {
            for client in [Docker, Containerd, ContainersImage, Other] {
                assert_eq!(path_for(h, m, client), Path::Proxy, "{} {client:?}", m.name);
            }
        }
        assert_eq!(ping(h, Containerd, false), PingAnswer::Challenge);
    }

    #[test]
    fn explicit_modes_win() {
        let h = host(&[("a", "ghcr.io/x", "redirect"), ("b", "ghcr.io/b", "proxy")]);
        assert_eq!(path_for(&h, &h.oci()[0], ContainersImage), Path::Redirect);
        assert_eq!(path_for(&h, &h.oci()[1], Docker), Path::Proxy);
    }

    #[test]
    fn one_renamed_mapping_makes_the_whole_host_proxy_for_auto() {
        let h = host(&[
            ("acme/app", "ghcr.io/acme/app", "auto"),
            ("app", "ghcr.io/acme/app", "auto"),
        ]);
        for m in h.oci() {
            assert_eq!(path_for(&h, m, Docker), Path::Proxy);
        }
        assert_eq!(ping(&h, Docker, false), PingAnswer::Challenge);
    }

    #[test]
    fn ping_answers() {
        let one = host(&[("acme/app", "ghcr.io/acme/app", "redirect")]);
        let two = host(&[
            ("a", "ghcr.io/a", "redirect"),
            ("b", "quay.io/b", "redirect"),
        ]);
        let proxy = host(&[("a", "ghcr.io/a", "proxy")]);
        let auto = host(&[("acme/app", "ghcr.io/acme/app", "auto")]);
        // Files only: nothing to redirect to.
        let none = HostMappings::default();
        let ghcr = PingAnswer::RedirectTo("https://ghcr.io");
        // (host, client, holds a bearer token, answer, path taken)
        let cases = [
            (
                &one,
                ContainersImage,
                false,
                ghcr.clone(),
                Some(Path::Redirect),
            ),
            // A token changes nothing where the client is sent upstream.
            (
                &one,
                ContainersImage,
                true,
                ghcr.clone(),
                Some(Path::Redirect),
            ),
            (&two, Other, false, PingAnswer::Ok, None),
            (&two, Other, true, PingAnswer::Ok, None),
            (
                &proxy,
                Docker,
                false,
                PingAnswer::Challenge,
                Some(Path::Proxy),
            ),
            (&proxy, Docker, true, PingAnswer::Welcome, Some(Path::Proxy)),
            (&auto, Docker, false, ghcr.clone(), Some(Path::Redirect)),
            (
                &auto,
                ContainersImage,
                false,
                PingAnswer::Challenge,
                Some(Path::Proxy),
            ),
            (
                &auto,
                ContainersImage,
                true,
                PingAnswer::Welcome,
                Some(Path::Proxy),
            ),
            (
                &none,
                Docker,
                false,
                PingAnswer::Challenge,
                Some(Path::Proxy),
            ),
            (&none, Docker, true, PingAnswer::Welcome, Some(Path::Proxy)),
        ];
        for (i, (h, client, holds_token, answer, path)) in cases.into_iter().enumerate() {
            let got = ping(h, client, holds_token);
            assert_eq!(got, answer, "case {i}: {client:?} token={holds_token}");
            assert_eq!(got.path(), path, "case {i}");
        }
    }

    #[test]
    fn single_registry_is_the_one_registry_serving_now() {
        let one = host(&[("a", "ghcr.io/a", "proxy"), ("b", "ghcr.io/b", "redirect")]);
        assert_eq!(
            one.single_registry().map(|r| r.base.as_str()),
            Some("https://ghcr.io")
        );
        let two = host(&[("a", "ghcr.io/a", "proxy"), ("b", "quay.io/b", "proxy")]);
        assert_eq!(two.single_registry(), None);
        assert_eq!(HostMappings::default().single_registry(), None);
        // A primary marked down counts as its fallback's registry.
        let toml = "[[mappings]]\nhost=\"h\"\nname=\"a\"\nupstream=\"ghcr.io/a\"\n\
                    [[mappings]]\nhost=\"h\"\nname=\"b\"\nupstream=\"quay.io/b\"\n\
                    fallback=\"ghcr.io/b\"\ndown=true\n";
        let t = MappingTable::from_toml(toml).unwrap();
        assert_eq!(
            t.host("h")
                .unwrap()
                .single_registry()
                .map(|r| r.base.as_str()),
            Some("https://ghcr.io")
        );
    }

    #[test]
    fn only_a_get_of_a_helm_index_is_fetched_and_rewritten() {
        let base = "https://charts.acme.dev/stable";
        let template = "https://h/{path}?raw=1";
        // (base, rewrite_index, rest, method, path)
        let cases = [
            (base, true, "index.yaml", Method::Get, Path::Proxy),
            (base, true, "sub/index.yaml", Method::Get, Path::Proxy),
            (base, true, "index.yaml", Method::Head, Path::Redirect),
            (base, true, "index.yaml", Method::Post, Path::Redirect),
            (base, false, "index.yaml", Method::Get, Path::Redirect),
            (base, true, "myindex.yaml", Method::Get, Path::Redirect),
            (base, true, "index.yaml.bak", Method::Get, Path::Redirect),
            (base, true, "app-1.0.0.tgz", Method::Get, Path::Redirect),
            (base, true, "", Method::Get, Path::Redirect),
            (template, true, "index.yaml", Method::Get, Path::Redirect),
        ];
        for (base, rewrite_index, rest, method, path) in cases {
            assert_eq!(
                file_path(base, rewrite_index, rest, method),
                path,
                "{base} {rewrite_index} {rest} {method:?}"
            );
        }
    }
}
