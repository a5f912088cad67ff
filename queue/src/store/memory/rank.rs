//! The waiting queue as an order-statistic set: rank, insert, remove and pop-first in O(log n).
//!
//! Written here rather than taken from a crate: std's `BTreeSet` has no rank (counting a range is
//! O(n), which is what this replaces), and the maintained order-statistic crate we found,
//! `indexset`, bounds only its rank: a node split or an emptied node rebuilds its whole Fenwick
//! index and shifts its node vector (O(n / 1024) per insert or removal), so the event's lock
//! would not stay O(log n) per join; its changelog also shows recent fixes to lost values. A
//! treap with subtree sizes is ~150 lines, every operation is expected O(log n) whatever the
//! insertion order (random priorities keep it balanced though tickets arrive in increasing
//! order), and its nodes live in one `Vec` (u32 links, a free list): 32 bytes a member and no
//! allocation per join. The property test below holds it to a sorted set.

use std::cmp::Ordering;

/// A place in queue order, as Redis's scores order it: by score (the ticket, or the pre-queue
/// draw), then by ticket. Redis keeps `draw * 2^30 + ticket` for a pre-queue place (lib.lua), so
/// equal draws keep arrival order there too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct Member {
    pub score: i64,
    pub ticket: u64,
}

impl Ord for Member {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .cmp(&other.score)
            .then_with(|| self.ticket.cmp(&other.ticket))
    }
}

impl PartialOrd for Member {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Link value for "no child"; slot 0 of the arena is a sentinel of size 0.
const NIL: u32 = 0;

#[derive(Debug, Clone, Copy)]
struct Node {
    key: Member,
    left: u32,
    right: u32,
    size: u32,
    prio: u32,
}

/// An ordered set of [`Member`]s with O(log n) rank (a treap with subtree sizes).
#[derive(Debug, Clone)]
pub(super) struct RankTree {
    nodes: Vec<Node>,
    free: Vec<u32>,
    root: u32,
    rng: u64,
}

impl Default for RankTree {
    fn default() -> Self {
        Self::new()
    }
}

impl RankTree {
    pub fn new() -> Self {
        let sentinel = Node {
            key: Member {
                score: 0,
                ticket: 0,
            },
            left: NIL,
            right: NIL,
            size: 0,
            prio: 0,
        };
        Self {
            nodes: vec![sentinel],
            free: Vec::new(),
            root: NIL,
            // Any odd seed works for xorshift; a random one means no input can be built to
            // unbalance this particular tree.
            rng: rand::random::<u64>() | 1,
        }
    }

    pub fn len(&self) -> usize {
        self.nodes[self.root as usize].size as usize
    }

    /// How many members sort before `key` (its 0-based rank when present).
    pub fn rank(&self, key: &Member) -> u64 {
        let (mut t, mut r) = (self.root, 0u64);
        while t != NIL {
            let n = &self.nodes[t as usize];
            match key.cmp(&n.key) {
                Ordering::Less => t = n.left,
                Ordering::Equal => return r + u64::from(self.nodes[n.left as usize].size),
                Ordering::Greater => {
                    r += u64::from(self.nodes[n.left as usize].size) + 1;
                    t = n.right;
                }
            }
        }
        r
    }

    pub fn contains(&self, key: &Member) -> bool {
        let mut t = self.root;
        while t != NIL {
            let n = &self.nodes[t as usize];
            match key.cmp(&n.key) {
                Ordering::Less => t = n.left,
                Ordering::Equal => return true,
                Ordering::Greater => t = n.right,
            }
        }
        false
    }

    /// Adds `key`; false (and no change) when it is already there.
    pub fn insert(&mut self, key: Member) -> bool {
        if self.contains(&key) {
            return false;
        }
        let (l, r) = self.split(self.root, &key);
        let n = self.alloc(key);
        let l = self.merge(l, n);
        self.root = self.merge(l, r);
        true
    }

    /// Removes `key`; false when it was not there.
    pub fn remove(&mut self, key: &Member) -> bool {
        let (root, found) = self.remove_in(self.root, key);
        self.root = root;
        found
    }

