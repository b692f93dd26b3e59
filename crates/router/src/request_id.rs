//! Request ids for events when the entry point brings none (Lambda does;
//! `pullgate serve` does not): a random per-process prefix and a counter.

use pullgate_domain::inline_str::InlineStr;
use pullgate_domain::text;
use std::cell::Cell;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Process-unique request ids: a random prefix and a counter. Each thread
/// takes counter values in blocks, so workers do not contend on one shared
/// counter for every request (ids stay unique, not ordered by time).
pub(crate) struct RequestIds {
    prefix: String,
}

/// Counter values are handed to threads this many at a time.
const REQUEST_ID_BLOCK: u64 = 4096;
/// Process-wide, so ids stay unique across gateways in one process.
static NEXT_REQUEST_ID_BLOCK: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's block: the next value and the end of the block.
    static REQUEST_ID_RANGE: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

fn next_request_number() -> u64 {
    REQUEST_ID_RANGE.with(|range| {
        let (mut next, mut end) = range.get();
        if next == end {
            next = NEXT_REQUEST_ID_BLOCK.fetch_add(REQUEST_ID_BLOCK, Ordering::Relaxed);
            end = next + REQUEST_ID_BLOCK;
        }
        range.set((next + 1, end));
        next
    })
}

impl RequestIds {
    pub(crate) fn new() -> Self {
        let mut seed = [0u8; 6];
        if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed).is_err() {
            // Ids stay unique within the process; across processes they may
            // repeat, which an operator should know about.
            tracing::warn!("no system randomness for the request id prefix; using zeros");
        }
        let mut prefix = [b'0'; 12];
        text::put_hex_bytes(&mut prefix, &seed);
        let prefix = String::from_utf8_lossy(&prefix).into_owned();
        RequestIds { prefix }
    }

    pub(crate) fn next(&self) -> InlineStr<48> {
        self.format(next_request_number())
    }

    /// `prefix-counter`, the counter as 10 hex digits (more as needed),
    /// with the domain's hex writer (no `core::fmt`): this runs once per
    /// request.
    fn format(&self, n: u64) -> InlineStr<48> {
        let mut id = InlineStr::new();
        let _ = id.write_str(&self.prefix);
        let _ = id.write_str("-");
        let _ = id.write_str(text::hex(n, 10).as_str());
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_prefix_and_ten_or_more_hex_digits() {
        let ids = RequestIds::new();
        let (prefix, counter) = ids
            .format(0)
            .split_once('-')
            .map(|(p, c)| (p.len(), c.to_string()))
            .unwrap();
        assert_eq!((prefix, counter.as_str()), (12, "0000000000"));
        assert!(ids.format(1).ends_with("-0000000001"));
        assert!(ids.format(0xabc_def0_1234).ends_with("-abcdef01234"));
    }

    #[test]
    fn request_ids_are_unique_across_threads() {
        let ids = std::sync::Arc::new(RequestIds::new());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let ids = ids.clone();
                std::thread::spawn(move || {
                    (0..3 * REQUEST_ID_BLOCK)
                        .map(|_| ids.next().as_str().to_string())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all = std::collections::HashSet::new();
        for thread in threads {
            for id in thread.join().unwrap() {
                assert!(all.insert(id));
            }
        }
        assert_eq!(all.len() as u64, 12 * REQUEST_ID_BLOCK);
    }
}
