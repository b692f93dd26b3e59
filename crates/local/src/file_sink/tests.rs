use super::*;
use flate2::write::GzEncoder;
use std::fs::File;
use std::io::{BufRead, Read, Write};
use std::path::Path;
use std::time::Instant;

fn read_all(dir: &Path) -> Vec<Event<'static>> {
    let mut events = Vec::new();
    for partition in std::fs::read_dir(dir.join("events")).unwrap() {
        for file in std::fs::read_dir(partition.unwrap().path()).unwrap() {
            let path = file.unwrap().path();
            assert!(path.to_string_lossy().ends_with(".json.gz"), "{path:?}");
            let reader =
                std::io::BufReader::new(flate2::read::GzDecoder::new(File::open(&path).unwrap()));
            for line in reader.lines() {
                events.push(serde_json::from_str(&line.unwrap()).unwrap());
            }
        }
    }
    events
}

#[test]
fn every_event_lands_once_in_day_partitions_with_rotation() {
    let dir = std::env::temp_dir().join(format!("pullgate-sink-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = FileSinkConfig::new(&dir);
    config.max_bytes = 10_000;
    let sink = Arc::new(FileSink::start(config).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let sink = sink.clone();
            std::thread::spawn(move || {
                for i in 0..2500 {
                    let day = if i % 2 == 0 {
                        "2026-11-21"
                    } else {
                        "2026-11-22"
                    };
                    sink.submit(&Event {
                        v: 1,
                        time: format!("{day}T10:00:00.000Z").into(),
                        request_id: format!("t{t}-r{i}").into(),
                        ..Event::default()
                    });
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let stats = sink.close();
    assert_eq!((stats.events, stats.failed), (10_000, 0));
    assert!(stats.files > 2, "rotated by size: {stats:?}");
    let events = read_all(&dir);
    let mut ids: Vec<_> = events.iter().map(|e| e.request_id.to_string()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 10_000);
    for e in &events {
        let partition = format!("dt={}", &e.time[..10]);
        assert!(dir.join("events").join(partition).is_dir());
    }
    assert!(dir.join("events/dt=2026-11-21").is_dir());
    assert!(dir.join("events/dt=2026-11-22").is_dir());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn interleaved_days_each_land_in_their_own_partition() {
    let dir = std::env::temp_dir().join(format!("pullgate-sink-mixed-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let sink = FileSink::start(FileSinkConfig::new(&dir)).unwrap();
    // First and last of the batch on one day, the middle on others
    // (a batch used to be filed by its first and last lines).
    for (i, day) in ["21", "22", "23", "22", "21"].iter().enumerate() {
        sink.submit(&Event {
            v: 1,
            time: format!("2026-11-{day}T23:59:59.999Z").into(),
            request_id: format!("r{i}").into(),
            ..Event::default()
        });
    }
    assert_eq!(sink.close().events, 5);
    let mut filed = 0;
    for partition in std::fs::read_dir(dir.join("events")).unwrap() {
        let partition = partition.unwrap().path();
        let name = partition
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        for file in std::fs::read_dir(&partition).unwrap() {
            let reader = std::io::BufReader::new(flate2::read::GzDecoder::new(
                File::open(file.unwrap().path()).unwrap(),
            ));
            for line in reader.lines() {
                let event: Event = serde_json::from_str(&line.unwrap()).unwrap();
                assert_eq!(name, format!("dt={}", &event.time[..10]));
                filed += 1;
            }
        }
    }
    assert_eq!(filed, 5);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn days_come_from_the_event() {
    let event = Event {
        v: 1,
        time: "2026-11-22T10:00:00.000Z".into(),
        ..Event::default()
    };
    assert_eq!(writer::partition_name(event.day()), "dt=2026-11-22");
    assert_eq!(writer::partition_name(Event::default().day()), "dt=unknown");
}

#[test]
fn lines_keep_one_run_per_day_in_order() {
    let at = |time: &'static str| Event {
        time: time.into(),
        ..Event::default()
    };
    let mut lines = Lines::with_capacity(0);
    for time in [
        "2026-11-21T23:59:59.999Z",
        "2026-11-21T23:59:59.999Z",
        "2026-11-22T00:00:00.000Z",
        "",
    ] {
        lines.push(&at(time));
    }
    let days: Vec<_> = lines
        .runs
        .iter()
        .map(|r| (r.day.map(|d| d.as_str().to_string()), r.count))
        .collect();
    assert_eq!(
        days,
        [
            (Some("2026-11-21".to_string()), 2),
            (Some("2026-11-22".to_string()), 1),
            (None, 1)
        ]
    );
    assert_eq!(lines.runs.last().map(|r| r.end), Some(lines.bytes.len()));
}

#[test]
fn the_partition_is_the_events_day_wherever_its_time_is_written() {
    let dir = std::env::temp_dir().join(format!("pullgate-sink-day-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let sink = FileSink::start(FileSinkConfig::new(&dir)).unwrap();
    // A two-digit version moves the time one byte further into the
    // line: the day must still come from the event, not an offset.
    for (v, time) in [
        (10, "2026-11-21T10:00:00.000Z"),
        (1, "2026-11-22T10:00:00.000Z"),
        (1, "not a time"),
    ] {
        sink.submit(&Event {
            v,
            time: time.into(),
            request_id: format!("{v}-{time}").into(),
            ..Event::default()
        });
    }
    assert_eq!(sink.close().events, 3);
    for (partition, request_id) in [
        ("dt=2026-11-21", "10-2026-11-21T10:00:00.000Z"),
        ("dt=2026-11-22", "1-2026-11-22T10:00:00.000Z"),
        ("dt=unknown", "1-not a time"),
    ] {
        let files: Vec<_> = std::fs::read_dir(dir.join("events").join(partition))
            .unwrap()
            .map(|f| f.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1, "{partition}");
        let reader =
            std::io::BufReader::new(flate2::read::GzDecoder::new(File::open(&files[0]).unwrap()));
        let ids: Vec<String> = reader
            .lines()
            .map(|l| {
                serde_json::from_str::<Event>(&l.unwrap())
                    .unwrap()
                    .request_id
                    .into_owned()
            })
            .collect();
        assert_eq!(ids, [request_id], "{partition}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

// Crash safety: recovery of `.part` files, the periodic flush, readiness.

/// A fresh directory of its own for each test (they run in parallel).
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "pullgate-sink-{name}-{}-{:?}",
        std::process::id(),
        std::time::SystemTime::now()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("events").join(DAY_DIR)).unwrap();
    dir
}

const DAY_DIR: &str = "dt=2026-11-21";
const PART_NAME: &str = "pullgate-1700000000000-4242-000001.json.gz.part";

fn event(i: usize) -> Event<'static> {
    Event {
        v: 1,
        time: "2026-11-21T10:00:00.000Z".into(),
        request_id: format!("r{i}").into(),
        ..Event::default()
    }
}

fn lines(range: std::ops::Range<usize>) -> Vec<u8> {
    let mut bytes = Vec::new();
    for i in range {
        event(i).write_json(&mut bytes);
        bytes.push(b'\n');
    }
    bytes
}

/// What a writer killed after a sync flush leaves: a gzip stream with no
/// end, every byte written so far decodable.
fn flushed_stream(parts: &[&[u8]]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for part in parts {
        gz.write_all(part).unwrap();
        gz.flush().unwrap();
    }
    gz.get_ref().clone()
}

fn write_part(dir: &Path, bytes: &[u8]) -> PathBuf {
    let path = dir.join("events").join(DAY_DIR).join(PART_NAME);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// File names under every partition, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for partition in std::fs::read_dir(dir.join("events")).unwrap() {
        for file in std::fs::read_dir(partition.unwrap().path()).unwrap() {
            names.push(file.unwrap().file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    names
}

fn ids(dir: &Path) -> Vec<String> {
    read_all(dir)
        .iter()
        .map(|e| e.request_id.to_string())
        .collect()
}

fn expected_ids(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("r{i}")).collect()
}

/// Decodes a `.part` as a reader after a crash would: as far as it goes.
fn decodable_lines(path: &Path) -> usize {
    let mut decoder = flate2::read::GzDecoder::new(File::open(path).unwrap());
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 8192];
    while let Ok(n) = decoder.read(&mut chunk) {
        if n == 0 {
            break;
        }
        bytes.extend_from_slice(&chunk[..n]);
    }
    bytes.iter().filter(|&&b| b == b'\n').count()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_truncated_part_recovers_its_complete_lines() {
    let dir = scratch("truncated");
    let first = lines(0..100);
    let flushed = flushed_stream(&[&first]);
    let full = flushed_stream(&[&first, &lines(100..200)]);
    // Killed halfway through writing the second flush's bytes.
    write_part(
        &dir,
        &full[..flushed.len() + (full.len() - flushed.len()) / 2],
    );
    let sink = FileSink::start(FileSinkConfig::new(&dir)).unwrap();
    let recovered = sink.recovered();
    sink.close();
    let found = ids(&dir);
    assert!(
        (100..200).contains(&found.len()),
        "{} lines recovered",
        found.len()
    );
    assert_eq!(found, expected_ids(0..found.len()), "a prefix, in order");
    assert_eq!((recovered.files, recovered.events), (1, found.len() as u64));
    assert_eq!(
        names(&dir),
        ["pullgate-1700000000000-4242-000001-recovered.json.gz"]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_part_whose_stream_is_complete_recovers_every_line() {
    // Killed after finishing the stream, before the rename.
    let dir = scratch("complete");
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&lines(0..50)).unwrap();
    write_part(&dir, &gz.finish().unwrap());
    let sink = FileSink::start(FileSinkConfig::new(&dir)).unwrap();
    assert_eq!(sink.recovered().events, 50);
    assert_eq!(sink.recovered().bytes_dropped, 0);
    sink.close();
    assert_eq!(ids(&dir), expected_ids(0..50));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_part_cut_mid_line_keeps_only_complete_json_lines() {
    let dir = scratch("mid-line");
    let cut: &[u8] = br#"{"v":1,"time":"2026-11-21T10:00:00.000Z","requ"#;
    let garbage: &[u8] = b"\x00\x00not json\n";
    let mut tail = lines(10..11);
    tail.extend_from_slice(cut);
    write_part(&dir, &flushed_stream(&[&lines(0..10), garbage, &tail]));
    let sink = FileSink::start(FileSinkConfig::new(&dir)).unwrap();
    let recovered = sink.recovered();
    sink.close();
    assert_eq!(ids(&dir), expected_ids(0..11));
    assert_eq!(recovered.events, 11);
    assert_eq!(recovered.bytes_dropped, (garbage.len() + cut.len()) as u64);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_part_with_no_intact_line_is_removed() {
    for (name, bytes) in [
        ("zero-bytes", Vec::new()),
        ("header-only", flushed_stream(&[])),
        ("half-a-line", flushed_stream(&[br#"{"v":1,"#])),
    ] {
        let dir = scratch(name);
        write_part(&dir, &bytes);
        let sink = FileSink::start(FileSinkConfig::new(&dir)).unwrap();
        let recovered = sink.recovered();
        sink.close();
        assert_eq!((recovered.files, recovered.events), (1, 0), "{name}");
        assert!(names(&dir).is_empty(), "{name}: {:?}", names(&dir));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn a_locked_part_is_left_alone() {
    let dir = scratch("locked");
    let stream = flushed_stream(&[&lines(0..5)]);
    let part = write_part(&dir, &stream);
    // Its writer, still running.
    let held = File::open(&part).unwrap();
    held.try_lock().unwrap();
    let sink = FileSink::start(FileSinkConfig::new(&dir)).unwrap();
    assert_eq!(sink.recovered().in_use, 1);
    assert_eq!(sink.recovered().events, 0);
    sink.close();
    assert_eq!(std::fs::read(&part).unwrap(), stream, "untouched");
    assert_eq!(names(&dir), [PART_NAME]);
    // Its writer died: the next start recovers it.
    drop(held);
    let sink = FileSink::start(FileSinkConfig::new(&dir)).unwrap();
    assert_eq!(sink.recovered().events, 5);
    sink.close();
    assert_eq!(ids(&dir), expected_ids(0..5));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_running_sinks_open_file_is_not_recovered_by_another() {
    let dir = scratch("two-sinks");
    let mut config = FileSinkConfig::new(&dir);
    config.flush_every = Duration::from_millis(20);
    let first = FileSink::start(config.clone()).unwrap();
    for i in 0..10 {
        first.submit(&event(i));
    }
    let part = || {
        names(&dir)
            .into_iter()
            .find(|n| n.ends_with(".part"))
            .map(|n| dir.join("events").join(DAY_DIR).join(n))
    };
    wait_until("the first sink flushed", || {
        part().is_some_and(|p| decodable_lines(&p) == 10)
    });
    let second = FileSink::start(config).unwrap();
    assert_eq!(second.recovered().in_use, 1);
    assert_eq!(second.recovered().events, 0);
    second.close();
    assert_eq!(first.close().events, 10);
    assert_eq!(ids(&dir), expected_ids(0..10));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn recovery_is_idempotent_whenever_it_is_interrupted() {
    let dir = scratch("idempotent");
    let partition = dir.join("events").join(DAY_DIR);
    let attempt = partition.join("pullgate-1700000000000-4242-000001-recovered.json.gz.recovering");
    let stream = flushed_stream(&[&lines(0..20)]);

    // Interrupted while writing the recovered copy: discarded and redone.
    write_part(&dir, &stream);
    std::fs::write(&attempt, flushed_stream(&[&lines(0..3)])).unwrap();
    let sink = FileSink::start(FileSinkConfig::new(&dir)).unwrap();
    assert_eq!(sink.recovered().events, 20);
    sink.close();
    assert_eq!(ids(&dir), expected_ids(0..20));

    // Interrupted after publishing, before removing the `.part`: only the
    // removal is left to do.
    write_part(&dir, &stream);
    let sink = FileSink::start(FileSinkConfig::new(&dir)).unwrap();
    assert_eq!((sink.recovered().files, sink.recovered().events), (1, 0));
    sink.close();
    assert_eq!(ids(&dir), expected_ids(0..20));

    // And a start with nothing left to recover changes nothing (an
    // attempt without its `.part` is not published, and is removed).
    std::fs::write(&attempt, flushed_stream(&[&lines(0..3)])).unwrap();
    let sink = FileSink::start(FileSinkConfig::new(&dir)).unwrap();
    assert_eq!(sink.recovered(), RecoveryStats::default());
    sink.close();
    assert_eq!(ids(&dir), expected_ids(0..20));
    assert_eq!(
        names(&dir),
        ["pullgate-1700000000000-4242-000001-recovered.json.gz"]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_periodic_flush_makes_the_part_readable_while_the_sink_is_open() {
    let dir = scratch("flush");
    let mut config = FileSinkConfig::new(&dir);
    config.flush_every = Duration::from_millis(100);
    let sink = FileSink::start(config).unwrap();
    for i in 0..50 {
        sink.submit(&event(i));
    }
    // No event after these: the timer, not the next event, flushes them.
    let part = || {
        names(&dir)
            .into_iter()
            .find(|n| n.ends_with(".part"))
            .map(|n| dir.join("events").join(DAY_DIR).join(n))
    };
    wait_until("the 50 lines are decodable from the .part", || {
        part().is_some_and(|p| decodable_lines(&p) == 50)
    });
    assert!(
        names(&dir).iter().all(|n| n.ends_with(".part")),
        "still open"
    );
    assert_eq!(sink.close().events, 50);
    assert_eq!(ids(&dir), expected_ids(0..50));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn accepting_follows_the_writers_last_write() {
    let dir = scratch("accepting");
    // A file where a day's partition should be: that day cannot be opened.
    std::fs::write(dir.join("events/dt=2026-11-23"), b"").unwrap();
    let mut config = FileSinkConfig::new(&dir);
    // No probe during the test: only writes change readiness.
    config.flush_every = Duration::from_secs(3600);
    let sink = FileSink::start(config).unwrap();
    assert!(sink.accepting());
    sink.submit(&Event {
        time: "2026-11-23T10:00:00.000Z".into(),
        ..event(0)
    });
    wait_until("not accepting", || !sink.accepting());
    sink.submit(&event(1));
    wait_until("accepting again", || sink.accepting());
    let stats = sink.close();
    assert!(!sink.accepting(), "closed");
    assert_eq!((stats.events, stats.failed), (1, 1));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_writer_that_failed_probes_until_it_can_write_again() {
    let dir = scratch("probe");
    std::fs::write(dir.join("events/dt=2026-11-23"), b"").unwrap();
    // Where the probe writes: a directory there fails it too.
    let probe = dir
        .join("events")
        .join(format!(".pullgate-probe-{}", std::process::id()));
    std::fs::create_dir(&probe).unwrap();
    let mut config = FileSinkConfig::new(&dir);
    config.flush_every = Duration::from_millis(20);
    let sink = FileSink::start(config).unwrap();
    sink.submit(&Event {
        time: "2026-11-23T10:00:00.000Z".into(),
        ..event(0)
    });
    wait_until("not accepting", || !sink.accepting());
    std::thread::sleep(Duration::from_millis(200));
    assert!(!sink.accepting(), "the probe fails too");
    std::fs::remove_dir(&probe).unwrap();
    // No event: the probe alone brings readiness back.
    wait_until("accepting again", || sink.accepting());
    sink.close();
    std::fs::remove_dir_all(&dir).unwrap();
}
