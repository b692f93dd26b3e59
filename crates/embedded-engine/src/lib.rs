//! [`QueryEngine`] on Apache DataFusion, over event files on disk: the local
//! sink's `events/dt=YYYY-MM-DD/*.json.gz`, or a copy of the Firehose output
//! in the same layout, where `dt` is the directory's name, as on Athena (a
//! partition column, so a date range reads only its days); or any other
//! directory of event files (`events/YYYY/MM/dd/HH/...`), where `dt` is
//! each event's own day. Either way the report SQL counts events by their
//! own time and uses `dt` only to prune.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema};
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::datasource::file_format::json::JsonFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use pullgate_report::engine::Cause;
use pullgate_report::sql::{event_columns, EVENT_DAY};
use pullgate_report::{Dialect, EngineError, QueryEngine, Table, Value};

/// The table name the report SQL reads locally.
pub const EVENTS_TABLE: &str = "events";

pub struct EmbeddedEngine {
    ctx: SessionContext,
}

/// A DataFusion error as the cause of an [`EngineError`]. DataFusion's
/// messages already spell out their causes (`Arrow error: ...`, `caused
/// by`) and hand them out through `source()` as well; this ends the chain
/// at the DataFusion error, so that `{:#}` prints each cause once. The
/// error itself is kept: downcast the cause to this type.
#[derive(Debug)]
pub struct DataFusionFailure(pub DataFusionError);

impl std::fmt::Display for DataFusionFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for DataFusionFailure {}

fn cause(error: DataFusionError) -> Cause {
    Box::new(DataFusionFailure(error))
}

/// The engine's verdict on query `name`.
fn query_failed(name: &str) -> impl Fn(DataFusionError) -> EngineError + Copy + '_ {
    move |error| EngineError::Query {
        query: name.to_string(),
        source: cause(error),
    }
}

impl EmbeddedEngine {
    /// Opens `data_dir` (the directory holding `events/`), or a directory of
    /// event files in any other layout.
    pub async fn open(data_dir: &Path) -> Result<Self, EngineError> {
        Self::open_with(data_dir, Self::config(), default_memory_limit()).await
    }

    /// The engine's DataFusion settings (tuned for the report queries).
    pub fn config() -> SessionConfig {
        // At least 4 partitions (twice the cores): from 4 on, DataFusion
        // lets the session aggregation use the window's partitioning by
        // client and repository (subset_repartition_threshold) instead of
        // repartitioning and aggregating twice. Measured on 2 cores with 1M
        // and 10M events: 25-30% less time and memory than 2 partitions (the
        // default there), and 2 with the threshold lowered is 8% slower.
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut config = SessionConfig::new()
            .with_information_schema(false)
            .with_target_partitions((2 * cores).max(4));
        // The session aggregation keeps about two rows in three (most
        // requests of a client on a repository are one pull), so a partial
        // aggregation before the repartition only costs time: skip it as
        // soon as a sample shows that.
        let options = config.options_mut();
        options
            .execution
            .skip_partial_aggregation_probe_rows_threshold = 10_000;
        options
            .execution
            .skip_partial_aggregation_probe_ratio_threshold = 0.1;
        config
    }

