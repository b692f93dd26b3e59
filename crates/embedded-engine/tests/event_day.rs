//! Events count on the day of their own time, whatever `dt` partition holds
//! them. Firehose names the partition by when a buffer's oldest record
//! arrived, so an event of 23:59:59.900 can land in the next day's, one
//! just after midnight in the day before's, and a replay in the day it was
//! replayed; the embedded engine reads a
//! copy of that layout with `dt` taken from the directory name, as Athena
//! does. The day D is a Sunday at a month's end, so that day, ISO week and
//! month all change at D's midnight.

use std::io::Write;
use std::path::Path;

use pullgate_embedded_engine::{EmbeddedEngine, EVENTS_TABLE};
use pullgate_report::{build_report, Report, ReportParams};

/// Day D, and the two after it.
const D: &str = "2026-05-31";
const D1: &str = "2026-06-01";
const D2: &str = "2026-06-02";

/// (client, the event's time, the day it was stored under)
const EVENTS: [(&str, &str, &str); 6] = [
    // The midnight case: stored with the next day's buffer.
    ("midnight", "2026-05-31T23:59:59.900Z", D1),
    // Undelivered on D, replayed a day later.
    ("replay", "2026-05-31T10:00:00.000Z", D1),
    // The same client pulling again on D+1, stored that day: two active days.
    ("replay", "2026-06-01T09:00:00.000Z", D1),
    // An event of D+1, stored on its day.
    ("next", "2026-06-01T08:00:00.000Z", D1),
    // Just after midnight, in a buffer opened on D.
    ("early", "2026-06-01T00:03:00.000Z", D),
    // Replayed two days later: beyond the default margin of one day.
    ("late", "2026-05-31T12:00:00.000Z", D2),
];

fn event(n: usize, client: &str, time: &str) -> String {
    serde_json::json!({
        "v": 1, "time": time, "request_id": format!("r-{n:03}"), "host": "images.example",
        "mapping": "images.example/", "name": "app", "upstream": "https://registry.example",
        "upstream_name": "app", "method": "GET", "kind": "manifest", "reference": "1.0",
        "status": 200, "mode": "redirect", "client_id": client, "network_id": "n1",
        "prefix": "192.0.2.0/24", "country": "DE", "org": "Acme", "org_kind": "business",
        "org_confidence": 1.0, "runtime": "docker", "ua": "docker/27.0", "duration_us": 10
    })
    .to_string()
}

fn write_gzip(path: &Path, lines: &[String]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    for line in lines {
        writeln!(gz, "{line}").unwrap();
    }
    gz.finish().unwrap();
}

/// The events in `dir`, each file at `path(stored day)`.
fn write_events(dir: &Path, path: impl Fn(&str) -> String) {
    for stored in [D, D1, D2] {
        let lines: Vec<String> = EVENTS
            .iter()
            .enumerate()
            .filter(|(_, e)| e.2 == stored)
            .map(|(n, (client, time, _))| event(n, client, time))
            .collect();
        write_gzip(&dir.join(path(stored)), &lines);
    }
}

/// The Firehose layout the Athena table reads: `dt` is the stored day.
fn partitioned() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("pullgate-report-eventday-")
        .tempdir()
        .unwrap();
    write_events(dir.path(), |day| {
        format!("events/dt={day}/pullgate-1-1-0.json.gz")
    });
    dir
}

async fn report(dir: &Path, from: &str, to: &str, late_days: Option<u32>) -> Report {
    let mut params = ReportParams::new(from, to, None, None).unwrap();
    if let Some(days) = late_days {
        params = params.with_late_days(days).unwrap();
    }
    let engine = EmbeddedEngine::open(dir).await.unwrap();
    build_report(&engine, &params, EVENTS_TABLE, &mut |_, _, _| {})
        .await
        .unwrap()
}

fn series(report: &Report, granularity: &str) -> Vec<(String, i64)> {
    report
        .series_of(granularity)
        .map(|p| (p.period.clone(), p.pulls))
        .collect()
}

fn clients(report: &Report) -> Vec<(String, i64, i64)> {
    let mut out: Vec<_> = report
        .top_pullers
        .iter()
        .map(|p| (p.client.clone(), p.pulls, p.active_days))
        .collect();
    out.sort();
    out
}

fn row(period: &str, pulls: i64) -> (String, i64) {
    (period.to_string(), pulls)
}

fn client(name: &str, pulls: i64, active_days: i64) -> (String, i64, i64) {
    (name.to_string(), pulls, active_days)
}