    pub fn first(&self) -> Option<Member> {
        let mut t = self.root;
        if t == NIL {
            return None;
        }
        while self.nodes[t as usize].left != NIL {
            t = self.nodes[t as usize].left;
        }
        Some(self.nodes[t as usize].key)
    }

    /// The member of 0-based rank `i` (Redis's `ZRANGE i i`), in O(log n).
    pub fn nth(&self, mut i: u64) -> Option<Member> {
        let mut t = self.root;
        while t != NIL {
            let n = &self.nodes[t as usize];
            let left = u64::from(self.nodes[n.left as usize].size);
            match i.cmp(&left) {
                Ordering::Less => t = n.left,
                Ordering::Equal => return Some(n.key),
                Ordering::Greater => {
                    i -= left + 1;
                    t = n.right;
                }
            }
        }
        None
    }

    pub fn pop_first(&mut self) -> Option<Member> {
        let m = self.first()?;
        self.remove(&m);
        Some(m)
    }

    /// Every member in order (tests and debugging; O(n)).
    #[cfg(test)]
    pub fn to_vec(&self) -> Vec<Member> {
        fn walk(tree: &RankTree, t: u32, out: &mut Vec<Member>) {
            if t != NIL {
                let n = tree.nodes[t as usize];
                walk(tree, n.left, out);
                out.push(n.key);
                walk(tree, n.right, out);
            }
        }
        let mut out = Vec::with_capacity(self.len());
        walk(self, self.root, &mut out);
        out
    }

    #[cfg(test)]
    fn depth(&self) -> usize {
        fn d(tree: &RankTree, t: u32) -> usize {
            if t == NIL {
                return 0;
            }
            let n = tree.nodes[t as usize];
            1 + d(tree, n.left).max(d(tree, n.right))
        }
        d(self, self.root)
    }

    fn next_prio(&mut self) -> u32 {
        // xorshift64: priorities only need to be independent of the keys.
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        (x >> 32) as u32
    }

