//! The writer thread: collects the shards' lines every 20 ms, compresses
//! them into the open `.part` of their day, sync-flushes it at least once a
//! `flush_every` while it has unflushed lines, rotates and publishes files,
//! and keeps the sink's health (`accepting`) from its own writes.

use super::lock;
use super::{
    log_line_for_replay, undelivered, written, FileSinkConfig, Lines, Shared, WriterStats,
    COLLECT_EVERY, SHARDS,
};
use flate2::write::GzEncoder;
use flate2::Compression;
use pullgate_domain::time::DayText;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The partition of events whose time is not RFC 3339 (none that the
/// gateway builds): kept rather than dropped, and warned about.
const UNKNOWN_DAY: &str = "unknown";
/// New names tried when the one chosen is taken (another process with the
/// same pid in another container, on the same data directory) or was
/// removed by another start's recovery before it could be locked.
const OPEN_ATTEMPTS: usize = 8;

struct OpenFile {
    part: PathBuf,
    done: PathBuf,
    day: Option<DayText>,
    opened: Instant,
    bytes: u64,
    /// Lines given to the encoder since the last flush: not in the file yet.
    unflushed: u64,
    flushed: Instant,
    /// Holds the file's lock (see `lock`) until it is closed.
    out: GzEncoder<BufWriter<File>>,
}

impl OpenFile {
    /// Completes the stream and publishes the file; the lock goes with the
    /// handle, after the rename.
    fn finish(self) -> std::io::Result<()> {
        let mut inner = self.out.finish()?;
        inner.flush()?;
        inner.get_ref().sync_data()?;
        std::fs::rename(&self.part, &self.done)
    }

    /// Sync flush: everything written so far becomes decodable from the
    /// file, and reaches the OS (which keeps it through a process crash).
    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()?;
        self.flushed = Instant::now();
        Ok(())
    }
}

/// The `dt=` partition name of a day.
pub(super) fn partition_name(day: Option<DayText>) -> String {
    format!("dt={}", day.as_ref().map_or(UNKNOWN_DAY, DayText::as_str))
}

fn open(dir: &Path, day: Option<DayText>, seq: &mut u64) -> std::io::Result<OpenFile> {
    if day.is_none() {
        tracing::warn!("events whose time is not RFC 3339 are written under dt={UNKNOWN_DAY}");
    }
    let partition = dir.join("events").join(partition_name(day));
    std::fs::create_dir_all(&partition)?;
    for _ in 0..OPEN_ATTEMPTS {
        let stamp = pullgate_domain::time::UtcMillis::now().0;
        *seq += 1;
        let stem = format!("pullgate-{stamp}-{}-{seq:06}.json.gz", std::process::id());
        let done = partition.join(&stem);
        let part = partition.join(format!("{stem}.part"));
        // Never truncate a file someone else writes.
        let file = match OpenOptions::new().write(true).create_new(true).open(&part) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(error) => return Err(error),
        };
        match lock::try_lock(&file) {
            Ok(true) => {}
            // Another start's recovery took the new, empty file first (and
            // removes it): another name.
            Ok(false) => continue,
            Err(error) => warn_unlocked(&error),
        }
        if !lock::still_named(&file, &part)? {
            continue;
        }
        let now = Instant::now();
        return Ok(OpenFile {
            part,
            done,
            day,
            opened: now,
            bytes: 0,
            unflushed: 0,
            flushed: now,
            out: GzEncoder::new(
                BufWriter::with_capacity(256 * 1024, file),
                Compression::fast(),
            ),
        });
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        "no free event file name",
    ))
}

/// A file system without locks: files are still written (a sink that
/// stopped writing would lose every event), but another process starting
/// on this directory would skip recovering them. Said once.
fn warn_unlocked(error: &std::io::Error) {
    static SAID: AtomicBool = AtomicBool::new(false);
    if !SAID.swap(true, Ordering::Relaxed) {
        tracing::warn!(%error, "event files cannot be locked; a crashed run's files are then not recovered");
    }
}

/// Whether events can be written again, when none come to try with: a
/// small file created, written and removed (a full disk, a read-only or
/// vanished volume fail it).
fn probe(dir: &Path) -> std::io::Result<()> {
    let events = dir.join("events");
    std::fs::create_dir_all(&events)?;
    let path = events.join(format!(".pullgate-probe-{}", std::process::id()));
    let mut file = File::create(&path)?;
    let written = file.write_all(b"probe\n").and_then(|()| file.flush());
    drop(file);
    std::fs::remove_file(&path)?;
    written
}

