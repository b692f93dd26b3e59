//! Events are flushed after the response has gone: an internal Lambda
//! extension waits for the handler's "request done" signal and then sends
//! what the sink holds; Lambda freezes the environment only once both the
//! runtime and the extension ask for their next event, so the client never
//! waits for Firehose. Registering the extension also makes Lambda send
//! SIGTERM before it shuts the environment down (internal extensions get no
//! SHUTDOWN event): the handler for it flushes once more.

use anyhow::Context as _;
use lambda_extension::{service_fn, Extension, LambdaEvent, NextEvent};
use pullgate_aws::firehose_sink::{FirehoseApi, FirehoseSink};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::sync::Mutex;

pub type Sink = FirehoseSink<FirehoseApi>;

/// The handler's side: one message per answered request.
pub type RequestDone = UnboundedSender<()>;

/// Waits for the handler to finish each request, then flushes the sink
/// when a flush is due (`max_age` zero: after every response).
pub struct FlushAfterResponse {
    sink: Arc<Sink>,
    done: Mutex<UnboundedReceiver<()>>,
    max_age: Duration,
}

impl FlushAfterResponse {
    /// The extension and the sender the handler signals it with.
    pub fn new(sink: Arc<Sink>, max_age: Duration) -> (Self, RequestDone) {
        let (sender, receiver) = unbounded_channel();
        let flusher = FlushAfterResponse {
            sink,
            done: Mutex::new(receiver),
            max_age,
        };
        (flusher, sender)
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
        if let NextEvent::Invoke(_) = event.next {
            // None: the handler side is gone, nothing more will come.
            if self.done.lock().await.recv().await.is_some() && self.sink.due(self.max_age) {
                let report = self.sink.flush().await;
                if report.undelivered > 0 || report.retried_records > 0 {
                    tracing::warn!(?report, "event flush incomplete");
                }
            }
        }
        Ok(())
    }
}

/// Flushes once more when Lambda shuts the environment down.
pub fn flush_on_sigterm(sink: Arc<Sink>) -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::spawn(async move {
        terminate.recv().await;
        let report = sink.flush().await;
        tracing::info!(
            events = report.events,
            undelivered = report.undelivered,
            "flushed on shutdown"
        );
        std::process::exit(0);
    });
    Ok(())
}
