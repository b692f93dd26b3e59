//! Redirect or proxy: the per-request decision, kept consistent per host.
//!
//! The `/v2/` ping has no repository name, yet what it answers decides how a
//! client authenticates for the whole host: a client that got our challenge
//! must be proxied, one that was sent upstream must be redirected. So `auto`
//! redirects a client only when EVERY registry mapping of the host would
//! redirect it.

use crate::client::ClientFamily;
use crate::mapping::{HostMappings, Mapping, Mode};

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
            client.follows_redirects_with_auth() && (m.keeps_names() || client.copes_with_renames())
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
    /// 401 with our own Bearer challenge.
    Challenge,
}

pub fn ping(host: &HostMappings, client: ClientFamily) -> PingAnswer<'_> {
    if host.oci().is_empty() || !host_redirects(host, client) {
        return PingAnswer::Challenge;
    }
    let mut bases = host
        .oci()
        .iter()
        .filter_map(|m| m.active_upstream())
        .map(|u| u.registry.base.as_str());
    let first = bases.next();
    match first {
        Some(base) if bases.all(|b| b == base) => PingAnswer::RedirectTo(base),
        _ => PingAnswer::Ok,
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
        assert_eq!(ping(&h, Docker), PingAnswer::Challenge);
    }

    #[test]
    fn ping_answers() {
        let one = host(&[("acme/app", "ghcr.io/acme/app", "redirect")]);
        assert_eq!(
            ping(&one, ContainersImage),
            PingAnswer::RedirectTo("https://ghcr.io")
        );
        let two = host(&[
            ("a", "ghcr.io/a", "redirect"),
            ("b", "quay.io/b", "redirect"),
        ]);
        assert_eq!(ping(&two, Other), PingAnswer::Ok);
        let proxy = host(&[("a", "ghcr.io/a", "proxy")]);
        assert_eq!(ping(&proxy, Docker), PingAnswer::Challenge);
        let auto = host(&[("acme/app", "ghcr.io/acme/app", "auto")]);
        assert_eq!(
            ping(&auto, Docker),
            PingAnswer::RedirectTo("https://ghcr.io")
        );
        assert_eq!(ping(&auto, ContainersImage), PingAnswer::Challenge);
    }
}
