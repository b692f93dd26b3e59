//! The AWS adapters in `serve` (the `aws` feature): mappings from the
//! DynamoDB table `pullgate map` writes, behind the same cache as in
//! Lambda; events to a Firehose stream, flushed on a timer and at
//! shutdown; the client-id key from Secrets Manager; mappings' upstream
//! credentials from Secrets Manager and ECR.

use crate::control::Control;
use crate::mapping_store::ServeMappings;
use crate::readiness::Readiness;
use anyhow::Context;
use pullgate_aws::dynamo_mappings::DynamoMappings;
use pullgate_aws::firehose_sink::{FirehoseApi, FirehoseSink};
use pullgate_aws::upstream_credentials::AwsCredentials;
use pullgate_domain::credentials::{
    CredentialCache, CredentialError, CredentialResolver, CredentialSource, ResolveFuture,
};
use pullgate_domain::mapping::HostMappings;
use pullgate_domain::store::{CacheSettings, CachedMappings, MappingSource, StoreError};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A host no mapping can have (`.invalid` is reserved, RFC 2606): the
/// readiness probe's query, answered (empty) once the table is reachable.
const PROBE_HOST: &str = "readiness-probe.invalid";
/// How often the probe asks a table that has not answered yet.
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// How often the flush task looks whether a flush is due.
const FLUSH_CHECK_EVERY: Duration = Duration::from_millis(100);

/// The DynamoDB store, its calls run on the control runtime (see
/// `control.rs`); the cache in front bounds and caches them as in Lambda.
pub(crate) struct OnControlRuntime {
    store: Arc<DynamoMappings>,
    control: Handle,
}

impl MappingSource for OnControlRuntime {
    fn host(
        &self,
        host: &str,
    ) -> impl Future<Output = Result<Option<Arc<HostMappings>>, StoreError>> + Send {
        let (store, host) = (self.store.clone(), host.to_string());
        let call = self.control.spawn(async move { store.host(&host).await });
        async move { call.await.map_err(StoreError::unavailable)? }
    }
}

/// The table's mappings; ready once the table has answered a query.
pub(crate) fn dynamodb_mappings(
    table: &str,
    cache: CacheSettings,
    control: &Control,
    readiness: &Arc<Readiness>,
) -> anyhow::Result<ServeMappings> {
    let store = Arc::new(DynamoMappings::new(control.sdk_config(), table));
    control
        .handle()
        .spawn(probe(store.clone(), readiness.clone()));
    tracing::info!(
        table,
        ttl_secs = cache.ttl.as_secs(),
        "mappings from DynamoDB"
    );
    Ok(ServeMappings::DynamoDb(CachedMappings::new(
        OnControlRuntime {
            store,
            control: control.handle().clone(),
        },
        cache,
    )))
}

/// Asks the table until it answers, then marks mappings loaded. Later
/// failures do not unset it: the cache keeps serving its last copies, as
/// in Lambda.
async fn probe(store: Arc<DynamoMappings>, readiness: Arc<Readiness>) {
    let mut warned = false;
    loop {
        match store.host_items(PROBE_HOST).await {
            Ok(_) => {
                readiness.set_mappings_loaded(true);
                tracing::info!(table = store.table(), "mapping table answers");
                return;
            }
            Err(error) if !warned => {
                warned = true;
                tracing::warn!(
                    table = store.table(),
                    error = %error.with_causes(),
                    "mapping table does not answer yet; not ready, asking again every second"
                );
            }
            Err(_) => {}
        }
        tokio::time::sleep(PROBE_EVERY).await;
    }
}

/// The client-id key held in a Secrets Manager secret.
pub(crate) fn client_id_key_from_secret(control: &Control, id: &str) -> anyhow::Result<Vec<u8>> {
    control
        .block_on(pullgate_aws::client_id_key::client_id_key(
            control.sdk_config(),
            id,
        ))
        .with_context(|| format!("cannot read the client-id key from secret {id}"))
}

/// Events to Firehose and the task that sends them.
pub(crate) struct FirehoseOut {
    pub(crate) sink: Arc<FirehoseSink<FirehoseApi>>,
    stop: watch::Sender<bool>,
    flusher: JoinHandle<()>,
}

pub(crate) fn firehose(control: &Control, stream: &str, max_age: Duration) -> FirehoseOut {
    let sink = Arc::new(FirehoseSink::new(FirehoseApi::new(
        control.sdk_config(),
        stream,
    )));
    let (stop, stopped) = watch::channel(false);
    let flusher = control
        .handle()
        .spawn(flush_when_due(sink.clone(), max_age, stopped));
    tracing::info!(
        stream,
        max_age_ms = max_age.as_millis() as u64,
        "recording events to Firehose"
    );
    FirehoseOut {
        sink,
        stop,
        flusher,
    }
}

async fn flush_when_due(
    sink: Arc<FirehoseSink<FirehoseApi>>,
    max_age: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(FLUSH_CHECK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped.changed() => return,
        }
        if sink.due(max_age) {
            let report = sink.flush().await;
            tracing::debug!(
                events = report.events,
                records = report.records,
                calls = report.calls,
                undelivered = report.undelivered,
                "events sent to Firehose"
            );
        }
    }
}

impl FirehoseOut {
    /// Stops the timer and sends what is left; what Firehose refuses is
    /// logged for `pullgate replay`, as every undelivered event is.
    pub(crate) fn close(self, control: &Control) {
        // Fails only when the task already ended.
        let _ = self.stop.send(true);
        if let Err(error) = control.block_on(self.flusher) {
            tracing::warn!(%error, "the Firehose flush task failed");
        }
        let report = control.block_on(self.sink.flush());
        tracing::info!(
            events = report.events,
            records = report.records,
            undelivered = report.undelivered,
            "events flushed to Firehose"
        );
    }
}

/// The AWS credential resolver (`secretsmanager:` and `ecr` sources, and
/// `env:`/`file:` as the local one), its SDK calls run on the control
/// runtime like the store's: the SDK's connections stay on one runtime
/// whichever worker's request found the cache entry due.
pub(crate) struct CredentialsOnControlRuntime {
    resolver: Arc<AwsCredentials>,
    control: Handle,
}

impl CredentialResolver for CredentialsOnControlRuntime {
    fn resolve<'a>(&'a self, source: &'a CredentialSource) -> ResolveFuture<'a> {
        let (resolver, owned) = (self.resolver.clone(), source.clone());
        let call = self
            .control
            .spawn(async move { resolver.resolve(&owned).await });
        Box::pin(async move {
            call.await.map_err(|error| CredentialError::Backend {
                source_ref: source.to_string(),
                reason: format!("the credential call did not finish: {error}"),
            })?
        })
    }
}

pub(crate) fn upstream_credentials(control: &Control) -> Arc<CredentialCache> {
    let resolver = CredentialsOnControlRuntime {
        resolver: Arc::new(AwsCredentials::new(control.sdk_config())),
        control: control.handle().clone(),
    };
    Arc::new(CredentialCache::new(Arc::new(resolver)))
}
