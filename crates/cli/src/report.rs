//! `pullgate report`: the adoption report over local event files (the
//! embedded engine) or over Athena (`--athena`), as a terminal table, JSON,
//! CSV or one self-contained HTML file.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use pullgate_embedded_engine::{EmbeddedEngine, EVENTS_TABLE};
use pullgate_report::model::Report;
use pullgate_report::sql::sessions_query;
use pullgate_report::{
    build_sections, dates, render, Dialect, Query, QueryEngine, ReportParams, Sessions,
};
use pullgate_report_aws::athena::AthenaEngine;

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Json,
    Csv,
    Html,
}

#[derive(Clone, Copy, ValueEnum)]
enum Sections {
    All,
    /// Totals, series, breakdowns, top pullers.
    Overall,
    /// The per-organization sections.
    Orgs,
}

#[derive(Clone, Copy, ValueEnum)]
enum SqlDialect {
    Athena,
    Datafusion,
    Duckdb,
}

#[derive(Args)]
pub struct ReportArgs {
    /// Directory holding `events/` (as `pullgate serve --data-dir`), or a
    /// directory of event files in the Firehose layout.
    #[arg(long, default_value = "./pullgate-data")]
    data_dir: PathBuf,
    /// The last N days up to today, UTC (`30d`, `7d`, `90d`).
    #[arg(long, conflicts_with_all = ["from", "to"])]
    last: Option<String>,
    /// First day (YYYY-MM-DD, UTC); with --to.
    #[arg(long, requires = "to")]
    from: Option<String>,
    /// Last day (YYYY-MM-DD, UTC), inclusive; with --from.
    #[arg(long, requires = "from")]
    to: Option<String>,
    /// Only this organization's section (and its pulls in the totals of the
    /// organization table).
    #[arg(long)]
    org: Option<String>,
    /// Only this repository (`name` or `host/name`).
    #[arg(long)]
    repo: Option<String>,
    /// Also read the `dt` partitions of the N days after the range, for
    /// events stored after their own day (Firehose's buffer at midnight, a
    /// replay); events count on the day of their own time either way. An
    /// event stored later than this is left out: run again with a larger N.
    #[arg(long, value_name = "N", default_value_t = pullgate_report::sql::DEFAULT_LATE_DAYS)]
    late_days: u32,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Write the report here instead of standard output.
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Run the queries on Athena instead of the local files.
    #[arg(long)]
    athena: bool,
    /// Run only part of the report (benchmarks time them apart).
    #[arg(long, value_enum, default_value = "all")]
    sections: Sections,
    /// Print the report SQL in this dialect (for the Athena console, or
    /// DuckDB) and exit; `--events-table` names the table.
    #[arg(long, value_enum)]
    show_sql: Option<SqlDialect>,
    /// The events table name `--show-sql` writes into the queries.
    #[arg(long, default_value = "events")]
    events_table: String,
    /// With --show-sql: print the sessions query first (`-- keep: NAME`),
    /// then the queries reading the sessions from table NAME, as the
    /// embedded engine runs them.
    #[arg(long, requires = "show_sql")]
    sessions_table: Option<String>,
    /// Athena workgroup (it sets the result location and the scan cutoff).
    #[arg(long, env = "ATHENA_WORKGROUP", default_value = "primary")]
    workgroup: String,
    /// Glue database holding the events table.
    #[arg(long, env = "GLUE_DATABASE", default_value = "pullgate")]
    database: String,
    /// Events table.
    #[arg(long, env = "EVENTS_TABLE", default_value = "events")]
    table: String,
    /// Query result location (s3://...) when the workgroup sets none.
    #[arg(long, env = "ATHENA_OUTPUT_LOCATION")]
    athena_output: Option<String>,
}