struct Writer {
    config: FileSinkConfig,
    shared: Arc<Shared>,
    current: Option<OpenFile>,
    seq: u64,
    stats: WriterStats,
    /// The days of one collection, kept so that collecting allocates once.
    days: Vec<Option<DayText>>,
    /// When an unhealthy writer last probed.
    probed: Instant,
}

impl Writer {
    fn set_healthy(&self, healthy: bool) {
        self.shared.healthy.store(healthy, Ordering::Relaxed);
    }

    /// Lines that reached the file.
    fn confirm(&mut self, lines: u64) {
        self.stats.events += lines;
        written(lines);
    }

    /// Gives up the open file after a failed write or flush: its unflushed
    /// lines are counted undelivered (the `.part` keeps what was flushed,
    /// which the next start recovers).
    fn abandon(&mut self, error: &std::io::Error, what: &str) {
        self.set_healthy(false);
        if let Some(file) = self.current.take() {
            self.stats.failed += file.unflushed;
            undelivered(file.unflushed);
            tracing::error!(
                %error,
                file = %file.part.display(),
                unflushed = file.unflushed,
                "{what}; the events since the last flush may be lost, the rest is recovered on the next start"
            );
        }
    }

    fn close_file(&mut self) {
        if let Some(file) = self.current.take() {
            let (name, lines) = (file.done.clone(), file.unflushed);
            match file.finish() {
                Ok(()) => {
                    self.stats.files += 1;
                    self.confirm(lines);
                }
                Err(error) => {
                    self.set_healthy(false);
                    self.stats.failed += lines;
                    undelivered(lines);
                    tracing::error!(%error, file = %name.display(), unflushed = lines, "closing event file failed; the next start recovers its .part");
                }
            }
        }
    }

    /// The periodic sync flush that bounds what a crash loses. Due one
    /// collect interval early: the loop checks once per collect interval,
    /// and flushing at the first check past `flush_every` would let the
    /// interval grow to `flush_every` plus a collect interval.
    fn flush_if_due(&mut self) {
        let Some(file) = self.current.as_mut() else {
            return;
        };
        if file.unflushed == 0 || file.flushed.elapsed() + COLLECT_EVERY < self.config.flush_every {
            return;
        }
        match file.flush() {
            Ok(()) => {
                let lines = std::mem::take(&mut file.unflushed);
                self.confirm(lines);
                self.set_healthy(true);
            }
            Err(error) => self.abandon(&error, "event flush failed"),
        }
    }

    /// A writer whose last write failed stays unhealthy (not ready) until
    /// a write succeeds; with no events to write, readiness would never
    /// come back, so it probes.
    fn probe_if_unhealthy(&mut self) {
        if self.shared.healthy.load(Ordering::Relaxed)
            || self.probed.elapsed() < self.config.flush_every
        {
            return;
        }
        self.probed = Instant::now();
        match probe(&self.config.dir) {
            Ok(()) => {
                tracing::info!("event files writable again");
                self.set_healthy(true);
            }
            Err(error) => tracing::debug!(%error, "event files still not writable"),
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
                    self.set_healthy(false);
                    self.fail(lines, "cannot open event file");
                    return;
                }
            }
        }
        let Some(file) = self.current.as_mut() else {
            return;
        };
        match file.out.write_all(lines) {
            Ok(()) => {
                file.bytes += lines.len() as u64;
                file.unflushed += count;
                self.set_healthy(true);
            }
            Err(error) => {
                self.abandon(&error, "event write failed");
                self.fail(lines, "event write failed");
            }
        }
    }

    fn fail(&mut self, lines: &[u8], reason: &str) {
        let mut failed = 0;
        for line in lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            failed += 1;
            log_line_for_replay(line, reason);
        }
        self.stats.failed += failed;
        undelivered(failed);
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

pub(super) fn write_loop(config: FileSinkConfig, shared: Arc<Shared>) -> WriterStats {
    let mut writer = Writer {
        config,
        shared: shared.clone(),
        current: None,
        seq: 0,
        stats: WriterStats::default(),
        days: Vec::new(),
        probed: Instant::now(),
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
        writer.flush_if_due();
        writer.probe_if_unhealthy();
        std::thread::sleep(COLLECT_EVERY);
    }
}
