//! The workers of `pullgate serve`: one thread per core, each with its own
//! single-threaded runtime and its own listeners, accepting and serving
//! connections; then the graceful stop.

use crate::idle;
use crate::logging;
use anyhow::Context;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use pullgate_domain::privacy::network_prefix;
use pullgate_router::client_addr;
use pullgate_router::ClientAddr;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt;

/// Largest request head hyper buffers; our own 431 answers below this.
const MAX_REQUEST_HEAD: usize = 64 * 1024;

/// How long connections get to finish their requests after the stop.
const DRAIN_FOR: Duration = Duration::from_secs(10);

/// What every worker serves with.
#[derive(Clone)]
pub(super) struct Server {
    pub(super) router: axum::Router,
    pub(super) tls: Option<tokio_rustls::TlsAcceptor>,
    pub(super) idle_timeout: Duration,
    pub(super) trusted_proxies: usize,
}

type Worker = JoinHandle<anyhow::Result<()>>;

/// Starts one worker thread per entry of `listeners`; each stops accepting
/// when `stop` turns true, and drains its connections.
pub(super) fn spawn(
    listeners: Vec<Vec<std::net::TcpListener>>,
    server: &Server,
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<Vec<Worker>> {
    listeners
        .into_iter()
        .enumerate()
        .map(|(index, listeners)| {
            let (server, stop) = (server.clone(), stop.clone());
            std::thread::Builder::new()
                .name(format!("pullgate-worker-{index}"))
                .spawn(move || worker(listeners, server, stop))
                .context("cannot start a worker thread")
        })
        .collect()
}

/// Waits for every worker; the first failure is the result.
pub(super) fn join(workers: Vec<Worker>) -> anyhow::Result<()> {
    for worker in workers {
        match worker.join() {
            Ok(result) => result?,
            Err(_) => anyhow::bail!("a worker thread panicked"),
        }
    }
    Ok(())
}

/// What a worker's accept loops (one per address) share.
struct Connections {
    router: axum::Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    idle: Arc<idle::Tracker>,
    graceful: GracefulShutdown,
    trusted_proxies: usize,
}

fn worker(
    listeners: Vec<std::net::TcpListener>,
    server: Server,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let idle = Arc::new(idle::Tracker::new(server.idle_timeout));
        let sweeper = tokio::spawn(idle.clone().sweep());
        let connections = Arc::new(Connections {
            router: server.router,
            tls: server.tls,
            idle,
            graceful: GracefulShutdown::new(),
            trusted_proxies: server.trusted_proxies,
        });
        let mut accept_loops = Vec::new();
        for listener in listeners {
            let listener = TcpListener::from_std(listener)?;
            accept_loops.push(tokio::spawn(accept_loop(
                listener,
                connections.clone(),
                stop.clone(),
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
            if let Err(error) = handle.await {
                tracing::error!(%error, "an accept loop failed");
            }
        }
        // Connection tasks hold no `Connections`, only watchers of the
        // graceful shutdown: once the accept loops are done, this is the
        // last reference.
        let connections = Arc::try_unwrap(connections)
            .map_err(|_| anyhow::anyhow!("accept loops still running"))?;
        if tokio::time::timeout(DRAIN_FOR, connections.graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                seconds = DRAIN_FOR.as_secs(),
                "connections still open after the drain time; closing them"
            );
        }
        flusher.abort();
        sweeper.abort();
        logging::flush_thread();
        Ok(())
    })
}

async fn accept_loop(
    listener: TcpListener,
    connections: Arc<Connections>,
    mut stop: watch::Receiver<bool>,
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
        connections.serve(stream, peer);
    }
}

impl Connections {
    /// Serves one connection on its own task, until it ends, goes idle or
    /// the worker stops.
    fn serve(&self, stream: TcpStream, peer: SocketAddr) {
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let router = self.router.clone();
        let trusted_proxies = self.trusted_proxies;
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            let addr = client_addr::from_forwarded(peer.ip(), request.headers(), trusted_proxies);
            request.extensions_mut().insert(ClientAddr(addr));
            router.clone().oneshot(request.map(axum::body::Body::new))
        });
        let mut http = hyper::server::conn::http1::Builder::new();
        http.max_buf_size(MAX_REQUEST_HEAD)
            // Responses are a few hundred bytes: one flattened write beats
            // writev of header and body slices (+6% requests/s, measured).
            .writev(false);
        let activity = self.idle.register();
        let stream = self.idle.track(stream, activity.clone());
        match &self.tls {
            None => {
                let conn = self
                    .graceful
                    .watch(http.serve_connection(TokioIo::new(stream), service));
                tokio::spawn(async move {
                    tokio::select! {
                        _ = conn => {}
                        _ = activity.close.notified() => {}
                    }
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                // Taken before the handshake, so the stop waits for
                // handshakes in flight too.
                let watcher = self.graceful.watcher();
                tokio::spawn(async move {
                    let serve = async {
                        let stream = match acceptor.accept(stream).await {
                            Ok(stream) => stream,
                            Err(error) => {
                                tracing::debug!(
                                    %error,
                                    client = %network_prefix(peer.ip()),
                                    "TLS handshake failed"
                                );
                                return;
                            }
                        };
                        let conn =
                            watcher.watch(http.serve_connection(TokioIo::new(stream), service));
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
