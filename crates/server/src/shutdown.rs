//! When `pullgate serve` stops: Ctrl-C or SIGTERM.

/// Resolves on Ctrl-C or SIGTERM. A handler that cannot be installed is a
/// warning: with SIGTERM unavailable only Ctrl-C stops the server, and
/// Ctrl-C failing resolves at once (nothing else would stop it cleanly).
pub(super) async fn signal() {
    #[cfg(unix)]
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => tokio::select! {
            _ = ctrl_c() => {}
            _ = term.recv() => {}
        },
        Err(error) => {
            tracing::warn!(%error, "cannot handle SIGTERM: only Ctrl-C stops the server");
            ctrl_c().await;
        }
    }
    #[cfg(not(unix))]
    ctrl_c().await;
}

async fn ctrl_c() {
    if let Err(error) = tokio::signal::ctrl_c().await {
        tracing::warn!(%error, "cannot handle Ctrl-C: stopping");
    }
}
