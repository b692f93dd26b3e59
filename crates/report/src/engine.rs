//! The port every query engine implements: run one report query.

use crate::table::Table;
use std::path::PathBuf;

/// An engine's own error, kept as the cause of an [`EngineError`]: this
/// crate knows no engine, so each adapter boxes its typed error here (and
/// callers downcast when they need to).
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// Why a report could not be computed. Each variant's `Display` is its own
/// level only; `{:#}` (anyhow, as the CLI and the scheduled function print
/// errors) adds the causes.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No event data at all where the engine looked.
    #[error("no event data: {0}")]
    NoData(String),
    /// The engine itself could not be set up (its runtime, memory pool).
    #[error("cannot set up the report engine")]
    Setup {
        #[source]
        source: Cause,
    },
    /// Event files were found under `path` but could not be read as a table.
    #[error("cannot open the event files under {}", path.display())]
    OpenEvents {
        path: PathBuf,
        #[source]
        source: Cause,
    },
    /// The engine refused or failed the query.
    #[error("query {query} failed")]
    Query {
        query: String,
        #[source]
        source: Cause,
    },
    /// Athena's workgroup stopped the query at its bytes-scanned cutoff.
    #[error("query {query} was cancelled by the workgroup's scan limit ({message}); narrow the date range or raise the workgroup's BytesScannedCutoffPerQuery")]
    ScanLimit { query: String, message: String },
}

/// Runs SQL text (already in the engine's dialect) and returns its rows.
#[allow(async_fn_in_trait)]
pub trait QueryEngine {
    /// Which dialect the SQL must be rendered in for this engine.
    fn dialect(&self) -> crate::sql::Dialect;
    /// Runs one query; `name` is the report query's name, for errors and logs.
    async fn run(&self, name: &str, sql: &str) -> Result<Table, EngineError>;

    /// Keeps the result of `sql` as table `name` for the report's later
    /// queries, where the engine can hold it (the embedded engine, in
    /// memory). Returns whether it did: an engine that cannot (Athena, which
    /// would need a CTAS with its own storage and clean-up) runs every query
    /// in full instead.
    async fn keep(&self, name: &str, sql: &str) -> Result<bool, EngineError> {
        let _ = (name, sql);
        Ok(false)
    }
}
