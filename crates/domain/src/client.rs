//! Which client family a request comes from, as far as the gateway's
//! redirect-or-proxy decision needs it. (The event path has its own, richer
//! user-agent parser.)

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientFamily {
    /// docker / moby (`docker/24.0.7 go/... UpstreamClient(...)`).
    Docker,
    /// containerd's resolver: `ctr`, kubelet through the CRI, BuildKit.
    Containerd,
    /// containers/image: podman, skopeo, buildah, cri-o.
    ContainersImage,
    Other,
}

impl ClientFamily {
    pub fn from_user_agent(ua: &str) -> Self {
        let first = ua.split([' ', '/']).next().unwrap_or("");
        let is = |name: &str| first.eq_ignore_ascii_case(name);
        if is("docker") {
            ClientFamily::Docker
        } else if is("containerd") || is("buildkit") {
            ClientFamily::Containerd
        } else if [
            "containers",
            "skopeo",
            "podman",
            "buildah",
            "libpod",
            "cri-o",
        ]
        .iter()
        .any(|n| is(n))
        {
            ClientFamily::ContainersImage
        } else {
            ClientFamily::Other
        }
    }

    /// Measured (tests/e2e; the README's client table, docs/architecture.md
    /// "Redirect or proxy"): docker and containerd follow a 307 and
    /// authenticate at the upstream themselves, as long as the repository
    /// name is unchanged. containers/image drops Authorization on a
    /// cross-host redirect and does not re-authenticate.
    pub fn follows_redirects_with_auth(self) -> bool {
        matches!(self, ClientFamily::Docker | ClientFamily::Containerd)
    }

    /// Measured (tests/e2e, containerd 1.6): containerd takes the token
    /// scope from the upstream's own challenge, so a renamed repository
    /// works redirected; docker scopes its token to the name it was given
    /// and fails.
    pub fn copes_with_renames(self) -> bool {
        matches!(self, ClientFamily::Containerd)
    }
}

#[cfg(test)]
mod tests {
    use super::ClientFamily::{self, *};

    #[test]
    fn families_from_real_user_agents() {
        let cases = [
            ("docker/24.0.7 go/go1.20.10 git-commit/311b9ff kernel/6.1.0 os/linux arch/amd64 UpstreamClient(Docker-Client/24.0.7 \\(linux\\))", Docker),
            ("containerd/1.6.20~ds1", Containerd),
            ("containerd/v1.7.13", Containerd),
            ("buildkit/v0.12", Containerd),
            ("containers/5.24.1 (github.com/containers/image)", ContainersImage),
            ("skopeo/1.9.3", ContainersImage),
            ("cri-o/1.28.1 go/go1.20 os/linux arch/amd64", ContainersImage),
            ("Helm/3.14.0", Other),
            ("curl/7.88.1", Other),
            ("", Other),
        ];
        for (ua, family) in cases {
            assert_eq!(ClientFamily::from_user_agent(ua), family, "{ua}");
        }
    }
}