    /// [`EmbeddedEngine::open`] with other DataFusion settings and memory
    /// limit (bytes; `None`: no limit). Beyond the limit, sorts and
    /// aggregations spill to temporary files where DataFusion can, and
    /// otherwise the query fails with a resources-exhausted error instead
    /// of taking the machine's memory.
    pub async fn open_with(
        data_dir: &Path,
        config: SessionConfig,
        memory_limit: Option<usize>,
    ) -> Result<Self, EngineError> {
        let mut runtime = RuntimeEnvBuilder::new();
        if let Some(limit) = memory_limit {
            runtime = runtime.with_memory_pool(Arc::new(FairSpillPool::new(limit)));
        }
        let runtime = runtime
            .build_arc()
            .map_err(|e| EngineError::Setup { source: cause(e) })?;
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        let events = if data_dir.join("events").is_dir() {
            data_dir.join("events")
        } else {
            data_dir.to_path_buf()
        };
        if !events.is_dir() {
            return Err(EngineError::NoData(format!(
                "{} is not a directory",
                data_dir.display()
            )));
        }
        let files = event_files(&events);
        if files.is_empty() {
            return Err(EngineError::NoData(format!(
                "no event files under {} (expected events/dt=YYYY-MM-DD/*.json.gz, as `pullgate serve --data-dir` writes)",
                events.display()
            )));
        }
        let partitioned = files.iter().any(|f| {
            f.parent()
                .and_then(|p| p.file_name())
                .is_some_and(|n| n.to_string_lossy().starts_with("dt="))
        });
        let gzip = files.first().is_some_and(|f| is_gzip(f));
        let format = JsonFormat::default().with_file_compression_type(if gzip {
            FileCompressionType::GZIP
        } else {
            FileCompressionType::UNCOMPRESSED
        });
        let schema = Arc::new(event_schema());
        let err = |e: DataFusionError| EngineError::OpenEvents {
            path: events.clone(),
            source: cause(e),
        };
        if partitioned {
            let url = ListingTableUrl::parse(dir_url(&events)).map_err(err)?;
            let options = ListingOptions::new(Arc::new(format))
                .with_file_extension(".json.gz")
                .with_table_partition_cols(vec![("dt".to_string(), DataType::Utf8)]);
            let config = ListingTableConfig::new(url)
                .with_listing_options(options)
                .with_schema(schema);
            let table = ListingTable::try_new(config).map_err(err)?;
            ctx.register_table(EVENTS_TABLE, Arc::new(table))
                .map_err(err)?;
        } else {
            let urls = files
                .iter()
                .map(|f| ListingTableUrl::parse(f.to_string_lossy()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(err)?;
            let options = ListingOptions::new(Arc::new(format)).with_file_extension("");
            let config = ListingTableConfig::new_with_multi_paths(urls)
                .with_listing_options(options)
                .with_schema(schema);
            let table = ListingTable::try_new(config).map_err(err)?;
            ctx.register_table("events_files", Arc::new(table))
                .map_err(err)?;
            // No partitions to name dt: the event's own day stands in, so
            // the report's prune keeps what its time filter keeps.
            ctx.sql(&format!(
                "CREATE VIEW {EVENTS_TABLE} AS SELECT *, {EVENT_DAY} AS dt FROM events_files"
            ))
            .await
            .map_err(err)?;
        }
        Ok(EmbeddedEngine { ctx })
    }
}

impl QueryEngine for EmbeddedEngine {
    fn dialect(&self) -> Dialect {
        Dialect::DataFusion
    }

    async fn run(&self, name: &str, sql: &str) -> Result<Table, EngineError> {
        let failed = query_failed(name);
        let frame = self.ctx.sql(sql).await.map_err(failed)?;
        let columns: Vec<String> = frame
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let batches = frame.collect().await.map_err(failed)?;
        let mut rows = Vec::new();
        for batch in &batches {
            let cells: Vec<Vec<Value>> = batch
                .columns()
                .iter()
                .map(|c| values(c.as_ref()))
                .collect::<Result<_, _>>()
                .map_err(failed)?;
            for r in 0..batch.num_rows() {
                rows.push(cells.iter().map(|c| c[r].clone()).collect());
            }
        }
        Ok(Table { columns, rows })
    }

    /// The sessions of a report stay in memory, in the partitions the query
    /// produced them in, so that the later queries run in parallel on them.
    async fn keep(&self, name: &str, sql: &str) -> Result<bool, EngineError> {
        let failed = query_failed(name);
        let frame = self.ctx.sql(sql).await.map_err(failed)?;
        let schema = Arc::new(frame.schema().as_arrow().clone());
        let partitions = frame.collect_partitioned().await.map_err(failed)?;
        let table = MemTable::try_new(schema, partitions).map_err(failed)?;
        self.ctx.deregister_table(name).map_err(failed)?;
        self.ctx
            .register_table(name, Arc::new(table))
            .map_err(failed)?;
        Ok(true)
    }
}

/// Half of physical memory (Linux `/proc/meminfo`), none where unknown.
fn default_memory_limit() -> Option<usize> {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        })
        .map(|kib| kib * 1024 / 2)
}

