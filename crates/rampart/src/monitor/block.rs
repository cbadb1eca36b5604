//! The temporary block list.

use std::collections::{BTreeSet, HashMap};
use std::hash::BuildHasherDefault;

use crate::ratelimit::DigestHasher;

/// Clients (by key digest) blocked until a time `T` (an `Instant`); at most
/// `max` of them. When full, expired blocks go first, then the one ending
/// soonest. Blocks are indexed by client, for the lookup every request
/// makes, and ordered by end, so making room costs O(log n), not a scan.
#[derive(Debug)]
pub(crate) struct BlockList<T> {
    max: usize,
    until: HashMap<u64, T, BuildHasherDefault<DigestHasher>>,
    /// The same blocks by end: expired and soonest-ending first.
    by_end: BTreeSet<(T, u64)>,
}

impl<T: Ord + Copy> BlockList<T> {
    pub(crate) fn new(max: usize) -> BlockList<T> {
        BlockList { max: max.max(1), until: HashMap::default(), by_end: BTreeSet::new() }
    }

    /// Blocks `client` until `until` (a block already in force is only ever
    /// extended).
    pub(crate) fn block(&mut self, client: u64, until: T, now: T) {
        if let Some(end) = self.until.get_mut(&client) {
            if until > *end {
                self.by_end.remove(&(*end, client));
                self.by_end.insert((until, client));
                *end = until;
            }
            return;
        }
        while let Some(&(end, first)) = self.by_end.first() {
            if self.until.len() < self.max && end > now {
                break;
            }
            self.by_end.pop_first();
            self.until.remove(&first);
        }
        self.until.insert(client, until);
        self.by_end.insert((until, client));
    }

    /// When `client`'s block ends, if it is still in force at `now`.
    pub(crate) fn end(&mut self, client: u64, now: T) -> Option<T> {
        let end = *self.until.get(&client)?;
        if end <= now {
            self.unblock(client);
            return None;
        }
        Some(end)
    }

    pub(crate) fn unblock(&mut self, client: u64) -> bool {
        let Some(end) = self.until.remove(&client) else { return false };
        self.by_end.remove(&(end, client));
        true
    }

    pub(crate) fn len(&self) -> usize {
        self.until.len()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::cmp::Ordering;

    use super::*;

    #[test]
    fn blocks_expire_and_the_list_stays_bounded() {
        let mut list = BlockList::new(2);
        list.block(1, 10, 0);
        assert_eq!(list.end(1, 0), Some(10));
        assert_eq!(list.end(1, 10), None, "expired");
        list.block(1, 5, 0);
        list.block(2, 50, 0);
        list.block(3, 60, 0);
        assert_eq!(list.len(), 2);
        assert_eq!(list.end(1, 0), None, "the soonest to end made room");
        assert_eq!(list.end(3, 0), Some(60));
        list.block(3, 40, 0);
        assert_eq!(list.end(3, 0), Some(60), "a block is never shortened");
        assert!(list.unblock(3));
        assert_eq!(list.end(3, 0), None);
    }

    #[test]
    fn a_full_list_drops_every_expired_block_at_once() {
        let mut list = BlockList::new(3);
        list.block(1, 10, 0);
        list.block(2, 20, 0);
        list.block(3, 100, 0);
        list.block(4, 200, 30);
        assert_eq!(list.len(), 2);
        assert_eq!((list.end(3, 30), list.end(4, 30)), (Some(100), Some(200)));
    }

    thread_local! {
        static COMPARISONS: Cell<u64> = const { Cell::new(0) };
    }

    /// A time whose comparisons are counted: the work a block costs.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct Counted(u64);

    impl Ord for Counted {
        fn cmp(&self, other: &Self) -> Ordering {
            COMPARISONS.with(|n| n.set(n.get() + 1));
            self.0.cmp(&other.0)
        }
    }

    impl PartialOrd for Counted {
        fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
            Some(self.cmp(other))
        }
    }

    /// A full list used to be scanned whole for every new block, under the
    /// lock every request's lookup waits on.
    #[test]
    fn a_new_block_on_a_full_list_costs_a_few_comparisons_not_one_per_entry() {
        let full = 20_000;
        let mut list = BlockList::new(full);
        for client in 0..full as u64 {
            list.block(client, Counted(1_000 + client), Counted(0));
        }
        COMPARISONS.with(|n| n.set(0));
        for client in 0..1_000 {
            list.block(1_000_000 + client, Counted(1_000_000), Counted(0));
        }
        let per_block = COMPARISONS.with(Cell::get) / 1_000;
        assert!(per_block < 200, "{per_block} comparisons per block on a full list");
        assert_eq!(list.len(), full);
        assert_eq!(list.end(999, Counted(0)), None, "the blocks ending soonest made room");
        assert_eq!(list.end(1_000, Counted(0)), Some(Counted(2_000)));
    }
}