    fn alloc(&mut self, key: Member) -> u32 {
        let node = Node {
            key,
            left: NIL,
            right: NIL,
            size: 1,
            prio: self.next_prio(),
        };
        match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                u32::try_from(self.nodes.len() - 1).expect("fewer than 2^32 waiting members")
            }
        }
    }

    fn update(&mut self, t: u32) {
        let n = self.nodes[t as usize];
        self.nodes[t as usize].size =
            self.nodes[n.left as usize].size + self.nodes[n.right as usize].size + 1;
    }

    /// Splits `t` into (members < key, members >= key).
    fn split(&mut self, t: u32, key: &Member) -> (u32, u32) {
        if t == NIL {
            return (NIL, NIL);
        }
        let n = self.nodes[t as usize];
        if n.key < *key {
            let (l, r) = self.split(n.right, key);
            self.nodes[t as usize].right = l;
            self.update(t);
            (t, r)
        } else {
            let (l, r) = self.split(n.left, key);
            self.nodes[t as usize].left = r;
            self.update(t);
            (l, t)
        }
    }

    /// Joins two treaps where every member of `a` sorts before every member of `b`.
    fn merge(&mut self, a: u32, b: u32) -> u32 {
        if a == NIL {
            return b;
        }
        if b == NIL {
            return a;
        }
        if self.nodes[a as usize].prio > self.nodes[b as usize].prio {
            let r = self.merge(self.nodes[a as usize].right, b);
            self.nodes[a as usize].right = r;
            self.update(a);
            a
        } else {
            let l = self.merge(a, self.nodes[b as usize].left);
            self.nodes[b as usize].left = l;
            self.update(b);
            b
        }
    }

    fn remove_in(&mut self, t: u32, key: &Member) -> (u32, bool) {
        if t == NIL {
            return (NIL, false);
        }
        let n = self.nodes[t as usize];
        match key.cmp(&n.key) {
            Ordering::Equal => {
                let m = self.merge(n.left, n.right);
                self.free.push(t);
                (m, true)
            }
            side => {
                let left = side == Ordering::Less;
                let (child, found) = self.remove_in(if left { n.left } else { n.right }, key);
                let node = &mut self.nodes[t as usize];
                if left {
                    node.left = child;
                } else {
                    node.right = child;
                }
                if found {
                    node.size -= 1;
                }
                (t, found)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn m(score: i64, ticket: u64) -> Member {
        Member { score, ticket }
    }

    /// Queue order, written the obvious way.
    fn naive_key(x: &Member) -> (i64, u64) {
        (x.score, x.ticket)
    }

    #[test]
    fn equal_draws_keep_arrival_order() {
        let mut v = vec![m(-1, 9), m(-1, 10), m(-2, 99), m(-1, 1), m(5, 5)];
        v.sort();
        assert_eq!(v, vec![m(-2, 99), m(-1, 1), m(-1, 9), m(-1, 10), m(5, 5)]);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(i64, u64),
        Remove(usize),
        PopFirst,
        Rank(i64, u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        // Few distinct scores so that ties (ordered by ticket) are common.
        prop_oneof![
            4 => (-4i64..4, 0u64..200).prop_map(|(s, t)| Op::Insert(s, t)),
            2 => any::<usize>().prop_map(Op::Remove),
            1 => Just(Op::PopFirst),
            2 => (-5i64..5, 0u64..250).prop_map(|(s, t)| Op::Rank(s, t)),
        ]
    }

    proptest! {
        #[test]
        fn matches_a_sorted_set(ops in prop::collection::vec(op(), 1..400)) {
            let mut tree = RankTree::new();
            let mut naive: BTreeSet<(i64, u64)> = BTreeSet::new();
            let back = |k: &(i64, u64)| m(k.0, k.1);
            for op in ops {
                match op {
                    Op::Insert(s, t) => {
                        prop_assert_eq!(tree.insert(m(s, t)), naive.insert((s, t)));
                    }
                    Op::Remove(i) => {
                        // Mostly present members, sometimes an absent one.
                        let k = match naive.iter().nth(i % (naive.len() + 1)) {
                            Some(k) => back(k),
                            None => m(7, 7),
                        };
                        prop_assert_eq!(tree.remove(&k), naive.remove(&naive_key(&k)));
                    }
                    Op::PopFirst => {
                        prop_assert_eq!(tree.pop_first(), naive.pop_first().map(|k| back(&k)));
                    }
                    Op::Rank(s, t) => {
                        let k = m(s, t);
                        let want = naive.range(..naive_key(&k)).count() as u64;
                        prop_assert_eq!(tree.rank(&k), want);
                        prop_assert_eq!(tree.contains(&k), naive.contains(&naive_key(&k)));
                        // Select is rank's inverse (the lottery picks by rank).
                        let nth = naive.iter().nth(want as usize).map(back);
                        prop_assert_eq!(tree.nth(want), nth);
                    }
                }
                prop_assert_eq!(tree.len(), naive.len());
            }
            let all: Vec<Member> = naive.iter().map(back).collect();
            prop_assert_eq!(tree.to_vec(), all.clone());
            for (i, k) in all.iter().enumerate() {
                prop_assert_eq!(tree.rank(k), i as u64);
            }
        }
    }

    #[test]
    fn ascending_tickets_stay_balanced() {
        // Arrival order (each ticket larger than every other) would make an unbalanced search
        // tree a list: depth n. A treap's expected depth is ~2 ln n (~25 here).
        let mut tree = RankTree::new();
        let n = 200_000u64;
        for t in 1..=n {
            tree.insert(m(t as i64, t));
        }
        assert_eq!(tree.len(), n as usize);
        let depth = tree.depth();
        assert!(depth < 100, "depth {depth} for {n} ascending members");
        assert_eq!(tree.rank(&m(100_000, 100_000)), 99_999);
        assert_eq!(tree.pop_first(), Some(m(1, 1)));
        assert_eq!(tree.rank(&m(n as i64, n)), n - 2);
        assert_eq!(tree.first(), Some(m(2, 2)));
    }
}
