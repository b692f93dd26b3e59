//! The gateway Lambda: the same router `pullgate serve` runs, fed by
//! lambda_http from API Gateway HTTP API (payload v2). This binary only
//! wires: mappings from DynamoDB through the cache, events to Firehose,
//! the client address from the trusted request context.
//!
//! Events are flushed after the response has gone: an internal Lambda
//! extension waits for the handler's "request done" signal and then sends
//! what the sink holds; Lambda freezes the environment only once both the
//! runtime and the extension ask for their next event, so the client never
//! waits for Firehose. Registering the extension also makes Lambda send
//! SIGTERM before it shuts the environment down (internal extensions get no
//! SHUTDOWN event): the handler for it flushes once more.
//!
//! Environment: PULLGATE_TABLE (DynamoDB mapping table, required),
//! PULLGATE_FIREHOSE_STREAM (events off when unset), PULLGATE_CLIENT_ID_SECRET
//! (Secrets Manager id of the HMAC key; required with events),
//! PULLGATE_CLIENT_ID_ROTATION (day | month | never), PULLGATE_MAPPING_TTL_SECS,
//! PULLGATE_NEGATIVE_TTL_SECS, PULLGATE_STORE_TIMEOUT_MS, the enrichment
//! files (PULLGATE_IP_MMDB, PULLGATE_IP_ASN, PULLGATE_IP_COUNTRY,
//! PULLGATE_CLOUD_RANGES: ':'-separated paths, typically in a layer under
//! /opt; PULLGATE_ORG_OVERRIDES: one path; none set: no enrichment),
//! PULLGATE_FLUSH_MAX_AGE_MS (0, the default: flush after every response;
//! more: events of several requests share a Firehose record and a call,
//! cheaper, at the price of holding them in a frozen environment until the
//! next request after that age or the SIGTERM flush).

use anyhow::Context as _;
use lambda_extension::{service_fn, Extension, LambdaEvent, NextEvent};
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use pullgate_aws::dynamo_mappings::DynamoMappings;
use pullgate_aws::firehose_sink::{FirehoseApi, FirehoseSink};
use pullgate_domain::privacy::{ClientHasher, Rotation};
use pullgate_domain::store::{CacheSettings, CachedMappings};
use pullgate_enrich::EnrichmentFiles;
use pullgate_router::{ClientAddr, Events, Gateway, GatewayConfig, RequestId};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::sync::Mutex;
use tower::ServiceExt;

type Sink = FirehoseSink<FirehoseApi>;

/// The client address is API Gateway's `sourceIp`, never a header the
/// client could set; the request id is API Gateway's.
fn with_context(mut request: Request) -> Request {
    let (source_ip, request_id) = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => {
            (context.http.source_ip.clone(), context.request_id.clone())
        }
        _ => (None, None),
    };
    if let Some(addr) = source_ip.and_then(|ip| ip.parse().ok()) {
        request.extensions_mut().insert(ClientAddr(addr));
    }
    if let Some(id) = request_id {
        request.extensions_mut().insert(RequestId(id));
    }
    request
}

fn env_duration(
    name: &str,
    default: Duration,
    unit: fn(u64) -> Duration,
) -> anyhow::Result<Duration> {
    match std::env::var(name) {
        Ok(text) => {
            Ok(unit(text.parse().with_context(|| {
                format!("{name}={text:?} is not a whole number")
            })?))
        }
        Err(_) => Ok(default),
    }
}

fn cache_settings() -> anyhow::Result<CacheSettings> {
    let defaults = CacheSettings::default();
    Ok(CacheSettings {
        ttl: env_duration(
            "PULLGATE_MAPPING_TTL_SECS",
            defaults.ttl,
            Duration::from_secs,
        )?,
        negative_ttl: env_duration(
            "PULLGATE_NEGATIVE_TTL_SECS",
            defaults.negative_ttl,
            Duration::from_secs,
        )?,
        call_timeout: env_duration(
            "PULLGATE_STORE_TIMEOUT_MS",
            defaults.call_timeout,
            Duration::from_millis,
        )?,
        ..defaults
    })
}

