//! The event path in Lambda: events to Firehose, client ids keyed with the
//! secret from Secrets Manager, enrichment from files in a layer.

use crate::flush::Sink;
use crate::settings::EventSettings;
use anyhow::Context as _;
use pullgate_aws::firehose_sink::{FirehoseApi, FirehoseSink};
use pullgate_domain::privacy::ClientHasher;
use pullgate_enrich::EnrichmentFiles;
use pullgate_router::Events;
use std::sync::Arc;

/// The events and the sink they go to (the flush extension drains it).
pub async fn events(
    config: &aws_config::SdkConfig,
    settings: &EventSettings,
) -> anyhow::Result<(Events, Arc<Sink>)> {
    let key =
        pullgate_aws::client_id_key::client_id_key(config, &settings.client_id_secret).await?;
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
    let sink = Arc::new(FirehoseSink::new(FirehoseApi::new(
        config,
        settings.stream.clone(),
    )));
    let events = Events::new(
        sink.clone(),
        ClientHasher::new(&key, settings.rotation),
        enricher,
    );
    Ok((events, sink))
}
