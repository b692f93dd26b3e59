use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A test double of our own port (not of AWS): rejects the first
/// `reject` records of the first call, or fails whole calls.
struct Flaky {
    calls: AtomicUsize,
    reject_first_call: usize,
    fail_calls: usize,
    accepted: Mutex<Vec<Vec<u8>>>,
}

impl RecordBatchPut for Flaky {
    type Error = std::io::Error;

    async fn put(&self, records: Vec<Vec<u8>>) -> Result<Vec<Option<String>>, std::io::Error> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        if call < self.fail_calls {
            return Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                "connection refused",
            ));
        }
        let mut results = Vec::new();
        for (i, record) in records.into_iter().enumerate() {
            if call == 0 && i < self.reject_first_call {
                results.push(Some("ServiceUnavailableException".to_string()));
            } else {
                self.accepted.lock().unwrap().push(record);
                results.push(None);
            }
        }
        Ok(results)
    }
}

fn flaky(reject_first_call: usize, fail_calls: usize) -> FirehoseSink<Flaky> {
    FirehoseSink::new(Flaky {
        calls: AtomicUsize::new(0),
        reject_first_call,
        fail_calls,
        accepted: Mutex::new(Vec::new()),
    })
    .with_backoff(Duration::from_millis(1))
}

fn event(i: usize) -> Event<'static> {
    Event {
        v: 1,
        request_id: format!("r{i}").into(),
        ua: "x".repeat(300).into(),
        ..Event::default()
    }
}

fn accepted_ids(sink: &FirehoseSink<Flaky>) -> Vec<String> {
    let mut ids: Vec<String> = sink
        .api
        .accepted
        .lock()
        .unwrap()
        .iter()
        .flat_map(|r| {
            r.split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| l.to_vec())
                .collect::<Vec<_>>()
        })
        .map(|l| {
            serde_json::from_slice::<Event>(&l)
                .unwrap()
                .request_id
                .into_owned()
        })
        .collect();
    ids.sort();
    ids
}

#[test]
fn packing_respects_the_limits() {
    let lines: Vec<Vec<u8>> = (0..20_000)
        .map(|_| vec![b'a'; 499].into_iter().chain([b'\n']).collect())
        .collect();
    let records = pack_records(lines);
    assert!(records.iter().all(|r| r.len() <= MAX_RECORD_BYTES));
    assert_eq!(records.iter().map(|r| r.len()).sum::<usize>(), 20_000 * 500);
    assert_eq!(
        records.len(),
        10,
        "1,000 KiB records hold 2,048 events of 500 bytes"
    );
    let many: Vec<Vec<u8>> = (0..1_200).map(|_| vec![b'x'; 10]).collect();
    let calls = batches(many);
    assert_eq!(
        calls.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![500, 500, 200]
    );
    let big: Vec<Vec<u8>> = (0..10).map(|_| vec![b'x'; MAX_RECORD_BYTES]).collect();
    assert!(batches(big)
        .iter()
        .all(|b| b.iter().map(Vec::len).sum::<usize>() <= MAX_BATCH_BYTES));
}

#[tokio::test]
async fn partial_failures_are_retried_and_everything_arrives_once() {
    let sink = flaky(1, 0);
    for i in 0..5000 {
        sink.submit(&event(i));
    }
    let report = sink.flush().await;
    assert_eq!(report.undelivered, 0, "{report:?}");
    assert_eq!(report.retried_records, 1);
    let ids = accepted_ids(&sink);
    assert_eq!(ids.len(), 5000);
    let mut dedup = ids.clone();
    dedup.dedup();
    assert_eq!(dedup.len(), 5000);
}

#[tokio::test]
async fn what_never_gets_through_is_logged_for_replay() {
    let sink = flaky(0, usize::MAX);
    for i in 0..10 {
        sink.submit(&event(i));
    }
    let report = sink.flush().await;
    assert_eq!((report.undelivered, report.calls), (10, ATTEMPTS as usize));
    assert_eq!(sink.pending(), 0);
}

/// Leaves `mutex` poisoned: a thread panics while holding it.
fn poison<T: Send>(mutex: &Mutex<T>) {
    std::thread::scope(|scope| {
        let panicked = scope
            .spawn(|| {
                let _held = mutex.lock();
                panic!("poisoning the lock on purpose");
            })
            .join();
        assert!(panicked.is_err());
    });
    assert!(mutex.is_poisoned());
}

