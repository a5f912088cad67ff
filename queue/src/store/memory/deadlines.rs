//! A set of tickets with deadlines (the READY and ADMITTED zsets), indexed both ways so that the
//! admission tick removes only what expired instead of scanning everyone holding a slot.

use std::collections::{BTreeSet, HashMap};

#[derive(Debug, Default)]
pub(super) struct Deadlines {
    by_ticket: HashMap<u64, u64>,
    by_time: BTreeSet<(u64, u64)>,
}

impl Deadlines {
    pub fn get(&self, t: u64) -> Option<u64> {
        self.by_ticket.get(&t).copied()
    }

    pub fn len(&self) -> usize {
        self.by_ticket.len()
    }

    /// Sets `t`'s deadline (ZADD: replaces an earlier one).
    pub fn insert(&mut self, t: u64, deadline: u64) {
        if let Some(old) = self.by_ticket.insert(t, deadline) {
            self.by_time.remove(&(old, t));
        }
        self.by_time.insert((deadline, t));
    }

    pub fn remove(&mut self, t: u64) -> Option<u64> {
        let d = self.by_ticket.remove(&t)?;
        self.by_time.remove(&(d, t));
        Some(d)
    }

    /// Removes every ticket whose deadline is at or before `now` (ZREMRANGEBYSCORE -inf now);
    /// returns how many.
    pub fn expire(&mut self, now: u64) -> u64 {
        let mut n = 0;
        while let Some(&(d, t)) = self.by_time.first() {
            if d > now {
                break;
            }
            self.by_time.pop_first();
            self.by_ticket.remove(&t);
            n += 1;
        }
        n
    }

    /// Moves every deadline on by `by` ms.
    pub fn shift(&mut self, by: u64) {
        let all: Vec<(u64, u64)> = std::mem::take(&mut self.by_time).into_iter().collect();
        for (d, t) in all {
            self.by_ticket.insert(t, d + by);
            self.by_time.insert((d + by, t));
        }
    }

    /// How many deadlines are after `now` (ZCOUNT (now +inf).
    pub fn live(&self, now: u64) -> u64 {
        let gone = self.by_time.range(..=(now, u64::MAX)).count();
        (self.len() - gone) as u64
    }
}
