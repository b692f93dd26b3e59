//! Runs the report queries one by one on the embedded engine and prints each
//! one's wall time and rows, the sessions kept first as a report does
//! (`INLINE=1`: every query sessionizes on its own, as on Athena). With
//! `EXPLAIN=1`, prints DataFusion's `EXPLAIN ANALYZE` of each query.
//!
//!     cargo run --release -p pullgate-embedded-engine --example query_times -- DATA_DIR FROM TO [QUERY...]

use std::time::Instant;

use pullgate_embedded_engine::{EmbeddedEngine, EVENTS_TABLE};
use pullgate_report::sql::{sessions_query, SESSIONS_TABLE};
use pullgate_report::{Query, QueryEngine, ReportParams, Sessions, Value};

/// As in the `pullgate` binary, whose reports this measures.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, from, to, names @ ..] = args.as_slice() else {
        anyhow::bail!("usage: query_times DATA_DIR FROM TO [QUERY...]");
    };
    let params = ReportParams::new(from, to, None, None)?;
    let mut config = EmbeddedEngine::config();
    for setting in std::env::var("DATAFUSION_SET")
        .unwrap_or_default()
        .split(',')
    {
        if let Some((key, value)) = setting.split_once('=') {
            config.options_mut().set(key, value)?;
        }
    }
    let memory_limit = std::env::var("MEMORY_LIMIT_MB")
        .ok()
        .and_then(|mb| mb.parse::<usize>().ok())
        .map(|mb| mb << 20);
    let engine = EmbeddedEngine::open_with(std::path::Path::new(dir), config, memory_limit).await?;
    let dialect = engine.dialect();
    let explain = std::env::var_os("EXPLAIN").is_some();
    if let Ok(file) = std::env::var("SQL_FILE") {
        let started = Instant::now();
        let table = engine.run("sql", &std::fs::read_to_string(file)?).await?;
        eprintln!(
            "{:<12} {:>8.2} s {:?}",
            "sql",
            started.elapsed().as_secs_f64(),
            table.rows.first()
        );
        return Ok(());
    }
    if explain && names.iter().any(|n| n == "sessions") {
        let sql = sessions_query(dialect, EVENTS_TABLE, &params);
        let table = engine
            .run("sessions", &format!("EXPLAIN ANALYZE {sql}"))
            .await?;
        print_text(&table.rows);
        return Ok(());
    }
    let sessions = if std::env::var_os("INLINE").is_some() {
        Sessions::Inline
    } else {
        let started = Instant::now();
        engine
            .keep(
                SESSIONS_TABLE,
                &sessions_query(dialect, EVENTS_TABLE, &params),
            )
            .await?;
        eprintln!(
            "{:<12} {:>8.2} s",
            "sessions",
            started.elapsed().as_secs_f64()
        );
        Sessions::Table(SESSIONS_TABLE)
    };
    for q in Query::ALL {
        if !names.is_empty() && !names.iter().any(|n| n == q.name()) {
            continue;
        }
        let mut sql = q.render_over(dialect, EVENTS_TABLE, &params, sessions);
        if explain {
            sql = format!("EXPLAIN ANALYZE {sql}");
        }
        let started = Instant::now();
        let table = engine.run(q.name(), &sql).await?;
        eprintln!(
            "{:<12} {:>8.2} s {:>6} rows",
            q.name(),
            started.elapsed().as_secs_f64(),
            table.rows.len()
        );
        if explain {
            print_text(&table.rows);
        }
    }
    Ok(())
}

fn print_text(rows: &[Vec<Value>]) {
    for cell in rows.iter().flatten() {
        if let Value::Text(text) = cell {
            println!("{text}");
        }
    }
}
