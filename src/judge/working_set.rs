//! The headroom decision on the two bounds of a working-set peak. Samples give a lower bound:
//! the working set (usage − inactive file cache) really was that high at that moment. The
//! kernel's peak-of-usage counter (v2 `memory.peak`, v1 `memory.max_usage_in_bytes`) gives an
//! upper bound: usage never went higher, and the working set is never above usage. What the
//! working set was at the moment of the kernel's peak is unknown — the page cache then may have
//! been anything from none (an allocation between two samples that evicted it) to all of the
//! usage above the samples' working set (a file read) — so no number in between is a bound,
//! neither `peak − least inactive cache seen` (it hides a spike that evicted the cache) nor
//! `peak − most cache seen` (it can invent one when the cache itself peaked between samples).
//! Where the allowed peak lies between the bounds the rule is inconclusive and says so with both
//! numbers; it is never a guess either way.

/// What the bounds say about one pod's working-set peak against its allowed peak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bounded {
    /// Even the upper bound (or, without one, the sampled peak) is within the allowed peak.
    Within,
    /// The sampled peak itself is above the allowed peak.
    Above,
    /// The sampled peak is within, the kernel's usage peak above: page cache or the service's
    /// own memory, the numbers cannot tell.
    Undecided,
}

/// Decide `lower` (the highest sampled working set) and `upper` (the kernel's peak usage, when
/// known and higher) against `allowed`. Exactly at the allowed peak is within, as for samples.
pub(crate) fn decide(lower: u64, upper: Option<u64>, allowed: u64) -> Bounded {
    if lower > allowed {
        return Bounded::Above;
    }
    match upper {
        Some(u) if u > allowed => Bounded::Undecided,
        _ => Bounded::Within,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;
    /// 128 MiB limit, 20 % headroom.
    const ALLOWED: u64 = 107_374_182;

    #[test]
    fn a_large_page_cache_with_a_small_working_set_is_not_failed() {
        // A service that reads a file larger than its limit: usage (and the kernel's peak) sit
        // at the limit, every sample sees a small working set and a large inactive cache.
        assert_eq!(
            decide(12 * MIB, Some(128 * MIB), ALLOWED),
            Bounded::Undecided
        );
        // The same cache that never took usage above the allowed peak: a pass.
        assert_eq!(decide(12 * MIB, Some(90 * MIB), ALLOWED), Bounded::Within);
    }

    #[test]
    fn a_spike_between_samples_that_evicts_the_cache_is_never_within() {
        // The samples see 12 MiB of working set and 100 MiB of cache before and after; between
        // them an allocation of 110 MiB evicts the cache and takes usage to the limit. The
        // numbers are those of the cache reader above: undecided, not within.
        assert_ne!(decide(12 * MIB, Some(128 * MIB), ALLOWED), Bounded::Within);
        // A spike with no cache at all (usage = working set at every sample): still undecided,
        // since cache could have been read and dropped between samples too.
        assert_eq!(
            decide(16 * MIB, Some(136 * MIB), ALLOWED),
            Bounded::Undecided
        );
    }

    #[test]
    fn the_sampled_peak_decides_when_it_is_above_or_there_is_no_counter() {
        assert_eq!(
            decide(ALLOWED + 1, Some(128 * MIB), ALLOWED),
            Bounded::Above
        );
        assert_eq!(decide(ALLOWED + 1, None, ALLOWED), Bounded::Above);
        assert_eq!(decide(ALLOWED, None, ALLOWED), Bounded::Within);
        assert_eq!(decide(ALLOWED, Some(ALLOWED), ALLOWED), Bounded::Within);
        assert_eq!(decide(0, Some(ALLOWED + 1), ALLOWED), Bounded::Undecided);
    }
}
