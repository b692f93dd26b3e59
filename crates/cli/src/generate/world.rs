//! The synthetic world `pullgate generate` draws from: organizations and
//! their clients, each with a profile of how it pulls (see the parent
//! module), and the requests one pull or check makes.

/// xorshift64*: deterministic and fast; statistical quality is plenty here.
#[derive(Clone)]
pub(super) struct Rng(pub(super) u64);
impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub(super) fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

#[derive(Clone, Copy, PartialEq)]
pub(super) enum Profile {
    /// Watchtower / Diun / kubelet with imagePullPolicy Always: HEAD by tag at
    /// a steady interval, a pull when the tag moved.
    Polling,
    /// CI runners: fresh caches, every pull downloads layers.
    Ci,
    /// A developer laptop: several tags, irregular.
    Developer,
    /// Cluster nodes: containerd, pulls by digest too.
    Cluster,
    /// One client responsible for a large share of all pulls.
    Heavy,
}

#[derive(Clone)]
pub(super) struct Client {
    pub(super) id: String,
    pub(super) network: String,
    pub(super) prefix: String,
    pub(super) org: Option<usize>,
    pub(super) asn: u32,
    pub(super) as_org: &'static str,
    pub(super) country: &'static str,
    pub(super) org_kind: &'static str,
    pub(super) cloud: Option<&'static str>,
    pub(super) profile: Profile,
    pub(super) runtime: &'static str,
    pub(super) version: &'static str,
    pub(super) os: &'static str,
    pub(super) arch: &'static str,
    pub(super) ci: Option<&'static str>,
    pub(super) ua: String,
    /// Relative weight: how many actions per day this client takes.
    pub(super) weight: u64,
    pub(super) repo: usize,
}

#[derive(Clone)]
pub(super) struct World {
    pub(super) orgs: Vec<(String, &'static str, &'static str, f32)>,
    pub(super) clients: Vec<Client>,
    cumulative: Vec<u64>,
}

const COUNTRIES: [&str; 12] = [
    "US", "DE", "FR", "GB", "NL", "IN", "BR", "JP", "CA", "SE", "PL", "ES",
];
/// Public name and name at the upstream.
pub(super) const REPOS: [(&str, &str); 5] = [
    ("app", "example/app"),
    ("app/worker", "example/app/worker"),
    ("app/cli", "example/app/cli"),
    ("tools/migrate", "example/tools/migrate"),
    ("charts/app", "example/charts/app"),
];
const TAGS: [&str; 8] = [
    "latest",
    "1.4",
    "1.4.2",
    "1.4.1",
    "1.3",
    "1.3.9",
    "2.0.0-rc1",
    "1.2",
];
const WORDS: [&str; 16] = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Tyrell",
    "Hooli",
    "Vandelay",
    "Wonka",
    "Cyberdyne",
    "Soylent",
    "Aperture",
    "Oscorp",
    "Gringotts",
    "Monarch",
];

