//! The event sink port. `submit` never blocks on I/O: adapters serialize
//! the event into a buffer there and then (the event borrows from the
//! request, so it cannot be kept) and deliver it in the background (a file
//! writer locally, Firehose batches in Lambda), so the client's answer never
//! waits for analytics.

use crate::event::Event;

pub trait EventSink: Send + Sync + 'static {
    fn submit(&self, event: &Event<'_>);

    /// Whether events submitted now can be delivered: a server's readiness
    /// check asks it (a writer that died, a stream that refuses every call
    /// is not ready). An adapter with nothing that can fail keeps the
    /// default.
    fn accepting(&self) -> bool {
        true
    }
}
