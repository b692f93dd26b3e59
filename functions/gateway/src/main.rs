//! The gateway Lambda: the same router `pullgate serve` runs, fed by
//! lambda_http from API Gateway HTTP API (payload v2). This binary only
//! wires: mappings from DynamoDB through the cache, upstream credentials
//! from Secrets Manager and ECR (`pullgate_aws::upstream_credentials`),
//! events to Firehose
//! (flushed after the response: `flush.rs`), the client address from the
//! trusted request context (`request_context.rs`).
//!
//! Environment (read once: `settings.rs`): PULLGATE_TABLE (DynamoDB mapping
//! table, required), PULLGATE_FIREHOSE_STREAM (events off when unset),
//! PULLGATE_CLIENT_ID_SECRET (Secrets Manager id of the HMAC key; required
//! with events), PULLGATE_CLIENT_ID_ROTATION (day | month | never),
//! PULLGATE_MAPPING_TTL_SECS, PULLGATE_NEGATIVE_TTL_SECS,
//! PULLGATE_STORE_TIMEOUT_MS, PULLGATE_MANIFEST_CACHE_MIB,
//! PULLGATE_MANIFEST_REFERENCE_TTL_SECS, PULLGATE_HEALTH_PROBE_SECS, the
//! enrichment files (PULLGATE_IP_MMDB,
//! PULLGATE_IP_ASN, PULLGATE_IP_COUNTRY, PULLGATE_CLOUD_RANGES: ':'-separated
//! paths, typically in a layer under /opt; PULLGATE_ORG_OVERRIDES: one path;
//! none set: no enrichment), PULLGATE_FLUSH_MAX_AGE_MS (0, the default: flush
//! after every response; more: events of several requests share a Firehose
//! record and a call, cheaper, at the price of holding them in a frozen
//! environment until the next request after that age or the SIGTERM flush).
//! Defaults: `pullgate_settings::defaults`.

mod events;
mod flush;
mod request_context;
mod settings;

use flush::{flush_on_sigterm, FlushAfterResponse, RequestDone};
use lambda_http::Request;
use pullgate_aws::dynamo_mappings::DynamoMappings;
use pullgate_aws::upstream_credentials::AwsCredentials;
use pullgate_domain::credentials::CredentialCache;
use pullgate_domain::store::CachedMappings;
use pullgate_router::Gateway;
use settings::GatewaySettings;
use std::sync::Arc;
use tower::ServiceExt;

/// One request through the router; with events on, then tells the flush
/// extension the event is in the sink.
async fn handle(
    router: axum::Router,
    done: Option<RequestDone>,
    request: Request,
) -> Result<axum::response::Response, std::convert::Infallible> {
    let response = router.oneshot(request_context::with_context(request)).await;
    if let Some(done) = done {
        // Fails only when the extension is gone, and then nobody flushes
        // anyway: the SIGTERM flush still sends what the sink holds.
        let _ = done.send(());
    }
    response
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
    let settings = GatewaySettings::from_env()?;
    let config = pullgate_aws::sdk_config().await;
    let store = CachedMappings::new(
        DynamoMappings::new(&config, settings.table),
        settings.mapping_cache,
    );
    // Mappings' upstream credentials: Secrets Manager secrets and ECR
    // tokens with the function's role, `env:` from its environment.
    let credentials = CredentialCache::new(Arc::new(AwsCredentials::new(&config)));
    let gateway = Gateway::new(store, settings.gateway)?.with_credentials(Arc::new(credentials));
    // Runs while the environment runs invocations (it is frozen between).
    tokio::spawn(gateway.health_probe(settings.health_probe)?.run());

    let Some(event_settings) = settings.events else {
        let router = pullgate_router::router(gateway);
        return lambda_http::run(tower::service_fn(move |request| {
            handle(router.clone(), None, request)
        }))
        .await;
    };
    let (events, sink) = events::events(&config, &event_settings).await?;
    let router = pullgate_router::router(gateway.with_events(events));
    flush_on_sigterm(sink.clone())?;
    let (flusher, done) = FlushAfterResponse::new(sink, event_settings.flush_max_age);
    let extension = flusher.register().await?;
    let handler =
        tower::service_fn(move |request| handle(router.clone(), Some(done.clone()), request));
    tokio::try_join!(lambda_http::run(handler), extension)?;
    Ok(())
}
