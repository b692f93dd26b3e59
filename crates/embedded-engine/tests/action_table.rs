//! Docker's publisher-analytics action table (docs.docker.com, "Insights and
//! analytics", action classification), case by case, plus the cases pullgate
//! adds (usage rule, cri-o's double fetch, repeat pulls, update checks after a
//! pull, downloads, refused requests). Each case is a repository of its own
//! in one small set of hand-built event files; the real report SQL runs on
//! the embedded engine over them.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use pullgate_embedded_engine::{EmbeddedEngine, EVENTS_TABLE};
use pullgate_report::{
    build_report, Dialect, EngineError, QueryEngine, Report, ReportParams, Table,
};

const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const C: &str = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";

/// (seconds after the case's start, method, kind, reference, status)
type Step = (u32, &'static str, &'static str, &'static str, u16);

struct Case {
    repo: &'static str,
    runtime: &'static str,
    steps: Vec<Step>,
    /// (analytics pulls, usage pulls, update checks, downloads, pulled by digest)
    expect: (i64, i64, i64, i64, bool),
}

fn m(t: u32, method: &'static str, reference: &'static str) -> Step {
    (t, method, "manifest", reference, 200)
}

fn cases() -> Vec<Case> {
    vec![
        // The action table, row by row.
        Case {
            repo: "head-tag",
            runtime: "docker",
            steps: vec![m(0, "HEAD", "1.0")],
            expect: (0, 0, 1, 0, false),
        },
        Case {
            repo: "get-tag",
            runtime: "docker",
            steps: vec![m(0, "GET", "1.0")],
            expect: (1, 1, 0, 0, false),
        },
        Case {
            repo: "get-tag-get-other-digest",
            runtime: "podman",
            steps: vec![m(0, "GET", "1.0"), m(1, "GET", A)],
            expect: (1, 1, 0, 0, false),
        },
        Case {
            repo: "head-tag-get-same-digest",
            runtime: "docker",
            steps: vec![m(0, "HEAD", "1.0"), m(1, "GET", A)],
            expect: (1, 1, 0, 0, false),
        },
        Case {
            repo: "head-tag-get-same-then-other",
            runtime: "docker",
            steps: vec![m(0, "HEAD", "1.0"), m(1, "GET", A), m(2, "GET", B)],
            expect: (1, 1, 0, 0, false),
        },
        Case {
            repo: "get-digest",
            runtime: "docker",
            steps: vec![m(0, "GET", A)],
            expect: (1, 1, 0, 0, true),
        },
        // HEAD by digest alone is a pull by digest in the action table; it
        // fetches no manifest, so the usage rule counts nothing.
        Case {
            repo: "head-digest",
            runtime: "docker",
            steps: vec![m(0, "HEAD", A)],
            expect: (1, 0, 0, 0, true),
        },
        Case {
            repo: "get-digest-get-other-digest",
            runtime: "containerd",
            steps: vec![m(0, "GET", A), m(1, "GET", B)],
            expect: (1, 1, 0, 0, true),
        },
        Case {
            repo: "head-digest-get-same",
            runtime: "containerd",
            steps: vec![m(0, "HEAD", A), m(1, "GET", A)],
            expect: (1, 1, 0, 0, true),
        },
        Case {
            repo: "head-digest-get-same-then-other",
            runtime: "containerd",
            steps: vec![m(0, "HEAD", A), m(1, "GET", A), m(2, "GET", B)],
            expect: (1, 1, 0, 0, true),
        },
        // Usage rule: one pull per architecture (skopeo copy --all).
        Case {
            repo: "all-architectures",
            runtime: "skopeo",
            steps: vec![m(0, "GET", "1.0"), m(1, "GET", A), m(1, "GET", B)],
            expect: (1, 2, 0, 0, false),
        },
        Case {
            repo: "docker-multi-arch",
            runtime: "docker",
            steps: vec![m(0, "HEAD", "1.0"), m(0, "GET", A), m(0, "GET", B)],
            expect: (1, 1, 0, 0, false),
        },
        // cri-o fetches tag and digest twice in one pull: one pull.
        Case {
            repo: "crio-double-fetch",
            runtime: "cri-o",
            steps: vec![
                m(0, "GET", "1.0"),
                m(0, "GET", A),
                m(1, "GET", "1.0"),
                m(1, "GET", A),
            ],
            expect: (1, 1, 0, 0, false),
        },
        // Two pulls of the same tag are two pulls, however close.
        Case {
            repo: "pulled-twice",
            runtime: "podman",
            steps: vec![m(0, "GET", "1.0"), m(1, "GET", "1.0")],
            expect: (2, 2, 0, 0, false),
        },
        // A pull, then a later check that found nothing new.
        Case {
            repo: "pull-then-check",
            runtime: "docker",
            steps: vec![m(0, "HEAD", "1.0"), m(0, "GET", A), m(7200, "HEAD", "1.0")],
            expect: (1, 1, 1, 0, false),
        },
        // Blob GETs mark a real download.
        Case {
            repo: "with-layers",
            runtime: "docker",
            steps: vec![
                m(0, "HEAD", "1.0"),
                m(0, "GET", A),
                (1, "GET", "blob", C, 307),
            ],
            expect: (1, 1, 0, 1, false),
        },
        // Refused requests are not pulls.
        Case {
            repo: "refused",
            runtime: "skopeo",
            steps: vec![(0, "GET", "manifest", "1.0", 401)],
            expect: (0, 0, 0, 0, false),
        },
        // Redirect mode against a token upstream: the client's first HEAD is
        // refused by the upstream, it authenticates there and asks again.
        Case {
            repo: "auth-retry",
            runtime: "containerd",
            steps: vec![
                m(0, "HEAD", "1.0"),
                m(0, "HEAD", "1.0"),
                m(1, "GET", A),
                m(1, "GET", B),
            ],
            expect: (1, 1, 0, 0, false),
        },
        // A deployment checking twice, minutes apart: two checks.
        Case {
            repo: "checked-twice",
            runtime: "containerd",
            steps: vec![m(0, "HEAD", "1.0"), m(300, "HEAD", "1.0")],
            expect: (0, 0, 2, 0, false),
        },
        // Tag requests for two tags: two pulls.
        Case {
            repo: "two-tags",
            runtime: "podman",
            steps: vec![m(0, "GET", "1.0"), m(3, "GET", "2.0")],
            expect: (2, 2, 0, 0, false),
        },
    ]
}

/// A fresh directory under the system's temporary directory, removed when
/// the test ends (also when it fails).
fn temp_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("pullgate-report-{name}-"))
        .tempdir()
        .unwrap()
}

