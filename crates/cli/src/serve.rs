//! `pullgate serve`: the router on hyper, on loopback by default, optional
//! TLS, graceful shutdown.

use crate::idle;
use crate::logging::{self, AccessLog};
use anyhow::Context;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use pullgate_domain::enrich::Enricher;
use pullgate_domain::mapping::{MappingTable, Target};
use pullgate_domain::privacy::{ClientHasher, Rotation};
use pullgate_enrich::EnrichmentFiles;
use pullgate_local::file_sink::{FileSink, FileSinkConfig};
use pullgate_router::{ClientAddr, Events, Gateway, GatewayConfig};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// The mapping file used when none is given.
const EMBEDDED_MAPPINGS: &str = include_str!("../../../examples/mappings.toml");

/// Largest request head hyper buffers; our own 431 answers below this.
const MAX_REQUEST_HEAD: usize = 64 * 1024;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Mapping file (TOML). Default: the embedded examples/mappings.toml.
    #[arg(long, env = "PULLGATE_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on; repeat for several.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: Vec<SocketAddr>,
    /// PEM certificate chain; with --tls-key, serve HTTPS.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Access log: stdout, off, or a file path.
    #[arg(long, default_value = "stdout")]
    access_log: AccessLog,
    /// Write access lines as JSON.
    #[arg(long)]
    log_json: bool,
    /// Where events are written (`DIR/events/dt=YYYY-MM-DD/*.json.gz`).
    #[arg(long, env = "PULLGATE_DATA_DIR", default_value = "pullgate-data")]
    data_dir: PathBuf,
    /// Record an analytics event per request.
    #[arg(long, default_value = "on", value_parser = ["on", "off"])]
    events: String,
    /// Key for client ids (HMAC). Default: a random key kept in the data
    /// directory, so ids stay stable across restarts.
    #[arg(long, env = "PULLGATE_CLIENT_ID_KEY", hide_env_values = true)]
    client_id_key: Option<String>,
    /// How often client ids change: day, month or never.
    #[arg(long, default_value = "month")]
    client_id_rotation: Rotation,
    /// IP → ASN range file (ip-location-db `asn-ipv4.csv`/`asn-ipv6.csv`
    /// format); repeat for IPv4 and IPv6.
    #[arg(long)]
    ip_asn: Vec<PathBuf>,
    /// IP → country range file (ip-location-db `*-country-ipv4.csv`).
    #[arg(long)]
    ip_country: Vec<PathBuf>,
    /// A MaxMind-format database (GeoLite2 ASN/Country, ip-location-db
    /// MMDB); repeatable, consulted after the range files.
    #[arg(long)]
    ip_mmdb: Vec<PathBuf>,
    /// A cloud or CI provider's published ranges (AWS ip-ranges.json, Google
    /// Cloud cloud.json, Azure service tags, GitHub meta); repeatable.
    #[arg(long)]
    cloud_ranges: Vec<PathBuf>,
    /// Operator overrides (TOML `[[override]]` with asn or cidr, name, kind).
    #[arg(long)]
    org_overrides: Option<PathBuf>,
    /// Proxies in front of pullgate whose X-Forwarded-For entries are
    /// trusted: the client address is the entry this many places from the
    /// right. 0 (default): the socket peer, never a client-supplied header.
    #[arg(long, default_value_t = 0)]
    trusted_proxies: usize,
    /// Close connections that move no byte for this many seconds.
    #[arg(long, default_value_t = 30)]
    idle_timeout: u64,
    /// Worker threads, each with its own runtime and listener (default: one
    /// per core).
    #[arg(long)]
    threads: Option<usize>,
}

fn load_mappings(config: Option<&Path>) -> anyhow::Result<MappingTable> {
    let (text, origin) = match config {
        Some(path) => (
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read mapping file {}", path.display()))?,
            path.display().to_string(),
        ),
        None => (
            EMBEDDED_MAPPINGS.to_string(),
            "embedded examples/mappings.toml".into(),
        ),
    };
    let table = MappingTable::from_toml(&text).with_context(|| format!("in {origin}"))?;
    if table.is_empty() {
        anyhow::bail!("{origin} maps nothing: add [[mappings]] entries");
    }
    Ok(table)
}

