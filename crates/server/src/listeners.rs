//! The sockets of `pullgate serve`: every worker gets its own SO_REUSEPORT
//! listener on every address, so the kernel spreads connections over the
//! workers and no accept queue is shared between threads.

use anyhow::Context;
use std::net::{SocketAddr, TcpListener};

/// `--threads`, or one worker per core.
pub(super) fn worker_count(threads: Option<usize>) -> usize {
    let count = threads.unwrap_or_else(|| match std::thread::available_parallelism() {
        Ok(cores) => cores.get(),
        Err(error) => {
            tracing::warn!(%error, "cannot tell how many cores there are: one worker (see --threads)");
            1
        }
    });
    count.max(1)
}

/// For each worker, a listener on each address; all bound up front, so a
/// taken port fails the command at once.
pub(super) fn bind(addrs: &[SocketAddr], workers: usize) -> anyhow::Result<Vec<Vec<TcpListener>>> {
    (0..workers)
        .map(|_| {
            addrs
                .iter()
                .map(|addr| {
                    reuseport_listener(*addr).with_context(|| format!("cannot listen on {addr}"))
                })
                .collect()
        })
        .collect()
}

fn reuseport_listener(addr: SocketAddr) -> std::io::Result<TcpListener> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_is_always_at_least_one_worker() {
        assert_eq!(worker_count(Some(0)), 1);
        assert_eq!(worker_count(Some(3)), 3);
        assert!(worker_count(None) >= 1);
    }

    #[cfg(unix)]
    #[test]
    fn workers_share_one_port() {
        let first = reuseport_listener("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = first.local_addr().unwrap();
        let listeners = bind(&[addr], 2).unwrap();
        assert_eq!(listeners.len(), 2);
        for listener in listeners.iter().flatten() {
            assert_eq!(listener.local_addr().unwrap(), addr);
        }
    }

    #[test]
    fn a_port_taken_without_reuse_fails_naming_the_address() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let error = bind(&[addr], 1).unwrap_err().to_string();
        assert_eq!(error, format!("cannot listen on {addr}"));
    }
}
