//! The Firehose event sink. `submit` only appends the event's JSON line to
//! an in-memory buffer; `flush` (called by the Lambda extension after the
//! response has gone, and on shutdown) packs lines into records and sends
//! them with PutRecordBatch within the service limits:
//! - several newline-separated events per record (Firehose bills records in
//!   5 KB steps), at most 1,000 KiB per record;
//! - at most 500 records and 4 MiB per call;
//! - records the service rejects (`FailedPutCount`) are retried with
//!   backoff; what still fails, or a call that cannot be made at all, is
//!   logged line by line with the PULLGATE_UNDELIVERED_EVENT marker, for
//!   `pullgate replay`. Nothing is dropped silently, not even after a
//!   thread panicked holding the buffer's lock.
//! - `flush_within` bounds a flush in time (the Lambda extension holds the
//!   environment while it flushes, so a throttled or unreachable stream
//!   must not hold it longer): what is unsent when the time is up, or what
//!   the stream refused on every attempt, goes back into the buffer for the
//!   next flush (up to MAX_PENDING_BYTES;
//!   beyond, it is logged for replay), or is logged for replay at once
//!   when there is no next flush (shutdown). A call cut off by the bound
//!   may still have been delivered: its records are sent again, so an
//!   event can arrive twice (same `request_id`), never zero times.
//!
//! Events delivered, sent again and logged for replay are counted in
//! `pullgate_events_{written,retried,undelivered}_total{sink="firehose"}`,
//! and the sink is not `accepting` while its last call got nothing through.

use aws_sdk_firehose::error::{BuildError, DisplayErrorContext, SdkError};
use aws_sdk_firehose::operation::put_record_batch::PutRecordBatchError;
use pullgate_domain::event::Event;
use pullgate_domain::sink::EventSink;
use pullgate_domain::sync::lock_healed;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub const MAX_RECORD_BYTES: usize = 1_000 * 1024;
pub const MAX_BATCH_RECORDS: usize = 500;
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// What a bounded flush puts back for the next one at most: a few full
/// batches, what a stream refusing everything for a while accumulates.
/// Beyond it, unsent events are logged for replay instead of held.
pub const MAX_PENDING_BYTES: usize = 8 * MAX_BATCH_BYTES;
const ATTEMPTS: u32 = 4;
/// The marker `pullgate replay` looks for.
pub const UNDELIVERED_MARKER: &str = "PULLGATE_UNDELIVERED_EVENT";

/// Sends one batch of records; returns, per record, `None` when accepted
/// or the service's error code. An `Err` means the whole call failed.
pub trait RecordBatchPut: Send + Sync {
    /// Why a whole call failed (logged, then the call is retried).
    type Error: std::error::Error + Send + Sync + 'static;

    fn put(
        &self,
        records: Vec<Vec<u8>>,
    ) -> impl Future<Output = Result<Vec<Option<String>>, Self::Error>> + Send;
}

/// A PutRecordBatch call that could not be made or failed as a whole, the
/// SDK's error kept as it came.
#[derive(Debug, thiserror::Error)]
pub enum FirehoseError {
    #[error("cannot build a Firehose record")]
    Record(#[source] BuildError),
    #[error("PutRecordBatch to delivery stream {stream} failed")]
    PutRecordBatch {
        stream: String,
        // Boxed: an SdkError is large, and the result is moved on every call.
        #[source]
        source: Box<SdkError<PutRecordBatchError>>,
    },
}

/// The real one: aws-sdk-firehose.
pub struct FirehoseApi {
    client: aws_sdk_firehose::Client,
    stream: String,
}

impl FirehoseApi {
    pub fn new(config: &aws_config::SdkConfig, stream: impl Into<String>) -> Self {
        FirehoseApi {
            client: aws_sdk_firehose::Client::new(config),
            stream: stream.into(),
        }
    }
}

impl RecordBatchPut for FirehoseApi {
    type Error = FirehoseError;

    async fn put(&self, records: Vec<Vec<u8>>) -> Result<Vec<Option<String>>, FirehoseError> {
        let mut request = self
            .client
            .put_record_batch()
            .delivery_stream_name(&self.stream);
        for data in records {
            let record = aws_sdk_firehose::types::Record::builder()
                .data(aws_sdk_firehose::primitives::Blob::new(data))
                .build()
                .map_err(FirehoseError::Record)?;
            request = request.records(record);
        }
        let output = request
            .send()
            .await
            .map_err(|source| FirehoseError::PutRecordBatch {
                stream: self.stream.clone(),
                source: Box::new(source),
            })?;
        Ok(output
            .request_responses()
            .iter()
            .map(|r| r.error_code().map(str::to_string))
            .collect())
    }
}

/// What one flush did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FlushReport {
    pub events: usize,
    pub records: usize,
    pub calls: usize,
    pub retried_records: usize,
    /// Events logged for replay.
    pub undelivered: usize,
    /// Records put back for the next flush when the time was up.
    pub requeued_records: usize,
    /// Whether the time was up before everything was sent.
    pub timed_out: bool,
}

