//! The port through which the gateway reads mappings, and what sits on it
//! whatever the store: the static table (file, embedded defaults) in
//! [`table`], the cache in front of any store in [`cache`]. Store adapters
//! with a network behind them (DynamoDB) live with their SDKs elsewhere.

pub mod cache;
mod table;

pub use cache::{CacheSettings, CachedMappings};

use crate::mapping::HostMappings;
use std::future::Future;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
#[error("mapping store unavailable: {0}")]
pub struct StoreError(pub String);

pub trait MappingSource: Send + Sync + 'static {
    /// One host's mappings; `Ok(None)` when the host is not served.
    fn host(
        &self,
        host: &str,
    ) -> impl Future<Output = Result<Option<Arc<HostMappings>>, StoreError>> + Send;
}