/// Waits for the handler to finish each request, then flushes the sink
/// when a flush is due (`max_age` zero: after every response).
struct FlushAfterResponse {
    sink: Arc<Sink>,
    done: Mutex<UnboundedReceiver<()>>,
    max_age: Duration,
}

impl FlushAfterResponse {
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
fn flush_on_sigterm(sink: Arc<Sink>) -> anyhow::Result<()> {
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

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    tracing_subscriber::fmt()
        .json()
        .with_current_span(false)
        .with_ansi(false)
        .without_time()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let config = pullgate_aws::sdk_config().await;
    let table = std::env::var("PULLGATE_TABLE")
        .context("PULLGATE_TABLE (the DynamoDB mapping table) is not set")?;
    let store = CachedMappings::new(DynamoMappings::new(&config, table), cache_settings()?);
    let mut gateway = Gateway::new(store, GatewayConfig::default());

    let mut flush: Option<(Arc<Sink>, UnboundedSender<()>, UnboundedReceiver<()>)> = None;
    if let Ok(stream) = std::env::var("PULLGATE_FIREHOSE_STREAM") {
        let secret = std::env::var("PULLGATE_CLIENT_ID_SECRET").context(
            "PULLGATE_CLIENT_ID_SECRET is not set (needed with PULLGATE_FIREHOSE_STREAM)",
        )?;
        let rotation: Rotation = std::env::var("PULLGATE_CLIENT_ID_ROTATION")
            .unwrap_or_else(|_| "day".into())
            .parse()
            .map_err(|e| anyhow::anyhow!("PULLGATE_CLIENT_ID_ROTATION: {e}"))?;
        let key = pullgate_aws::client_id_key::client_id_key(&config, &secret).await?;
        let files = EnrichmentFiles::from_env("PULLGATE_");
        let (enricher, loaded) = files.load().context("loading the enrichment files")?;
        if !files.is_empty() {
            tracing::info!(
                ranges = loaded.ranges,
                bytes = loaded.memory_bytes,
                millis = loaded.millis,
                "enrichment data loaded"
            );
        }
        let sink = Arc::new(FirehoseSink::new(FirehoseApi::new(&config, stream)));
        gateway = gateway.with_events(Events::new(
            sink.clone(),
            ClientHasher::new(&key, rotation),
            enricher,
        ));
        let (sender, receiver) = unbounded_channel();
        flush = Some((sink, sender, receiver));
    }

    let router = pullgate_router::router(gateway);
    let done = flush.as_ref().map(|(_, sender, _)| sender.clone());
    let handler = tower::service_fn(move |request: Request| {
        let router = router.clone();
        let done = done.clone();
        async move {
            let response = router.oneshot(with_context(request)).await;
            if let Some(done) = done {
                // The event is in the sink: let the extension flush it.
                let _ = done.send(());
            }
            response
        }
    });

    match flush {
        None => lambda_http::run(handler).await,
        Some((sink, _, receiver)) => {
            flush_on_sigterm(sink.clone())?;
            let flusher = Arc::new(FlushAfterResponse {
                sink,
                done: Mutex::new(receiver),
                max_age: env_duration(
                    "PULLGATE_FLUSH_MAX_AGE_MS",
                    Duration::ZERO,
                    Duration::from_millis,
                )?,
            });
            // Extensions register before the runtime asks for its first
            // event (that ends the Init phase).
            let extension = Extension::new()
                .with_extension_name("pullgate-event-flush")
                .with_events(&["INVOKE"])
                .with_events_processor(service_fn(move |event| {
                    let flusher = flusher.clone();
                    async move { flusher.on_event(event).await }
                }))
                .register()
                .await?;
            tokio::try_join!(lambda_http::run(handler), extension.run())?;
            Ok(())
        }
    }
}