impl World {
    pub(super) fn new(orgs: u32, seed: u64) -> World {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut org_list = Vec::new();
        for i in 0..orgs as usize {
            let education = rng.chance(0.12);
            let name = if education {
                format!(
                    "University of {} {}",
                    WORDS[i % WORDS.len()],
                    i / WORDS.len() + 1
                )
            } else {
                let suffix = ["Inc", "GmbH", "Ltd", "SA", "BV", "AB"][rng.below(6) as usize];
                format!(
                    "{} {} {}",
                    WORDS[i % WORDS.len()],
                    i / WORDS.len() + 1,
                    suffix
                )
            };
            let confidence = if rng.chance(0.2) {
                1.0
            } else {
                // Whole hundredths, computed so: 0.6 + 0.29 would print
                // as 0.8899999999999999 in the events. In f32, the events'
                // type, so they print as two digits (a test checks).
                (60 + rng.below(30)) as f32 / 100.0
            };
            org_list.push((
                name,
                if education { "education" } else { "business" },
                COUNTRIES[rng.below(12) as usize],
                confidence,
            ));
        }
        let mut clients = Vec::new();
        let mut n = 0u64;
        let mut client = |rng: &mut Rng,
                          org: Option<usize>,
                          profile: Profile,
                          country: &'static str,
                          kind: &'static str| {
            n += 1;
            let (runtime, version, os, arch, ua) = match profile {
                Profile::Polling => match rng.below(3) {
                    0 => ("watchtower", "1.7.1", "linux", "amd64", "Watchtower (Docker) docker/24.0.7 go/go1.21.5 git-commit/afdd6ce kernel/6.1.0 os/linux arch/amd64".to_string()),
                    1 => ("diun", "4.28.0", "linux", "arm64", "diun/4.28.0 go/1.22 Linux".to_string()),
                    _ => ("kubelet", "1.29.4", "linux", "amd64", "containerd/v1.7.13".to_string()),
                },
                Profile::Ci => ("docker", "25.0.3", "linux", "amd64", "docker/25.0.3 go/go1.21.6 git-commit/f417435 kernel/6.5.0-1015-azure os/linux arch/amd64 UpstreamClient(Docker-Client/25.0.3 (linux))".to_string()),
                Profile::Developer => match rng.below(4) {
                    0 | 1 => ("docker", "26.1.1", "darwin", "arm64", "docker/26.1.1 go/go1.21.9 git-commit/ac2de55 kernel/6.6.26-linuxkit os/linux arch/arm64 UpstreamClient(Docker-Client/26.1.1 (darwin))".to_string()),
                    2 => ("docker", "26.1.1", "windows", "amd64", "docker/26.1.1 go/go1.21.9 git-commit/ac2de55 kernel/5.15.146.1-microsoft-standard-WSL2 os/linux arch/amd64 UpstreamClient(Docker-Client/26.1.1 (windows))".to_string()),
                    _ => ("podman", "5.0.2", "linux", "amd64", "containers/5.30.0 (github.com/containers/image)".to_string()),
                },
                Profile::Cluster => ("containerd", "1.7.13", "linux", if rng.chance(0.3) { "arm64" } else { "amd64" }, "containerd/v1.7.13".to_string()),
                Profile::Heavy => ("go-http-client", "1.1", "linux", "amd64", "Go-http-client/1.1".to_string()),
            };
            let weight = match profile {
                Profile::Polling => 6,
                Profile::Ci => 8,
                Profile::Developer => 1,
                Profile::Cluster => 3,
                Profile::Heavy => 400,
            };
            Client {
                id: format!(
                    "{:016x}{:016x}",
                    n.wrapping_mul(0x9E37_79B9_7F4A_7C15),
                    rng.next()
                ),
                network: format!("{:032x}", rng.next()),
                prefix: format!(
                    "{}.{}.{}.0/24",
                    1 + rng.below(220),
                    rng.below(256),
                    rng.below(256)
                ),
                org,
                asn: 1000 + rng.below(60_000) as u32,
                as_org: if kind == "cloud" {
                    "AMAZON-02"
                } else if kind == "isp" {
                    "Deutsche Telekom AG"
                } else {
                    ""
                },
                country,
                org_kind: kind,
                cloud: if kind == "cloud" { Some("aws") } else { None },
                profile,
                runtime,
                version,
                os,
                arch,
                ci: if profile == Profile::Ci {
                    Some(["github-actions", "gitlab-ci", "circleci"][rng.below(3) as usize])
                } else {
                    None
                },
                ua,
                weight,
                repo: rng.below(REPOS.len() as u64) as usize,
            }
        };
        for (i, (_, kind, country, _)) in org_list.iter().enumerate() {
            let big = rng.chance(0.1);
            let size = 1 + rng.below(if big { 40 } else { 6 });
            for _ in 0..size {
                let profile = match rng.below(10) {
                    0..=2 => Profile::Polling,
                    3..=5 => Profile::Developer,
                    6..=7 => Profile::Cluster,
                    _ => Profile::Ci,
                };
                clients.push(client(&mut rng, Some(i), profile, country, kind));
            }
        }
        // Anonymous clients: home ISPs and cloud (CI runners on cloud ranges).
        for _ in 0..orgs * 3 {
            let country = COUNTRIES[rng.below(12) as usize];
            if rng.chance(0.5) {
                clients.push(client(&mut rng, None, Profile::Ci, country, "cloud"));
            } else {
                let profile = if rng.chance(0.5) {
                    Profile::Developer
                } else {
                    Profile::Polling
                };
                clients.push(client(&mut rng, None, profile, country, "isp"));
            }
        }
        // A few heavy pullers, each behind about a tenth of all actions.
        let others: u64 = clients
            .iter()
            .filter(|c| c.profile != Profile::Polling)
            .map(|c| c.weight)
            .sum();
        for i in 0..3 {
            let mut heavy = client(
                &mut rng,
                Some(i % orgs as usize),
                Profile::Heavy,
                "US",
                "business",
            );
            heavy.weight = (others / 8).max(1);
            clients.push(heavy);
        }
        let mut cumulative = Vec::with_capacity(clients.len());
        let mut sum = 0;
        for c in &clients {
            // Polling clients check on a clock (write_day), not at random.
            if c.profile != Profile::Polling {
                sum += c.weight;
            }
            cumulative.push(sum);
        }
        World {
            orgs: org_list,
            clients,
            cumulative,
        }
    }

    pub(super) fn pick(&self, rng: &mut Rng) -> &Client {
        let total = self.cumulative.last().copied().unwrap_or(1);
        let x = rng.below(total);
        let i = self.cumulative.partition_point(|&c| c <= x);
        &self.clients[i.min(self.clients.len() - 1)]
    }
}

