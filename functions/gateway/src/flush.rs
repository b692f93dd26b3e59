//! Events are flushed after the response has gone: an internal Lambda
//! extension waits for the handler's "request done" signal and then sends
//! what the sink holds when a flush is due; Lambda freezes the environment
//! only once both the runtime and the extension ask for their next event,
//! so the client never waits for Firehose. Registering the extension also
//! makes Lambda send SIGTERM before it shuts the environment down (internal
//! extensions get no SHUTDOWN event): the handler for it flushes once more.
//!
//! Every wait here is bounded, because the extension holds the environment
//! (and its bill) while it waits:
//! - the "done" signal names its invocation and is sent by a guard, so a
//!   handler that panics still sends it, and an event that never reaches
//!   the handler (`main.rs` answers those itself) too; the wait for it ends
//!   anyway before the invocation's deadline, and a late signal of an
//!   earlier invocation is recognized and skipped;
//! - a flush ends within `flush_timeout`: what a throttled or unreachable
//!   stream did not take goes to the next flush (`FirehoseSink::flush_within`).

use anyhow::Context as _;
use lambda_extension::{service_fn, Extension, LambdaEvent, NextEvent};
use pullgate_aws::firehose_sink::{FirehoseApi, FirehoseSink, Leftover};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::sync::Mutex;

pub type Sink = FirehoseSink<FirehoseApi>;

/// What the extension leaves of an invocation's time when it stops
/// waiting for the handler: room for one flush and for Lambda to see the
/// extension ask for its next event before the deadline.
const DEADLINE_MARGIN: Duration = Duration::from_millis(500);

/// The handler's side: one message per answered invocation, its request id.
#[derive(Clone)]
pub struct RequestDone(UnboundedSender<String>);

impl RequestDone {
    /// A guard that signals `request_id` done when dropped: at the end of
    /// the handler, or while a panic unwinds it.
    pub fn guard(&self, request_id: String) -> DoneGuard {
        DoneGuard {
            sender: self.0.clone(),
            request_id: Some(request_id),
        }
    }
}

pub struct DoneGuard {
    sender: UnboundedSender<String>,
    request_id: Option<String>,
}

impl Drop for DoneGuard {
    fn drop(&mut self) {
        if let Some(id) = self.request_id.take() {
            // Fails only when the extension is gone, and then nobody
            // flushes anyway: the SIGTERM flush still sends what the sink
            // holds.
            let _ = self.sender.send(id);
        }
    }
}

/// Waits for the handler to finish each invocation, then flushes the sink
/// when a flush is due (`max_age` zero: after every response).
pub struct FlushAfterResponse {
    sink: Arc<Sink>,
    done: Mutex<UnboundedReceiver<String>>,
    max_age: Duration,
    flush_timeout: Duration,
}

impl FlushAfterResponse {
    /// The extension and the sender the handler signals it with.
    pub fn new(sink: Arc<Sink>, max_age: Duration, flush_timeout: Duration) -> (Self, RequestDone) {
        let (sender, receiver) = unbounded_channel();
        let flusher = FlushAfterResponse {
            sink,
            done: Mutex::new(receiver),
            max_age,
            flush_timeout,
        };
        (flusher, RequestDone(sender))
    }

    /// Registers the extension with Lambda and gives the future that runs
    /// it. Extensions register before the runtime asks for its first event
    /// (that ends the Init phase), so await this before starting the runtime.
    pub async fn register(
        self,
    ) -> Result<impl Future<Output = Result<(), lambda_extension::Error>>, lambda_extension::Error>
    {
        let flusher = Arc::new(self);
        let extension = Extension::new()
            .with_extension_name("pullgate-event-flush")
            .with_events(&["INVOKE"])
            .with_events_processor(service_fn(move |event| {
                let flusher = flusher.clone();
                async move { flusher.on_event(event).await }
            }))
            .register()
            .await?;
        Ok(extension.run())
    }

    async fn on_event(&self, event: LambdaEvent) -> Result<(), lambda_extension::Error> {
        let NextEvent::Invoke(invoke) = event.next else {
            return Ok(());
        };
        let wait = until_deadline(invoke.deadline_ms, self.flush_timeout + DEADLINE_MARGIN);
        let answered = self.wait_for(&invoke.request_id, wait).await;
        if !answered {
            tracing::warn!(
                request_id = %invoke.request_id,
                waited_ms = wait.as_millis() as u64,
                "the handler did not signal done before the deadline; not waiting longer"
            );
        }
        if self.sink.due(self.max_age) {
            let report = self
                .sink
                .flush_within(self.flush_timeout, Leftover::Requeue)
                .await;
            if report.undelivered > 0 || report.retried_records > 0 || report.timed_out {
                tracing::warn!(?report, "event flush incomplete");
            }
        }
        Ok(())
    }

    /// Whether `request_id`'s done signal came within `wait`. Signals of
    /// earlier invocations (answered after the extension stopped waiting
    /// for them) are skipped.
    async fn wait_for(&self, request_id: &str, wait: Duration) -> bool {
        let mut done = self.done.lock().await;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, done.recv()).await {
                Ok(Some(id)) if id == request_id => return true,
                Ok(Some(_earlier)) => continue,
                // None: the handler side is gone; Err: out of time.
                Ok(None) | Err(_) => return false,
            }
        }
    }
}

/// The time from now to `deadline_ms` (Unix milliseconds) less `keep`.
fn until_deadline(deadline_ms: u64, keep: Duration) -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Duration::from_millis(deadline_ms)
        .saturating_sub(now)
        .saturating_sub(keep)
}

/// Flushes once more when Lambda shuts the environment down: bounded, as
/// Lambda kills the process 500 ms after SIGTERM; what is unsent then is
/// logged for `pullgate replay`.
pub fn flush_on_sigterm(sink: Arc<Sink>) -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::spawn(async move {
        terminate.recv().await;
        let report = sink
            .flush_within(
                pullgate_settings::defaults::SHUTDOWN_FLUSH_TIMEOUT,
                Leftover::LogForReplay,
            )
            .await;
        tracing::info!(
            events = report.events,
            undelivered = report.undelivered,
            "flushed on shutdown"
        );
        std::process::exit(0);
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_ends_before_the_deadline() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let left = until_deadline(now + 10_000, Duration::from_secs(3));
        assert!(left <= Duration::from_secs(7) && left > Duration::from_secs(6));
        assert_eq!(until_deadline(now - 1, Duration::ZERO), Duration::ZERO);
        assert_eq!(until_deadline(0, Duration::from_secs(1)), Duration::ZERO);
    }
}