#[tokio::test]
async fn a_poisoned_lock_loses_no_event() {
    let sink = flaky(0, 0);
    sink.submit(&event(0));
    poison(&sink.pending);
    sink.submit(&event(1));
    assert_eq!(
        sink.pending(),
        2,
        "the line queued before the panic is kept"
    );
    sink.submit(&event(2));
    assert!(sink.due(Duration::ZERO));
    poison(&sink.pending);
    let report = sink.flush().await;
    assert_eq!((report.events, report.undelivered), (3, 0), "{report:?}");
    assert_eq!(accepted_ids(&sink), ["r0", "r1", "r2"]);
    assert_eq!(sink.pending(), 0);
}

#[test]
fn replay_reads_plain_and_logged_events() {
    let plain = r#"{"v":1,"request_id":"a","time":"t"}"#;
    assert_eq!(event_from_line(plain).as_deref(), Some(plain));
    let text = format!(
        r#"2026-11-22T16:00:00Z ERROR pullgate::undelivered: {UNDELIVERED_MARKER} reason="x" event={plain}"#
    );
    assert_eq!(event_from_line(&text).as_deref(), Some(plain));
    let json =
        serde_json::json!({"level":"ERROR","fields":{"message":UNDELIVERED_MARKER,"event":plain}})
            .to_string();
    assert_eq!(event_from_line(&json).as_deref(), Some(plain));
    assert_eq!(event_from_line("INFO something else"), None);
}

/// The sink's counters since the last call (a snapshot drains them):
/// (written, retried, undelivered).
fn counted(snapshotter: &metrics_util::debugging::Snapshotter) -> (u64, u64, u64) {
    use metrics_util::debugging::DebugValue;
    let mut counts = (0, 0, 0);
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        assert!(
            key.labels()
                .any(|l| l.key() == "sink" && l.value() == "firehose"),
            "{key:?}"
        );
        let DebugValue::Counter(n) = value else {
            panic!("{key:?} is no counter")
        };
        match key.name() {
            "pullgate_events_written_total" => counts.0 = n,
            "pullgate_events_retried_total" => counts.1 = n,
            "pullgate_events_undelivered_total" => counts.2 = n,
            other => panic!("unexpected metric {other}"),
        }
    }
    counts
}

#[tokio::test]
async fn events_are_counted_as_written_retried_and_undelivered() {
    let recorder = metrics_util::debugging::DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    // The handles bind to the recorder present when the sink is built.
    let sink = metrics::with_local_recorder(&recorder, || flaky(1, 0));
    for i in 0..5000 {
        sink.submit(&event(i));
    }
    let records = pack_records(
        (0..5000)
            .map(|i| {
                let mut line = Vec::new();
                event(i).write_json(&mut line);
                line.push(b'\n');
                line
            })
            .collect(),
    );
    let first_record = events_in(&records[..1]);
    assert!(records.len() > 1 && first_record > 0);
    sink.flush().await;
    assert_eq!(counted(&snapshotter), (5000, first_record, 0));
    assert!(sink.accepting());

    let down = metrics::with_local_recorder(&recorder, || flaky(0, usize::MAX));
    for i in 0..10 {
        down.submit(&event(i));
    }
    down.flush().await;
    let retries = (ATTEMPTS as u64 - 1) * 10;
    assert_eq!(counted(&snapshotter), (0, retries, 10));
}

#[tokio::test]
async fn not_accepting_while_the_last_call_failed() {
    // Every call of the first flush fails, the next one's get through.
    let sink = flaky(0, ATTEMPTS as usize);
    assert!(sink.accepting(), "nothing has failed yet");
    sink.submit(&event(0));
    assert_eq!(sink.flush().await.undelivered, 1);
    assert!(!sink.accepting());
    sink.submit(&event(1));
    assert_eq!(sink.flush().await.undelivered, 0);
    assert!(sink.accepting());
    // A stream that answers but refuses every record gets nothing in either.
    let refusing = FirehoseSink::new(RefusingAll).with_backoff(Duration::from_millis(1));
    refusing.submit(&event(0));
    assert_eq!(refusing.flush().await.undelivered, 1);
    assert!(!refusing.accepting());
}

/// Answers every call, refusing every record (a throttled stream).
struct RefusingAll;

impl RecordBatchPut for RefusingAll {
    type Error = std::io::Error;

    async fn put(&self, records: Vec<Vec<u8>>) -> Result<Vec<Option<String>>, std::io::Error> {
        Ok(records
            .iter()
            .map(|_| Some("ServiceUnavailableException".to_string()))
            .collect())
    }
}

/// Stalls the first `stalled_calls` calls (never answers in a test's
/// time: a throttled or unreachable stream), then accepts everything.
struct Stalling {
    calls: AtomicUsize,
    stalled_calls: usize,
    accepted: Mutex<Vec<Vec<u8>>>,
}

