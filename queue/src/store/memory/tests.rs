//! The memory store's own mechanics (its semantics against Redis are in tests/model.rs and
//! tests/semantics.rs): the sweep reads only what expired, and chunked batch reads stay one
//! consistent snapshot while other calls interleave.

use super::*;
use crate::ids::SessionKey;
use std::collections::BTreeMap;

const T0: u64 = 1_800_000_000_000;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

fn config(idle: u32) -> EventConfig {
    EventConfig {
        admit_per_second: 0,
        max_active: 10,
        admission_ttl_seconds: 60,
        idle_timeout_seconds: idle,
        ready_timeout_seconds: 30,
        opens_at: None,
        target_url: None,
        join_challenge: None,
        queueing_method: Default::default(),
        page: None,
    }
}

fn session(i: u64) -> SessionKey {
    SessionKey::of(&format!("session-{i}"))
}

/// Ticket `t` as held when sessions 0, 1, ... joined in order.
fn held(t: u64) -> Holder {
    Holder {
        ticket: t,
        session: session(t.wrapping_sub(1)),
    }
}

/// A store whose event `name` (idle timeout `idle` s) has sessions 0..n waiting, joined at T0.
async fn joined(name: &str, idle: u32, n: u64) -> (MemoryStore, EventId) {
    let store = MemoryStore::new();
    let ev = EventId::parse(name).unwrap();
    store.configure(&ev, &config(idle), T0).await.unwrap();
    for i in 0..n {
        store.join(&ev, session(i), -1, T0).await.unwrap();
    }
    (store, ev)
}

/// What the sweep could change about the waiting users, read from the inside.
fn waiting_state(store: &MemoryStore, ev: &EventId) -> (Vec<(u64, event::Waiting)>, usize, u64) {
    let shared = store.get(ev).unwrap();
    let ev = lock(&shared);
    let waiting: BTreeMap<u64, event::Waiting> = ev.waiting.iter().map(|(&t, &w)| (t, w)).collect();
    (
        waiting.into_iter().collect(),
        ev.by_heartbeat.len(),
        ev.departure_seq,
    )
}

#[test]
fn a_sweep_with_nothing_idle_leaves_every_place_as_it_was() {
    rt().block_on(async {
        let (store, ev) = joined("quiet", 60, 1000).await;
        // Half of them heartbeat 30 s later; at +59 s nobody has been idle for 60 s.
        for t in (1..=1000).step_by(2) {
            store.status(&ev, held(t), true, T0 + 30_000).await.unwrap();
        }
        let now = T0 + 59_999;
        let before = waiting_state(&store, &ev);
        let tickets: Vec<Holder> = (1..=1000).map(held).collect();
        let (seq, places) = store.places(&ev, &tickets, false, now).await.unwrap();
        let report = store.sweep(&ev, 1, now).await.unwrap();
        assert_eq!((report.expired, report.done), (0, true));
        assert_eq!(
            waiting_state(&store, &ev),
            before,
            "no heartbeat or score moved"
        );
        let pulse = store.pulse(&ev, seq).await.unwrap();
        assert_eq!(pulse.seq, seq, "no departure logged");
        let again = store.places(&ev, &tickets, false, now).await.unwrap();
        assert_eq!(again, (seq, places), "every position and expiry as before");
    });
}

