//! The report Lambda, run on a schedule (EventBridge): the report SQL of
//! `infra/sql/` on Athena, the reports to S3 as JSON, CSV and HTML under
//! `reports/<YYYY-MM-DD>/` (the day it ran), one set per organization under
//! `orgs/`. This binary only wires the Athena engine and the S3 store.
//!
//! Environment:
//! - `ATHENA_WORKGROUP` (required): the workgroup the queries run in; it sets
//!   the query result location and the bytes-scanned cutoff per query.
//! - `GLUE_DATABASE` (default `pullgate`) and `EVENTS_TABLE` (default
//!   `events`): the table of `infra/sql/events_table.sql`.
//! - `REPORTS_BUCKET` (required): where `reports/` is written.
//! - `REPORT_DAYS` (default 30): the range, ending today (UTC).
//! - `REPORT_LATE_DAYS` (default 1): events count on the day of their own
//!   time; the `dt` partitions (the day Firehose stored them) are read from
//!   a day before the range to this many days after it. An event stored
//!   later than that (a replay) is left out until a run with a larger one.
//! - `ATHENA_OUTPUT_LOCATION` (optional, `s3://...`): only when the workgroup
//!   sets no result location.
//!
//! Read once, defaults from `pullgate_settings::defaults` (the margin's from
//! `pullgate_report::sql`, where it is explained): `settings.rs`.
//!
//! The event may override the range: `{"from": "YYYY-MM-DD", "to": "YYYY-MM-DD"}`,
//! and the margin: `{"late_days": N}`.

mod range;
mod settings;

use lambda_runtime::{service_fn, LambdaEvent};
use pullgate_report::{build_report, dates, ReportParams};
use pullgate_report_aws::athena::AthenaEngine;
use pullgate_report_aws::s3_reports::S3Reports;
use serde_json::{json, Value};
use settings::Settings;

async fn handle(
    event: LambdaEvent<Value>,
    settings: &Settings,
    config: &aws_config::SdkConfig,
) -> anyhow::Result<Value> {
    let today = dates::today();
    let (from, to) = range::range(&event.payload, today, settings.days)?;
    let late_days = range::late_days(&event.payload, settings.late_days)?;
    let params = ReportParams::new(&from, &to, None, None)?.with_late_days(late_days)?;
    let engine = AthenaEngine::new(
        config,
        &settings.workgroup,
        &settings.database,
        settings.output_location.clone(),
    );
    let table = format!("{}.{}", settings.database, settings.table);
    let report = build_report(&engine, &params, &table, &mut |done, total, query| {
        tracing::info!(done, total, query, "report progress");
    })
    .await?;
    let keys = S3Reports::new(config, &settings.bucket)
        .store(&dates::format_day(today), &report)
        .await?;
    tracing::info!(from = %from, to = %to, late_days, pulls = report.totals.pulls, organizations = report.organizations.len(), files = keys.len(), "reports written");
    Ok(
        json!({ "from": from, "to": to, "late_days": late_days, "pulls": report.totals.pulls, "organizations": report.organizations.len(), "keys": keys }),
    )
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt()
        .json()
        .with_target(false)
        .without_time()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let settings = Settings::from_env()?;
    let config = aws_config::load_from_env().await;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let (settings, config) = (&settings, &config);
        async move {
            handle(event, settings, config)
                .await
                .map_err(|e| lambda_runtime::Error::from(format!("{e:#}")))
        }
    }))
    .await
}
