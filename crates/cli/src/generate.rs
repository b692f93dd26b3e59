//! `pullgate generate`: synthetic events in the local layout, for demos and
//! benchmarks. The mix imitates what a gateway sees: many organizations
//! (businesses, universities) and anonymous ISP and cloud clients; docker,
//! containerd/kubelet, podman, Watchtower, Diun and Renovate; deployments
//! polling for updates (HEAD by tag), CI runners on cloud ranges pulling
//! with fresh caches, developers pulling several versions irregularly, a few
//! heavy pullers, and multi-arch images (index + platform manifest).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use pullgate_report::dates;

#[derive(Args)]
pub struct GenerateArgs {
    /// Directory to write `events/dt=YYYY-MM-DD/*.json.gz` under.
    #[arg(long, default_value = "./pullgate-data")]
    data_dir: PathBuf,
    /// How many events (requests) to write.
    #[arg(long, default_value_t = 100_000)]
    events: u64,
    /// Spread over this many days, ending today (or --end).
    #[arg(long, default_value_t = 30)]
    days: u32,
    /// Last day (YYYY-MM-DD, UTC).
    #[arg(long)]
    end: Option<String>,
    /// Number of organizations.
    #[arg(long, default_value_t = 200)]
    orgs: u32,
    /// Files per day (the embedded engine reads files in parallel).
    #[arg(long, default_value_t = 2)]
    files_per_day: u32,
    /// Random seed (same seed, same events).
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

pub fn run(args: GenerateArgs) -> Result<()> {
    if args.days == 0 || args.files_per_day == 0 || args.orgs == 0 {
        bail!("--days, --orgs and --files-per-day must be at least 1");
    }
    let end = match &args.end {
        Some(day) => dates::parse_day(day)
            .with_context(|| format!("--end {day:?} is not a date (YYYY-MM-DD)"))?,
        None => dates::today(),
    };
    let start = end - i64::from(args.days) + 1;
    let world = World::new(args.orgs, args.seed);
    let per_day = args.events / u64::from(args.days);
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(args.days as usize);
    let mut handles = Vec::new();
    for worker in 0..threads {
        let world = world.clone();
        let dir = args.data_dir.clone();
        let (days, files, seed, total) = (args.days, args.files_per_day, args.seed, args.events);
        handles.push(std::thread::spawn(move || -> Result<u64> {
            let mut written = 0;
            for d in (worker as u32..days).step_by(threads) {
                let budget = if d == days - 1 {
                    total - per_day * u64::from(days - 1)
                } else {
                    per_day
                };
                written += write_day(
                    &world,
                    &dir,
                    start + i64::from(d),
                    budget,
                    files,
                    seed ^ (u64::from(d) << 20),
                )?;
            }
            Ok(written)
        }));
    }
    let mut written = 0;
    for h in handles {
        written += h
            .join()
            .map_err(|_| anyhow::anyhow!("a generator thread panicked"))??;
    }
    eprintln!(
        "wrote {written} events for {} organizations, {} .. {}, under {}",
        args.orgs,
        dates::format_day(start),
        dates::format_day(end),
        args.data_dir.join("events").display()
    );
    Ok(())
}

/// xorshift64*: deterministic and fast; statistical quality is plenty here.
#[derive(Clone)]
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Profile {
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
struct Client {
    id: String,
    network: String,
    prefix: String,
    org: Option<usize>,
    asn: u32,
    as_org: &'static str,
    country: &'static str,
    org_kind: &'static str,
    cloud: Option<&'static str>,
    profile: Profile,
    runtime: &'static str,
    version: &'static str,
    os: &'static str,
    arch: &'static str,
    ci: Option<&'static str>,
    ua: String,
    /// Relative weight: how many actions per day this client takes.
    weight: u64,
    repo: usize,
}

#[derive(Clone)]
struct World {
    orgs: Vec<(String, &'static str, &'static str, f64)>,
    clients: Vec<Client>,
    cumulative: Vec<u64>,
}

const COUNTRIES: [&str; 12] = [
    "US", "DE", "FR", "GB", "NL", "IN", "BR", "JP", "CA", "SE", "PL", "ES",
];
const REPOS: [&str; 5] = [
    "app",
    "app/worker",
    "app/cli",
    "tools/migrate",
    "charts/app",
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
    fn new(orgs: u32, seed: u64) -> World {
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
                // as 0.8899999999999999 in the events.
                (60 + rng.below(30)) as f64 / 100.0
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

    fn pick(&self, rng: &mut Rng) -> &Client {
        let total = self.cumulative.last().copied().unwrap_or(1);
        let x = rng.below(total);
        let i = self.cumulative.partition_point(|&c| c <= x);
        &self.clients[i.min(self.clients.len() - 1)]
    }
}

/// One request of an action: method, kind, reference, status.
type Request = (&'static str, &'static str, String, u16);

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
fn action(c: &Client, rng: &mut Rng) -> Vec<Request> {
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

fn write_day(
    world: &World,
    dir: &Path,
    day: i64,
    budget: u64,
    files: u32,
    seed: u64,
) -> Result<u64> {
    let date = dates::format_day(day);
    let part = dir.join("events").join(format!("dt={date}"));
    std::fs::create_dir_all(&part).with_context(|| format!("cannot create {}", part.display()))?;
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let per_file = budget / u64::from(files) + 1;
    let mut written = 0u64;
    let mut line = String::with_capacity(1024);
    // About a quarter of the requests are deployments polling on a clock:
    // each polling client checks at its own steady interval.
    let pollers: Vec<&Client> = world
        .clients
        .iter()
        .filter(|c| c.profile == Profile::Polling)
        .collect();
    let checks_each = (budget / 4 / pollers.len().max(1) as u64).clamp(1, 288);
    let interval = 86_400_000 / checks_each;
    let mut polls: Vec<(u64, usize)> = Vec::new();
    for (i, c) in pollers.iter().enumerate() {
        let phase = u64::from_str_radix(&c.id[..8], 16).unwrap_or(0) % interval;
        for k in 0..checks_each {
            polls.push((phase + k * interval + rng.below(2000), i));
        }
    }
    let mut polls = polls.into_iter();
    for f in 0..files {
        let path = part.join(format!("pullgate-gen-{seed:x}-{f}.json.gz"));
        let file = std::fs::File::create(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let mut gz = flate2::write::GzEncoder::new(
            std::io::BufWriter::with_capacity(1 << 20, file),
            flate2::Compression::fast(),
        );
        let mut in_file = 0u64;
        while in_file < per_file && written < budget {
            let (c, mut ms) = match written.is_multiple_of(4).then(|| polls.next()).flatten() {
                Some((at, i)) => (pollers[i], at.min(86_399_000)),
                None => (world.pick(&mut rng), rng.below(86_400_000)),
            };
            for (method, kind, reference, status) in action(c, &mut rng) {
                if in_file >= per_file || written >= budget {
                    break;
                }
                line.clear();
                event_line(
                    &mut line, world, c, &date, ms, written, seed, method, kind, &reference, status,
                );
                gz.write_all(line.as_bytes())?;
                ms = (ms + 1 + rng.below(40)).min(86_399_999);
                in_file += 1;
                written += 1;
            }
        }
        gz.finish()?.flush()?;
    }
    Ok(written)
}

#[allow(clippy::too_many_arguments)]
fn event_line(
    o: &mut String,
    world: &World,
    c: &Client,
    date: &str,
    ms: u64,
    n: u64,
    seed: u64,
    method: &str,
    kind: &str,
    reference: &str,
    status: u16,
) {
    let (h, m, s, milli) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    let repo = REPOS[c.repo];
    let _ = write!(o, "{{\"v\":1,\"time\":\"{date}T{h:02}:{m:02}:{s:02}.{milli:03}Z\",\"request_id\":\"gen-{seed:x}-{n}\",\"host\":\"images.example.dev\",\"mapping\":\"images.example.dev/app\"");
    if kind != "ping" {
        let _ = write!(o, ",\"name\":\"{repo}\",\"upstream\":\"https://registry-1.docker.io\",\"upstream_name\":\"example/{repo}\"");
    }
    let _ = write!(o, ",\"method\":\"{method}\",\"kind\":\"{kind}\"");
    if !reference.is_empty() {
        let _ = write!(o, ",\"reference\":\"{reference}\"");
    }
    let _ = write!(o, ",\"status\":{status},\"mode\":\"redirect\",\"client_id\":\"{}\",\"network_id\":\"{}\",\"prefix\":\"{}\",\"asn\":{}", c.id, c.network, c.prefix, c.asn);
    if let Some(i) = c.org {
        let (name, kind, _, confidence) = &world.orgs[i];
        let _ = write!(o, ",\"as_org\":\"{name}\",\"country\":\"{}\",\"org\":\"{name}\",\"org_kind\":\"{kind}\",\"org_confidence\":{confidence}", c.country);
    } else {
        let _ = write!(
            o,
            ",\"as_org\":\"{}\",\"country\":\"{}\",\"org_kind\":\"{}\"",
            c.as_org, c.country, c.org_kind
        );
    }
    if let Some(cloud) = c.cloud {
        let _ = write!(o, ",\"cloud\":\"{cloud}\"");
    }
    let _ = write!(
        o,
        ",\"runtime\":\"{}\",\"runtime_version\":\"{}\",\"os\":\"{}\",\"arch\":\"{}\"",
        c.runtime, c.version, c.os, c.arch
    );
    if let Some(ci) = c.ci {
        let _ = write!(o, ",\"ci\":\"{ci}\"");
    }
    let _ = writeln!(
        o,
        ",\"ua\":\"{}\",\"duration_us\":{}}}",
        c.ua,
        40 + ms % 300
    );
}
