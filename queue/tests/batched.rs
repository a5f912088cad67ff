//! Group commit ([`queue::store::Batched`]): concurrent joins and status reads of one event go
//! to Redis as few script calls, answer exactly as joins made one at a time would, refuse with
//! `Overloaded` when a lane is full, and never acknowledge what Redis did not store.

use queue::error::{QueueError, Result};
use queue::ids::{EventId, SessionKey};
use queue::model::*;
use queue::store::{
    BatchOptions, Batched, Holder, JoinRequest, MemoryStore, RedisOptions, RedisStore,
    StatusRequest, Store,
};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use testkit::RedisServer;
use tokio::sync::Semaphore;

const T0: u64 = 1_800_000_000_000;

fn evalsha_calls(port: u16) -> u64 {
    testkit::script_calls(port).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_joins_share_script_calls_and_get_every_place_once() {
    let server = RedisServer::start().unwrap();
    let redis: Arc<dyn Store> = Arc::new(
        RedisStore::connect(&RedisOptions::new(server.url()))
            .await
            .unwrap(),
    );
    let store = Arc::new(Batched::new(
        redis.clone(),
        BatchOptions {
            max_batch: 64,
            ..BatchOptions::default()
        },
    ));
    let ev = EventId::parse("batched").unwrap();
    store
        .configure(&ev, &EventConfig::new(0, 1), T0)
        .await
        .unwrap();
    let before = evalsha_calls(server.port());
    const N: usize = 2000;
    let mut tasks = Vec::new();
    for i in 0..N {
        let store = store.clone();
        let ev = ev.clone();
        tasks.push(tokio::spawn(async move {
            let s = SessionKey::of(&format!("user-{i}"));
            // Every tenth user refreshes at once: a refresh must keep the place, also when both
            // calls land in one batch.
            let first = store.join(&ev, s, -1, T0).await.unwrap();
            let again = if i % 10 == 0 {
                Some(store.join(&ev, s, -1, T0).await.unwrap())
            } else {
                None
            };
            (s, first, again)
        }));
    }
    let mut tickets = HashSet::new();
    let mut positions = HashSet::new();
    let mut holders = HashMap::new();
    for t in tasks {
        let (session, first, again) = t.await.unwrap();
        holders.insert(first.place.ticket, session);
        assert!(first.created);
        assert_eq!(first.place.status, Status::Waiting);
        // Nobody is admitted or leaves: the place is the ticket, as one join at a time gives.
        assert_eq!(first.place.position, first.place.ticket);
        assert!(tickets.insert(first.place.ticket), "ticket given twice");
        assert!(positions.insert(first.place.position));
        if let Some(again) = again {
            assert!(!again.created);
            assert_eq!(again.place.ticket, first.place.ticket);
        }
    }
    assert_eq!(tickets, (1..=N as u64).collect::<HashSet<_>>());
    let calls = evalsha_calls(server.port()) - before;
    assert!(
        calls < (N + N / 10) as u64,
        "{calls} script calls for {} joins: nothing was batched",
        N + N / 10
    );
    // Batched status reads answer what a single read answers.
    let reads: Vec<StatusRequest> = [1u64, 7, 500, 2000, 99_999]
        .iter()
        .map(|&ticket| StatusRequest {
            holder: Holder {
                ticket,
                session: holders
                    .get(&ticket)
                    .copied()
                    .unwrap_or_else(|| SessionKey::of("nobody")),
            },
            heartbeat: true,
        })
        .collect();
    let many = store.status_many(&ev, &reads, T0 + 500).await.unwrap();
    for (r, p) in reads.iter().zip(&many) {
        let one = redis.status(&ev, r.holder, true, T0 + 500).await.unwrap();
        assert_eq!(&one, p);
    }
    assert_eq!(many[3].position, 2000);
    assert_eq!(many[4].status, Status::Expired, "unknown ticket");
    let info = store.info(&ev, T0 + 500).await.unwrap().unwrap();
    assert_eq!(info.stats.joined_total, N as u64);
    assert_eq!(info.stats.waiting, N as u64);
}

/// The memory store behind a gate: each batch waits for a permit, and its size is recorded.
struct Gated {
    inner: MemoryStore,
    gate: Semaphore,
    sizes: Mutex<Vec<usize>>,
}

queue::forward_store!(Gated, inner, [
    fn configure_with_epoch(e: &EventId, c: &EventConfig, epoch: u64, now: u64) -> bool;
    fn info(e: &EventId, now: u64) -> Option<EventInfo>;
    fn act(e: &EventId, a: Action) -> ();
    fn events() -> Vec<EventId>;
    fn join(e: &EventId, s: SessionKey, pre: i64, now: u64) -> Joined;
    fn status(e: &EventId, h: Holder, hb: bool, now: u64) -> Place;
    fn status_many(e: &EventId, r: &[StatusRequest], now: u64) -> Vec<Place>;
    fn enter(e: &EventId, h: Holder, now: u64) -> EnterOutcome;
    fn leave(e: &EventId, h: Holder, now: u64) -> bool;
    fn admit(e: &EventId, now: u64) -> AdmitReport;
    fn sweep(e: &EventId, b: u32, now: u64) -> SweepReport;
    fn pulse(e: &EventId, since: u64) -> Pulse;
    fn resume(e: &EventId, from: u64, until: u64) -> bool;
    fn places(e: &EventId, h: &[Holder], hb: bool, now: u64) -> (u64, Vec<Place>);
    fn claim_once(e: &EventId, id: &str, until: u64, now: u64) -> bool;
    fn add_access_codes(e: &EventId, c: &[queue::store::CodeHash]) -> u64;
    fn revoke_access_codes(e: &EventId, c: &[queue::store::CodeHash]) -> u64;
], {
    async fn join_many(&self, e: &EventId, j: &[JoinRequest], now: u64) -> Result<Vec<Joined>> {
        self.sizes.lock().unwrap().push(j.len());
        self.gate.acquire().await.unwrap().forget();
        self.inner.join_many(e, j, now).await
    }
    async fn ping(&self) -> Result<()> {
        Ok(())
    }
});

#[tokio::test]
async fn a_full_lane_refuses_at_once_and_the_waiting_ones_go_as_one_batch() {
    let gated = Arc::new(Gated {
        inner: MemoryStore::new(),
        gate: Semaphore::new(0),
        sizes: Mutex::new(Vec::new()),
    });
    let ev = EventId::parse("gated").unwrap();
    gated
        .configure(&ev, &EventConfig::new(0, 1), T0)
        .await
        .unwrap();
    let store = Arc::new(Batched::new(
        gated.clone(),
        BatchOptions {
            max_batch: 256,
            max_pending: 3,
            max_in_flight: 1,
        },
    ));
    let join = |i: u32| {
        let store = store.clone();
        let ev = ev.clone();
        tokio::spawn(async move {
            store
                .join(&ev, SessionKey::of(&format!("u{i}")), -1, T0)
                .await
        })
    };
    // The first join's batch is in flight (held at the gate); three more wait behind it.
    let first = join(0);
    while gated.sizes.lock().unwrap().is_empty() {
        tokio::task::yield_now().await;
    }
    let waiting: Vec<_> = (1..=3).map(join).collect();
    // Let them reach the lane before the next one is refused.
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    let refused = join(4).await.unwrap();
    assert!(
        matches!(refused, Err(QueueError::Overloaded)),
        "{refused:?}"
    );
    gated.gate.add_permits(2);
    assert_eq!(first.await.unwrap().unwrap().place.ticket, 1);
    let mut tickets = Vec::new();
    for w in waiting {
        tickets.push(w.await.unwrap().unwrap().place.ticket);
    }
    assert_eq!(tickets, vec![2, 3, 4], "arrival order is ticket order");
    assert_eq!(*gated.sizes.lock().unwrap(), vec![1, 3]);
    // The refused one stored nothing.
    let info = store.info(&ev, T0).await.unwrap().unwrap();
    assert_eq!(info.stats.joined_total, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_cut_off_by_a_killed_redis_loses_no_acknowledged_join() {
    // appendfsync always: what Redis acknowledged is on disk before the reply is sent.
    let mut server =
        RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]).unwrap();
    let mut opts = RedisOptions::new(server.url());
    opts.command_timeout = std::time::Duration::from_millis(300);
    let redis: Arc<dyn Store> = Arc::new(RedisStore::connect(&opts).await.unwrap());
    let store = Arc::new(Batched::new(redis.clone(), BatchOptions::default()));
    let ev = EventId::parse("killed").unwrap();
    store
        .configure(&ev, &EventConfig::new(0, 1), T0)
        .await
        .unwrap();
    let acked = Arc::new(Mutex::new(HashMap::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..16 {
        let (store, ev, acked, stop) = (store.clone(), ev.clone(), acked.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let mut errors = Vec::new();
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let name = format!("w{w}-{i}");
                i += 1;
                match store.join(&ev, SessionKey::of(&name), -1, T0).await {
                    Ok(j) => {
                        acked.lock().unwrap().insert(name, j.place.ticket);
                    }
                    Err(e) => errors.push(e),
                }
            }
            errors
        }));
    }
    while acked.lock().unwrap().len() < 500 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    server.signal("KILL").unwrap();
    // Joins go on against the dead server for a while: each must fail, none may hang.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut errors = Vec::new();
    for w in workers {
        errors.extend(w.await.unwrap());
    }
    assert!(!errors.is_empty(), "no join met the dead server");
    for e in &errors {
        assert!(
            matches!(e, QueueError::Unavailable(_) | QueueError::Overloaded),
            "a failed batch must give 503s, not {e:?}"
        );
    }
    // Restarted from its append-only file, Redis has every acknowledged join at its ticket.
    server.restart().unwrap();
    let acked = acked.lock().unwrap().clone();
    let fresh = RedisStore::connect(&RedisOptions::new(server.url()))
        .await
        .unwrap();
    for (name, ticket) in &acked {
        let again = fresh.join(&ev, SessionKey::of(name), -1, T0).await.unwrap();
        assert!(!again.created, "{name}'s acknowledged join was lost");
        assert_eq!(again.place.ticket, *ticket);
    }
    let info = fresh.info(&ev, T0).await.unwrap().unwrap();
    assert!(info.stats.joined_total >= acked.len() as u64);
}