#[tokio::test]
async fn the_midnight_case_and_a_next_day_replay_count_on_their_own_day() {
    let tmp = partitioned();
    let dir = tmp.path();

    // Day D: both events stored under D+1 count there; the replay two days
    // later is beyond the default margin.
    let day = report(dir, D, D, None).await;
    assert_eq!(day.late_days, 1);
    assert_eq!(day.totals.pulls, 2);
    assert_eq!(series(&day, "day"), [row(D, 2)]);
    assert_eq!(
        clients(&day),
        [client("midnight", 1, 1), client("replay", 1, 1)]
    );
    assert_eq!(day.totals.first_seen, "2026-05-31T10:00:00.000Z");
    assert_eq!(day.totals.last_seen, "2026-05-31T23:59:59.900Z");

    // Day D+1, whose partition holds them: they are not counted there,
    // and the pull just after midnight stored under D is.
    let next = report(dir, D1, D1, None).await;
    assert_eq!(next.totals.pulls, 3);
    assert_eq!(series(&next, "day"), [row(D1, 3)]);
    assert_eq!(
        clients(&next),
        [
            client("early", 1, 1),
            client("next", 1, 1),
            client("replay", 1, 1)
        ]
    );
}

#[tokio::test]
async fn days_weeks_months_and_active_days_follow_the_events_time() {
    let tmp = partitioned();
    // D and D+1 read the partitions up to D+2: the late replay is in too.
    let both = report(tmp.path(), D, D1, None).await;
    assert_eq!(both.totals.pulls, 6);
    assert_eq!(series(&both, "day"), [row(D, 3), row(D1, 3)]);
    assert_eq!(
        series(&both, "week"),
        [row("2026-05-25", 3), row("2026-06-01", 3)]
    );
    assert_eq!(
        series(&both, "month"),
        [row("2026-05", 3), row("2026-06", 3)]
    );
    // The replayed client's pulls sit in one partition and on two days.
    assert_eq!(
        clients(&both),
        [
            client("early", 1, 1),
            client("late", 1, 1),
            client("midnight", 1, 1),
            client("next", 1, 1),
            client("replay", 2, 2)
        ]
    );
    let [acme] = both.organizations.as_slice() else {
        panic!("{:?}", both.organizations)
    };
    assert_eq!((acme.pulls, acme.active_days), (6, 2));
    let weeks: Vec<_> = acme.detail["week"]
        .iter()
        .map(|s| (s.value.clone(), s.pulls))
        .collect();
    assert_eq!(weeks, [row("2026-05-25", 3), row("2026-06-01", 3)]);
}

#[tokio::test]
async fn a_later_replay_counts_once_the_report_reads_far_enough() {
    let tmp = partitioned();
    let dir = tmp.path();
    let wider = report(dir, D, D, Some(2)).await;
    assert_eq!(wider.late_days, 2);
    assert_eq!(wider.totals.pulls, 3);
    assert_eq!(series(&wider, "day"), [row(D, 3)]);
    assert!(clients(&wider).contains(&client("late", 1, 1)));
    // Without a margin after the range only the range's own partitions
    // (and the day before) are read: all that was stored on D is of D+1,
    // and over D..D+1 the replay stored on D+2 is left out.
    let exact = report(dir, D, D, Some(0)).await;
    assert!(exact.is_empty(), "{:?}", exact.totals);
    let exact = report(dir, D, D1, Some(0)).await;
    assert_eq!(series(&exact, "day"), [row(D, 2), row(D1, 3)]);
}

#[tokio::test]
async fn without_partitions_dt_is_the_events_own_day() {
    // A directory of event files in Firehose's own layout, without dt=
    // directories: there is no stored day to go by, so every event counts
    // on its day, the late replay included.
    let tmp = tempfile::Builder::new()
        .prefix("pullgate-report-eventday-flat-")
        .tempdir()
        .unwrap();
    let dir = tmp.path();
    write_events(dir, |day| {
        format!("events/{}/00/events-{day}.gz", day.replace('-', "/"))
    });
    let day = report(dir, D, D, None).await;
    assert_eq!(series(&day, "day"), [row(D, 3)]);
    assert_eq!(
        clients(&day),
        [
            client("late", 1, 1),
            client("midnight", 1, 1),
            client("replay", 1, 1)
        ]
    );
    let next = report(dir, D1, D1, None).await;
    assert_eq!(series(&next, "day"), [row(D1, 3)]);
}
