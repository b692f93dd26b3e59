//! The event path of `serve`: events to gzipped JSON files under the data
//! directory or (the `aws` feature) to a Firehose stream; client ids keyed
//! with a key given, kept in the data directory, or read from Secrets
//! Manager; enrichment from the files given.

use crate::args::ServeArgs;
use crate::control::Control;
use crate::sources::EventsTo;
use anyhow::Context;
use pullgate_domain::enrich::Enricher;
use pullgate_domain::privacy::ClientHasher;
use pullgate_domain::sink::EventSink;
use pullgate_enrich::EnrichmentFiles;
use pullgate_local::file_sink::{FileSink, FileSinkConfig};
use pullgate_router::Events;
use std::path::Path;
use std::sync::Arc;

/// Bytes of a generated client-id key (HMAC-SHA256's block-sized key).
const GENERATED_KEY_BYTES: usize = 32;

/// Where the events go, kept to be closed at shutdown.
pub(crate) enum EventOut {
    Files(Arc<FileSink>),
    #[cfg(feature = "aws")]
    Firehose(crate::aws::FirehoseOut),
}

impl EventOut {
    /// The sink readiness watches.
    pub(crate) fn sink(&self) -> Arc<dyn EventSink> {
        match self {
            EventOut::Files(sink) => sink.clone(),
            #[cfg(feature = "aws")]
            EventOut::Firehose(out) => out.sink.clone(),
        }
    }

    /// Writes out what is held: the last file closed, the last batch sent.
    #[cfg_attr(not(feature = "aws"), allow(unused_variables))]
    pub(crate) fn close(self, control: &Control) {
        match self {
            EventOut::Files(sink) => {
                let stats = sink.close();
                tracing::info!(
                    events = stats.events,
                    files = stats.files,
                    failed = stats.failed,
                    "event files closed"
                );
            }
            #[cfg(feature = "aws")]
            EventOut::Firehose(out) => out.close(control),
        }
    }
}

/// The events and where they go, or `None` with `--events off`.
pub(crate) fn events(
    args: &ServeArgs,
    control: &Control,
) -> anyhow::Result<Option<(Events, EventOut)>> {
    let (sink, out): (Arc<dyn EventSink>, EventOut) = match &args.events {
        EventsTo::Off => return Ok(None),
        EventsTo::Files => {
            let sink = Arc::new(
                FileSink::start(FileSinkConfig::new(&args.data_dir)).with_context(|| {
                    format!("cannot write events under {}", args.data_dir.display())
                })?,
            );
            tracing::info!(dir = %args.data_dir.display(), "recording events");
            (sink.clone(), EventOut::Files(sink))
        }
        #[cfg(feature = "aws")]
        EventsTo::Firehose(stream) => {
            let max_age = std::time::Duration::from_millis(args.flush_max_age_ms);
            let out = crate::aws::firehose(control, stream, max_age);
            (out.sink.clone(), EventOut::Firehose(out))
        }
        #[cfg(not(feature = "aws"))]
        EventsTo::Firehose(_) => anyhow::bail!(
            "--events firehose:… needs the AWS adapters: build with `--features aws` \
             (or use the full `pullgate serve`)"
        ),
    };
    let key = client_id_key(args, control)?;
    let events = Events::new(
        sink,
        ClientHasher::new(&key, args.client_id_rotation),
        enricher(args)?,
    );
    Ok(Some((events, out)))
}

/// The client-id key: given, from Secrets Manager, or kept in the data
/// directory.
#[cfg_attr(not(feature = "aws"), allow(unused_variables))]
fn client_id_key(args: &ServeArgs, control: &Control) -> anyhow::Result<Vec<u8>> {
    match &args.client_id_secret {
        #[cfg(feature = "aws")]
        Some(secret) => crate::aws::client_id_key_from_secret(control, secret),
        #[cfg(not(feature = "aws"))]
        Some(_) => {
            anyhow::bail!("--client-id-secret needs the AWS adapters: build with `--features aws`")
        }
        None => kept_client_id_key(args.client_id_key.as_deref(), &args.data_dir),
    }
}

/// Enrichment from the files given; without any, events carry no AS,
/// country or organization (everything else works).
fn enricher(args: &ServeArgs) -> anyhow::Result<Arc<dyn Enricher>> {
    let files = EnrichmentFiles {
        asn_csv: args.ip_asn.clone(),
        country_csv: args.ip_country.clone(),
        mmdb: args.ip_mmdb.clone(),
        provider_ranges: args.cloud_ranges.clone(),
        overrides: args.org_overrides.clone(),
    };
    let (enricher, stats) = files.load()?;
    if !files.is_empty() {
        tracing::info!(
            ranges = stats.ranges,
            mib = stats.memory_bytes / (1024 * 1024),
            millis = stats.millis,
            "enrichment data loaded"
        );
    }
    Ok(enricher)
}

/// The client-id key: given, or random and kept in the data directory so
/// ids stay stable across restarts. A kept key that cannot be read is an
/// error: replacing it would change every client id without a word.
fn kept_client_id_key(given: Option<&str>, data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    if let Some(key) = given {
        return Ok(key.as_bytes().to_vec());
    }
    let path = data_dir.join("client-id.key");
    match std::fs::read(&path) {
        Ok(key) if key.len() >= GENERATED_KEY_BYTES => return Ok(key),
        // Too short to be one we wrote (an interrupted write): replaced,
        // as before, but said.
        Ok(key) => tracing::warn!(
            path = %path.display(),
            bytes = key.len(),
            "client-id key too short; writing a new one (client ids change)"
        ),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => {
            return Err(error).with_context(|| format!("cannot read {}", path.display()));
        }
    }
    let mut key = vec![0u8; GENERATED_KEY_BYTES];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key)
        .map_err(|_| anyhow::anyhow!("no randomness for the client-id key"))?;
    std::fs::write(&path, &key).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A fresh directory under the system's temporary one.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "pullgate-serve-{name}-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_given_key_is_used_as_is_and_nothing_is_written() {
        let dir = scratch("given");
        assert_eq!(kept_client_id_key(Some("secret"), &dir).unwrap(), b"secret");
        assert!(!dir.join("client-id.key").exists());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_generated_key_is_kept_and_read_back() {
        let dir = scratch("kept");
        let first = kept_client_id_key(None, &dir).unwrap();
        assert_eq!(first.len(), GENERATED_KEY_BYTES);
        assert_eq!(kept_client_id_key(None, &dir).unwrap(), first);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_short_key_is_replaced() {
        let dir = scratch("short");
        std::fs::write(dir.join("client-id.key"), b"short").unwrap();
        let key = kept_client_id_key(None, &dir).unwrap();
        assert_eq!(key.len(), GENERATED_KEY_BYTES);
        assert_eq!(std::fs::read(dir.join("client-id.key")).unwrap(), key);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_unreadable_key_is_an_error_not_a_new_key() {
        let dir = scratch("unreadable");
        // A directory where the key should be: reading it fails, not NotFound.
        std::fs::create_dir(dir.join("client-id.key")).unwrap();
        let error = format!("{:#}", kept_client_id_key(None, &dir).unwrap_err());
        assert!(
            error.contains("cannot read") && error.contains("client-id.key"),
            "{error}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
