//! Logs: diagnostics to stderr (tracing-subscriber), access lines (target
//! `pullgate::access`) through [`AccessLayer`]: formatted straight into a
//! per-thread buffer (no lock shared between workers, no allocation per
//! line) that is handed to a writer thread when full and by each worker's
//! periodic [`flush_thread`]; so no request waits on a terminal or a disk
//! (measured: README, benchmarks).

use pullgate_domain::time::UtcMillis;
use std::fmt::Write as _;
use std::time::Duration;
use tracing::field::{Field, Visit};
use tracing_subscriber::filter::{filter_fn, EnvFilter};
use tracing_subscriber::layer::Context;
use tracing_subscriber::prelude::*;
use tracing_subscriber::Layer;

const ACCESS_TARGET: &str = "pullgate::access";
/// Buffered lines reach the destination within this delay.
pub const FLUSH_EVERY: Duration = Duration::from_millis(200);

/// Where access lines go.
#[derive(Debug, Clone)]
pub enum AccessLog {
    Stdout,
    Off,
    File(std::path::PathBuf),
}

impl std::str::FromStr for AccessLog {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "stdout" | "-" => AccessLog::Stdout,
            "off" | "none" => AccessLog::Off,
            path => AccessLog::File(path.into()),
        })
    }
}

/// A full buffer is handed to the writer at this size.
const HAND_OVER_AT: usize = 64 * 1024;

thread_local! {
    /// The last timestamp written by this thread and its text.
    static STAMP: std::cell::RefCell<(i64, String)> = const { std::cell::RefCell::new((i64::MIN, String::new())) };
    static LINES: std::cell::RefCell<String> = std::cell::RefCell::new(String::with_capacity(HAND_OVER_AT + 4096));
}

static WRITER: std::sync::OnceLock<std::sync::mpsc::SyncSender<Vec<u8>>> =
    std::sync::OnceLock::new();

fn hand_over(lines: &mut String) {
    if lines.is_empty() {
        return;
    }
    let full = std::mem::replace(lines, String::with_capacity(HAND_OVER_AT + 4096));
    if let Some(writer) = WRITER.get() {
        // Blocks only if the writer is many buffers behind: back-pressure
        // rather than unbounded memory or lost lines.
        let _ = writer.send(full.into_bytes());
    }
}

/// Hands this thread's buffered access lines to the writer. Workers call it
/// periodically and before they exit.
pub fn flush_thread() {
    let _ = LINES.try_with(|lines| {
        if let Ok(mut lines) = lines.try_borrow_mut() {
            hand_over(&mut lines);
        }
    });
}

/// Stops the writer thread after it has written everything handed over.
pub struct LogGuard {
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        flush_thread();
        // The writer ends when it receives the empty buffer.
        if let Some(writer) = WRITER.get() {
            let _ = writer.send(Vec::new());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct AccessLayer {
    json: bool,
}

/// Writes fields as `key=value` (text) or `"key":value` (JSON).
struct LineVisitor<'a> {
    line: &'a mut String,
    json: bool,
}

impl LineVisitor<'_> {
    fn key(&mut self, field: &Field) {
        if self.json {
            let _ = write!(self.line, ",\"{}\":", field.name());
        } else {
            let _ = write!(self.line, " {}=", field.name());
        }
    }
}

/// Writes a JSON string body, escaping as it goes: quoting that is valid
/// JSON and keeps a hostile user agent from breaking a text line, with no
/// intermediate allocation.
struct Escaped<'a>(&'a mut String);

impl std::fmt::Write for Escaped<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let needs_escape = |b: u8| b < 0x20 || b == b'"' || b == b'\\' || b == 0x7f;
        if !s.bytes().any(needs_escape) {
            self.0.push_str(s);
            return Ok(());
        }
        for c in s.chars() {
            match c {
                '"' => self.0.push_str("\\\""),
                '\\' => self.0.push_str("\\\\"),
                c if (c as u32) < 0x20 || c == '\u{7f}' => {
                    let _ = write!(self.0, "\\u{:04x}", c as u32);
                }
                c => self.0.push(c),
            }
        }
        Ok(())
    }
}

impl Visit for LineVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        self.line.push('"');
        let _ = Escaped(self.line).write_str(value);
        self.line.push('"');
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        let _ = write!(self.line, "{value}");
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        let _ = write!(self.line, "{value}");
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        let _ = write!(self.line, "{value}");
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.key(field);
        self.line.push('"');
        let _ = write!(Escaped(self.line), "{value:?}");
        self.line.push('"');
    }
}

impl<S: tracing::Subscriber> Layer<S> for AccessLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let _ = LINES.try_with(|lines| {
            let Ok(mut line) = lines.try_borrow_mut() else {
                return;
            };
            if self.json {
                line.push_str("{\"time\":\"");
                push_timestamp(&mut line);
                line.push('"');
            } else {
                push_timestamp(&mut line);
            }
            event.record(&mut LineVisitor {
                line: &mut line,
                json: self.json,
            });
            line.push_str(if self.json { "}\n" } else { "\n" });
            if line.len() >= HAND_OVER_AT {
                hand_over(&mut line);
            }
        });
    }
}

/// Busy threads write many lines per millisecond: format the time once.
fn push_timestamp(line: &mut String) {
    let now = UtcMillis::now();
    let _ = STAMP.try_with(|stamp| {
        let mut stamp = stamp.borrow_mut();
        if stamp.0 != now.0 {
            stamp.1.clear();
            let _ = now.write_rfc3339(&mut stamp.1);
            stamp.0 = now.0;
        }
        line.push_str(&stamp.1);
    });
}

fn writer_loop(
    buffers: std::sync::mpsc::Receiver<Vec<u8>>,
    mut out: Box<dyn std::io::Write + Send>,
) {
    for buffer in buffers {
        if buffer.is_empty() {
            break;
        }
        if let Err(error) = out.write_all(&buffer).and_then(|_| out.flush()) {
            eprintln!("pullgate: access log write failed: {error}");
        }
    }
    let _ = out.flush();
}

pub fn init(access: &AccessLog, json: bool) -> anyhow::Result<Option<LogGuard>> {
    let diagnostics_filter =
        EnvFilter::try_from_env("PULLGATE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let diagnostics = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_filter(filter_fn(|m| m.target() != ACCESS_TARGET))
        .with_filter(diagnostics_filter);
    let out: Box<dyn std::io::Write + Send> = match access {
        AccessLog::Off => {
            tracing_subscriber::registry()
                .with(diagnostics)
                .try_init()?;
            return Ok(None);
        }
        AccessLog::Stdout => Box::new(std::io::stdout()),
        AccessLog::File(path) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?,
        ),
    };
    let (sender, receiver) = std::sync::mpsc::sync_channel(64);
    WRITER
        .set(sender)
        .map_err(|_| anyhow::anyhow!("access log initialised twice"))?;
    let thread = std::thread::Builder::new()
        .name("pullgate-access-log".into())
        .spawn(move || writer_loop(receiver, out))?;
    let access = AccessLayer { json }.with_filter(filter_fn(|m| m.target() == ACCESS_TARGET));
    tracing_subscriber::registry()
        .with(diagnostics)
        .with(access)
        .try_init()?;
    Ok(Some(LogGuard {
        thread: Some(thread),
    }))
}
