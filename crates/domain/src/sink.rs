//! The event sink port. `submit` never blocks on I/O: adapters serialize
//! the event into a buffer there and then (the event borrows from the
//! request, so it cannot be kept) and deliver it in the background (a file
//! writer locally, Firehose batches in Lambda), so the client's answer never
//! waits for analytics.

use crate::event::Event;

pub trait EventSink: Send + Sync + 'static {
    fn submit(&self, event: &Event<'_>);
}
