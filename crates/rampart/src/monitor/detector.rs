//! Sliding-window counters per key, with bounded memory.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Counts events per key over the last `window`, exactly: each key keeps the
/// times of its last `cap` events (`cap` = the threshold, so no more is
/// ever needed). At most `max_keys` keys are tracked; when full, keys with
/// nothing left in the window go first, then the least recently seen eighth.
#[derive(Debug)]
pub(crate) struct SlidingWindows<K> {
    window: Duration,
    max_keys: usize,
    entries: HashMap<K, Entry>,
    evicted: u64,
}

#[derive(Debug)]
struct Entry {
    times: VecDeque<Instant>,
    last_seen: Instant,
    /// No new alert for this key before this time.
    quiet_until: Option<Instant>,
}

/// What one observation led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Count {
    /// Events in the window, this one included (capped at `cap`).
    pub(crate) count: usize,
    /// Whether this observation crossed the threshold (once per window).
    pub(crate) crossed: bool,
}

impl<K: Hash + Eq + Clone> SlidingWindows<K> {
    pub(crate) fn new(window: Duration, max_keys: usize) -> SlidingWindows<K> {
        SlidingWindows { window, max_keys: max_keys.max(1), entries: HashMap::new(), evicted: 0 }
    }

    /// Counts one event for `key` at `now` against `threshold`.
    pub(crate) fn observe(&mut self, key: &K, now: Instant, threshold: usize) -> Count {
        if !self.entries.contains_key(key) && self.entries.len() >= self.max_keys {
            self.make_room(now);
        }
        let window = self.window;
        let entry = self.entries.entry(key.clone()).or_insert_with(|| Entry {
            times: VecDeque::new(),
            last_seen: now,
            quiet_until: None,
        });
        entry.last_seen = now;
        while entry.times.front().is_some_and(|t| now.saturating_duration_since(*t) >= window) {
            entry.times.pop_front();
        }
        entry.times.push_back(now);
        while entry.times.len() > threshold.max(1) {
            entry.times.pop_front();
        }
        let count = entry.times.len();
        let quiet = entry.quiet_until.is_some_and(|until| now < until);
        let crossed = count >= threshold.max(1) && !quiet;
        if crossed {
            entry.quiet_until = Some(now + window);
        }
        Count { count, crossed }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn evicted(&self) -> u64 {
        self.evicted
    }

    fn make_room(&mut self, now: Instant) {
        let window = self.window;
        let before = self.entries.len();
        self.entries.retain(|_, e| {
            now.saturating_duration_since(e.last_seen) < window
                || e.quiet_until.is_some_and(|until| now < until)
        });
        if self.entries.len() >= self.max_keys {
            // Still full of live keys: drop the least recently seen eighth at once,
            // so a flood of new keys costs O(1) amortized, not a scan per key.
            let mut seen: Vec<Instant> = self.entries.values().map(|e| e.last_seen).collect();
            let drop = (self.max_keys / 8).max(1).min(seen.len() - 1);
            let (_, cut, _) = seen.select_nth_unstable(drop);
            let cut = *cut;
            let mut budget = drop;
            self.entries.retain(|_, e| {
                if budget > 0 && e.last_seen < cut {
                    budget -= 1;
                    false
                } else {
                    true
                }
            });
            if self.entries.len() >= self.max_keys {
                let victim =
                    self.entries.iter().min_by_key(|(_, e)| e.last_seen).map(|(k, _)| k.clone());
                if let Some(victim) = victim {
                    self.entries.remove(&victim);
                }
            }
        }
        self.evicted += (before - self.entries.len()) as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_slide_and_alert_once_per_window() {
        let start = Instant::now();
        let mut w = SlidingWindows::new(Duration::from_secs(10), 100);
        let at = |s: u64| start + Duration::from_secs(s);
        assert_eq!(w.observe(&"a", at(0), 3), Count { count: 1, crossed: false });
        assert_eq!(w.observe(&"a", at(1), 3), Count { count: 2, crossed: false });
        assert_eq!(w.observe(&"a", at(2), 3), Count { count: 3, crossed: true });
        assert_eq!(w.observe(&"a", at(3), 3), Count { count: 3, crossed: false }, "quiet");
        // At 11 s the event of 0 s and 1 s have left the window.
        assert_eq!(w.observe(&"a", at(11), 3).count, 3, "2 s, 3 s, 11 s");
        assert_eq!(w.observe(&"a", at(13), 3), Count { count: 2, crossed: false });
        assert_eq!(
            w.observe(&"a", at(14), 3),
            Count { count: 3, crossed: true },
            "quiet time over"
        );
        assert_eq!(w.observe(&"b", at(14), 3).count, 1, "keys are separate");
    }

    #[test]
    fn memory_is_bounded_and_idle_keys_go_first() {
        let start = Instant::now();
        let mut w = SlidingWindows::new(Duration::from_secs(10), 64);
        w.observe(&0u32, start, 5);
        for i in 1..10_000u32 {
            let now = start + Duration::from_millis(u64::from(i));
            w.observe(&i, now, 5);
            w.observe(&0, now, 5); // key 0 stays busy
            assert!(w.len() <= 64);
        }
        assert!(w.evicted() >= 10_000 - 64);
        assert!(w.entries.contains_key(&0), "the busiest key survives");
        // After the window, a full table of idle keys is emptied by the next newcomer.
        w.observe(&u32::MAX, start + Duration::from_secs(100), 5);
        assert_eq!(w.len(), 1);
    }
}
