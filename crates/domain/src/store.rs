//! The port through which the gateway reads mappings. Adapters: the static
//! table (file, embedded defaults) here; DynamoDB with a cache elsewhere.

use crate::mapping::{HostMappings, MappingTable};
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

impl MappingSource for MappingTable {
    fn host(
        &self,
        host: &str,
    ) -> impl Future<Output = Result<Option<Arc<HostMappings>>, StoreError>> + Send {
        std::future::ready(Ok(MappingTable::host(self, host).cloned()))
    }
}
