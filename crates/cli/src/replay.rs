//! `pullgate replay`: re-sends events to Firehose from a file or stdin:
//! plain event lines, or log lines carrying the PULLGATE_UNDELIVERED_EVENT
//! marker (what a sink logs when it cannot deliver). What still cannot be
//! delivered is logged again with the marker, and the exit code says so.

use anyhow::Context;
use pullgate_aws::firehose_sink::{event_from_line, FirehoseApi, FirehoseSink};
use std::io::BufRead;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct ReplayArgs {
    /// Firehose delivery stream to send to.
    #[arg(long, env = "PULLGATE_FIREHOSE_STREAM")]
    firehose_stream: String,
    /// File to read (default: standard input).
    file: Option<PathBuf>,
}

pub fn run(args: ReplayArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let input: Box<dyn BufRead> = match &args.file {
        Some(path) => Box::new(std::io::BufReader::new(
            std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?,
        )),
        None => Box::new(std::io::stdin().lock()),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let config = pullgate_aws::sdk_config().await;
        let sink = FirehoseSink::new(FirehoseApi::new(&config, &args.firehose_stream));
        let mut found = 0usize;
        for line in input.lines() {
            let line = line.context("reading input")?;
            if let Some(event) = event_from_line(&line) {
                sink.submit_line(event.into_bytes());
                found += 1;
            }
        }
        if found == 0 {
            anyhow::bail!("no events found in the input (expected event JSON lines or PULLGATE_UNDELIVERED_EVENT log lines)");
        }
        let report = sink.flush().await;
        eprintln!(
            "replayed {} events in {} records, {} calls; {} undelivered",
            report.events - report.undelivered,
            report.records,
            report.calls,
            report.undelivered
        );
        if report.undelivered > 0 {
            anyhow::bail!("{} events could not be delivered; they were logged again for replay", report.undelivered);
        }
        Ok(())
    })
}
