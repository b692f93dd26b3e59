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
use pullgate_domain::time::DayText;
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
/// The partition of events whose time is not RFC 3339 (none that the
/// gateway builds): kept rather than dropped, and warned about.
const UNKNOWN_DAY: &str = "unknown";

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

/// Serialized event lines, in runs of one day each: the day comes from
/// the event when it is submitted, so the writer never parses the bytes
/// (and never counts lines by scanning them).
struct Lines {
    bytes: Vec<u8>,
    runs: Vec<DayRun>,
}

/// Consecutive lines of one day: where they end in `Lines::bytes` and how
/// many there are. A buffer nearly always holds one run (two at midnight).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DayRun {
    day: Option<DayText>,
    end: usize,
    count: u64,
}

impl Lines {
    fn with_capacity(bytes: usize) -> Self {
        Lines {
            bytes: Vec::with_capacity(bytes),
            runs: Vec::with_capacity(4),
        }
    }

    /// Appends the event's line to the run of its day.
    fn push(&mut self, event: &Event<'_>) {
        event.write_json(&mut self.bytes);
        self.bytes.push(b'\n');
        let (day, end) = (event.day(), self.bytes.len());
        match self.runs.last_mut() {
            Some(run) if run.day == day => {
                run.end = end;
                run.count += 1;
            }
            _ => self.runs.push(DayRun { day, end, count: 1 }),
        }
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.runs.clear();
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
        buffer.push(event);
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
    day: Option<DayText>,
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

/// The `dt=` partition name of a day.
fn partition_name(day: Option<DayText>) -> String {
    format!("dt={}", day.as_ref().map_or(UNKNOWN_DAY, DayText::as_str))
}

fn open(dir: &Path, day: Option<DayText>, seq: &mut u64) -> std::io::Result<OpenFile> {
    if day.is_none() {
        tracing::warn!("events whose time is not RFC 3339 are written under dt={UNKNOWN_DAY}");
    }
    let partition = dir.join("events").join(partition_name(day));
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
        day,
        opened: Instant::now(),
        bytes: 0,
        out: GzEncoder::new(
            BufWriter::with_capacity(256 * 1024, file),
            Compression::fast(),
        ),
    })
}

struct Writer {
    config: FileSinkConfig,
    current: Option<OpenFile>,
    seq: u64,
    stats: WriterStats,
    /// The days of one collection, kept so that collecting allocates once.
    days: Vec<Option<DayText>>,
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
    fn write_day(&mut self, day: Option<DayText>, lines: &[u8], count: u64) {
        let rotate = self.current.as_ref().is_some_and(|f| {
            f.day != day
                || f.bytes >= self.config.max_bytes
                || f.opened.elapsed() >= self.config.max_age
        });
        if rotate {
            self.close_file();
        }
        if self.current.is_none() {
            match open(&self.config.dir, day, &mut self.seq) {
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

    /// Writes one collection of the shards' lines, all of a day before the
    /// next and the open file's day first: each shard holds its own
    /// threads' lines, so at midnight their days interleave, and writing
    /// shard by shard would rotate the file at every change. Nearly always
    /// there is one day and one run per shard.
    fn write_batches(&mut self, batches: &[Lines]) {
        let mut days = std::mem::take(&mut self.days);
        days.clear();
        let runs = || batches.iter().flat_map(|batch| &batch.runs);
        if let Some(open) = self.current.as_ref().map(|f| f.day) {
            if runs().any(|run| run.day == open) {
                days.push(open);
            }
        }
        for run in runs() {
            if !days.contains(&run.day) {
                days.push(run.day);
            }
        }
        for &day in &days {
            for batch in batches {
                let mut start = 0;
                for run in &batch.runs {
                    if run.day == day {
                        // Runs end where `Lines::push` left the buffer, in order.
                        match batch.bytes.get(start..run.end) {
                            Some(lines) => self.write_day(day, lines, run.count),
                            None => tracing::error!(
                                start,
                                end = run.end,
                                "event run outside its buffer"
                            ),
                        }
                    }
                    start = run.end;
                }
            }
        }
        self.days = days;
    }
}

fn write_loop(config: FileSinkConfig, shared: Arc<Shared>) -> WriterStats {
    let mut writer = Writer {
        config,
        current: None,
        seq: 0,
        stats: WriterStats::default(),
        days: Vec::new(),
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
        }
        writer.write_batches(&spares);
        for spare in &mut spares {
            spare.clear();
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
mod tests;