/// What a bounded flush does with what is still unsent when its time is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leftover {
    /// Back into the buffer, for the next flush (while there is room).
    Requeue,
    /// Logged for replay now: there is no next flush (shutdown).
    LogForReplay,
}

/// The buffer: complete event lines, their size, and when the oldest came.
#[derive(Default)]
struct Pending {
    lines: Vec<Vec<u8>>,
    bytes: usize,
    oldest: Option<Instant>,
}

pub struct FirehoseSink<P> {
    api: P,
    pending: Mutex<Pending>,
    backoff: Duration,
    /// Whether the last PutRecordBatch call got at least one record in
    /// (true until a call says otherwise).
    delivering: AtomicBool,
    counters: EventCounters,
}

/// Counted in events, not records: a record holds many.
struct EventCounters {
    written: metrics::Counter,
    retried: metrics::Counter,
    undelivered: metrics::Counter,
}

impl EventCounters {
    /// Bound to the recorder installed when the sink is built.
    fn register() -> Self {
        EventCounters {
            written: metrics::counter!("pullgate_events_written_total", "sink" => "firehose"),
            retried: metrics::counter!("pullgate_events_retried_total", "sink" => "firehose"),
            undelivered: metrics::counter!("pullgate_events_undelivered_total", "sink" => "firehose"),
        }
    }
}

/// Events in a record or a batch: each line ends with a newline, and event
/// JSON has none of its own (escaped).
fn events_in<'a>(records: impl IntoIterator<Item = &'a Vec<u8>>) -> u64 {
    records
        .into_iter()
        .map(|r| r.iter().filter(|&&b| b == b'\n').count() as u64)
        .sum()
}

impl<P: RecordBatchPut> FirehoseSink<P> {
    pub fn new(api: P) -> Self {
        FirehoseSink {
            api,
            pending: Mutex::new(Pending::default()),
            backoff: Duration::from_millis(100),
            delivering: AtomicBool::new(true),
            counters: EventCounters::register(),
        }
    }

    /// Shorter backoff (tests).
    pub fn with_backoff(mut self, backoff: Duration) -> Self {
        self.backoff = backoff;
        self
    }

    /// Queues an already serialized event line (replay).
    pub fn submit_line(&self, mut line: Vec<u8>) {
        if line.last() != Some(&b'\n') {
            line.push(b'\n');
        }
        let mut pending = lock_recovering(&self.pending);
        if pending.lines.is_empty() {
            pending.oldest = Some(Instant::now());
        }
        pending.bytes += line.len();
        pending.lines.push(line);
    }

    pub fn pending(&self) -> usize {
        lock_recovering(&self.pending).lines.len()
    }

    /// Whether a flush is due: the oldest pending event has waited
    /// `max_age`, or a full call's worth of bytes is waiting. With
    /// `max_age` zero, whenever anything is pending.
    pub fn due(&self, max_age: Duration) -> bool {
        let pending = lock_recovering(&self.pending);
        if pending.lines.is_empty() {
            return false;
        }
        let waited = pending.oldest.map(|t| t.elapsed()).unwrap_or(Duration::MAX);
        waited >= max_age || pending.bytes >= MAX_BATCH_BYTES
    }

