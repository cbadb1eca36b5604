//! The temporary block list.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Clients blocked until a time; at most `max` of them (when full, expired
/// entries go first, then the one whose block ends soonest).
#[derive(Debug)]
pub(crate) struct BlockList {
    max: usize,
    until: HashMap<String, Instant>,
}

impl BlockList {
    pub(crate) fn new(max: usize) -> BlockList {
        BlockList { max: max.max(1), until: HashMap::new() }
    }

    pub(crate) fn block(&mut self, client: &str, until: Instant, now: Instant) {
        if !self.until.contains_key(client) && self.until.len() >= self.max {
            self.until.retain(|_, end| *end > now);
            if self.until.len() >= self.max {
                let soonest =
                    self.until.iter().min_by_key(|(_, end)| **end).map(|(k, _)| k.clone());
                if let Some(soonest) = soonest {
                    self.until.remove(&soonest);
                }
            }
        }
        let end = self.until.entry(client.to_owned()).or_insert(until);
        *end = (*end).max(until);
    }

    /// How long `client` stays blocked, if it is.
    pub(crate) fn remaining(&mut self, client: &str, now: Instant) -> Option<Duration> {
        let end = *self.until.get(client)?;
        if end <= now {
            self.until.remove(client);
            return None;
        }
        Some(end - now)
    }

    pub(crate) fn unblock(&mut self, client: &str) -> bool {
        self.until.remove(client).is_some()
    }

    pub(crate) fn len(&self) -> usize {
        self.until.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_expire_and_the_list_stays_bounded() {
        let t0 = Instant::now();
        let mut list = BlockList::new(2);
        list.block("a", t0 + Duration::from_secs(10), t0);
        assert_eq!(list.remaining("a", t0), Some(Duration::from_secs(10)));
        assert_eq!(list.remaining("a", t0 + Duration::from_secs(10)), None, "expired");
        list.block("a", t0 + Duration::from_secs(5), t0);
        list.block("b", t0 + Duration::from_secs(50), t0);
        list.block("c", t0 + Duration::from_secs(60), t0);
        assert_eq!(list.len(), 2);
        assert_eq!(list.remaining("a", t0), None, "the soonest to end made room");
        assert!(list.remaining("c", t0).is_some());
        assert!(list.unblock("c"));
        assert_eq!(list.remaining("c", t0), None);
    }
}
