//! The gateway as a server (`pullgate-serve`, and `pullgate serve` in the
//! full CLI): the router on hyper, on loopback by default, optional TLS,
//! graceful shutdown. This crate holds only what serving needs, so the
//! binary a newcomer builds first does not wait for the report engine. It
//! only wires the parts: the flags
//! (`args`), the mapping table (`mappings`), the event path (`events`),
//! HTTPS (`tls`), the sockets (`listeners`), the per-core workers and their
//! accept loops (`workers`), the stop signal (`shutdown`), and the admin
//! listener (`admin`) with the metrics recorder behind it (`metrics`).

mod admin;
mod args;
mod events;
mod idle;
mod listeners;
mod logging;
mod mappings;
mod metrics;
pub mod readiness;
mod shutdown;
mod tls;
mod workers;

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
/// request (measured: README, benchmarks).
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let _log_guard = logging::init(&args.access_log, args.log_json)?;
    let readiness = Arc::new(Readiness::default());
    // Before the mappings load, so /readyz is seen failing until they have;
    // and before anything registers a metric.
    let admin = admin::start(args.admin_listen, &args.listen, readiness.clone())?;
    let table = mappings::load(args.config.as_deref())?;
    readiness.set_mappings_loaded(true);
    let tls = args
        .tls_files()
        .map(|(cert, key)| tls::acceptor(cert, key))
        .transpose()?;
    let config = GatewayConfig {
        public_scheme: if tls.is_some() { "https" } else { "http" },
        upstream_timeout: defaults::UPSTREAM_TIMEOUT,
        auth_cache_ttl: defaults::AUTH_CACHE_TTL,
    };
    let mut gateway = Gateway::new(table, config)?;
    let sink = match events::events(&args)? {
        Some((events, sink)) => {
            gateway = gateway.with_events(events);
            readiness.watch_sink(sink.clone());
            Some(sink)
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

    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(shutdown::signal());
    tracing::info!("shutting down: no new connections, finishing requests in flight");
    // Fails only when every worker has already ended; `join` reports why.
    let _ = stop_tx.send(true);
    workers::join(running)?;
    if let Some(admin) = admin {
        admin.stop();
    }
    if let Some(sink) = sink {
        let stats = sink.close();
        tracing::info!(
            events = stats.events,
            files = stats.files,
            failed = stats.failed,
            "event files closed"
        );
    }
    Ok(())
}
