//! The events table, decoded once per report.
//!
//! Every report query starts from the same filtered projection of the
//! events (the `req` CTE of `infra/sql/sessions.sql`), and decoding gzip
//! JSON is about 40% of a query's time. [`ScanCache`] wraps the table: the
//! first scan with a given projection, filters and limit is collected into
//! memory, and later scans with the same arguments read those batches
//! instead of the files. The SQL stays the same text Athena runs.
//!
//! Memory is the price (about 410 MiB per million events for the columns
//! the reports read), so the cache is only used when the event files, at a
//! generous decoded size, fit the budget; above it every scan reads the
//! files as before.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::TableType;
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::{collect_partitioned, ExecutionPlan};

/// Decoded bytes per gzip byte of event files, rounded up from the measured
/// 4.4 (1M generated events: 94 MB gzip, 411 MiB of Arrow columns read by
/// the reports).
pub const DECODED_PER_GZIP_BYTE: u64 = 5;

/// A scan's schema and its batches, partition by partition.
type Scan = (SchemaRef, Vec<Vec<RecordBatch>>);

pub struct ScanCache {
    inner: Arc<dyn TableProvider>,
    scans: Mutex<HashMap<String, Arc<Scan>>>,
}

impl fmt::Debug for ScanCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScanCache").finish_non_exhaustive()
    }
}

impl ScanCache {
    pub fn new(inner: Arc<dyn TableProvider>) -> Self {
        ScanCache {
            inner,
            scans: Mutex::new(HashMap::new()),
        }
    }

    /// Whether event files of `file_bytes` (as stored) may be held in memory
    /// with `budget` bytes to spare.
    pub fn fits(file_bytes: u64, compressed: bool, budget: u64) -> bool {
        let factor = if compressed { DECODED_PER_GZIP_BYTE } else { 1 };
        file_bytes.saturating_mul(factor) <= budget
    }
}

#[async_trait::async_trait]
impl TableProvider for ScanCache {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        self.inner.supports_filters_pushdown(filters)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let key = format!("{projection:?}|{filters:?}|{limit:?}");
        let cached = self
            .scans
            .lock()
            .ok()
            .and_then(|scans| scans.get(&key).cloned());
        let scan = match cached {
            Some(scan) => scan,
            None => {
                let plan = self.inner.scan(state, projection, filters, limit).await?;
                let schema = plan.schema();
                let scan = Arc::new((schema, collect_partitioned(plan, state.task_ctx()).await?));
                if let Ok(mut scans) = self.scans.lock() {
                    scans.insert(key, scan.clone());
                }
                scan
            }
        };
        let (schema, partitions) = scan.as_ref();
        Ok(MemorySourceConfig::try_new_exec(
            partitions,
            schema.clone(),
            None,
        )?)
    }
}
