//! `pullgate serve`: the router on hyper, on loopback by default, optional
//! TLS, graceful shutdown.

use crate::logging::{self, AccessLog};
use anyhow::Context;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use pullgate_domain::mapping::{MappingTable, Target};
use pullgate_router::{ClientAddr, Gateway, GatewayConfig};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// The mapping file used when none is given.
const EMBEDDED_MAPPINGS: &str = include_str!("../../examples/mappings.toml");

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
    /// Worker threads (default: one per core).
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

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads {
        runtime.worker_threads(threads);
    }
    runtime.enable_all().build()?.block_on(serve(args))
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
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
    let router = pullgate_router::router(Gateway::new(table, config));

    let graceful = Arc::new(GracefulShutdown::new());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut accept_loops = Vec::new();
    for addr in &args.listen {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        tracing::info!(%addr, tls = tls.is_some(), "listening");
        accept_loops.push(tokio::spawn(accept_loop(
            listener,
            router.clone(),
            tls.clone(),
            graceful.clone(),
            stop_rx.clone(),
        )));
    }

    shutdown_signal().await;
    tracing::info!("shutting down: no new connections, finishing requests in flight");
    let _ = stop_tx.send(true);
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
    Ok(())
}

async fn accept_loop(
    listener: TcpListener,
    router: axum::Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    graceful: Arc<GracefulShutdown>,
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
            request.extensions_mut().insert(ClientAddr(peer.ip()));
            router.clone().oneshot(request.map(axum::body::Body::new))
        });
        let mut http = hyper::server::conn::http1::Builder::new();
        http.max_buf_size(MAX_REQUEST_HEAD)
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(Duration::from_secs(30));
        match &tls {
            None => {
                let conn = http.serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let graceful = graceful.clone();
                tokio::spawn(async move {
                    let stream = match acceptor.accept(stream).await {
                        Ok(stream) => stream,
                        Err(error) => {
                            tracing::debug!(%error, %peer, "TLS handshake failed");
                            return;
                        }
                    };
                    let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
                    let _ = conn.await;
                });
            }
        }
    }
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
    let mut config = tokio_rustls::rustls::ServerConfig::builder()
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
