//! The event path of `pullgate serve`: events to gzipped JSON files under
//! the data directory, client ids keyed with a key kept there (or given),
//! enrichment from the files given.

use crate::args::ServeArgs;
use anyhow::Context;
use pullgate_domain::enrich::Enricher;
use pullgate_domain::privacy::ClientHasher;
use pullgate_enrich::EnrichmentFiles;
use pullgate_local::file_sink::{FileSink, FileSinkConfig};
use pullgate_router::Events;
use std::path::Path;
use std::sync::Arc;

/// Bytes of a generated client-id key (HMAC-SHA256's block-sized key).
const GENERATED_KEY_BYTES: usize = 32;

/// The events and the sink (closed at shutdown), or `None` with
/// `--events off`.
pub(super) fn events(args: &ServeArgs) -> anyhow::Result<Option<(Events, Arc<FileSink>)>> {
    if !args.events_on() {
        return Ok(None);
    }
    let sink = Arc::new(
        FileSink::start(FileSinkConfig::new(&args.data_dir))
            .with_context(|| format!("cannot write events under {}", args.data_dir.display()))?,
    );
    let key = client_id_key(args.client_id_key.as_deref(), &args.data_dir)?;
    let events = Events::new(
        sink.clone(),
        ClientHasher::new(&key, args.client_id_rotation),
        enricher(args)?,
    );
    tracing::info!(dir = %args.data_dir.display(), "recording events");
    Ok(Some((events, sink)))
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
fn client_id_key(given: Option<&str>, data_dir: &Path) -> anyhow::Result<Vec<u8>> {
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
        assert_eq!(client_id_key(Some("secret"), &dir).unwrap(), b"secret");
        assert!(!dir.join("client-id.key").exists());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_generated_key_is_kept_and_read_back() {
        let dir = scratch("kept");
        let first = client_id_key(None, &dir).unwrap();
        assert_eq!(first.len(), GENERATED_KEY_BYTES);
        assert_eq!(client_id_key(None, &dir).unwrap(), first);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_short_key_is_replaced() {
        let dir = scratch("short");
        std::fs::write(dir.join("client-id.key"), b"short").unwrap();
        let key = client_id_key(None, &dir).unwrap();
        assert_eq!(key.len(), GENERATED_KEY_BYTES);
        assert_eq!(std::fs::read(dir.join("client-id.key")).unwrap(), key);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_unreadable_key_is_an_error_not_a_new_key() {
        let dir = scratch("unreadable");
        // A directory where the key should be: reading it fails, not NotFound.
        std::fs::create_dir(dir.join("client-id.key")).unwrap();
        let error = format!("{:#}", client_id_key(None, &dir).unwrap_err());
        assert!(
            error.contains("cannot read") && error.contains("client-id.key"),
            "{error}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
