//! The mapping store `serve` answers from: the mapping file (or the
//! embedded examples) in a table swapped on reload, or the DynamoDB table
//! behind the same cache as in Lambda. Either way `Readiness` learns when
//! mappings are loaded.

use crate::args::ServeArgs;
use crate::control::Control;
use crate::mappings;
use crate::readiness::Readiness;
use crate::reload;
use crate::sources::MappingsFrom;
use pullgate_domain::mapping::HostMappings;
use pullgate_domain::store::{MappingSource, StoreError, SwappableTable};
use std::sync::Arc;

// One value per server, moved once into the gateway: its size costs
// nothing, and a box would add a pointer chase to every DynamoDB lookup.
#[allow(clippy::large_enum_variant)]
pub(crate) enum ServeMappings {
    File(Arc<SwappableTable>),
    #[cfg(feature = "aws")]
    DynamoDb(pullgate_domain::store::CachedMappings<crate::aws::OnControlRuntime>),
}

impl MappingSource for ServeMappings {
    async fn host(&self, host: &str) -> Result<Option<Arc<HostMappings>>, StoreError> {
        match self {
            ServeMappings::File(table) => table.host(host).await,
            #[cfg(feature = "aws")]
            ServeMappings::DynamoDb(store) => store.host(host).await,
        }
    }
}

/// Opens the store the flags name. A mapping file that cannot be read or
/// maps nothing stops the start; a DynamoDB table that does not answer yet
/// does not (the server is not ready until it does).
pub(crate) fn open(
    args: &ServeArgs,
    control: &Control,
    readiness: &Arc<Readiness>,
) -> anyhow::Result<ServeMappings> {
    match &args.mappings {
        None => {
            let table = mappings::load(None)?;
            readiness.set_mappings_loaded(true);
            Ok(ServeMappings::File(Arc::new(SwappableTable::new(table))))
        }
        Some(MappingsFrom::File(path)) => {
            let table = Arc::new(SwappableTable::new(mappings::load(Some(path))?));
            readiness.set_mappings_loaded(true);
            tracing::info!(file = %path.display(), "mappings loaded; reloaded on SIGHUP and when the file changes");
            let hangup = {
                let _inside = control.handle().enter();
                reload::hangup_signal()
            };
            control
                .handle()
                .spawn(reload::watch(path.clone(), table.clone(), hangup));
            Ok(ServeMappings::File(table))
        }
        #[cfg(feature = "aws")]
        Some(MappingsFrom::DynamoDb(table)) => {
            crate::aws::dynamodb_mappings(table, args.mapping_cache(), control, readiness)
        }
        #[cfg(not(feature = "aws"))]
        Some(MappingsFrom::DynamoDb(_)) => anyhow::bail!(
            "--mappings dynamodb:… needs the AWS adapters: build with `--features aws` \
             (or use the full `pullgate serve`)"
        ),
    }
}