fn write_events(dir: &Path, day: &str, lines: &[String]) {
    let part = dir.join("events").join(format!("dt={day}"));
    std::fs::create_dir_all(&part).unwrap();
    let file = std::fs::File::create(part.join("pullgate-1-1-0.json.gz")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    for line in lines {
        writeln!(gz, "{line}").unwrap();
    }
    gz.finish().unwrap();
}

fn event(n: usize, client: &str, repo: &str, runtime: &str, at: u32, step: Step) -> String {
    let (t, method, kind, reference, status) = step;
    let secs = at + t;
    let time = format!(
        "2026-01-05T{:02}:{:02}:{:02}.{:03}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        n % 1000
    );
    serde_json::json!({
        "v": 1, "time": time, "request_id": format!("r-{n:06}"), "host": "images.example",
        "mapping": "images.example/", "name": repo, "upstream": "https://registry.example",
        "upstream_name": repo, "method": method, "kind": kind, "reference": reference,
        "status": status, "mode": "redirect", "client_id": client, "network_id": "n1",
        "prefix": "192.0.2.0/24", "country": "DE", "org": "Acme", "org_kind": "business",
        "org_confidence": 1.0, "runtime": runtime, "ua": format!("{runtime}/1.0"), "duration_us": 10
    })
    .to_string()
}

async fn report(dir: &Path) -> Report {
    let engine = EmbeddedEngine::open(dir).await.unwrap();
    let params = ReportParams::new("2026-01-01", "2026-01-31", None, None).unwrap();
    build_report(&engine, &params, EVENTS_TABLE, &mut |_, _, _| {})
        .await
        .unwrap()
}

#[tokio::test]
async fn docker_action_table_and_pullgate_cases() {
    let tmp = temp_dir("actions");
    let dir = tmp.path();
    let mut lines = Vec::new();
    let mut n = 0;
    for (i, case) in cases().iter().enumerate() {
        let client = format!("client{i:02}");
        for step in &case.steps {
            n += 1;
            // Millisecond ordering within a second follows the step order.
            lines.push(event(
                n,
                &client,
                case.repo,
                case.runtime,
                60 * i as u32,
                *step,
            ));
        }
    }
    write_events(dir, "2026-01-05", &lines);
    let report = report(dir).await;
    let repos: BTreeMap<String, _> = report.breakdown["repository"]
        .iter()
        .map(|s| (s.value.clone(), s.clone()))
        .collect();
    let tags: BTreeMap<String, _> = report.breakdown["tag"]
        .iter()
        .map(|s| (s.value.clone(), s.pulls))
        .collect();
    let mut failures = Vec::new();
    for case in cases() {
        let key = format!("images.example/{}", case.repo);
        let got = repos
            .get(&key)
            .map(|s| (s.pulls, s.usage_pulls, s.update_checks, s.downloads))
            .unwrap_or((0, 0, 0, 0));
        let (pulls, usage, checks, downloads, by_digest) = case.expect;
        if got != (pulls, usage, checks, downloads) {
            failures.push(format!(
                "{}: got (pulls, usage, checks, downloads) {:?}, expected {:?}",
                case.repo,
                got,
                (pulls, usage, checks, downloads)
            ));
        }
        if pulls > 0 {
            let digest_pulls = tags.get(&format!("{key}:@digest")).copied().unwrap_or(0);
            if by_digest != (digest_pulls > 0) {
                failures.push(format!(
                    "{}: pulled by digest {} times",
                    case.repo, digest_pulls
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let expected_pulls: i64 = cases().iter().map(|c| c.expect.0).sum();
    assert_eq!(report.totals.pulls, expected_pulls);
    assert_eq!(
        report.totals.unique_pullers,
        cases().iter().filter(|c| c.expect.0 > 0).count() as i64
    );
}

/// The engine without [`QueryEngine::keep`]: every query sessionizes on its
/// own, as on Athena.
struct Inline(EmbeddedEngine);

impl QueryEngine for Inline {
    fn dialect(&self) -> Dialect {
        self.0.dialect()
    }
    async fn run(&self, name: &str, sql: &str) -> Result<Table, EngineError> {
        self.0.run(name, sql).await
    }
}

#[tokio::test]
async fn sessions_kept_once_give_the_report_every_query_gives_inline() {
    let tmp = temp_dir("kept");
    let dir = tmp.path();
    let mut lines = Vec::new();
    let mut n = 0;
    // Every case twice, by clients of two organizations 12 hours apart, so
    // that clients, organizations, series and behaviour all have rows.
    for round in 0..2u32 {
        for (i, case) in cases().iter().enumerate() {
            let client = format!("client{round}{i:02}");
            for step in &case.steps {
                n += 1;
                let mut line: serde_json::Value = serde_json::from_str(&event(
                    n,
                    &client,
                    case.repo,
                    case.runtime,
                    43_200 * round + 60 * i as u32,
                    *step,
                ))
                .unwrap();
                line["org"] = serde_json::json!(["Acme", "Globex"][i % 2]);
                lines.push(line.to_string());
            }
        }
    }
    write_events(dir, "2026-01-05", &lines);
    let params = ReportParams::new("2026-01-01", "2026-01-31", None, None).unwrap();
    let kept = EmbeddedEngine::open(dir).await.unwrap();
    let mut steps = Vec::new();
    let kept = build_report(&kept, &params, EVENTS_TABLE, &mut |_, _, q| {
        steps.push(q.to_string())
    })
    .await
    .unwrap();
    assert_eq!(steps.first().map(String::as_str), Some("sessions"));
    let inline = Inline(EmbeddedEngine::open(dir).await.unwrap());
    let inline = build_report(&inline, &params, EVENTS_TABLE, &mut |_, _, _| {})
        .await
        .unwrap();
    assert!(kept.totals.pulls > 0 && kept.organizations.len() == 2);
    assert_eq!(kept, inline);
}

#[tokio::test]
async fn the_date_range_selects_partitions_and_dnt_clients_are_not_pullers() {
    let tmp = temp_dir("range");
    let dir = tmp.path();
    write_events(
        dir,
        "2026-01-05",
        &[event(1, "c1", "app", "docker", 0, m(0, "GET", "1.0"))],
    );
    let mut anonymous: serde_json::Value =
        serde_json::from_str(&event(2, "x", "app", "podman", 0, m(0, "GET", "1.0"))).unwrap();
    anonymous.as_object_mut().unwrap().remove("client_id");
    // Stored on its own day, as the local sink stores it.
    anonymous["time"] = "2026-02-05T00:00:00.002Z".into();
    write_events(dir, "2026-02-05", &[anonymous.to_string()]);
    let report = report(dir).await;
    assert_eq!((report.totals.pulls, report.totals.unique_pullers), (1, 1));
    let engine = EmbeddedEngine::open(dir).await.unwrap();
    let params = ReportParams::new("2026-01-01", "2026-02-28", None, None).unwrap();
    let both = build_report(&engine, &params, EVENTS_TABLE, &mut |_, _, _| {})
        .await
        .unwrap();
    assert_eq!((both.totals.pulls, both.totals.unique_pullers), (2, 1));
}

#[tokio::test]
async fn missing_data_is_a_clear_error() {
    let tmp = temp_dir("missing");
    let dir = tmp.path();
    let Err(error) = EmbeddedEngine::open(&dir.join("nowhere")).await else {
        panic!("opened a missing directory")
    };
    assert!(error.to_string().contains("no event data"), "{error}");
    let Err(error) = EmbeddedEngine::open(dir).await else {
        panic!("opened an empty directory")
    };
    assert!(error.to_string().contains("no event files"), "{error}");
}
