//! `pullgate generate`: synthetic events in the local layout, for demos and
//! benchmarks. The mix imitates what a gateway sees: many organizations
//! (businesses, universities) and anonymous ISP and cloud clients; docker,
//! containerd/kubelet, podman, Watchtower, Diun and Renovate; deployments
//! polling for updates (HEAD by tag), CI runners on cloud ranges pulling
//! with fresh caches, developers pulling several versions irregularly, a few
//! heavy pullers, and multi-arch images (index + platform manifest).

//!
//! Events are built as [`Event`] values and written by `Event::write_json`,
//! as the sinks write the gateway's own: one encoder, so generated data
//! can never drift from the schema the reports read.

mod world;

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use pullgate_domain::event::{Event, SCHEMA_VERSION};
use pullgate_domain::inline_str::InlineStr;
use pullgate_domain::text;
use pullgate_domain::time::UtcMillis;
use pullgate_report::dates;
use world::{action, Client, Profile, Request, Rng, World, REPOS};

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
    let mut line = Vec::with_capacity(1024);
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
                let at = UtcMillis(day * 86_400_000 + ms as i64);
                let (time, request_id) = (at.rfc3339(), request_id(seed, written));
                let request = (method, kind, reference, status);
                line.clear();
                event(world, c, &time, &request_id, &request, 40 + ms % 300).write_json(&mut line);
                line.push(b'\n');
                gz.write_all(&line)?;
                ms = (ms + 1 + rng.below(40)).min(86_399_999);
                in_file += 1;
                written += 1;
            }
        }
        gz.finish()?.flush()?;
    }
    Ok(written)
}

/// `gen-<seed hex>-<n>`: unique per generated request.
fn request_id(seed: u64, n: u64) -> InlineStr<48> {
    let mut id = InlineStr::new();
    // 4 + 16 + 1 + 20 bytes at most: it always fits.
    for part in [
        "gen-",
        text::hex(seed, 0).as_str(),
        "-",
        text::decimal(n, 0).as_str(),
    ] {
        let _ = id.write_str(part);
    }
    id
}