/// One request of an action: method, kind, reference, status.
pub(super) type Request = (&'static str, &'static str, String, u16);

fn digest(rng: &mut Rng) -> String {
    format!(
        "sha256:{:016x}{:016x}{:016x}{:016x}",
        rng.next(),
        rng.next(),
        rng.next(),
        rng.next()
    )
}

/// The requests one pull or check makes, the way each client family does.
pub(super) fn action(c: &Client, rng: &mut Rng) -> Vec<Request> {
    let tag = match c.profile {
        Profile::Developer => TAGS[rng.below(TAGS.len() as u64) as usize],
        Profile::Polling | Profile::Heavy => "latest",
        _ => TAGS[rng.below(3) as usize],
    };
    let index = digest(rng);
    let platform = digest(rng);
    let layers = |rng: &mut Rng, out: &mut Vec<Request>| {
        for _ in 0..1 + rng.below(4) {
            out.push(("GET", "blob", digest(rng), 307));
        }
    };
    let mut out = Vec::new();
    match (c.profile, c.runtime) {
        (Profile::Polling, _) => {
            out.push(("HEAD", "manifest", tag.to_string(), 200));
            // Now and then the tag moved: the deployment pulls.
            if rng.chance(0.05) {
                out.push(("GET", "manifest", index, 200));
                out.push(("GET", "manifest", platform, 200));
                layers(rng, &mut out);
            }
        }
        (_, "podman") => {
            out.push(("GET", "ping", String::new(), 401));
            out.push(("GET", "manifest", tag.to_string(), 200));
            out.push(("GET", "manifest", platform, 200));
            if rng.chance(0.6) {
                layers(rng, &mut out);
            }
        }
        (Profile::Cluster, _) if rng.chance(0.3) => {
            // Pinned by digest.
            out.push(("HEAD", "manifest", index.clone(), 200));
            out.push(("GET", "manifest", index, 200));
            out.push(("GET", "manifest", platform, 200));
            if rng.chance(0.3) {
                layers(rng, &mut out);
            }
        }
        (Profile::Heavy, _) => {
            out.push(("GET", "manifest", tag.to_string(), 200));
        }
        _ => {
            if c.runtime == "docker" {
                out.push(("GET", "ping", String::new(), 200));
            }
            out.push(("HEAD", "manifest", tag.to_string(), 200));
            let cached = c.profile != Profile::Ci && rng.chance(0.3);
            if !cached {
                out.push(("GET", "manifest", index, 200));
                out.push(("GET", "manifest", platform, 200));
                // Multi-platform builds (buildx) take both architectures.
                if c.profile == Profile::Ci && rng.chance(0.2) {
                    out.push(("GET", "manifest", digest(rng), 200));
                }
                if c.profile == Profile::Ci || rng.chance(0.5) {
                    layers(rng, &mut out);
                }
            }
        }
    }
    out
}
