//! User agents of the clients people pull with: runtime, version, OS,
//! architecture, kernel hints (WSL), upstream client and CI markers.
//! Zero-copy: every field borrows from the user agent string.

/// What a user agent says about its client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UserAgent<'a> {
    /// Stable lowercase runtime name: `docker`, `containerd`, `cri-o`,
    /// `podman`, `skopeo`, `buildah`, `kubelet`, `helm`,
    /// `crane`, `oras`, `regclient`, `watchtower`, `diun`, `renovate`,
    /// `harbor`, `buildkit`, `go-http-client`, `curl`, `python-requests`,
    /// `unknown`.
    pub runtime: &'static str,
    pub version: Option<&'a str>,
    pub os: Option<&'a str>,
    pub arch: Option<&'a str>,
    /// Kernel version as the client reported it.
    pub kernel: Option<&'a str>,
    /// Docker's `UpstreamClient(...)`: who drove the engine.
    pub upstream_client: Option<&'a str>,
    /// A CI provider named in the user agent.
    pub ci: Option<&'static str>,
}

impl<'a> UserAgent<'a> {
    pub fn parse(ua: &'a str) -> Self {
        let mut out = UserAgent {
            runtime: "unknown",
            ..UserAgent::default()
        };
        let (product, version) = first_product(ua);
        // Lowercased on the stack: this runs once per request.
        let mut lower = crate::inline_str::InlineStr::<32>::new();
        if product.len() <= 32 {
            for c in product.chars() {
                let _ = std::fmt::Write::write_char(&mut lower, c.to_ascii_lowercase());
            }
        }
        let lower_product = lower.as_str();
        out.runtime = match lower_product {
            "docker" => "docker",
            "containerd" => "containerd",
            "cri-o" => "cri-o",
            "podman" | "libpod" => "podman",
            "skopeo" => "skopeo",
            "buildah" => "buildah",
            // containers/image's default user agent: podman keeps it
            // (skopeo, buildah and cri-o set their own), measured with
            // podman 4.3.
            "containers" => "podman",
            "kubelet" => "kubelet",
            "helm" => "helm",
            "crane" | "go-containerregistry" => "crane",
            "oras" => "oras",
            "regclient" | "regctl" => "regclient",
            "watchtower" => "watchtower",
            "diun" => "diun",
            "renovate" | "renovatebot" => "renovate",
            "harbor-registry-client" | "harbor" => "harbor",
            "buildkit" => "buildkit",
            "go-http-client" => "go-http-client",
            "curl" => "curl",
            "python-requests" => "python-requests",
            _ if ua.starts_with("Renovate") => "renovate",
            _ => "unknown",
        };
        out.version = version
            .map(|v| v.trim_start_matches('v'))
            .filter(|v| !v.is_empty());
        if out.runtime == "regclient" {
            // `regclient/regctl (v0.5.6)`
            out.version = paren_after(ua, "regctl").map(|v| v.trim_start_matches('v'));
        }
        if lower_product == "containers" {
            // That version is the library's, not podman's.
            out.version = None;
        }
        for token in ua.split(' ') {
            if let Some((key, value)) = token.split_once('/') {
                match key {
                    "os" => out.os = Some(value),
                    "arch" => out.arch = Some(value),
                    "kernel" => out.kernel = Some(value),
                    _ => {}
                }
            }
        }
        out.upstream_client = paren_after(ua, "UpstreamClient");
        out.ci = ci_marker(ua);
        out
    }

    /// WSL kernels carry `microsoft` in their version: Docker Desktop or
    /// WSL on Windows.
    pub fn is_wsl(&self) -> bool {
        self.kernel.is_some_and(|k| {
            k.contains("microsoft") || k.contains("Microsoft") || k.contains("WSL")
        })
    }