/// The event of one generated request: what the gateway would record for
/// this client's request, redirected, with the client's enrichment.
fn event<'a>(
    world: &'a World,
    c: &'a Client,
    time: &'a str,
    request_id: &'a str,
    request: &'a Request,
    duration_us: u64,
) -> Event<'a> {
    let (method, kind, reference, status) = request;
    let some = |s: &'a str| Some(Cow::Borrowed(s));
    let (repo, upstream_repo) = REPOS[c.repo];
    // A ping names no repository.
    let repository = |s: &'a str| (*kind != "ping").then_some(Cow::Borrowed(s));
    let org = c.org.map(|i| &world.orgs[i]);
    Event {
        v: SCHEMA_VERSION,
        time: time.into(),
        request_id: request_id.into(),
        host: "images.example.dev".into(),
        mapping: some("images.example.dev/app"),
        name: repository(repo),
        upstream: repository("https://registry-1.docker.io"),
        upstream_name: repository(upstream_repo),
        method: Cow::Borrowed(method),
        kind: Cow::Borrowed(kind),
        reference: (!reference.is_empty()).then_some(Cow::Borrowed(reference.as_str())),
        status: *status,
        mode: some("redirect"),
        media_type: None,
        client_id: some(&c.id),
        network_id: some(&c.network),
        prefix: some(&c.prefix),
        asn: Some(c.asn),
        // An organization's clients carry its name as AS and organization.
        as_org: some(org.map_or(c.as_org, |(name, ..)| name)),
        org: org.map(|(name, ..)| Cow::Borrowed(name.as_str())),
        org_kind: some(org.map_or(c.org_kind, |(_, kind, ..)| kind)),
        org_confidence: org.map(|(.., confidence)| *confidence),
        country: some(c.country),
        cloud: c.cloud.map(Cow::Borrowed),
        runtime: c.runtime.into(),
        runtime_version: some(c.version),
        os: some(c.os),
        arch: some(c.arch),
        kernel: None,
        ci: c.ci.map(Cow::Borrowed),
        ua: Cow::Borrowed(&c.ua),
        duration_us,
        failover: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    /// Every line of every file of a generated day, in file order.
    fn day_text(dir: &Path, day: i64) -> String {
        let part = dir
            .join("events")
            .join(format!("dt={}", dates::format_day(day)));
        let mut files: Vec<_> = std::fs::read_dir(part)
            .unwrap()
            .map(|f| f.unwrap().path())
            .collect();
        files.sort();
        let mut text = String::new();
        for file in files {
            flate2::read::GzDecoder::new(std::fs::File::open(file).unwrap())
                .read_to_string(&mut text)
                .unwrap();
        }
        text
    }

    fn scratch_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("pullgate-generate-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn the_same_seed_writes_the_same_bytes() {
        let world = World::new(20, 7);
        let (a, b) = (scratch_dir("a"), scratch_dir("b"));
        assert_eq!(write_day(&world, &a, 20_000, 3_000, 2, 7).unwrap(), 3_000);
        assert_eq!(
            write_day(&World::new(20, 7), &b, 20_000, 3_000, 2, 7).unwrap(),
            3_000
        );
        let text = day_text(&a, 20_000);
        assert_eq!(text, day_text(&b, 20_000));
        assert_eq!(text.lines().count(), 3_000);
        write_day(&world, &b, 20_000, 3_000, 2, 8).unwrap();
        assert_ne!(text, day_text(&b, 20_000));
        for line in text.lines() {
            let event: Event = serde_json::from_str(line).unwrap();
            assert_eq!(
                event.day().map(|d| d.as_str().to_string()),
                Some(dates::format_day(20_000))
            );
            // What write_json wrote is what serde writes for the event.
            assert_eq!(serde_json::to_string(&event).unwrap(), line);
        }
        for dir in [a, b] {
            std::fs::remove_dir_all(dir).unwrap();
        }
    }

    /// Every generated event holds the fields and values the format-string
    /// encoder this module had before wrote (kept here as the reference).
    #[test]
    fn events_are_what_the_previous_encoder_wrote() {
        let world = World::new(40, 3);
        let mut rng = Rng(99);
        let date = dates::format_day(20_100);
        let mut line = Vec::new();
        let mut old = String::new();
        let mut seen = std::collections::BTreeSet::new();
        for n in 0..2_000u64 {
            let c = world.pick(&mut rng);
            let ms = rng.below(86_400_000);
            for request in action(c, &mut rng) {
                let time = UtcMillis(20_100 * 86_400_000 + ms as i64).rfc3339();
                let id = request_id(5, n);
                line.clear();
                event(&world, c, &time, &id, &request, 40 + ms % 300).write_json(&mut line);
                let (method, kind, reference, status) = &request;
                old.clear();
                event_line(
                    &mut old, &world, c, &date, ms, n, 5, method, kind, reference, *status,
                );
                let new: Event = serde_json::from_slice(&line).unwrap();
                let previous: Event = serde_json::from_str(&old).unwrap();
                assert_eq!(new, previous, "{old}");
                seen.extend([
                    ("ping", *kind == "ping"),
                    ("reference", !reference.is_empty()),
                    ("org", c.org.is_some()),
                    ("cloud", c.cloud.is_some()),
                    ("ci", c.ci.is_some()),
                ]);
            }
        }
        // Both branches of every optional field were compared.
        assert_eq!(seen.len(), 10, "{seen:?}");
    }

    #[test]
    fn confidences_print_as_the_hundredths_they_did() {
        // Computed in f32 now (the events' type), so serde_json prints them
        // as the previous f64 values printed.
        for hundredths in 60..90 {
            let confidence = hundredths as f32 / 100.0;
            assert_eq!(
                serde_json::to_string(&confidence).unwrap(),
                format!("{}", hundredths as f64 / 100.0)
            );
        }
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
        let repo = REPOS[c.repo].0;
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
}
