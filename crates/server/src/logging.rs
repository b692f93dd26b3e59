//! Logs: diagnostics to stderr (tracing-subscriber), access lines (target
//! `pullgate::access`) through [`AccessLayer`]: formatted straight into a
//! per-thread buffer (no lock shared between workers, no allocation per
//! line) that is handed to a writer thread when full and by each worker's
//! periodic [`flush_thread`]; so no request waits on a terminal or a disk
//! (measured: README, benchmarks).

use pullgate_domain::text::{self, Escape, EscapingWriter};
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

/// User agents and paths are the client's text: DEL is escaped too, so a
/// line shows every control character it carries (a terminal would hide
/// DEL, and two different user agents could look the same).
const LINE_ESCAPE: Escape = Escape::JsonAndDel;

thread_local! {
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
        // Field names are Rust identifiers: nothing to escape.
        if self.json {
            self.line.push_str(",\"");
            self.line.push_str(field.name());
            self.line.push_str("\":");
        } else {
            self.line.push(' ');
            self.line.push_str(field.name());
            self.line.push('=');
        }
    }
}

impl Visit for LineVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        text::write_string(self.line, value, LINE_ESCAPE);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        self.line.push_str(text::decimal(value, 0).as_str());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        if value < 0 {
            self.line.push('-');
        }
        self.line
            .push_str(text::decimal(value.unsigned_abs(), 0).as_str());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        self.line.push_str(if value { "true" } else { "false" });
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.key(field);
        self.line.push('"');
        let _ = write!(
            EscapingWriter {
                out: &mut *self.line,
                rule: LINE_ESCAPE,
            },
            "{value:?}"
        );
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

/// The line's time: RFC 3339 with milliseconds, as events have it, from
/// the same per-thread cache of the current second's text.
fn push_timestamp(line: &mut String) {
    let _ = UtcMillis::now().write_rfc3339(line);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The lines `AccessLayer` writes on this thread for one access event.
    fn access_lines(json: bool, user_agent: &str) -> String {
        LINES.with(|lines| lines.borrow_mut().clear());
        let layer = AccessLayer { json }.with_filter(filter_fn(|m| m.target() == ACCESS_TARGET));
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: ACCESS_TARGET, status = 307u64, delta = -3i64, cached = true, ua = user_agent, path = ?"/v2/\u{7f}");
        });
        LINES.with(|lines| std::mem::take(&mut *lines.borrow_mut()))
    }

    #[test]
    fn json_lines_are_json_with_every_control_character_escaped() {
        let hostile = "docker/24\"}\n\u{1b}[2J\u{7f}\\";
        let line = access_lines(true, hostile);
        assert!(
            line.ends_with("}\n") && line.matches('\n').count() == 1,
            "{line}"
        );
        assert!(
            line.contains(r#""ua":"docker/24\"}\n\u001b[2J\u007f\\""#),
            "{line}"
        );
        let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed["ua"], hostile);
        assert_eq!(parsed["path"], r#""/v2/\u{7f}""#);
        assert_eq!(
            (&parsed["status"], &parsed["delta"], &parsed["cached"]),
            (&307.into(), &(-3).into(), &true.into())
        );
        let time = parsed["time"].as_str().unwrap();
        let day = pullgate_domain::time::DayText::of_rfc3339(time);
        assert!(
            day.is_some() && time.len() == 24 && time.ends_with('Z'),
            "{time}"
        );
    }

    #[test]
    fn text_lines_stay_one_line() {
        let line = access_lines(false, "a\nb\u{7f}");
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        let (time, fields) = line.split_at(24);
        assert!(time.ends_with('Z'), "{line}");
        assert_eq!(
            fields,
            concat!(
                r#" status=307 delta=-3 cached=true ua="a\nb\u007f" path="\"/v2/\\u{7f}\"""#,
                "\n"
            )
        );
    }
}
