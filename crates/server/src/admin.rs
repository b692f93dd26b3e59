//! The admin listener (`--admin-listen`): `GET /metrics` (Prometheus text),
//! `GET /healthz` (the process serves) and `GET /readyz` (mappings loaded,
//! event sink accepting), on a socket of its own served by a thread and a
//! runtime of its own, so a scrape never competes with requests in a
//! worker and a saturated worker never delays a health check. Anything
//! else is a 404. The public listeners never answer these paths: they are
//! no registry paths, so the router refuses them.

use crate::metrics;
use crate::readiness::Readiness;
use anyhow::Context;
use axum::body::Body;
use http::{header, HeaderValue, Method, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics_exporter_prometheus::PrometheusHandle;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::{watch, Semaphore};

/// The Prometheus text exposition format.
const METRICS_TYPE: &str = "text/plain; version=0.0.4";
const TEXT_TYPE: &str = "text/plain; charset=utf-8";
/// How often histogram samples are drained when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);
/// A client that has not sent its request head by then is dropped.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once; more are closed on arrival (scrapers and
/// probes need a few; nothing here should hold many).
const MAX_CONNECTIONS: usize = 32;

/// What the admin endpoints answer from.
#[derive(Clone)]
pub(crate) struct Admin {
    pub(crate) metrics: PrometheusHandle,
    pub(crate) readiness: Arc<Readiness>,
}

impl Admin {
    pub(crate) fn answer(&self, method: &Method, path: &str) -> Response<Body> {
        if method != Method::GET && method != Method::HEAD {
            return text(StatusCode::NOT_FOUND, TEXT_TYPE, "not found".into());
        }
        match path {
            "/metrics" => text(StatusCode::OK, METRICS_TYPE, self.metrics.render()),
            "/healthz" => text(StatusCode::OK, TEXT_TYPE, "ok".into()),
            "/readyz" => match self.readiness.check() {
                Ok(()) => text(StatusCode::OK, TEXT_TYPE, "ready".into()),
                Err(why) => text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    TEXT_TYPE,
                    why.as_str().into(),
                ),
            },
            _ => text(StatusCode::NOT_FOUND, TEXT_TYPE, "not found".into()),
        }
    }
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // A cached readiness answer would be a stale one.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Refuses an admin address that a public listener takes too (the same
/// address, or the same port with either side on every interface): the
/// kernel would hand public connections to the admin socket, or fail the
/// bind with a less helpful message. Warns when the admin address is
/// reachable from other machines.
pub(crate) fn check_address(admin: SocketAddr, public: &[SocketAddr]) -> anyhow::Result<()> {
    let overlaps = |p: &SocketAddr| {
        p.port() == admin.port()
            && admin.port() != 0
            && (p.ip() == admin.ip() || p.ip().is_unspecified() || admin.ip().is_unspecified())
    };
    if let Some(taken) = public.iter().find(|p| overlaps(p)) {
        anyhow::bail!(
            "--admin-listen {admin} overlaps the public --listen {taken}: give the admin listener an address of its own"
        );
    }
    if !admin.ip().is_loopback() {
        tracing::warn!(
            %admin,
            "the admin listener is not on loopback: /metrics and /readyz are reachable from other machines"
        );
    }
    Ok(())
}

/// The running admin listener.
pub(crate) struct Running {
    thread: JoinHandle<()>,
    stop: watch::Sender<bool>,
    pub(crate) addr: SocketAddr,
}

impl Running {
    pub(crate) fn stop(self) {
        // Fails only when the thread has already ended, which is the goal.
        let _ = self.stop.send(true);
        if self.thread.join().is_err() {
            tracing::error!("the admin listener's thread panicked");
        }
    }
}

/// With `--admin-listen`: installs the Prometheus recorder (before anything
/// registers a metric), binds the address and serves it on its own thread.
/// Without: nothing, and the facade stays a no-op.
pub(crate) fn start(
    addr: Option<SocketAddr>,
    public: &[SocketAddr],
    readiness: Arc<Readiness>,
) -> anyhow::Result<Option<Running>> {
    let Some(addr) = addr else {
        return Ok(None);
    };
    check_address(addr, public)?;
    let listener = TcpListener::bind(addr)
        .with_context(|| format!("cannot listen on {addr} (--admin-listen)"))?;
    let admin = Admin {
        metrics: metrics::install().context("cannot install the metrics recorder")?,
        readiness,
    };
    let running = spawn(listener, admin)?;
    tracing::info!(addr = %running.addr, "admin listener: /metrics, /healthz, /readyz");
    Ok(Some(running))
}

/// Serves `admin` on `listener` from a thread of its own until stopped.
pub(crate) fn spawn(listener: TcpListener, admin: Admin) -> anyhow::Result<Running> {
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = watch::channel(false);
    let thread = std::thread::Builder::new()
        .name("pullgate-admin".into())
        .spawn(move || {
            if let Err(error) = serve(listener, admin, stopped) {
                tracing::error!(error = format!("{error:#}"), "the admin listener stopped");
            }
        })
        .context("cannot start the admin listener's thread")?;
    Ok(Running { thread, stop, addr })
}

fn serve(
    listener: TcpListener,
    admin: Admin,
    mut stopped: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let upkeep = tokio::spawn({
            let handle = admin.metrics.clone();
            async move {
                let mut tick = tokio::time::interval(UPKEEP_EVERY);
                loop {
                    tick.tick().await;
                    handle.run_upkeep();
                }
            }
        });
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let stream = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        tracing::warn!(%error, "admin accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = stopped.changed() => break,
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                tracing::warn!(
                    limit = MAX_CONNECTIONS,
                    "admin listener: too many connections, closing a new one"
                );
                continue;
            };
            let admin = admin.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: hyper::Request<_>| {
                    let response = admin.answer(request.method(), request.uri().path());
                    async move { Ok::<_, std::convert::Infallible>(response) }
                });
                let served = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEAD_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                if let Err(error) = served {
                    tracing::debug!(%error, "admin connection ended");
                }
                drop(slot);
            });
        }
        upkeep.abort();
        Ok(())
    })
}

#[cfg(test)]
mod tests;
