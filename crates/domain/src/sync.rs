//! Locks whose data outlives a panic. Every cache and buffer that uses
//! this keeps its state whole under the lock (an entry is inserted or not,
//! a line pushed or not), so a thread that panicked holding it left nothing
//! half written; refusing the lock from then on would turn a cache off or
//! lose events without a word. The poison is cleared, so it is said once.

use std::sync::{Mutex, MutexGuard};

/// The guard of `mutex`, healed if a thread panicked holding it; `what`
/// names the lock's owner in the warning (for example "the mapping cache").
pub fn lock_healed<'a, T>(mutex: &'a Mutex<T>, what: &str) -> MutexGuard<'a, T> {
    mutex.lock().unwrap_or_else(|poisoned| {
        tracing::warn!(
            lock = what,
            "a thread panicked holding this lock; its data is intact, carrying on"
        );
        mutex.clear_poison();
        poisoned.into_inner()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_poisoned_lock_is_healed_with_its_data() {
        let mutex = Arc::new(Mutex::new(vec![1]));
        let holder = mutex.clone();
        let _ = std::thread::spawn(move || {
            let _guard = holder.lock().unwrap();
            panic!("while holding the lock");
        })
        .join();
        assert!(mutex.is_poisoned());
        assert_eq!(*lock_healed(&mutex, "the test"), vec![1]);
        assert!(!mutex.is_poisoned());
    }
}
