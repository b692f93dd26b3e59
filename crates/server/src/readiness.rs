//! What `/readyz` answers from: ready once the mapping source has given a
//! table (a file parsed, a store that answered) and while the event sink
//! accepts events. The serving path sets it; the admin listener reads it.

use pullgate_domain::sink::EventSink;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

#[derive(Default)]
pub struct Readiness {
    mappings_loaded: AtomicBool,
    /// Set once the event path is built; unset with events off.
    sink: OnceLock<Arc<dyn EventSink>>,
}

/// Why the server is not ready, for the body of a failing `/readyz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotReady {
    MappingsNotLoaded,
    SinkNotAccepting,
}

impl NotReady {
    pub fn as_str(self) -> &'static str {
        match self {
            NotReady::MappingsNotLoaded => "mappings not loaded",
            NotReady::SinkNotAccepting => "event sink not accepting",
        }
    }
}

impl Readiness {
    pub fn set_mappings_loaded(&self, loaded: bool) {
        self.mappings_loaded.store(loaded, Ordering::Release);
    }

    /// The sink whose `accepting()` readiness follows; the first one given
    /// counts (a server has one).
    pub fn watch_sink(&self, sink: Arc<dyn EventSink>) {
        // A second sink is a wiring mistake with no effect on readiness.
        let _ = self.sink.set(sink);
    }

    pub fn check(&self) -> Result<(), NotReady> {
        if !self.mappings_loaded.load(Ordering::Acquire) {
            return Err(NotReady::MappingsNotLoaded);
        }
        match self.sink.get() {
            Some(sink) if !sink.accepting() => Err(NotReady::SinkNotAccepting),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pullgate_domain::event::Event;

    struct Refusing;
    impl EventSink for Refusing {
        fn submit(&self, _: &Event<'_>) {}
        fn accepting(&self) -> bool {
            false
        }
    }

    #[test]
    fn ready_only_with_mappings_and_an_accepting_sink() {
        let readiness = Readiness::default();
        assert_eq!(readiness.check(), Err(NotReady::MappingsNotLoaded));
        readiness.set_mappings_loaded(true);
        assert_eq!(readiness.check(), Ok(()));
        readiness.watch_sink(Arc::new(Refusing));
        assert_eq!(readiness.check(), Err(NotReady::SinkNotAccepting));
    }
}