pub fn run(args: ReportArgs) -> Result<()> {
    let (from, to) = range(&args)?;
    let params = ReportParams::new(&from, &to, args.repo.clone(), args.org.clone())?
        .with_late_days(args.late_days)?;
    let queries: &[Query] = match args.sections {
        Sections::All => &Query::ALL,
        Sections::Overall => &Query::OVERALL,
        Sections::Orgs => &Query::ORGS,
    };
    if let Some(dialect) = args.show_sql {
        let dialect = match dialect {
            SqlDialect::Athena => Dialect::Athena,
            SqlDialect::Datafusion => Dialect::DataFusion,
            SqlDialect::Duckdb => Dialect::DuckDb,
        };
        let mut out = String::new();
        let sessions = match &args.sessions_table {
            Some(table) => {
                let sql = sessions_query(dialect, &args.events_table, &params);
                out.push_str(&format!("-- keep: {table}\n{};\n\n", sql.trim_end()));
                Sessions::Table(table)
            }
            None => Sessions::Inline,
        };
        for q in queries {
            out.push_str(&format!(
                "-- query: {}\n{};\n\n",
                q.name(),
                q.render_over(dialect, &args.events_table, &params, sessions)
                    .trim_end()
            ));
        }
        std::io::stdout().lock().write_all(out.as_bytes())?;
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(async {
        if args.athena {
            let config = pullgate_aws::sdk_config().await;
            let engine = AthenaEngine::new(
                &config,
                &args.workgroup,
                &args.database,
                args.athena_output.clone(),
            );
            let table = format!("{}.{}", args.database, args.table);
            build(&engine, &params, &table, queries).await
        } else {
            let engine = EmbeddedEngine::open(&args.data_dir).await?;
            build(&engine, &params, EVENTS_TABLE, queries).await
        }
    })?;
    if report.is_empty() {
        bail!(
            "no pulls and no update checks between {from} and {to}{}{}{}: nothing to report (try a wider --last or --from/--to)",
            args.repo.as_deref().map(|r| format!(" for repository {r}")).unwrap_or_default(),
            args.org.as_deref().map(|o| format!(" for organization {o}")).unwrap_or_default(),
            if args.athena { String::new() } else { format!(" in {}", args.data_dir.display()) },
        );
    }
    if let Some(org) = &args.org {
        if report.organizations.is_empty() {
            bail!("organization {org:?} pulled nothing between {from} and {to}");
        }
    }
    let text = match args.format {
        Format::Table => render::text(&report),
        Format::Json => render::json(&report) + "\n",
        Format::Csv => render::csv(&report),
        Format::Html => render::html(&report),
    };
    match &args.output {
        Some(path) => std::fs::write(path, text)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => std::io::stdout().lock().write_all(text.as_bytes())?,
    }
    Ok(())
}

async fn build<E: QueryEngine>(
    engine: &E,
    params: &ReportParams,
    table: &str,
    queries: &[Query],
) -> Result<Report> {
    let tty = std::io::stderr().is_terminal();
    let started = std::time::Instant::now();
    let mut progress = |done: usize, total: usize, query: &str| {
        if tty {
            let width = 24;
            let filled = width * done / total.max(1);
            eprint!(
                "\r[{}{}] {done}/{total} {:<12} {:>5.1}s",
                "#".repeat(filled),
                " ".repeat(width - filled),
                query,
                started.elapsed().as_secs_f64()
            );
            if done == total {
                eprint!("\r{}\r", " ".repeat(width + 30));
            }
        }
    };
    Ok(build_sections(engine, params, table, queries, &mut progress).await?)
}

fn range(args: &ReportArgs) -> Result<(String, String)> {
    if let (Some(from), Some(to)) = (&args.from, &args.to) {
        return Ok((from.clone(), to.clone()));
    }
    let last = args.last.as_deref().unwrap_or("30d");
    let days: i64 = last
        .strip_suffix('d')
        .unwrap_or(last)
        .parse()
        .ok()
        .filter(|d| *d >= 1)
        .with_context(|| format!("--last {last:?}: expected a number of days such as 30d"))?;
    let today = dates::today();
    Ok((
        dates::format_day(today - days + 1),
        dates::format_day(today),
    ))
}
