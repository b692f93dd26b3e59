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
//!
//! Crash safety: a crash loses at most the events of the last ~1 s (flush
//! interval) plus the 20 ms collect interval. Whenever the open file has
//! lines not yet flushed, the writer sync-flushes the gzip stream
//! (`Z_SYNC_FLUSH`: every byte so far decodable) and hands the bytes to the
//! OS at least once per `flush_every` (1 s), on a timer, not only when new
//! events come. A process crash (`kill -9`, OOM kill, abort) loses nothing
//! the OS has, so no fsync is needed for it: the `.part` it leaves decodes
//! up to the last flush, and the next [`FileSink::start`] recovers it (see
//! [`recovery`]). A power loss or kernel crash can also lose what the OS had
//! not yet written back of the open file (on Linux up to ~30 s by default,
//! `vm.dirty_expire_centisecs`); a completed file is fsynced before its
//! rename, and one whose rename was lost comes back as a `.part` and is
//! recovered. Each `.part` is locked while written, so recovery never
//! touches the file of a process that is still running.

use pullgate_domain::event::Event;
use pullgate_domain::sink::EventSink;
use pullgate_domain::time::DayText;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

const SHARDS: usize = 8;
/// How often the writer collects the shard buffers.
const COLLECT_EVERY: Duration = Duration::from_millis(20);

mod lock;
pub mod recovery;
mod writer;
pub use recovery::RecoveryStats;

#[derive(Debug, Clone)]
pub struct FileSinkConfig {
    pub dir: PathBuf,
    /// Rotate after this many uncompressed bytes.
    pub max_bytes: u64,
    /// Rotate a file this old (events become readable at rotation).
    pub max_age: Duration,
    /// Sync-flush the open file this often while it has unflushed lines:
    /// what a crash can lose. Also how often a writer whose last write
    /// failed checks, when no event comes, that it can write again.
    pub flush_every: Duration,
}

impl FileSinkConfig {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileSinkConfig {
            dir: dir.into(),
            max_bytes: 64 * 1024 * 1024,
            max_age: Duration::from_secs(60),
            flush_every: Duration::from_secs(1),
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
    /// Whether the writer's last open, write or flush succeeded.
    healthy: AtomicBool,
}

pub struct FileSink {
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<WriterStats>>>,
    recovered: RecoveryStats,
}

/// What the writer did, reported when it closes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WriterStats {
    /// Lines that reached a file (flushed to the OS).
    pub events: u64,
    pub files: u64,
    /// Lines that could not be written: logged for replay, or lost with a
    /// file whose write failed (its `.part` is recovered on the next start
    /// as far as it is intact).
    pub failed: u64,
}

impl FileSink {
    /// Recovers the `.part` files earlier runs left (before this run opens
    /// any), then starts the writer.
    pub fn start(config: FileSinkConfig) -> std::io::Result<Self> {
        let events = config.dir.join("events");
        std::fs::create_dir_all(&events)?;
        let recovered = recovery::recover(&events);
        let shared = Arc::new(Shared {
            shards: std::array::from_fn(|_| Mutex::new(Lines::with_capacity(256 * 1024))),
            closing: AtomicBool::new(false),
            healthy: AtomicBool::new(true),
        });
        let writer = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("pullgate-event-writer".into())
                .spawn(move || writer::write_loop(config, shared))?
        };
        Ok(FileSink {
            shared,
            writer: Mutex::new(Some(writer)),
            recovered,
        })
    }

    /// What the start found and recovered.
    pub fn recovered(&self) -> RecoveryStats {
        self.recovered
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
                let mut failed = 0;
                for line in buffer
                    .bytes
                    .split(|&b| b == b'\n')
                    .filter(|l| !l.is_empty())
                {
                    failed += 1;
                    log_line_for_replay(line, "submitted while the event writer was closing");
                }
                stats.failed += failed;
                undelivered(failed);
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
            undelivered(1);
            return;
        }
        let Ok(mut buffer) = self.shared.shards[shard_index()].lock() else {
            log_for_replay(event, "event buffer poisoned");
            undelivered(1);
            return;
        };
        buffer.push(event);
    }

    /// Not while closing, once the writer thread has died, or while its
    /// last open, write or flush failed (until one succeeds again).
    fn accepting(&self) -> bool {
        !self.shared.closing.load(Ordering::Relaxed)
            && self.shared.healthy.load(Ordering::Relaxed)
            && self
                .writer
                .lock()
                .is_ok_and(|w| w.as_ref().is_some_and(|h| !h.is_finished()))
    }
}

fn written(lines: u64) {
    metrics::counter!("pullgate_events_written_total", "sink" => "file").increment(lines);
}

fn undelivered(lines: u64) {
    metrics::counter!("pullgate_events_undelivered_total", "sink" => "file").increment(lines);
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

#[cfg(test)]
mod tests;