    fn take_pending(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut *lock_recovering(&self.pending)).lines
    }

    /// Sends everything queued, however long the retries take (`pullgate
    /// replay`, and shutdowns with time to spare). Never fails: what cannot
    /// be delivered is logged for replay and counted.
    pub async fn flush(&self) -> FlushReport {
        self.flush_until(None, Leftover::LogForReplay).await
    }

    /// Sends what is queued within `limit`; what is unsent then is handled
    /// as `leftover` says. Never fails, never takes much longer than
    /// `limit` (the calls in flight are cut off at it).
    pub async fn flush_within(&self, limit: Duration, leftover: Leftover) -> FlushReport {
        self.flush_until(Some(Instant::now() + limit), leftover)
            .await
    }

    async fn flush_until(&self, deadline: Option<Instant>, leftover: Leftover) -> FlushReport {
        let lines = self.take_pending();
        let mut report = FlushReport {
            events: lines.len(),
            ..FlushReport::default()
        };
        let records = pack_records(lines);
        // What pack_records refused (too large for any record) it logged.
        let packed = events_in(&records);
        self.counters
            .undelivered
            .increment((report.events as u64).saturating_sub(packed));
        report.records = records.len();
        // A bounded flush keeps what the stream refused for the next one;
        // an unbounded one (nothing comes after it) logs it.
        let keep_refused = deadline.is_some() && leftover == Leftover::Requeue;
        let mut unsent: Vec<Vec<u8>> = Vec::new();
        for batch in batches(records) {
            if !unsent.is_empty() {
                // Out of time, or the stream refuses: the batches after
                // it are not started.
                unsent.extend(batch);
                continue;
            }
            match self.send_batch(batch, &mut report, deadline).await {
                Sent::All => {}
                Sent::OutOfTime(left) => {
                    report.timed_out = true;
                    unsent = left;
                }
                Sent::Refused(left) if keep_refused => unsent = left,
                Sent::Refused(left) => {
                    self.log_for_replay(left, "Firehose did not accept the record", &mut report)
                }
            }
        }
        if !unsent.is_empty() {
            self.leave(unsent, leftover, &mut report);
        }
        report
    }

    fn log_for_replay(&self, records: Vec<Vec<u8>>, reason: &str, report: &mut FlushReport) {
        for record in records {
            let logged = log_undelivered(&record, reason);
            self.counters.undelivered.increment(logged as u64);
            report.undelivered += logged;
        }
    }

    /// What a flush could not send in time: back into the buffer, or
    /// logged. Re-queued lines wait a whole window again, counted from now:
    /// a throttled stream gets one attempt per window from each
    /// environment, not one after every request.
    fn leave(&self, unsent: Vec<Vec<u8>>, leftover: Leftover, report: &mut FlushReport) {
        if leftover == Leftover::Requeue {
            let bytes: usize = unsent.iter().map(Vec::len).sum();
            let mut pending = lock_recovering(&self.pending);
            if pending.bytes + bytes <= MAX_PENDING_BYTES {
                report.requeued_records += unsent.len();
                // Records are whole lines under the record limit: they
                // pack again as they are.
                let newer = std::mem::replace(&mut pending.lines, unsent);
                pending.lines.extend(newer);
                pending.bytes += bytes;
                pending.oldest = Some(Instant::now());
                return;
            }
            drop(pending);
            tracing::warn!(
                bytes,
                limit = MAX_PENDING_BYTES,
                "no room to hold unsent events for the next flush; logging them for replay"
            );
        }
        self.log_for_replay(unsent, "Firehose did not take the record in time", report);
    }

    /// One batch, retried with backoff.
    async fn send_batch(
        &self,
        mut batch: Vec<Vec<u8>>,
        report: &mut FlushReport,
        deadline: Option<Instant>,
    ) -> Sent {
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                let backoff = self.backoff * 2u32.pow(attempt - 1);
                if deadline.is_some_and(|d| Instant::now() + backoff >= d) {
                    return Sent::OutOfTime(batch);
                }
                tokio::time::sleep(backoff).await;
            }
            report.calls += 1;
            let again = attempt + 1 < ATTEMPTS;
            let call = self.api.put(batch.clone());
            let outcome = match deadline {
                None => call.await,
                Some(deadline) => match tokio::time::timeout_at(deadline.into(), call).await {
                    Ok(outcome) => outcome,
                    Err(_) => {
                        tracing::warn!(
                            records = batch.len(),
                            attempt,
                            "PutRecordBatch did not answer in time; keeping its records"
                        );
                        self.delivering.store(false, Ordering::Relaxed);
                        return Sent::OutOfTime(batch);
                    }
                },
            };
            match outcome {
                Ok(results) => {
                    let sent = events_in(&batch);
                    let failed: Vec<Vec<u8>> = batch
                        .into_iter()
                        .zip(
                            results
                                .iter()
                                .chain(std::iter::repeat(&Some("missing response".to_string()))),
                        )
                        .filter(|(_, error)| error.is_some())
                        .map(|(record, _)| record)
                        .collect();
                    let refused = events_in(&failed);
                    self.counters.written.increment(sent - refused);
                    self.delivering.store(sent > refused, Ordering::Relaxed);
                    if failed.is_empty() {
                        return Sent::All;
                    }
                    if again {
                        self.counters.retried.increment(refused);
                    }
                    tracing::warn!(
                        records = failed.len(),
                        attempt,
                        "Firehose rejected part of a batch; retrying"
                    );
                    report.retried_records += failed.len();
                    batch = failed;
                }
                Err(error) => {
                    // The causes and the SDK's details too: Display alone
                    // stops at "PutRecordBatch ... failed".
                    let error = DisplayErrorContext(&error);
                    tracing::warn!(%error, attempt, "PutRecordBatch failed; retrying");
                    self.delivering.store(false, Ordering::Relaxed);
                    if again {
                        self.counters.retried.increment(events_in(&batch));
                    }
                }
            }
        }
        Sent::Refused(batch)
    }
}

