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
//! none set: no enrichment), PULLGATE_FLUSH_MAX_AGE_MS (the batch window,
//! 1 s by default: events of the requests in it share Firehose records and a
//! call, held in a frozen environment until its next request after that age
//! or the SIGTERM flush; 0: a flush after every response),
//! PULLGATE_FLUSH_TIMEOUT_MS (the bound on one flush), PULLGATE_UPSTREAM_TIMEOUT_SECS
//! (under the request's 25 s budget and the function's 29 s timeout).
//! Defaults: `pullgate_settings::defaults`.
//!
//! Lambda's limits are the router's `EntryLimits::lambda`: 6 MB responses
//! (large Helm indexes gzipped, blobs never relayed over the limit),
//! manifest HEADs answered with their body so that API Gateway reports the
//! true Content-Length, and a request budget under the function timeout.

mod events;
mod flush;
mod request_context;
mod settings;

use flush::{flush_on_sigterm, FlushAfterResponse, RequestDone};
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, LambdaEvent, Request};
use pullgate_aws::dynamo_mappings::DynamoMappings;
use pullgate_aws::upstream_credentials::AwsCredentials;
use pullgate_domain::credentials::CredentialCache;
use pullgate_domain::store::CachedMappings;
use pullgate_router::Gateway;
use settings::GatewaySettings;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::util::BoxCloneService;
use tower::{Service, ServiceExt};

type Handler = BoxCloneService<Request, axum::response::Response, Infallible>;
/// lambda_http's conversion between API Gateway's payloads and HTTP.
type HttpAdapter = Adapter<'static, axum::response::Response, Handler>;

/// One request through the router.
async fn handle(
    router: axum::Router,
    debug_panic_path: Option<Arc<str>>,
    request: Request,
) -> Result<axum::response::Response, Infallible> {
    if debug_panic_path.is_some_and(|p| request.uri().path() == &*p) {
        panic!("PULLGATE_DEBUG_PANIC_PATH requested (debug builds only)");
    }
    router.oneshot(request_context::with_context(request)).await
}

/// The runtime's service. It takes the payload as JSON and converts it
/// itself, so that every invocation, including one that is no API Gateway
/// request at all (lambda_http would refuse it before any code of ours
/// ran), drops the guard that tells the flush extension it is done; the
/// guard also drops while a panic in the handler unwinds.
struct Invocations {
    http: HttpAdapter,
    done: Option<RequestDone>,
}

type Answered = <HttpAdapter as Service<LambdaEvent<LambdaRequest>>>::Response;

impl Service<LambdaEvent<serde_json::Value>> for Invocations {
    type Response = Answered;
    type Error = lambda_http::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Answered, lambda_http::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.http.poll_ready(cx).map_err(|never| match never {})
    }

    fn call(&mut self, event: LambdaEvent<serde_json::Value>) -> Self::Future {
        let (payload, context) = (event.payload, event.context);
        let guard = self
            .done
            .as_ref()
            .map(|d| d.guard(context.request_id.clone()));
        match serde_json::from_value::<LambdaRequest>(payload) {
            Err(error) => {
                drop(guard);
                tracing::error!(%error, request_id = %context.request_id, "the invocation is not an API Gateway request");
                Box::pin(std::future::ready(Err(format!(
                    "the invocation is not an API Gateway request: {error}"
                )
                .into())))
            }
            Ok(request) => {
                let answered = self.http.call(LambdaEvent::new(request, context));
                Box::pin(async move {
                    let _guard = guard;
                    answered.await.map_err(|never| match never {})
                })
            }
        }
    }
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
    let debug_panic_path: Option<Arc<str>> = settings.debug_panic_path.map(Into::into);
    let handler = |router: axum::Router| -> Handler {
        BoxCloneService::new(tower::service_fn(move |request| {
            handle(router.clone(), debug_panic_path.clone(), request)
        }))
    };

    let Some(event_settings) = settings.events else {
        let router = pullgate_router::router(gateway);
        let invocations = Invocations {
            http: Adapter::from(handler(router)),
            done: None,
        };
        return lambda_http::lambda_runtime::run(invocations).await;
    };
    let (events, sink) = events::events(&config, &event_settings).await?;
    let router = pullgate_router::router(gateway.with_events(events));
    flush_on_sigterm(sink.clone())?;
    let (flusher, done) = FlushAfterResponse::new(
        sink,
        event_settings.flush_max_age,
        event_settings.flush_timeout,
    );
    let extension = flusher.register().await?;
    let invocations = Invocations {
        http: Adapter::from(handler(router)),
        done: Some(done),
    };
    tokio::try_join!(lambda_http::lambda_runtime::run(invocations), extension)?;
    Ok(())
}
