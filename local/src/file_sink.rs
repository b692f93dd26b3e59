//! The local event sink: newline-delimited JSON, gzip-compressed, under
//! `DIR/events/dt=YYYY-MM-DD/`, the layout the Firehose stream writes to S3,
//! so the same queries read both. Written by a background thread; a file is
//! written as `.part` and renamed when complete, so readers never see a
//! truncated gzip. Files rotate by size, age and day, and are closed cleanly
//! on shutdown.

use flate2::write::GzEncoder;
use flate2::Compression;
use pullgate_domain::event::Event;
use pullgate_domain::sink::EventSink;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Queue depth between the request path and the writer. A full queue makes
/// `submit` wait (back-pressure) rather than drop events.
const QUEUE: usize = 65_536;
/// How long the writer sleeps when the queue is empty: events reach their
/// file this much later at most, and senders never wake the writer.
const IDLE_POLL: Duration = Duration::from_millis(20);

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

enum Message {
    Event(Box<Event>),
    Close,
}

pub struct FileSink {
    queue: SyncSender<Message>,
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
        let (queue, receiver) = sync_channel(QUEUE);
        let writer = std::thread::Builder::new()
            .name("pullgate-event-writer".into())
            .spawn(move || write_loop(config, receiver))?;
        Ok(FileSink {
            queue,
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Writes out everything queued, closes the current file and stops
    /// the writer. Later submissions are logged for replay.
    pub fn close(&self) -> WriterStats {
        let _ = self.queue.send(Message::Close);
        let handle = self.writer.lock().ok().and_then(|mut w| w.take());
        handle.and_then(|h| h.join().ok()).unwrap_or_default()
    }
}

impl EventSink for FileSink {
    fn submit(&self, event: Event) {
        if let Err(failed) = self.queue.send(Message::Event(Box::new(event))) {
            if let Message::Event(event) = failed.0 {
                log_for_replay(&event, "event writer stopped");
            }
        }
    }
}

/// An event that cannot be written goes to the log as one marked JSON line
/// (`pullgate replay` reads such lines back): nothing is lost silently.
pub fn log_for_replay(event: &Event, reason: &str) {
    if let Ok(json) = serde_json::to_string(event) {
        tracing::error!(target: "pullgate::undelivered", reason, event = %json, "PULLGATE_UNDELIVERED_EVENT");
    }
}

struct OpenFile {
    part: PathBuf,
    done: PathBuf,
    date: String,
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

fn open(dir: &Path, date: &str, seq: &mut u64) -> std::io::Result<OpenFile> {
    let partition = dir.join("events").join(format!("dt={date}"));
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
        date: date.to_string(),
        opened: Instant::now(),
        bytes: 0,
        out: GzEncoder::new(
            BufWriter::with_capacity(256 * 1024, file),
            Compression::fast(),
        ),
    })
}

fn write_loop(config: FileSinkConfig, receiver: Receiver<Message>) -> WriterStats {
    let mut stats = WriterStats::default();
    let mut current: Option<OpenFile> = None;
    let mut seq = 0;
    let mut line = Vec::with_capacity(1024);
    let close_file = |file: Option<OpenFile>, stats: &mut WriterStats| {
        if let Some(file) = file {
            let name = file.done.clone();
            match file.finish() {
                Ok(()) => stats.files += 1,
                Err(error) => {
                    tracing::error!(%error, file = %name.display(), "closing event file failed")
                }
            }
        }
    };
    loop {
        // Poll, never block: a receiver blocked in recv() makes every
        // send a futex wake-up and a context switch on the request path.
        let message = match receiver.try_recv() {
            Ok(message) => message,
            Err(TryRecvError::Empty) => {
                if current
                    .as_ref()
                    .is_some_and(|f| f.opened.elapsed() >= config.max_age)
                {
                    close_file(current.take(), &mut stats);
                }
                std::thread::sleep(IDLE_POLL);
                continue;
            }
            Err(TryRecvError::Disconnected) => Message::Close,
        };
        let event = match message {
            Message::Event(event) => event,
            Message::Close => {
                close_file(current.take(), &mut stats);
                return stats;
            }
        };
        let date = event.time.get(..10).unwrap_or("unknown");
        let rotate = current.as_ref().is_some_and(|f| {
            f.date != date || f.bytes >= config.max_bytes || f.opened.elapsed() >= config.max_age
        });
        if rotate {
            close_file(current.take(), &mut stats);
        }
        if current.is_none() {
            match open(&config.dir, date, &mut seq) {
                Ok(file) => current = Some(file),
                Err(error) => {
                    tracing::error!(%error, "cannot open event file");
                    stats.failed += 1;
                    log_for_replay(&event, "cannot open event file");
                    continue;
                }
            }
        }
        line.clear();
        if serde_json::to_writer(&mut line, &event).is_err() {
            stats.failed += 1;
            continue;
        }
        line.push(b'\n');
        if let Some(file) = current.as_mut() {
            match file.out.write_all(&line) {
                Ok(()) => {
                    file.bytes += line.len() as u64;
                    stats.events += 1;
                }
                Err(error) => {
                    tracing::error!(%error, "event write failed");
                    stats.failed += 1;
                    log_for_replay(&event, "event write failed");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;

    fn read_all(dir: &Path) -> Vec<Event> {
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
        let sink = FileSink::start(config).unwrap();
        for i in 0..5000 {
            let day = if i < 2500 { "2026-11-21" } else { "2026-11-22" };
            sink.submit(Event {
                time: format!("{day}T10:00:00.000Z"),
                request_id: format!("r{i}"),
                ..Event::default()
            });
        }
        let stats = sink.close();
        assert_eq!(stats.events, 5000);
        assert!(stats.files > 2, "rotated by size: {stats:?}");
        let events = read_all(&dir);
        let mut ids: Vec<_> = events.iter().map(|e| e.request_id.clone()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 5000);
        assert!(dir.join("events/dt=2026-11-21").is_dir());
        assert!(dir.join("events/dt=2026-11-22").is_dir());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