/// How one batch went.
enum Sent {
    All,
    /// The deadline came first: what is unsent.
    OutOfTime(Vec<Vec<u8>>),
    /// Every attempt was refused: what is unsent.
    Refused(Vec<Vec<u8>>),
}

impl<P: RecordBatchPut + 'static> EventSink for FirehoseSink<P> {
    fn submit(&self, event: &Event<'_>) {
        let mut line = Vec::with_capacity(768);
        event.write_json(&mut line);
        self.submit_line(line);
    }

    /// False while the stream refuses everything (the last call failed or
    /// got no record in): `/readyz` says so. Events submitted meanwhile
    /// are still kept, and logged for replay if they never get through.
    fn accepting(&self) -> bool {
        self.delivering.load(Ordering::Relaxed)
    }
}

/// The guard even when a thread panicked holding the lock. Refusing it
/// would lose events without a word, and what the sink keeps under its
/// locks survives any panic whole: a buffer of complete lines (a push
/// happened or did not) and a timestamp.
fn lock_recovering<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    lock_healed(mutex, "the Firehose sink")
}

/// Logs each event line of a record for replay; returns how many.
fn log_undelivered(record: &[u8], reason: &str) -> usize {
    let mut n = 0;
    for line in record.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let event = String::from_utf8_lossy(line);
        tracing::error!(target: "pullgate::undelivered", reason, event = %event, "{UNDELIVERED_MARKER}");
        n += 1;
    }
    n
}

/// Newline-separated lines packed into records of at most MAX_RECORD_BYTES.
pub fn pack_records(lines: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let mut records: Vec<Vec<u8>> = Vec::new();
    for line in lines {
        if line.len() > MAX_RECORD_BYTES {
            // One event can never be this large (user agents are
            // truncated); refuse it loudly rather than send a bad record.
            log_undelivered(&line, "event larger than a Firehose record");
            continue;
        }
        match records.last_mut() {
            Some(record) if record.len() + line.len() <= MAX_RECORD_BYTES => {
                record.extend_from_slice(&line)
            }
            _ => records.push(line),
        }
    }
    records
}

/// Records grouped into calls of at most 500 records and 4 MiB.
pub fn batches(records: Vec<Vec<u8>>) -> Vec<Vec<Vec<u8>>> {
    let mut out: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut bytes = 0;
    for record in records {
        let full = out
            .last()
            .is_none_or(|b| b.len() >= MAX_BATCH_RECORDS || bytes + record.len() > MAX_BATCH_BYTES);
        if full {
            out.push(Vec::new());
            bytes = 0;
        }
        bytes += record.len();
        if let Some(batch) = out.last_mut() {
            batch.push(record);
        }
    }
    out
}

/// Extracts the event JSON from a line: either a plain event line, or a
/// log line carrying the PULLGATE_UNDELIVERED_EVENT marker (text or JSON
/// log format).
pub fn event_from_line(line: &str) -> Option<String> {
    let line = line.trim();
    if line.starts_with('{') {
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(line) {
            if value.get("v").is_some() && value.get("request_id").is_some() {
                return Some(line.to_string());
            }
            // JSON log line: {"fields":{"event":"{...}", "message": MARKER}}
            let fields = value.get("fields")?;
            if fields.get("message")?.as_str()? == UNDELIVERED_MARKER {
                return fields.get("event")?.as_str().map(str::to_string);
            }
        }
        return None;
    }
    if !line.contains(UNDELIVERED_MARKER) {
        return None;
    }
    // Text log line: `... event={...json...}` up to the end of the line.
    let start = line.find("event={")? + "event=".len();
    let json = &line[start..];
    let end = json.rfind('}')? + 1;
    let json = &json[..end];
    serde_json::from_str::<serde_json::Value>(json).ok()?;
    Some(json.to_string())
}

#[cfg(test)]
mod tests;