/// The Arrow schema of the events, from the DDL in `infra/sql/` (the one
/// list of columns both engines use).
pub fn event_schema() -> Schema {
    Schema::new(
        event_columns()
            .into_iter()
            .map(|(name, ty)| {
                let ty = match ty {
                    "int" => DataType::Int32,
                    "bigint" => DataType::Int64,
                    "double" => DataType::Float64,
                    _ => DataType::Utf8,
                };
                Field::new(name, ty, true)
            })
            .collect::<Vec<_>>(),
    )
}

/// Integers as i64, floats as f64, everything else as text.
fn values(array: &dyn Array) -> Result<Vec<Value>, DataFusionError> {
    let n = array.len();
    let out = match array.data_type() {
        t if t.is_integer() => {
            let a = cast(array, &DataType::Int64)?;
            let a = a.as_primitive::<Int64Type>();
            (0..n)
                .map(|i| {
                    if a.is_null(i) {
                        Value::Null
                    } else {
                        Value::Int(a.value(i))
                    }
                })
                .collect()
        }
        t if t.is_floating() || matches!(t, DataType::Decimal128(..)) => {
            let a = cast(array, &DataType::Float64)?;
            let a = a.as_primitive::<Float64Type>();
            (0..n)
                .map(|i| {
                    if a.is_null(i) {
                        Value::Null
                    } else {
                        Value::Float(a.value(i))
                    }
                })
                .collect()
        }
        _ => {
            let a = cast(array, &DataType::Utf8)?;
            let a = a.as_string::<i32>();
            (0..n)
                .map(|i| {
                    if a.is_null(i) {
                        Value::Null
                    } else {
                        Value::Text(a.value(i).to_string())
                    }
                })
                .collect()
        }
    };
    Ok(out)
}

/// Every finished event file under `dir` (`.part` files are being written).
fn event_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if !path.to_string_lossy().ends_with(".part")
                && !entry.file_name().to_string_lossy().starts_with('.')
            {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn is_gzip(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 2];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == [0x1f, 0x8b]
}

fn dir_url(dir: &Path) -> String {
    let abs = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut s = abs.to_string_lossy().into_owned();
    if !s.ends_with('/') {
        s.push('/');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error as the CLI prints it (`{:#}`): each cause after a colon.
    fn with_causes(error: &dyn std::error::Error) -> String {
        let mut text = error.to_string();
        let mut cause = error.source();
        while let Some(e) = cause {
            text = format!("{text}: {e}");
            cause = e.source();
        }
        text
    }

    #[tokio::test]
    async fn a_failed_query_names_it_and_keeps_datafusions_error_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("events.json"),
            "{\"v\":1,\"request_id\":\"r\",\"time\":\"2026-01-01T00:00:00Z\"}\n",
        )
        .unwrap();
        let engine = EmbeddedEngine::open(dir.path()).await.unwrap();
        let error = engine
            .run("broken", "SELECT no_such_column FROM events")
            .await
            .unwrap_err();
        assert_eq!(error.to_string(), "query broken failed");
        let text = with_causes(&error);
        assert!(text.starts_with("query broken failed: "), "{text}");
        assert_eq!(text.matches("no_such_column").count(), 1, "{text}");
        let EngineError::Query { source, .. } = &error else {
            panic!("not a query error: {error:?}");
        };
        assert!(source.downcast_ref::<DataFusionFailure>().is_some());
    }
}
