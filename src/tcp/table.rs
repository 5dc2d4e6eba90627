//! The flow table: takes flows keyed by [`FlowKey`] with the capture time of their activity and
//! gives bounded storage with least-recently-active eviction, idle expiry, and a deterministic
//! drain order.
//!
//! Flows live in a slab threaded by a doubly linked list in order of last activity, so touching,
//! inserting, evicting and expiring are all O(1) per flow: a SYN flood of millions of flows costs
//! the same per packet as ordinary traffic. The hash map is keyed by attacker-chosen addresses,
//! hence a randomly seeded hasher.

use std::collections::HashMap;

use foldhash::fast::RandomState;

use super::FlowKey;
use crate::types::Ts;

/// End of the activity list.
const NIL: usize = usize::MAX;

struct Node<T> {
    key: FlowKey,
    value: T,
    /// Latest activity time seen (never moves back, even if the capture's clock does).
    last: Ts,
    /// Insertion counter, for the drain order.
    order: u64,
    /// Neighbours in the activity list: `prev` is less recently active.
    prev: usize,
    next: usize,
}

/// The flows of a drained table, in order of first insertion (see [`FlowTable::drain`]).
pub struct Drain<T> {
    slots: Vec<Option<Node<T>>>,
    order: std::vec::IntoIter<(u64, usize)>,
}

impl<T> Iterator for Drain<T> {
    type Item = (FlowKey, T);

    fn next(&mut self) -> Option<(FlowKey, T)> {
        for (_, i) in self.order.by_ref() {
            if let Some(n) = self.slots.get_mut(i).and_then(Option::take) {
                return Some((n.key, n.value));
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.order.size_hint()
    }
}

/// A bounded map of flows with least-recently-active eviction.
pub struct FlowTable<T> {
    index: HashMap<FlowKey, usize, RandomState>,
    slots: Vec<Option<Node<T>>>,
    free: Vec<usize>,
    /// Least recently active flow.
    head: usize,
    /// Most recently active flow.
    tail: usize,
    max_flows: usize,
    inserted: u64,
}

impl<T> FlowTable<T> {
    /// A table holding at most `max_flows` flows (at least one).
    pub fn new(max_flows: usize) -> FlowTable<T> {
        FlowTable {
            index: HashMap::with_hasher(RandomState::default()),
            slots: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            max_flows: max_flows.max(1),
            inserted: 0,
        }
    }

    /// The flow's value, marking it active at `now`.
    pub fn get_mut(&mut self, key: &FlowKey, now: Ts) -> Option<&mut T> {
        let i = *self.index.get(key)?;
        // Consecutive packets of one flow (a burst) leave the activity list as it is.
        if self.tail != i {
            self.unlink(i);
            self.push_back(i);
        }
        let node = self.node_mut(i)?;
        node.last = node.last.max(now);
        Some(&mut node.value)
    }

    /// Adds a flow. When the table is full, returns the flows evicted to make room (least
    /// recently active first), so the caller can finish them.
    ///
    /// A flow already stored under `key` is replaced and returned first in the list as well.
    pub fn insert(&mut self, key: FlowKey, value: T, now: Ts) -> Vec<(FlowKey, T)> {
        let mut evicted = Vec::new();
        if let Some(old) = self.remove(&key) {
            evicted.push((key, old));
        }
        while self.index.len() >= self.max_flows {
            match self.pop_head() {
                Some(kv) => evicted.push(kv),
                None => break,
            }
        }
        let node = Node {
            key,
            value,
            last: now,
            order: self.inserted,
            prev: NIL,
            next: NIL,
        };
        self.inserted = self.inserted.wrapping_add(1);
        let i = match self.free.pop() {
            Some(i) => {
                if let Some(slot) = self.slots.get_mut(i) {
                    *slot = Some(node);
                }
                i
            }
            None => {
                self.slots.push(Some(node));
                self.slots.len() - 1
            }
        };
        self.push_back(i);
        self.index.insert(key, i);
        evicted
    }

    /// Removes a flow.
    pub fn remove(&mut self, key: &FlowKey) -> Option<T> {
        let i = self.index.remove(key)?;
        self.take(i).map(|(_, v)| v)
    }

    /// Removes and returns every flow idle since before `now - idle_ns`, oldest first.
    ///
    /// Walks the activity list from its least recent end and stops at the first flow still
    /// active, so the cost is proportional to what expires.
    pub fn expire(&mut self, now: Ts, idle_ns: i64) -> Vec<(FlowKey, T)> {
        let cutoff = now.0.saturating_sub(idle_ns);
        let mut expired = Vec::new();
        while let Some(node) = self.slots.get(self.head).and_then(Option::as_ref) {
            if node.last.0 >= cutoff {
                break;
            }
            match self.pop_head() {
                Some(kv) => expired.push(kv),
                None => break,
            }
        }
        expired
    }

    /// Removes every flow and gives them back in order of first insertion. Each flow is moved
    /// out of the table as the caller takes it, so what a flow holds is freed as it is handled
    /// rather than after all of them (collecting them first held two more copies of every node,
    /// about 35 MB each with 30,000 flows open at the end of a capture).
    pub fn drain(&mut self) -> Drain<T> {
        let slots = std::mem::take(&mut self.slots);
        let mut order: Vec<(u64, usize)> = slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|n| (n.order, i)))
            .collect();
        order.sort_unstable();
        self.index.clear();
        self.free.clear();
        self.head = NIL;
        self.tail = NIL;
        Drain {
            slots,
            order: order.into_iter(),
        }
    }

    /// Flows tracked now.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether no flow is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn node_mut(&mut self, i: usize) -> Option<&mut Node<T>> {
        self.slots.get_mut(i).and_then(Option::as_mut)
    }

    /// Takes node `i` out of the list and the slab (not the index).
    fn take(&mut self, i: usize) -> Option<(FlowKey, T)> {
        self.unlink(i);
        let node = self.slots.get_mut(i).and_then(Option::take)?;
        self.free.push(i);
        Some((node.key, node.value))
    }

    fn pop_head(&mut self) -> Option<(FlowKey, T)> {
        let i = self.head;
        let (key, value) = self.take(i)?;
        self.index.remove(&key);
        Some((key, value))
    }

    fn unlink(&mut self, i: usize) {
        let Some(node) = self.node_mut(i) else { return };
        let (prev, next) = (node.prev, node.next);
        node.prev = NIL;
        node.next = NIL;
        match self.node_mut(prev) {
            Some(p) => p.next = next,
            None => {
                if self.head == i {
                    self.head = next;
                }
            }
        }
        match self.node_mut(next) {
            Some(n) => n.prev = prev,
            None => {
                if self.tail == i {
                    self.tail = prev;
                }
            }
        }
    }

    fn push_back(&mut self, i: usize) {
        let old_tail = self.tail;
        let Some(node) = self.node_mut(i) else { return };
        node.prev = old_tail;
        node.next = NIL;
        match self.node_mut(old_tail) {
            Some(t) => t.next = i,
            None => self.head = i,
        }
        self.tail = i;
    }
}
