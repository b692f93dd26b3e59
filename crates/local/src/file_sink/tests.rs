use super::*;
use std::io::BufRead;

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
    assert_eq!(partition_name(event.day()), "dt=2026-11-22");
    assert_eq!(partition_name(Event::default().day()), "dt=unknown");
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