    /// Docker Desktop reports the host OS in its upstream client:
    /// `Docker-Client/24.0.7 (windows)`.
    pub fn client_os(&self) -> Option<&'a str> {
        let uc = self.upstream_client?;
        let inner = uc.rsplit_once('(')?.1;
        let os = inner.trim_end_matches([')', '\\']).trim();
        (!os.is_empty()).then_some(os)
    }
}

/// First `product/version` token; products may contain spaces only in
/// forms we special-case (Renovate).
fn first_product(ua: &str) -> (&str, Option<&str>) {
    let first = ua.split([' ', ';']).next().unwrap_or("");
    match first.split_once('/') {
        Some((product, version)) => (product, Some(version)),
        None => (first, None),
    }
}

/// Where `needle` first occurs in `hay`: compares only where its first
/// byte is. `str::find` prepares a two-way search for every call, which
/// costs more than the search itself on a user agent.
fn find_text(hay: &str, needle: &str) -> Option<usize> {
    let (bytes, needle) = (hay.as_bytes(), needle.as_bytes());
    let first = *needle.first()?;
    bytes
        .iter()
        .enumerate()
        .filter(|(_, &b)| b == first)
        .map(|(at, _)| at)
        .find(|&at| bytes[at..].starts_with(needle))
}

/// The text inside `marker(...)`, allowing Docker's escaped parentheses.
fn paren_after<'a>(ua: &'a str, marker: &str) -> Option<&'a str> {
    let start = find_text(ua, marker)? + marker.len();
    let rest = ua[start..].trim_start().strip_prefix('(')?;
    // Match the closing parenthesis that is not escaped with '\'.
    let bytes = rest.as_bytes();
    let mut depth = 1;
    for (i, &b) in bytes.iter().enumerate() {
        let escaped = i > 0 && bytes[i - 1] == b'\\';
        match b {
            b'(' if !escaped => depth += 1,
            b')' if !escaped => {
                depth -= 1;
                if depth == 0 {
                    return Some(&rest[..i]);
                }
            }
            _ => {}
        }
    }
    None
}

const CI_MARKERS: [(&str, &str); 9] = [
    ("github-actions", "github-actions"),
    ("GitHub-Actions", "github-actions"),
    ("gitlab-runner", "gitlab"),
    ("GitLab", "gitlab"),
    ("Jenkins", "jenkins"),
    ("CircleCI", "circleci"),
    ("buildkite", "buildkite"),
    ("Travis", "travis"),
    ("Bitbucket-Pipelines", "bitbucket"),
];

/// Bytes that start some CI marker.
const CI_MARKER_STARTS: [bool; 256] = {
    let mut starts = [false; 256];
    let mut i = 0;
    while i < CI_MARKERS.len() {
        starts[CI_MARKERS[i].0.as_bytes()[0] as usize] = true;
        i += 1;
    }
    starts
};