#[test]
fn a_sweep_expires_the_idle_in_ticket_order_and_leaves_the_rest() {
    rt().block_on(async {
        let store = MemoryStore::new();
        let ev = EventId::parse("idle").unwrap();
        store.configure(&ev, &config(60), T0).await.unwrap();
        let n = 900u64;
        for i in 0..n {
            // Joins spread over 3 s, so the idle ones sit in several heartbeat seconds.
            store.join(&ev, session(i), -1, T0 + i * 3).await.unwrap();
        }
        // Every third user heartbeats at +40 s; the others last showed at T0..T0+3 s.
        let live: Vec<u64> = (1..=n).filter(|t| t % 3 == 0).collect();
        for &t in &live {
            store.status(&ev, held(t), true, T0 + 40_000).await.unwrap();
        }
        let live_before: Vec<_> = waiting_state(&store, &ev)
            .0
            .into_iter()
            .filter(|(t, _)| t % 3 == 0)
            .collect();
        let seq = store.pulse(&ev, 0).await.unwrap().seq;
        let report = store.sweep(&ev, 1, T0 + 64_000).await.unwrap();
        assert_eq!(report.expired, n - live.len() as u64);
        let (after, index_len, _) = waiting_state(&store, &ev);
        assert_eq!(after, live_before, "the live users' state is untouched");
        assert_eq!(index_len, live.len());
        // sweep.lua's pass: oldest ticket first, each logged at its rank when it leaves.
        let mut queue: Vec<u64> = (1..=n).collect();
        let mut want = Vec::new();
        for t in (1..=n).filter(|t| t % 3 != 0) {
            let rank = queue.iter().position(|&x| x == t).unwrap();
            queue.remove(rank);
            want.push(Departure::Rank(rank as u64 + 1));
        }
        let pulse = store.pulse(&ev, seq).await.unwrap();
        assert_eq!(pulse.departures, Some(want));
        for (i, &t) in live.iter().enumerate() {
            let p = store
                .status(&ev, held(t), false, T0 + 64_000)
                .await
                .unwrap();
            assert_eq!((p.status, p.position), (Status::Waiting, i as u64 + 1));
        }
    });
}

#[test]
fn chunked_places_answer_like_one_status_call_each() {
    rt().block_on(async {
        let (store, ev) = joined("batch", 60, 1000).await;
        // Out of order, with duplicates and unknown tickets, over several chunks.
        let tickets: Vec<Holder> = (0..3 * CHUNK as u64 + 7)
            .map(|i| held(i * 37 % 1200))
            .collect();
        let (seq, places) = store.places(&ev, &tickets, false, T0).await.unwrap();
        let mut want = Vec::new();
        for &h in &tickets {
            want.push(store.status(&ev, h, false, T0).await.unwrap());
        }
        assert_eq!(places, want);
        assert_eq!(seq, store.pulse(&ev, 0).await.unwrap().seq);
    });
}

#[test]
fn places_stay_one_snapshot_while_others_leave_between_chunks() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let n = 8 * CHUNK as u64;
    let (store, ev) = rt().block_on(joined("busy", 600, n));
    let store = Arc::new(store);
    let stop = Arc::new(AtomicBool::new(false));
    let churn = {
        let (store, ev, stop) = (store.clone(), ev.clone(), stop.clone());
        std::thread::spawn(move || {
            rt().block_on(async {
                // The head leaves (moving everyone up) and a newcomer joins at the back, over
                // and over, while the batch below is read.
                let mut next = n;
                while !stop.load(Ordering::Relaxed) && next < n + n / 2 {
                    let head = next - n + 1;
                    store.leave(&ev, held(head), T0).await.unwrap();
                    store.join(&ev, session(next), -1, T0).await.unwrap();
                    next += 1;
                }
                next - n
            })
        })
    };
    let tickets: Vec<Holder> = (1..=n).map(held).collect();
    rt().block_on(async {
        for _ in 0..100 {
            let (seq, places) = store.places(&ev, &tickets, false, T0).await.unwrap();
            // At any one instant the waiting users hold positions 1..=k in ticket order, and
            // k + the departures so far = n (the churn stops before the newcomers' turn).
            let positions: Vec<u64> = places
                .iter()
                .filter(|p| p.status == Status::Waiting)
                .map(|p| p.position)
                .collect();
            let want: Vec<u64> = (1..=positions.len() as u64).collect();
            assert_eq!(positions, want);
            assert_eq!(
                positions.len() as u64 + seq,
                n,
                "positions are exact at {seq}"
            );
        }
    });
    stop.store(true, Ordering::Relaxed);
    assert!(churn.join().unwrap() > 0);
}
