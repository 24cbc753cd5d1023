//! The state kept per connection while a message that spans packets is reassembled
//! (a TLS ClientHello over TCP segments, a QUIC ClientHello over Initials), with a
//! bound: opening an entry in a full table evicts the one opened longest ago, so
//! traffic that opens connections and never finishes them holds at most `MAX` entries.

use std::collections::HashMap;
use std::net::IpAddr;

/// One direction of a connection: source address and port, destination address and port.
pub(crate) type Key = (IpAddr, u16, IpAddr, u16);

#[derive(Debug)]
pub(crate) struct Table<V, const MAX: usize> {
    /// Each entry with the clock when it was opened.
    entries: HashMap<Key, (u64, V)>,
    /// Counts entries opened; orders them for eviction.
    clock: u64,
}

impl<V, const MAX: usize> Default for Table<V, MAX> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
            clock: 0,
        }
    }
}

impl<V, const MAX: usize> Table<V, MAX> {
    pub(crate) fn get(&self, key: &Key) -> Option<&V> {
        self.entries.get(key).map(|(_, v)| v)
    }

    pub(crate) fn get_mut(&mut self, key: &Key) -> Option<&mut V> {
        self.entries.get_mut(key).map(|(_, v)| v)
    }

    pub(crate) fn remove(&mut self, key: &Key) {
        self.entries.remove(key);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Puts `value` at `key` as a newly opened entry (replacing what was there), first
    /// evicting the entry opened longest ago when the table is full and `key` is new.
    pub(crate) fn open(&mut self, key: Key, value: V) {
        if self.entries.len() >= MAX
            && !self.entries.contains_key(&key)
            && let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, (born, _))| *born)
                .map(|(k, _)| *k)
        {
            self.entries.remove(&oldest);
        }
        self.clock += 1;
        self.entries.insert(key, (self.clock, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(port: u16) -> Key {
        let a = IpAddr::from([192, 0, 2, 1]);
        (a, port, a, 443)
    }

    #[test]
    fn a_full_table_evicts_the_entry_opened_longest_ago() {
        let mut t: Table<u16, 3> = Table::default();
        for p in 1..=3 {
            t.open(key(p), p);
        }
        // Reopening a key that is there replaces it without evicting another.
        t.open(key(1), 10);
        assert_eq!(t.len(), 3);
        assert_eq!(t.get(&key(1)), Some(&10));
        // A new key evicts the oldest: key 2 (key 1 was reopened since).
        t.open(key(4), 4);
        assert_eq!(t.len(), 3);
        assert_eq!(t.get(&key(2)), None);
        assert_eq!(t.get(&key(3)), Some(&3));
        assert_eq!(t.get(&key(4)), Some(&4));
        t.remove(&key(3));
        if let Some(v) = t.get_mut(&key(4)) {
            *v = 40;
        }
        assert_eq!((t.len(), t.get(&key(4))), (2, Some(&40)));
        assert!(!t.is_empty());
    }
}
