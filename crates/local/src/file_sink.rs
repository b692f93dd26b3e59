//! The local event sink: newline-delimited JSON, gzip-compressed, under
//! `DIR/events/dt=YYYY-MM-DD/`, the layout the Firehose stream writes to S3,
//! so the same queries read both.
//!
//! `submit` serializes the event straight into one of a few shard buffers
//! (chosen by thread, so workers rarely share a lock) and returns; a writer
//! thread takes the buffers every 20 ms and only compresses and writes.
//! Nothing is queued per event, no thread is woken per event. A file is
//! written as `.part` and renamed when complete, so readers never see a
//! truncated gzip; files rotate by size, age and day and are closed cleanly
//! on shutdown. Lines that cannot be written are logged for replay.

use flate2::write::GzEncoder;
use flate2::Compression;
use pullgate_domain::event::Event;
use pullgate_domain::sink::EventSink;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const SHARDS: usize = 8;
/// How often the writer collects the shard buffers.
const COLLECT_EVERY: Duration = Duration::from_millis(20);
/// `{"v":1,"time":"` — events serialize `v` then `time` first, so a line's
/// day is at a fixed offset.
const DATE_OFFSET: usize = 15;

#[derive(Debug, Clone)]
pub struct FileSinkConfig {
    pub dir: PathBuf,
    /// Rotate after this many uncompressed bytes.
    pub max_bytes: u64,
    /// Rotate a file this old (events become readable at rotation).
    pub max_age: Duration,
}

impl FileSinkConfig {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileSinkConfig {
            dir: dir.into(),
            max_bytes: 64 * 1024 * 1024,
            max_age: Duration::from_secs(60),
        }
    }
}

/// Serialized event lines and how many there are (so the writer never
/// scans the bytes to count them).
struct Lines {
    bytes: Vec<u8>,
    count: u64,
}

impl Lines {
    fn with_capacity(bytes: usize) -> Self {
        Lines {
            bytes: Vec::with_capacity(bytes),
            count: 0,
        }
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.count = 0;
    }
}

struct Shared {
    shards: [Mutex<Lines>; SHARDS],
    closing: AtomicBool,
}

pub struct FileSink {
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<WriterStats>>>,
}

/// What the writer did, reported when it closes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WriterStats {
    pub events: u64,
    pub files: u64,
    pub failed: u64,
}

