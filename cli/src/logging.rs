//! Logs: diagnostics to stderr, access lines (target `pullgate::access`) to
//! the access-log destination, written by a background thread so that no
//! request waits on a terminal or a disk.

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::filter::{filter_fn, EnvFilter};
use tracing_subscriber::prelude::*;

/// Where access lines go.
#[derive(Debug, Clone)]
pub enum AccessLog {
    Stdout,
    Off,
    File(std::path::PathBuf),
}

impl std::str::FromStr for AccessLog {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "stdout" | "-" => AccessLog::Stdout,
            "off" | "none" => AccessLog::Off,
            path => AccessLog::File(path.into()),
        })
    }
}

pub fn init(access: &AccessLog, json: bool) -> anyhow::Result<Option<WorkerGuard>> {
    let is_access = |meta: &tracing::Metadata<'_>| meta.target() == "pullgate::access";
    let diagnostics_filter =
        EnvFilter::try_from_env("PULLGATE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let diagnostics = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_filter(filter_fn(move |m| !is_access(m)))
        .with_filter(diagnostics_filter);

    let (writer, guard) = match access {
        AccessLog::Off => {
            tracing_subscriber::registry()
                .with(diagnostics)
                .try_init()?;
            return Ok(None);
        }
        AccessLog::Stdout => NonBlockingBuilder::default()
            .lossy(false)
            .finish(std::io::stdout()),
        AccessLog::File(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            NonBlockingBuilder::default().lossy(false).finish(file)
        }
    };
    let access_layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(false)
        .with_target(false);
    if json {
        tracing_subscriber::registry()
            .with(diagnostics)
            .with(access_layer.json().with_filter(filter_fn(is_access)))
            .try_init()?;
    } else {
        tracing_subscriber::registry()
            .with(diagnostics)
            .with(access_layer.with_filter(filter_fn(is_access)))
            .try_init()?;
    }
    Ok(Some(guard))
}
