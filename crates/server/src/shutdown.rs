//! When the server stops: Ctrl-C (SIGINT) or SIGTERM. The handlers are
//! installed before the first socket listens, so a stop signal sent as soon
//! as the port answers is a graceful stop, never the default action (the
//! process killed with its event files open).

use tokio::runtime::Handle;

#[cfg(unix)]
use tokio::signal::unix::{signal, Signal, SignalKind};

/// The installed stop handlers; `stopped` resolves on the first signal.
pub(crate) struct StopSignals {
    #[cfg(unix)]
    interrupt: Option<Signal>,
    #[cfg(unix)]
    terminate: Option<Signal>,
}

/// Installs the handlers on `control` (signal streams need a runtime). A
/// handler that cannot be installed is a warning: the other still stops
/// the server, and with neither the server stops at once (nothing else
/// would stop it cleanly).
pub(crate) fn install(control: &Handle) -> StopSignals {
    let _inside = control.enter();
    #[cfg(unix)]
    {
        let install = |kind: SignalKind, name: &str| match signal(kind) {
            Ok(stream) => Some(stream),
            Err(error) => {
                tracing::warn!(%error, signal = name, "cannot handle a stop signal");
                None
            }
        };
        StopSignals {
            interrupt: install(SignalKind::interrupt(), "SIGINT"),
            terminate: install(SignalKind::terminate(), "SIGTERM"),
        }
    }
    #[cfg(not(unix))]
    StopSignals {}
}

impl StopSignals {
    #[cfg(unix)]
    pub(crate) async fn stopped(mut self) {
        async fn next(stream: &mut Option<Signal>) {
            match stream {
                Some(stream) => {
                    stream.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        if self.interrupt.is_none() && self.terminate.is_none() {
            return;
        }
        tokio::select! {
            _ = next(&mut self.interrupt) => {}
            _ = next(&mut self.terminate) => {}
        }
    }

    #[cfg(not(unix))]
    pub(crate) async fn stopped(self) {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot handle Ctrl-C: stopping");
        }
    }
}