impl FileSink {
    pub fn start(config: FileSinkConfig) -> std::io::Result<Self> {
        std::fs::create_dir_all(config.dir.join("events"))?;
        let shared = Arc::new(Shared {
            shards: std::array::from_fn(|_| Mutex::new(Lines::with_capacity(256 * 1024))),
            closing: AtomicBool::new(false),
        });
        let writer = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("pullgate-event-writer".into())
                .spawn(move || write_loop(config, shared))?
        };
        Ok(FileSink {
            shared,
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Writes out everything submitted, closes the current file and stops
    /// the writer. Later submissions are logged for replay.
    pub fn close(&self) -> WriterStats {
        self.shared.closing.store(true, Ordering::SeqCst);
        let handle = self.writer.lock().ok().and_then(|mut w| w.take());
        let mut stats = handle.and_then(|h| h.join().ok()).unwrap_or_default();
        // Anything submitted while the writer made its last pass.
        for shard in &self.shared.shards {
            if let Ok(mut buffer) = shard.lock() {
                for line in buffer
                    .bytes
                    .split(|&b| b == b'\n')
                    .filter(|l| !l.is_empty())
                {
                    stats.failed += 1;
                    log_line_for_replay(line, "submitted while the event writer was closing");
                }
                buffer.clear();
            }
        }
        stats
    }
}

/// Threads take shards in turn, so the first `SHARDS` threads (the workers,
/// one per core) never share one and never wait on each other's lock.
fn shard_index() -> usize {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    INDEX.with(|i| *i)
}

impl EventSink for FileSink {
    fn submit(&self, event: &Event<'_>) {
        if self.shared.closing.load(Ordering::Relaxed)
            && self.writer.lock().map(|w| w.is_none()).unwrap_or(true)
        {
            log_for_replay(event, "event writer stopped");
            return;
        }
        let Ok(mut buffer) = self.shared.shards[shard_index()].lock() else {
            log_for_replay(event, "event buffer poisoned");
            return;
        };
        event.write_json(&mut buffer.bytes);
        buffer.bytes.push(b'\n');
        buffer.count += 1;
    }
}

/// An event that cannot be written goes to the log as one marked line
/// (`pullgate replay` reads such lines back): nothing is lost silently.
pub fn log_for_replay(event: &Event<'_>, reason: &str) {
    if let Ok(json) = serde_json::to_string(event) {
        log_line_for_replay(json.as_bytes(), reason);
    }
}

fn log_line_for_replay(line: &[u8], reason: &str) {
    let json = String::from_utf8_lossy(line);
    tracing::error!(target: "pullgate::undelivered", reason, event = %json.trim_end(), "PULLGATE_UNDELIVERED_EVENT");
}

struct OpenFile {
    part: PathBuf,
    done: PathBuf,
    date: Vec<u8>,
    opened: Instant,
    bytes: u64,
    out: GzEncoder<BufWriter<File>>,
}

impl OpenFile {
    fn finish(self) -> std::io::Result<()> {
        let mut inner = self.out.finish()?;
        inner.flush()?;
        inner.get_ref().sync_data()?;
        std::fs::rename(&self.part, &self.done)
    }
}

fn open(dir: &Path, date: &[u8], seq: &mut u64) -> std::io::Result<OpenFile> {
    let date_text = std::str::from_utf8(date).unwrap_or("unknown");
    let partition = dir.join("events").join(format!("dt={date_text}"));
    std::fs::create_dir_all(&partition)?;
    let stamp = pullgate_domain::time::UtcMillis::now().0;
    *seq += 1;
    let stem = format!("pullgate-{stamp}-{}-{seq:06}.json.gz", std::process::id());
    let done = partition.join(&stem);
    let part = partition.join(format!("{stem}.part"));
    let file = File::create(&part)?;
    Ok(OpenFile {
        part,
        done,
        date: date.to_vec(),
        opened: Instant::now(),
        bytes: 0,
        out: GzEncoder::new(
            BufWriter::with_capacity(256 * 1024, file),
            Compression::fast(),
        ),
    })
}

/// The `YYYY-MM-DD` of a serialized event line.
fn date_of(line: &[u8]) -> &[u8] {
    line.get(DATE_OFFSET..DATE_OFFSET + 10)
        .filter(|d| d.iter().all(|b| b.is_ascii_digit() || *b == b'-'))
        .unwrap_or(b"unknown")
}

struct Writer {
    config: FileSinkConfig,
    current: Option<OpenFile>,
    seq: u64,
    stats: WriterStats,
}

impl Writer {
    fn close_file(&mut self) {
        if let Some(file) = self.current.take() {
            let name = file.done.clone();
            match file.finish() {
                Ok(()) => self.stats.files += 1,
                Err(error) => {
                    tracing::error!(%error, file = %name.display(), "closing event file failed")
                }
            }
        }
    }

    /// Writes `count` lines that all belong to one day.
    fn write_day(&mut self, date: &[u8], lines: &[u8], count: u64) {
        let rotate = self.current.as_ref().is_some_and(|f| {
            f.date != date
                || f.bytes >= self.config.max_bytes
                || f.opened.elapsed() >= self.config.max_age
        });
        if rotate {
            self.close_file();
        }
        if self.current.is_none() {
            match open(&self.config.dir, date, &mut self.seq) {
                Ok(file) => self.current = Some(file),
                Err(error) => {
                    tracing::error!(%error, "cannot open event file");
                    self.fail(lines, "cannot open event file");
                    return;
                }
            }
        }
        let result = match self.current.as_mut() {
            Some(file) => file
                .out
                .write_all(lines)
                .map(|()| file.bytes += lines.len() as u64),
            None => Ok(()),
        };
        match result {
            Ok(()) => self.stats.events += count,
            Err(error) => {
                tracing::error!(%error, "event write failed");
                self.current = None;
                self.fail(lines, "event write failed");
            }
        }
    }

    fn fail(&mut self, lines: &[u8], reason: &str) {
        for line in lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            self.stats.failed += 1;
            log_line_for_replay(line, reason);
        }
    }

    /// A batch is nearly always one day: split only where the day changes.
    fn write_batch(&mut self, batch: &Lines) {
        let mut rest = &batch.bytes[..];
        let mut count = batch.count;
        while !rest.is_empty() {
            let date = date_of(rest);
            let last_line_start = rest[..rest.len() - 1]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            if date_of(&rest[last_line_start..]) == date {
                self.write_day(date, rest, count);
                return;
            }
            let end = rest
                .iter()
                .position(|&b| b == b'\n')
                .map_or(rest.len(), |i| i + 1);
            self.write_day(date, &rest[..end], 1);
            count = count.saturating_sub(1);
            rest = &rest[end..];
        }
    }
}

fn write_loop(config: FileSinkConfig, shared: Arc<Shared>) -> WriterStats {
    let mut writer = Writer {
        config,
        current: None,
        seq: 0,
        stats: WriterStats::default(),
    };
    // One spare per shard: a shard swaps between its own two buffers, so
    // both keep the capacity its load needs. (One spare for all shards
    // handed a busy shard an idle shard's small buffer, which it then grew
    // again, copying, on the request path.)
    let mut spares: [Lines; SHARDS] = std::array::from_fn(|_| Lines::with_capacity(256 * 1024));
    loop {
        let closing = shared.closing.load(Ordering::SeqCst);
        for (shard, spare) in shared.shards.iter().zip(spares.iter_mut()) {
            if let Ok(mut buffer) = shard.lock() {
                std::mem::swap(&mut *buffer, spare);
            }
            if !spare.bytes.is_empty() {
                writer.write_batch(spare);
                spare.clear();
            }
        }
        if closing {
            writer.close_file();
            return writer.stats;
        }
        if writer
            .current
            .as_ref()
            .is_some_and(|f| f.opened.elapsed() >= writer.config.max_age)
        {
            writer.close_file();
        }
        std::thread::sleep(COLLECT_EVERY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;

    fn read_all(dir: &Path) -> Vec<Event<'static>> {
        let mut events = Vec::new();
        for partition in std::fs::read_dir(dir.join("events")).unwrap() {
            for file in std::fs::read_dir(partition.unwrap().path()).unwrap() {
                let path = file.unwrap().path();
                assert!(path.to_string_lossy().ends_with(".json.gz"), "{path:?}");
                let reader = std::io::BufReader::new(flate2::read::GzDecoder::new(
                    File::open(&path).unwrap(),
                ));
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
    fn dates_are_read_at_their_fixed_offset() {
        let line = serde_json::to_vec(&Event {
            v: 1,
            time: "2026-11-22T10:00:00.000Z".into(),
            ..Event::default()
        })
        .unwrap();
        assert_eq!(date_of(&line), b"2026-11-22");
        assert_eq!(date_of(b"{}"), b"unknown");
    }
}