/// The first CI marker in the user agent. One pass over it, comparing only
/// where a marker could start: this runs once per request, and a `contains`
/// per marker would scan the user agent nine times.
fn ci_marker(ua: &str) -> Option<&'static str> {
    let bytes = ua.as_bytes();
    bytes
        .iter()
        .enumerate()
        .filter(|(_, &b)| CI_MARKER_STARTS[b as usize])
        .find_map(|(at, _)| {
            CI_MARKERS
                .iter()
                .find(|(marker, _)| bytes[at..].starts_with(marker.as_bytes()))
                .map(|(_, name)| *name)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(ua: &str) -> (&'static str, Option<&str>) {
        let p = UserAgent::parse(ua);
        (p.runtime, p.version)
    }

    #[test]
    fn runtimes_from_real_user_agents() {
        let cases = [
            ("docker/24.0.7 go/go1.20.10 git-commit/311b9ff kernel/6.1.0-13-amd64 os/linux arch/amd64 UpstreamClient(Docker-Client/24.0.7 \\(linux\\))", "docker", Some("24.0.7")),
            ("containerd/1.6.20~ds1", "containerd", Some("1.6.20~ds1")),
            ("containerd/v1.7.13", "containerd", Some("1.7.13")),
            ("cri-o/1.28.1 go/go1.20.10 os/linux arch/amd64", "cri-o", Some("1.28.1")),
            ("containers/5.23.1 (github.com/containers/image)", "podman", None),
            ("skopeo/1.9.3", "skopeo", Some("1.9.3")),
            ("libpod/4.3.1", "podman", Some("4.3.1")),
            ("Buildah/1.28.2", "buildah", Some("1.28.2")),
            ("kubelet/v1.29.0 (linux/amd64) kubernetes/3f7a50f", "kubelet", Some("1.29.0")),
            ("Helm/3.14.0", "helm", Some("3.14.0")),
            ("crane/v0.19.0 go-containerregistry/v0.19.0", "crane", Some("0.19.0")),
            ("go-containerregistry/v0.16.1", "crane", Some("0.16.1")),
            ("oras/1.1.0+Homebrew", "oras", Some("1.1.0+Homebrew")),
            ("regclient/regctl (v0.5.6)", "regclient", Some("0.5.6")),
            ("Watchtower/v1.7.1", "watchtower", Some("1.7.1")),
            ("diun/4.26.0 go/1.21.1 Linux", "diun", Some("4.26.0")),
            ("RenovateBot/37.100.0 (https://github.com/renovatebot/renovate)", "renovate", Some("37.100.0")),
            ("Renovate Bot (GitHub App 2740)", "renovate", None),
            ("harbor-registry-client", "harbor", None),
            ("buildkit/v0.12", "buildkit", Some("0.12")),
            ("Go-http-client/1.1", "go-http-client", Some("1.1")),
            ("curl/8.4.0", "curl", Some("8.4.0")),
            ("python-requests/2.31.0", "python-requests", Some("2.31.0")),
            ("Mozilla/5.0", "unknown", Some("5.0")),
            ("", "unknown", None),
        ];
        for (ua, runtime, version) in cases {
            assert_eq!(rt(ua), (runtime, version), "{ua}");
        }
    }

    #[test]
    fn platform_kernel_and_upstream_client() {
        let ua = "docker/24.0.7 go/go1.20.10 git-commit/311b9ff kernel/5.15.133.1-microsoft-standard-WSL2 os/linux arch/amd64 UpstreamClient(Docker-Client/24.0.7 \\(windows\\))";
        let p = UserAgent::parse(ua);
        assert_eq!((p.os, p.arch), (Some("linux"), Some("amd64")));
        assert!(p.is_wsl());
        assert_eq!(
            p.upstream_client,
            Some("Docker-Client/24.0.7 \\(windows\\)")
        );
        assert_eq!(p.client_os(), Some("windows"));
        let p = UserAgent::parse("cri-o/1.28.1 go/go1.20.10 os/linux arch/arm64");
        assert_eq!(
            (p.os, p.arch, p.is_wsl()),
            (Some("linux"), Some("arm64"), false)
        );
    }

    #[test]
    fn ci_markers() {
        assert_eq!(
            UserAgent::parse("docker/24.0.7 UpstreamClient(github-actions-docker)").ci,
            Some("github-actions")
        );
        assert_eq!(
            UserAgent::parse("gitlab-runner 16.5.0 (16-5-stable; go1.20.10; linux/amd64)").ci,
            Some("gitlab")
        );
        assert_eq!(UserAgent::parse("curl/8").ci, None);
        for (ua, ci) in [
            ("Jenkins-Agent docker/25", Some("jenkins")),
            ("docker/25 (CircleCI)", Some("circleci")),
            ("buildkite-agent/3 GitHub", Some("buildkite")),
            ("Bitbucket-Pipelines", Some("bitbucket")),
            ("Travis", Some("travis")),
            ("GitLa", None),
            ("", None),
        ] {
            assert_eq!(UserAgent::parse(ua).ci, ci, "{ua}");
        }
    }
}
