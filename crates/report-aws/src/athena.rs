//! The report SQL on Athena: StartQueryExecution in the workgroup, poll
//! GetQueryExecution with backoff, read every page of GetQueryResults.
//! A query the workgroup cancels at its bytes-scanned cutoff is reported as
//! such, with what to do about it.

use std::time::Duration;

use aws_sdk_athena::error::SdkError;
use aws_sdk_athena::operation::get_query_execution::GetQueryExecutionError;
use aws_sdk_athena::operation::get_query_results::GetQueryResultsError;
use aws_sdk_athena::operation::start_query_execution::StartQueryExecutionError;
use aws_sdk_athena::types::{QueryExecutionContext, QueryExecutionState, ResultConfiguration};
use aws_sdk_athena::Client;
use pullgate_report::{Dialect, EngineError, QueryEngine, Table, Value};

/// Why Athena gave no result table: a call that failed (the SDK's error
/// kept as it came), or a query Athena failed or that ran too long. The
/// cause of an [`EngineError::Query`].
#[derive(Debug, thiserror::Error)]
pub enum AthenaError {
    #[error("StartQueryExecution")]
    Start(#[source] SdkError<StartQueryExecutionError>),
    #[error("StartQueryExecution returned no id")]
    NoExecutionId,
    #[error("GetQueryExecution")]
    Status(#[source] SdkError<GetQueryExecutionError>),
    #[error("GetQueryResults")]
    Results(#[source] SdkError<GetQueryResultsError>),
    /// Athena failed or cancelled the query; its reason, as it gave it.
    #[error("{0}")]
    Failed(String),
    #[error("still running after {0:?}; stopped")]
    StillRunning(Duration),
}

/// How long to wait between polls, and for how long in all.
#[derive(Debug, Clone, Copy)]
pub struct Polling {
    pub first: Duration,
    pub max: Duration,
    pub factor: f64,
    pub timeout: Duration,
}

impl Default for Polling {
    fn default() -> Self {
        // Athena queries over a month of events take seconds; the scheduled
        // function has 15 minutes.
        Polling {
            first: Duration::from_millis(250),
            max: Duration::from_secs(5),
            factor: 1.6,
            timeout: Duration::from_secs(600),
        }
    }
}

pub struct AthenaEngine {
    client: Client,
    workgroup: String,
    database: String,
    output_location: Option<String>,
    polling: Polling,
}

impl AthenaEngine {
    /// `workgroup` decides the result location and the scan cutoff;
    /// `output_location` (s3://...) is only needed when the workgroup has none.
    pub fn new(
        config: &aws_config::SdkConfig,
        workgroup: &str,
        database: &str,
        output_location: Option<String>,
    ) -> Self {
        AthenaEngine {
            client: Client::new(config),
            workgroup: workgroup.to_string(),
            database: database.to_string(),
            output_location,
            polling: Polling::default(),
        }
    }

    pub fn with_polling(mut self, polling: Polling) -> Self {
        self.polling = polling;
        self
    }

    async fn wait(&self, name: &str, id: &str) -> Result<(), EngineError> {
        let started = tokio::time::Instant::now();
        let mut delay = self.polling.first;
        loop {
            let out = self
                .client
                .get_query_execution()
                .query_execution_id(id)
                .send()
                .await
                .map_err(|e| failed(name, AthenaError::Status(e)))?;
            let status = out.query_execution().and_then(|q| q.status());
            let state = status.and_then(|s| s.state()).cloned();
            match state {
                Some(QueryExecutionState::Succeeded) => return Ok(()),
                Some(QueryExecutionState::Failed) | Some(QueryExecutionState::Cancelled) => {
                    let reason = status
                        .and_then(|s| s.state_change_reason())
                        .unwrap_or("")
                        .to_string();
                    let athena_error = status
                        .and_then(|s| s.athena_error())
                        .and_then(|e| e.error_message())
                        .unwrap_or("")
                        .to_string();
                    let message = [reason, athena_error]
                        .into_iter()
                        .filter(|s| !s.is_empty())
                        .collect::<Vec<_>>()
                        .join("; ");
                    return Err(classify_failure(
                        name,
                        state == Some(QueryExecutionState::Cancelled),
                        &message,
                    ));
                }
                _ => {}
            }
            if started.elapsed() > self.polling.timeout {
                let _ = self
                    .client
                    .stop_query_execution()
                    .query_execution_id(id)
                    .send()
                    .await;
                return Err(failed(
                    name,
                    AthenaError::StillRunning(self.polling.timeout),
                ));
            }
            tokio::time::sleep(delay).await;
            delay = delay.mul_f64(self.polling.factor).min(self.polling.max);
        }
    }

    async fn results(&self, name: &str, id: &str) -> Result<Table, EngineError> {
        let mut pages = self
            .client
            .get_query_results()
            .query_execution_id(id)
            .max_results(1000)
            .into_paginator()
            .send();
        let mut table = Table::default();
        let mut types: Vec<String> = Vec::new();
        let mut first = true;
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| failed(name, AthenaError::Results(e)))?;
            let Some(set) = page.result_set() else {
                continue;
            };
            if first {
                if let Some(meta) = set.result_set_metadata() {
                    table.columns = meta
                        .column_info()
                        .iter()
                        .map(|c| c.name().to_string())
                        .collect();
                    types = meta
                        .column_info()
                        .iter()
                        .map(|c| c.r#type().to_ascii_lowercase())
                        .collect();
                }
            }
            for (i, row) in set.rows().iter().enumerate() {
                let cells: Vec<Option<&str>> =
                    row.data().iter().map(|d| d.var_char_value()).collect();
                // The first row of a SELECT's first page repeats the column names.
                if first
                    && i == 0
                    && cells
                        .iter()
                        .zip(&table.columns)
                        .all(|(c, n)| c.is_some_and(|c| c == n))
                    && !cells.is_empty()
                {
                    continue;
                }
                table.rows.push(
                    cells
                        .iter()
                        .enumerate()
                        .map(|(j, c)| {
                            value(*c, types.get(j).map(String::as_str).unwrap_or("varchar"))
                        })
                        .collect(),
                );
            }
            first = false;
        }
        Ok(table)
    }
}

impl QueryEngine for AthenaEngine {
    fn dialect(&self) -> Dialect {
        Dialect::Athena
    }

    async fn run(&self, name: &str, sql: &str) -> Result<Table, EngineError> {
        let mut start = self
            .client
            .start_query_execution()
            .query_string(sql)
            .work_group(&self.workgroup)
            .query_execution_context(
                QueryExecutionContext::builder()
                    .database(&self.database)
                    .build(),
            );
        if let Some(location) = &self.output_location {
            start = start.result_configuration(
                ResultConfiguration::builder()
                    .output_location(location)
                    .build(),
            );
        }
        let out = start
            .send()
            .await
            .map_err(|e| failed(name, AthenaError::Start(e)))?;
        let id = out
            .query_execution_id()
            .ok_or_else(|| failed(name, AthenaError::NoExecutionId))?
            .to_string();
        tracing::info!(query = name, execution = %id, "athena query started");
        self.wait(name, &id).await?;
        let table = self.results(name, &id).await?;
        tracing::info!(query = name, execution = %id, rows = table.rows.len(), "athena query done");
        Ok(table)
    }
}

fn failed(name: &str, error: AthenaError) -> EngineError {
    EngineError::Query {
        query: name.to_string(),
        source: Box::new(error),
    }
}

/// Athena cancels a query that exceeds the workgroup's
/// BytesScannedCutoffPerQuery ("Query cancelled! : Bytes scanned limit was
/// exceeded"); that deserves its own error, since the fix is a narrower range
/// or a higher limit, not a retry.
pub fn classify_failure(name: &str, cancelled: bool, message: &str) -> EngineError {
    let lower = message.to_ascii_lowercase();
    if lower.contains("bytes scanned limit")
        || (cancelled && lower.contains("scanned") && lower.contains("limit"))
    {
        return EngineError::ScanLimit {
            query: name.to_string(),
            message: message.to_string(),
        };
    }
    failed(
        name,
        AthenaError::Failed(if message.is_empty() {
            "cancelled".into()
        } else {
            message.to_string()
        }),
    )
}

/// Athena hands every value over as text; the column type says what it is.
fn value(text: Option<&str>, ty: &str) -> Value {
    let Some(text) = text else { return Value::Null };
    match ty {
        "tinyint" | "smallint" | "integer" | "int" | "bigint" => text
            .parse()
            .map(Value::Int)
            .unwrap_or_else(|_| Value::Text(text.into())),
        "double" | "float" | "real" | "decimal" => text
            .parse()
            .map(Value::Float)
            .unwrap_or_else(|_| Value::Text(text.into())),
        t if t.starts_with("decimal") => text
            .parse()
            .map(Value::Float)
            .unwrap_or_else(|_| Value::Text(text.into())),
        _ => Value::Text(text.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scan_cutoff_is_its_own_error() {
        let e = classify_failure(
            "overall",
            true,
            "Query cancelled! : Bytes scanned limit was exceeded",
        );
        assert!(matches!(e, EngineError::ScanLimit { .. }), "{e}");
        assert!(e.to_string().contains("BytesScannedCutoffPerQuery"));
        let e = classify_failure(
            "overall",
            false,
            "SYNTAX_ERROR: line 1:8: Column 'x' cannot be resolved",
        );
        assert!(matches!(e, EngineError::Query { .. }), "{e}");
    }

    #[test]
    fn a_failed_query_keeps_athenas_reason_as_its_cause() {
        let e = classify_failure("overall", false, "SYNTAX_ERROR: line 1:8");
        assert_eq!(e.to_string(), "query overall failed");
        let cause = std::error::Error::source(&e).and_then(|c| c.downcast_ref::<AthenaError>());
        assert!(
            matches!(cause, Some(AthenaError::Failed(m)) if m == "SYNTAX_ERROR: line 1:8"),
            "{cause:?}"
        );
        let cancelled = classify_failure("overall", true, "");
        let cause = std::error::Error::source(&cancelled).map(|c| c.to_string());
        assert_eq!(cause.as_deref(), Some("cancelled"));
    }

    #[test]
    fn values_follow_the_column_types() {
        assert_eq!(value(Some("42"), "bigint"), Value::Int(42));
        assert_eq!(value(Some("0.5"), "double"), Value::Float(0.5));
        assert_eq!(value(Some("x"), "varchar"), Value::Text("x".into()));
        assert_eq!(value(None, "bigint"), Value::Null);
    }
}
