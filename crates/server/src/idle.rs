//! The slow-loris guard: a connection that moves no byte, either way, for
//! the idle limit (`--idle-timeout`, 30 s) is closed. hyper's own
//! header-read timeout arms a timer on every request (about 5% of redirect
//! throughput, measured); this one costs an atomic store per read or write,
//! with one sweeper task per worker on a coarse clock.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const SWEEP_EVERY: Duration = Duration::from_secs(1);

pub struct Activity {
    last_seen: AtomicU64,
    pub close: tokio::sync::Notify,
}

pub struct Tracker {
    /// No byte in or out for this many seconds closes the connection.
    limit_secs: u64,
    /// Seconds since the tracker started, advanced by the sweeper.
    clock: Arc<AtomicU64>,
    connections: Mutex<Vec<Weak<Activity>>>,
}

impl Tracker {
    pub fn new(limit: Duration) -> Self {
        Tracker {
            limit_secs: limit.as_secs().max(1),
            clock: Arc::default(),
            connections: Mutex::default(),
        }
    }

    pub fn register(&self) -> Arc<Activity> {
        let activity = Arc::new(Activity {
            last_seen: AtomicU64::new(self.clock.load(Ordering::Relaxed)),
            close: tokio::sync::Notify::new(),
        });
        self.connections().push(Arc::downgrade(&activity));
        activity
    }

    pub fn track<T>(&self, inner: T, activity: Arc<Activity>) -> Tracked<T> {
        Tracked {
            inner,
            activity,
            clock: self.clock.clone(),
        }
    }

    /// The list of connections. A panic while it was locked leaves it
    /// whole (pushes and retains of weak references), so a poisoned lock is
    /// taken as is: giving up would stop guarding every later connection.
    fn connections(&self) -> std::sync::MutexGuard<'_, Vec<Weak<Activity>>> {
        self.connections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Advances the clock and closes idle connections, forever.
    pub async fn sweep(self: Arc<Self>) {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        loop {
            tick.tick().await;
            let now = self.clock.fetch_add(1, Ordering::Relaxed) + 1;
            self.connections().retain(|weak| match weak.upgrade() {
                Some(activity) => {
                    let idle = now.saturating_sub(activity.last_seen.load(Ordering::Relaxed));
                    if idle >= self.limit_secs {
                        activity.close.notify_one();
                    }
                    true
                }
                None => false,
            });
        }
    }
}

/// An I/O stream that records when it last moved bytes.
pub struct Tracked<T> {
    inner: T,
    activity: Arc<Activity>,
    clock: Arc<AtomicU64>,
}

impl<T> Tracked<T> {
    fn touch(&self) {
        self.activity
            .last_seen
            .store(self.clock.load(Ordering::Relaxed), Ordering::Relaxed);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
