//! The gateway as a server (`pullgate-serve`, and `pullgate serve` in the
//! full CLI): the router on hyper, on loopback by default, optional TLS,
//! graceful shutdown. This crate holds only what serving needs, so the
//! binary a newcomer builds first does not wait for the report engine. It
//! only wires the parts: the flags (`args`, `sources`), the control
//! runtime (`control`), the mapping store (`mapping_store`: the file from
//! `mappings`, reloaded by `reload`; DynamoDB and Firehose in `aws`), the
//! event path (`events`), what `/readyz` answers (`readiness`), HTTPS
//! (`tls`), the sockets (`listeners`), the per-core workers and their
//! accept loops (`workers`), the stop signal (`shutdown`), and the admin
//! listener (`admin`) with the metrics recorder behind it (`metrics`).

mod admin;
mod args;
#[cfg(feature = "aws")]
mod aws;
mod control;
mod events;
mod idle;
mod listeners;
mod logging;
mod mapping_store;
mod mappings;
mod metrics;
pub mod readiness;
mod reload;
mod shutdown;
mod sources;
mod tls;
mod workers;

use control::Control;
use pullgate_router::{Gateway, GatewayConfig};
use pullgate_settings::defaults;
use readiness::Readiness;
use std::sync::Arc;
use std::time::Duration;

pub use args::ServeArgs;
pub use mappings::check_mappings;

/// One single-threaded runtime per core, each with its own SO_REUSEPORT
/// listener, as nginx runs one worker per core: for requests this small a
/// work-stealing runtime spends more on cross-thread wake-ups than on the
/// request (measured: README, benchmarks). Everything else runs on the
/// control runtime (`control.rs`).
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let _log_guard = logging::init(&args.access_log, args.log_json)?;
    let control = Control::start()?;
    let stop = shutdown::install(control.handle());
    let readiness = Arc::new(Readiness::default());
    // Before the mappings load, so /readyz is seen failing until they have;
    // and before anything registers a metric.
    let admin = admin::start(args.admin_listen, &args.listen, readiness.clone())?;
    let mappings = mapping_store::open(&args, &control, &readiness)?;
    let tls = args
        .tls_files()
        .map(|(cert, key)| tls::acceptor(cert, key))
        .transpose()?;
    let config = GatewayConfig {
        public_scheme: if tls.is_some() { "https" } else { "http" },
        upstream_timeout: defaults::UPSTREAM_TIMEOUT,
        auth_cache_ttl: defaults::AUTH_CACHE_TTL,
        manifest_cache: args.manifest_cache(),
        // hyper streams any size and keeps a HEAD's Content-Length.
        entry: pullgate_router::EntryLimits::SERVER,
    };
    let mut gateway = Gateway::new(mappings, config)?;
    // Without the `aws` feature the gateway's default resolver answers:
    // `env:` and `file:` sources, and a hint for the AWS ones.
    #[cfg(feature = "aws")]
    {
        gateway = gateway.with_credentials(aws::upstream_credentials(&control));
    }
    let probe_every = Duration::from_secs(args.health_probe_secs.max(1));
    control
        .handle()
        .spawn(gateway.health_probe(probe_every)?.run());
    let events = match events::events(&args, &control)? {
        Some((events, out)) => {
            gateway = gateway.with_events(events);
            readiness.watch_sink(out.sink());
            Some(out)
        }
        None => None,
    };
    let workers = listeners::worker_count(args.threads);
    let listeners = listeners::bind(&args.listen, workers)?;
    for addr in &args.listen {
        tracing::info!(%addr, tls = tls.is_some(), workers, "listening");
    }
    let server = workers::Server {
        router: pullgate_router::router(gateway),
        tls,
        idle_timeout: Duration::from_secs(args.idle_timeout),
        trusted_proxies: args.trusted_proxies,
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let running = workers::spawn(listeners, &server, &stop_rx)?;

    control.block_on(stop.stopped());
    tracing::info!("shutting down: no new connections, finishing requests in flight");
    // Fails only when every worker has already ended; `join` reports why.
    let _ = stop_tx.send(true);
    workers::join(running)?;
    if let Some(admin) = admin {
        admin.stop();
    }
    if let Some(events) = events {
        events.close(&control);
    }
    Ok(())
}
