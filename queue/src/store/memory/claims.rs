//! The in-memory store's single-use claims ([`crate::store::Store::claim_once`]): a bounded set
//! of (event, id) that forgets each entry when it lapses, as the Redis key's `PX` does.

use crate::error::{QueueError, Result};
use crate::ids::EventId;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// Most unexpired claims held at once: far above what one process admits in a challenge's
/// lifetime (2,000 joins/s for 120 s is 240,000); past it a claim answers `Overloaded` (503,
/// retry shortly) rather than grow without bound or forget a claim early.
pub(super) const MAX_CLAIMS: usize = 1 << 20;

#[derive(Debug, Default)]
pub(super) struct Claims {
    until: HashMap<(EventId, String), u64>,
    /// Lapse times, soonest first, to forget claims in order.
    lapses: BinaryHeap<Reverse<(u64, EventId, String)>>,
    limit: Option<usize>,
}

impl Claims {
    #[cfg(test)]
    pub fn with_limit(limit: usize) -> Self {
        Self {
            limit: Some(limit),
            ..Self::default()
        }
    }

    /// True for the first claim of `id` in `event` while unlapsed.
    pub fn claim(&mut self, event: &EventId, id: &str, until_ms: u64, now_ms: u64) -> Result<bool> {
        self.forget_lapsed(now_ms);
        let key = (event.clone(), id.to_owned());
        if self.until.get(&key).is_some_and(|&u| u > now_ms) {
            return Ok(false);
        }
        if until_ms <= now_ms {
            // Lapsed already: nothing to guard, and nothing kept (as PX 1 would).
            return Ok(true);
        }
        if self.until.len() >= self.limit.unwrap_or(MAX_CLAIMS) {
            return Err(QueueError::Overloaded);
        }
        self.until.insert(key.clone(), until_ms);
        self.lapses.push(Reverse((until_ms, key.0, key.1)));
        Ok(true)
    }

    fn forget_lapsed(&mut self, now_ms: u64) {
        while let Some(Reverse((until, _, _))) = self.lapses.peek() {
            if *until > now_ms {
                break;
            }
            let Some(Reverse((until, event, id))) = self.lapses.pop() else {
                break;
            };
            let key = (event, id);
            if self.until.get(&key) == Some(&until) {
                self.until.remove(&key);
            }
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.until.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_holds_until_it_lapses_and_the_set_stays_bounded() {
        let a = EventId::parse("a").unwrap();
        let b = EventId::parse("b").unwrap();
        let mut c = Claims::with_limit(2);
        assert!(c.claim(&a, "x", 1_000, 0).unwrap());
        assert!(!c.claim(&a, "x", 1_000, 999).unwrap(), "used");
        assert!(c.claim(&b, "x", 1_000, 10).unwrap(), "another event's id");
        assert!(
            matches!(c.claim(&a, "y", 1_000, 10), Err(QueueError::Overloaded)),
            "full"
        );
        // At 1,000 both lapse and are forgotten, which frees room.
        assert!(c.claim(&a, "y", 2_000, 1_000).unwrap());
        assert_eq!(c.len(), 1);
        assert!(
            c.claim(&a, "x", 2_000, 1_000).unwrap(),
            "lapsed, so claimable"
        );
        assert!(c.claim(&a, "z", 5, 5).unwrap(), "already lapsed: not kept");
        assert_eq!(c.len(), 2);
    }
}