pub fn check_mappings(file: &Path) -> anyhow::Result<()> {
    let table = load_mappings(Some(file))?;
    let mut lines: Vec<String> = Vec::new();
    for (host, mappings) in table.hosts() {
        for m in mappings.oci().iter().chain(mappings.http()) {
            let target = match &m.target {
                Target::Oci { upstream, .. } => {
                    format!("{}/{}", upstream.registry.base, upstream.repository)
                }
                Target::Http { base, .. } => base.clone(),
            };
            lines.push(format!("{host}/{}\t{}\t{target}", m.name, m.mode.as_str()));
        }
    }
    lines.sort();
    println!("{}", lines.join("\n"));
    Ok(())
}

/// One single-threaded runtime per core, each with its own SO_REUSEPORT
/// listener, as nginx runs one worker per core: for requests this small a
/// work-stealing runtime spends more on cross-thread wake-ups than on the
/// request (measured: README, benchmarks).
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let _log_guard = logging::init(&args.access_log, args.log_json)?;
    let table = load_mappings(args.config.as_deref())?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
        _ => None,
    };
    let config = GatewayConfig {
        public_scheme: if tls.is_some() { "https" } else { "http" },
        ..GatewayConfig::default()
    };
    let mut gateway = Gateway::new(table, config)?;
    let sink = if args.events == "on" {
        let sink = Arc::new(
            FileSink::start(FileSinkConfig::new(&args.data_dir)).with_context(|| {
                format!("cannot write events under {}", args.data_dir.display())
            })?,
        );
        let key = client_id_key(args.client_id_key.as_deref(), &args.data_dir)?;
        gateway = gateway.with_events(Events::new(
            sink.clone(),
            ClientHasher::new(&key, args.client_id_rotation),
            enricher(&args)?,
        ));
        tracing::info!(dir = %args.data_dir.display(), "recording events");
        Some(sink)
    } else {
        None
    };
    let router = pullgate_router::router(gateway);
    let workers = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);

    // Bind everything up front so a taken port fails the command at once.
    let mut listeners_per_worker: Vec<Vec<std::net::TcpListener>> = Vec::new();
    for _ in 0..workers {
        let listeners = args
            .listen
            .iter()
            .map(|addr| {
                reuseport_listener(*addr).with_context(|| format!("cannot listen on {addr}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        listeners_per_worker.push(listeners);
    }
    for addr in &args.listen {
        tracing::info!(%addr, tls = tls.is_some(), workers, "listening");
    }

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let idle_timeout = Duration::from_secs(args.idle_timeout);
    let trusted_proxies = args.trusted_proxies;
    let mut threads = Vec::new();
    for (index, listeners) in listeners_per_worker.into_iter().enumerate() {
        let router = router.clone();
        let tls = tls.clone();
        let stop_rx = stop_rx.clone();
        threads.push(
            std::thread::Builder::new()
                .name(format!("pullgate-worker-{index}"))
                .spawn(move || {
                    worker(
                        listeners,
                        router,
                        tls,
                        idle_timeout,
                        trusted_proxies,
                        stop_rx,
                    )
                })?,
        );
    }

    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(shutdown_signal());
    tracing::info!("shutting down: no new connections, finishing requests in flight");
    let _ = stop_tx.send(true);
    for thread in threads {
        match thread.join() {
            Ok(result) => result?,
            Err(_) => anyhow::bail!("a worker thread panicked"),
        }
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

/// Enrichment from the files given; without any, events carry no AS,
/// country or organization (everything else works).
fn enricher(args: &ServeArgs) -> anyhow::Result<Arc<dyn Enricher>> {
    let files = EnrichmentFiles {
        asn_csv: args.ip_asn.clone(),
        country_csv: args.ip_country.clone(),
        mmdb: args.ip_mmdb.clone(),
        provider_ranges: args.cloud_ranges.clone(),
        overrides: args.org_overrides.clone(),
    };
    let (enricher, stats) = files.load()?;
    if !files.is_empty() {
        tracing::info!(
            ranges = stats.ranges,
            mib = stats.memory_bytes / (1024 * 1024),
            millis = stats.millis,
            "enrichment data loaded"
        );
    }
    Ok(enricher)
}

/// The client-id key: given, or random and kept in the data directory.
fn client_id_key(given: Option<&str>, data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    if let Some(key) = given {
        return Ok(key.as_bytes().to_vec());
    }
    let path = data_dir.join("client-id.key");
    if let Ok(key) = std::fs::read(&path) {
        if key.len() >= 32 {
            return Ok(key);
        }
    }
    let mut key = vec![0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key)
        .map_err(|_| anyhow::anyhow!("no randomness for the client-id key"))?;
    std::fs::write(&path, &key).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(key)
}

fn reuseport_listener(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    #[cfg(unix)]
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

fn worker(
    listeners: Vec<std::net::TcpListener>,
    router: axum::Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    idle_timeout: Duration,
    trusted_proxies: usize,
    stop_rx: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let graceful = Arc::new(GracefulShutdown::new());
        let idle = Arc::new(idle::Tracker::new(idle_timeout));
        let sweeper = tokio::spawn(idle.clone().sweep());
        let mut accept_loops = Vec::new();
        for listener in listeners {
            let listener = TcpListener::from_std(listener)?;
            accept_loops.push(tokio::spawn(accept_loop(
                listener,
                router.clone(),
                tls.clone(),
                graceful.clone(),
                idle.clone(),
                trusted_proxies,
                stop_rx.clone(),
            )));
        }
        // This thread's access lines reach the log within FLUSH_EVERY even
        // when traffic stops.
        let flusher = tokio::spawn(async {
            let mut tick = tokio::time::interval(logging::FLUSH_EVERY);
            loop {
                tick.tick().await;
                logging::flush_thread();
            }
        });
        for handle in accept_loops {
            let _ = handle.await;
        }
        let graceful =
            Arc::try_unwrap(graceful).map_err(|_| anyhow::anyhow!("accept loops still running"))?;
        if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("connections still open after 10 s; closing them");
        }
        flusher.abort();
        sweeper.abort();
        logging::flush_thread();
        Ok(())
    })
}

async fn accept_loop(
    listener: TcpListener,
    router: axum::Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    graceful: Arc<GracefulShutdown>,
    idle: Arc<idle::Tracker>,
    trusted_proxies: usize,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off, go on.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            let addr = client_addr(peer.ip(), request.headers(), trusted_proxies);
            request.extensions_mut().insert(ClientAddr(addr));
            router.clone().oneshot(request.map(axum::body::Body::new))
        });
        let mut http = hyper::server::conn::http1::Builder::new();
        http.max_buf_size(MAX_REQUEST_HEAD)
            // Responses are a few hundred bytes: one flattened write beats
            // writev of header and body slices (+6% requests/s, measured).
            .writev(false);
        let activity = idle.register();
        match &tls {
            None => {
                let stream = idle.track(stream, activity.clone());
                let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
                tokio::spawn(async move {
                    tokio::select! {
                        _ = conn => {}
                        _ = activity.close.notified() => {}
                    }
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let graceful = graceful.clone();
                let stream = idle.track(stream, activity.clone());
                tokio::spawn(async move {
                    let serve = async {
                        let stream = match acceptor.accept(stream).await {
                            Ok(stream) => stream,
                            Err(error) => {
                                tracing::debug!(%error, %peer, "TLS handshake failed");
                                return;
                            }
                        };
                        let conn =
                            graceful.watch(http.serve_connection(TokioIo::new(stream), service));
                        let _ = conn.await;
                    };
                    tokio::select! {
                        _ = serve => {}
                        _ = activity.close.notified() => {}
                    }
                });
            }
        }
    }
}

/// The client address: the socket peer, or behind `trusted` proxies the
/// X-Forwarded-For entry the outermost trusted proxy added. Entries a client
/// wrote itself sit further left and are never read.
fn client_addr(
    peer: std::net::IpAddr,
    headers: &http::HeaderMap,
    trusted: usize,
) -> std::net::IpAddr {
    if trusted == 0 {
        return peer;
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    entries
        .len()
        .checked_sub(trusted)
        .and_then(|i| entries.get(i))
        .and_then(|e| e.parse().ok())
        .unwrap_or(peer)
}

fn tls_acceptor(cert: &Path, key: &Path) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    let certs = rustls_pemfile::certs(&mut std::io::BufReader::new(
        std::fs::File::open(cert).with_context(|| format!("cannot read {}", cert.display()))?,
    ))
    .collect::<Result<Vec<_>, _>>()
    .with_context(|| format!("no PEM certificates in {}", cert.display()))?;
    let key = rustls_pemfile::private_key(&mut std::io::BufReader::new(
        std::fs::File::open(key).with_context(|| format!("cannot read {}", key.display()))?,
    ))?
    .with_context(|| format!("no PEM private key in {}", key.display()))?;
    // Two crypto providers are linked (ring here and in reqwest, aws-lc-rs
    // in the AWS SDK), so name ours instead of relying on a process default.
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("certificate and key do not form a usable pair")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
