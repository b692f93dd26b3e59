//! What one lookup in the mapping cache came to, counted in
//! `pullgate_mapping_cache_total{result}`. The handles are registered when
//! the cache is built, so a lookup adds one atomic increment and no
//! allocation (a label built per call would be a `Vec` per call).

/// The `result` label: exactly one per lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A fresh entry with the host's mappings.
    Hit,
    /// A fresh "no such host" entry: the store was not asked.
    NegativeHit,
    /// The last copy, while another caller refreshes it or because the
    /// store just failed.
    Stale,
    /// Nothing kept: the store answered.
    Miss,
    /// An expired entry, refreshed from the store by this caller.
    Refresh,
    /// Nothing kept and the store failed: the lookup fails.
    Error,
}

impl Outcome {
    /// In declaration order: the handles are indexed by `outcome as usize`.
    pub const ALL: [Outcome; 6] = [
        Outcome::Hit,
        Outcome::NegativeHit,
        Outcome::Stale,
        Outcome::Miss,
        Outcome::Refresh,
        Outcome::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Hit => "hit",
            Outcome::NegativeHit => "negative_hit",
            Outcome::Stale => "stale",
            Outcome::Miss => "miss",
            Outcome::Refresh => "refresh",
            Outcome::Error => "error",
        }
    }
}

/// One counter handle per outcome.
pub(super) struct OutcomeCounters([metrics::Counter; Outcome::ALL.len()]);

impl OutcomeCounters {
    /// Bound to the recorder installed now: entry points install theirs
    /// before they build the cache (none installed: no-op handles).
    pub(super) fn register() -> Self {
        OutcomeCounters(
            Outcome::ALL
                .map(|o| metrics::counter!("pullgate_mapping_cache_total", "result" => o.as_str())),
        )
    }

    pub(super) fn count(&self, outcome: Outcome) {
        self.0[outcome as usize].increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_indexed_by_outcome() {
        for (index, outcome) in Outcome::ALL.into_iter().enumerate() {
            assert_eq!(outcome as usize, index, "{outcome:?}");
        }
    }
}
