//! A mapping table that can be replaced while it serves: `pullgate serve`
//! reloads its mapping file into one (on SIGHUP or when the file changes).
//! Requests read it without a lock (one atomic load per lookup), and a
//! request that started on the old table finishes on it.

use super::{MappingSource, StoreError};
use crate::mapping::{HostMappings, MappingTable};
use arc_swap::ArcSwap;
use std::future::Future;
use std::sync::Arc;

pub struct SwappableTable {
    current: ArcSwap<MappingTable>,
}

impl SwappableTable {
    pub fn new(table: MappingTable) -> Self {
        SwappableTable {
            current: ArcSwap::from_pointee(table),
        }
    }

    /// Serves `table` from the next lookup on.
    pub fn replace(&self, table: MappingTable) {
        self.current.store(Arc::new(table));
    }

    pub fn current(&self) -> Arc<MappingTable> {
        self.current.load_full()
    }
}

impl MappingSource for SwappableTable {
    fn host(
        &self,
        host: &str,
    ) -> impl Future<Output = Result<Option<Arc<HostMappings>>, StoreError>> + Send {
        std::future::ready(Ok(self.current.load().host(host).cloned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str) -> MappingTable {
        MappingTable::from_toml(&format!(
            "[[mappings]]\nhost = \"images.example\"\nname = \"{name}\"\nupstream = \"registry-1.docker.io/library/{name}\"\n"
        ))
        .unwrap()
    }

    fn names(found: Option<Arc<HostMappings>>) -> Vec<String> {
        found
            .map(|h| h.oci().iter().map(|m| m.name.clone()).collect())
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn a_replaced_table_serves_from_the_next_lookup() {
        let swappable = SwappableTable::new(table("alpine"));
        let before = swappable.host("images.example").await.unwrap();
        swappable.replace(table("debian"));
        let after = swappable.host("images.example").await.unwrap();
        // The answer taken before the swap still holds the old mappings.
        assert_eq!(names(before), ["alpine"]);
        assert_eq!(names(after), ["debian"]);
        assert!(swappable.host("other.example").await.unwrap().is_none());
    }
}
