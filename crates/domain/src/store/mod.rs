//! The port through which the gateway reads mappings, and what every store
//! shares: the lookup keys of a Host header ([`host_candidates`]), the
//! static table (file, embedded defaults) as a store, the cache in front of
//! any store ([`cache`]). Store adapters with a network behind them
//! (DynamoDB) live with their SDKs elsewhere.

pub mod cache;
mod host_candidates;
mod swappable;
mod table;

pub use cache::{CacheSettings, CachedMappings};
pub use host_candidates::{host_candidates, HostCandidates};
pub use swappable::SwappableTable;

use crate::mapping::HostMappings;
use std::error::Error;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Why a store gave no answer. The cause stays an error value (for
/// `source()` and downcasting), not text: its `Display` is this level only,
/// and `{:#}` (anyhow) or [`StoreError::with_causes`] spell out the chain.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be asked, or failed the call (an SDK error, the
    /// network, the service refusing).
    #[error("mapping store unavailable")]
    Unavailable {
        #[source]
        source: Box<dyn Error + Send + Sync>,
    },
    /// No answer within the bound on one store call (the cache cuts a
    /// hanging call off).
    #[error("mapping store unavailable: no answer within {} ms", .0.as_millis())]
    Timeout(Duration),
}

impl StoreError {
    /// A failed call, its cause kept as the adapter typed it.
    pub fn unavailable(source: impl Error + Send + Sync + 'static) -> Self {
        StoreError::Unavailable {
            source: Box::new(source),
        }
    }

    /// The error and each of its causes, `: `-separated, for one log line
    /// (a log field shows only `Display`, which stops at this level).
    pub fn with_causes(&self) -> impl fmt::Display + '_ {
        WithCauses(self)
    }
}

struct WithCauses<'e>(&'e StoreError);

impl fmt::Display for WithCauses<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(error) = cause {
            write!(f, ": {error}")?;
            cause = error.source();
        }
        Ok(())
    }
}

pub trait MappingSource: Send + Sync + 'static {
    /// One host's mappings; `Ok(None)` when the host is not served.
    fn host(
        &self,
        host: &str,
    ) -> impl Future<Output = Result<Option<Arc<HostMappings>>, StoreError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("DynamoDB Query failed")]
    struct Adapter(#[source] std::io::Error);

    #[test]
    fn the_cause_is_kept_and_logged_in_full() {
        let error = StoreError::unavailable(Adapter(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "connection refused",
        )));
        assert_eq!(error.to_string(), "mapping store unavailable");
        assert_eq!(
            error.with_causes().to_string(),
            "mapping store unavailable: DynamoDB Query failed: connection refused"
        );
        let cause = error.source().and_then(|e| e.downcast_ref::<Adapter>());
        assert_eq!(
            cause.map(|a| a.0.kind()),
            Some(std::io::ErrorKind::ConnectionRefused)
        );
        let timeout = StoreError::Timeout(Duration::from_millis(1500));
        assert_eq!(
            timeout.with_causes().to_string(),
            "mapping store unavailable: no answer within 1500 ms"
        );
    }
}
