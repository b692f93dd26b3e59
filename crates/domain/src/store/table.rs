//! The static mapping table (a mapping file, the embedded defaults) as a
//! store: every answer is already in memory, so it never fails or waits.

use super::{MappingSource, StoreError};
use crate::mapping::{HostMappings, MappingTable};
use std::future::Future;
use std::sync::Arc;

impl MappingSource for MappingTable {
    fn host(
        &self,
        host: &str,
    ) -> impl Future<Output = Result<Option<Arc<HostMappings>>, StoreError>> + Send {
        std::future::ready(Ok(MappingTable::host(self, host).cloned()))
    }
}