impl RecordBatchPut for Stalling {
    type Error = std::io::Error;

    async fn put(&self, records: Vec<Vec<u8>>) -> Result<Vec<Option<String>>, std::io::Error> {
        if self.calls.fetch_add(1, Ordering::SeqCst) < self.stalled_calls {
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        let n = records.len();
        self.accepted.lock().unwrap().extend(records);
        Ok(vec![None; n])
    }
}

fn stalling(stalled_calls: usize) -> FirehoseSink<Stalling> {
    FirehoseSink::new(Stalling {
        calls: AtomicUsize::new(0),
        stalled_calls,
        accepted: Mutex::new(Vec::new()),
    })
    .with_backoff(Duration::from_millis(1))
}

fn lines_in(records: &[Vec<u8>]) -> usize {
    records
        .iter()
        .map(|r| r.iter().filter(|&&b| b == b'\n').count())
        .sum()
}

#[tokio::test]
async fn a_bounded_flush_keeps_what_it_could_not_send_for_the_next() {
    let sink = stalling(1);
    for i in 0..100 {
        sink.submit(&event(i));
    }
    let started = Instant::now();
    let report = sink
        .flush_within(Duration::from_millis(50), Leftover::Requeue)
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the stalled call is cut off at the bound"
    );
    assert!(report.timed_out, "{report:?}");
    assert_eq!((report.undelivered, report.requeued_records), (0, 1));
    assert!(sink.due(Duration::ZERO));
    assert!(
        !sink.due(Duration::from_secs(3600)),
        "re-queued lines wait a whole window again"
    );
    assert!(!sink.accepting(), "a stalled stream is not accepting");

    sink.submit(&event(100));
    let report = sink
        .flush_within(Duration::from_secs(5), Leftover::Requeue)
        .await;
    assert!(!report.timed_out, "{report:?}");
    assert_eq!(report.undelivered, 0);
    assert_eq!(lines_in(&sink.api.accepted.lock().unwrap()), 101);
    assert_eq!(sink.pending(), 0);
}

#[tokio::test]
async fn a_bounded_flush_at_shutdown_logs_what_it_could_not_send() {
    let sink = stalling(usize::MAX);
    for i in 0..10 {
        sink.submit(&event(i));
    }
    let report = sink
        .flush_within(Duration::from_millis(20), Leftover::LogForReplay)
        .await;
    assert!(report.timed_out);
    assert_eq!((report.undelivered, report.requeued_records), (10, 0));
    assert_eq!(sink.pending(), 0);
}

#[tokio::test]
async fn unsent_events_beyond_the_pending_limit_are_logged_not_held() {
    let sink = stalling(usize::MAX);
    // Each event line is a bit over 300 bytes: enough of them to pass
    // MAX_PENDING_BYTES, in several batches.
    let n = MAX_PENDING_BYTES / 300 + 1000;
    for i in 0..n {
        sink.submit(&event(i));
    }
    let report = sink
        .flush_within(Duration::from_millis(20), Leftover::Requeue)
        .await;
    assert_eq!(report.requeued_records, 0, "{report:?}");
    assert_eq!(report.undelivered, n);
    assert_eq!(sink.pending(), 0);
}

#[test]
fn a_full_batch_of_bytes_is_due_before_its_age() {
    let sink = stalling(0);
    // 1,000 bytes and the newline each.
    let line = vec![b'x'; 1000];
    for _ in 0..MAX_BATCH_BYTES / 1001 {
        sink.submit_line(line.clone());
    }
    assert!(!sink.due(Duration::from_secs(3600)));
    sink.submit_line(line);
    assert!(sink.due(Duration::from_secs(3600)));
}

#[tokio::test]
async fn a_bounded_flush_keeps_what_the_stream_refused_on_every_attempt() {
    // Refusals that come fast: all attempts fit in the bound.
    let sink = flaky(0, ATTEMPTS as usize);
    for i in 0..10 {
        sink.submit(&event(i));
    }
    let report = sink
        .flush_within(Duration::from_secs(10), Leftover::Requeue)
        .await;
    assert_eq!(
        (report.undelivered, report.requeued_records),
        (0, 1),
        "{report:?}"
    );
    assert!(!report.timed_out);
    let report = sink
        .flush_within(Duration::from_secs(10), Leftover::Requeue)
        .await;
    assert_eq!(report.undelivered, 0, "{report:?}");
    assert_eq!(accepted_ids(&sink).len(), 10);
}
