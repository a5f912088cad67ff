//! Queueing methods (fifo, random, passthrough, reject), admission at once on join, and priority
//! access codes: one suite run against the in-memory store and a real redis-server, with a
//! manual clock. The property test (model.rs) holds the two stores equal step by step; this
//! suite checks what a user of each method sees.

use queue::clock::{Clock, ManualClock};
use queue::ids::EventId;
use queue::model::{Departure, EventConfig, QueueingMethod, Status};
use queue::room::WaitingRoom;
use queue::store::{MemoryStore, RedisOptions, RedisStore, Store};
use queue::token::{AdmissionSigner, WaitingTokens};
use queue::QueueError;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use testkit::RedisServer;

const T0: u64 = 1_800_000_000_000;

static SEQ: AtomicU32 = AtomicU32::new(0);

struct Ctx {
    room: WaitingRoom,
    clock: ManualClock,
}

impl Ctx {
    fn new(store: Arc<dyn Store>) -> Self {
        let clock = ManualClock::new(T0);
        let tokens = WaitingTokens::from_secret(b"methods secret 0123456789")
            .unwrap()
            .with_clock(Arc::new(clock.clone()));
        let room = WaitingRoom::new(
            store,
            Arc::new(clock.clone()),
            tokens,
            AdmissionSigner::ephemeral(),
        );
        Self { room, clock }
    }

    async fn event(&self, cfg: &EventConfig) -> String {
        let id = format!("m{}", SEQ.fetch_add(1, Ordering::SeqCst));
        assert!(self.room.configure(&id, cfg).await.unwrap());
        id
    }

    async fn switch(&self, ev: &str, cfg: &EventConfig, m: QueueingMethod) {
        let cfg = EventConfig {
            queueing_method: m,
            ..cfg.clone()
        };
        assert!(!self.room.configure(ev, &cfg).await.unwrap());
    }

    async fn tick(&self, ev: &str) -> u64 {
        let id = EventId::parse(ev).unwrap();
        self.room.admit(&id).await.unwrap().admitted
    }

    async fn status(&self, token: &str) -> (Status, u64) {
        let p = self.room.status(token).await.unwrap();
        (p.status, p.position)
    }
}

fn cfg(aps: u32, max: u32, m: QueueingMethod) -> EventConfig {
    EventConfig {
        queueing_method: m,
        ..EventConfig::new(aps, max)
    }
}

/// With a free slot, a token in the bucket and nobody waiting, a join is READY in its own
/// reply; with someone waiting it is not (nobody is passed).
async fn admits_at_once_when_there_is_room(c: &Ctx) {
    let ev = c.event(&cfg(2, 10, QueueingMethod::Fifo)).await;
    c.clock.advance_ms(1000); // two tokens
    let a = c.room.join(&ev, "a", None).await.unwrap();
    assert_eq!(a.place.status, Status::Ready, "room free: READY at once");
    assert!(a.place.admission_ready);
    assert_eq!(a.place.queueing_method, QueueingMethod::Fifo);
    c.room.enter(&a.waiting_token).await.unwrap();
    // Stop admissions so that someone waits, then resume: the newcomer queues behind.
    c.room
        .act(&ev, queue::model::Action::StopAdmissions)
        .await
        .unwrap();
    let b = c.room.join(&ev, "b", None).await.unwrap();
    assert_eq!((b.place.status, b.place.position), (Status::Waiting, 1));
    c.room
        .act(&ev, queue::model::Action::ResumeAdmissions)
        .await
        .unwrap();
    let late = c.room.join(&ev, "late", None).await.unwrap();
    assert_eq!(
        (late.place.status, late.place.position),
        (Status::Waiting, 2),
        "a token is free, but b waits ahead: the newcomer queues"
    );
    assert_eq!(c.tick(&ev).await, 1, "the tick takes b, the one token left");
    assert_eq!(c.status(&b.waiting_token).await.0, Status::Ready);
    // Full: max_active reached, no admission at once whatever the bucket holds.
    let full = c.event(&cfg(100, 1, QueueingMethod::Fifo)).await;
    c.clock.advance_ms(1000);
    let x = c.room.join(&full, "x", None).await.unwrap();
    assert_eq!(x.place.status, Status::Ready);
    let y = c.room.join(&full, "y", None).await.unwrap();
    assert_eq!((y.place.status, y.place.position), (Status::Waiting, 1));
}

/// `passthrough` admits at once up to max_active without the rate, then queues in order.
async fn passthrough_fills_capacity(c: &Ctx) {
    let conf = cfg(0, 2, QueueingMethod::Passthrough);
    let ev = c.event(&conf).await;
    let a = c.room.join(&ev, "a", None).await.unwrap();
    let b = c.room.join(&ev, "b", None).await.unwrap();
    let d = c.room.join(&ev, "d", None).await.unwrap();
    let e = c.room.join(&ev, "e", None).await.unwrap();
    assert_eq!(
        a.place.status,
        Status::Ready,
        "admit_per_second 0 does not hold it"
    );
    assert_eq!(b.place.status, Status::Ready);
    assert_eq!((d.place.status, d.place.position), (Status::Waiting, 1));
    assert_eq!((e.place.status, e.place.position), (Status::Waiting, 2));
    assert_eq!(d.place.queueing_method, QueueingMethod::Passthrough);
    c.room.leave(&a.waiting_token).await.unwrap();
    assert_eq!(
        c.tick(&ev).await,
        1,
        "a freed slot is filled at the next tick"
    );
    assert_eq!(c.status(&d.waiting_token).await.0, Status::Ready);
    assert_eq!(c.status(&e.waiting_token).await, (Status::Waiting, 1));
    // Switched to fifo with rate 0, nobody more is admitted.
    c.switch(&ev, &conf, QueueingMethod::Fifo).await;
    c.room.leave(&b.waiting_token).await.unwrap();
    assert_eq!(c.tick(&ev).await, 0);
}

/// fifo -> random -> fifo keeps everyone waiting, in arrival order; random shows no position.
async fn switching_keeps_the_queue(c: &Ctx) {
    let conf = cfg(0, 10, QueueingMethod::Fifo);
    let ev = c.event(&conf).await;
    let mut toks = Vec::new();
    for i in 0..5 {
        toks.push(
            c.room
                .join(&ev, &format!("s{i}"), None)
                .await
                .unwrap()
                .waiting_token,
        );
    }
    c.switch(&ev, &conf, QueueingMethod::Random).await;
    for t in &toks {
        let p = c.room.status(t).await.unwrap();
        assert_eq!((p.status, p.position), (Status::Waiting, 0), "a lottery");
        assert_eq!(p.eta_seconds, -1);
        assert_eq!(p.queueing_method, QueueingMethod::Random);
    }
    let j = c.room.join(&ev, "s5", None).await.unwrap();
    assert_eq!((j.place.status, j.place.position), (Status::Waiting, 0));
    toks.push(j.waiting_token);
    c.switch(&ev, &conf, QueueingMethod::Fifo).await;
    for (i, t) in toks.iter().enumerate() {
        assert_eq!(c.status(t).await, (Status::Waiting, i as u64 + 1));
    }
    // reject: nobody new, refreshes included; the waiting keep their place.
    c.switch(&ev, &conf, QueueingMethod::Reject).await;
    let refused = c.room.join(&ev, "new", None).await.unwrap_err();
    assert!(matches!(refused, QueueError::QueueClosed(_)), "{refused:?}");
    let refresh = c.room.join(&ev, "s0", None).await.unwrap_err();
    assert!(matches!(refresh, QueueError::QueueClosed(_)));
    assert_eq!(c.status(&toks[2]).await, (Status::Waiting, 3));
    let info = c.room.info(&ev).await.unwrap();
    assert_eq!(info.config.queueing_method, QueueingMethod::Reject);
    assert_eq!(info.stats.waiting, 6);
    // and back: joins again, at the back.
    c.switch(&ev, &conf, QueueingMethod::Fifo).await;
    let back = c.room.join(&ev, "new", None).await.unwrap();
    assert_eq!(
        (back.place.status, back.place.position),
        (Status::Waiting, 7)
    );
}

/// The lottery is uniform: 20 always waiting, 2,000 single admissions, tallied by the rank
/// drawn (from the departure log). Chi-square, 19 degrees of freedom: under 43.82 with
/// probability 99.9% for a uniform draw. Deterministic (the generator is seeded from the event's
/// epoch, random per event but fixed here), so it cannot flake.
async fn random_is_uniform(c: &Ctx) {
    const N: u64 = 20;
    const DRAWS: u64 = 2000;
    let ev = format!("m{}", SEQ.fetch_add(1, Ordering::SeqCst));
    let id = EventId::parse(&ev).unwrap();
    let store = c.room.store().clone();
    let conf = cfg(1, 1_000_000, QueueingMethod::Random);
    assert!(store
        .configure_with_epoch(&id, &conf, T0, c.clock.now_ms())
        .await
        .unwrap());
    for i in 0..N {
        c.room.join(&ev, &format!("r{i}"), None).await.unwrap();
    }
    let mut seq = store.pulse(&id, 0).await.unwrap().seq;
    let mut tally = [0u64; N as usize];
    for k in 0..DRAWS {
        c.clock.advance_ms(1000);
        assert_eq!(c.tick(&ev).await, 1);
        let p = store.pulse(&id, seq).await.unwrap();
        seq = p.seq;
        match p.departures.as_deref() {
            Some([Departure::Rank(r)]) => tally[(*r - 1) as usize] += 1,
            other => panic!("one draw by rank, got {other:?}"),
        }
        // Refill: the queue stays at N (joins come after the tick took the token).
        let j = c.room.join(&ev, &format!("n{k}"), None).await.unwrap();
        assert_eq!(j.place.status, Status::Waiting);
    }
    let want = DRAWS as f64 / N as f64;
    let chi2: f64 = tally
        .iter()
        .map(|&o| (o as f64 - want).powi(2) / want)
        .sum();
    assert!(chi2 < 43.82, "ranks drawn {tally:?}, chi-square {chi2:.1}");
    // Not the head every time, nor the back: the tally covers every rank.
    assert!(tally.iter().all(|&o| o > 0), "{tally:?}");
}

/// Priority codes: single use, ahead of the general queue, kept on refresh, revocable.
async fn access_codes(c: &Ctx) {
    let conf = cfg(0, 10, QueueingMethod::Fifo);
    let ev = c.event(&conf).await;
    let codes = c.room.mint_access_codes(&ev, 3).await.unwrap();
    assert_eq!(codes.len(), 3);
    assert!(codes.iter().all(|k| k.len() == 22));
    assert_ne!(codes[0], codes[1]);
    let g1 = c.room.join(&ev, "g1", None).await.unwrap();
    let g2 = c.room.join(&ev, "g2", None).await.unwrap();
    let p1 = c
        .room
        .join_with_code(&ev, "p1", None, Some(&codes[0]))
        .await
        .unwrap();
    assert_eq!((p1.place.status, p1.place.position), (Status::Waiting, 1));
    let p2 = c
        .room
        .join_with_code(&ev, "p2", None, Some(&codes[1]))
        .await
        .unwrap();
    assert_eq!(p2.place.position, 2, "priority in arrival order");
    assert_eq!(c.status(&g1.waiting_token).await, (Status::Waiting, 3));
    assert_eq!(c.status(&g2.waiting_token).await, (Status::Waiting, 4));
    // Spent: another session is refused; the same session's refresh keeps its place.
    let again = c
        .room
        .join_with_code(&ev, "thief", None, Some(&codes[0]))
        .await
        .unwrap_err();
    assert!(matches!(again, QueueError::InvalidAccessCode), "{again:?}");
    let refresh = c
        .room
        .join_with_code(&ev, "p1", None, Some(&codes[0]))
        .await
        .unwrap();
    assert!(!refresh.created);
    assert_eq!(refresh.place.position, 1);
    for bad in ["", "nope", "x y", &"a".repeat(65)] {
        let r = c.room.join_with_code(&ev, "z", None, Some(bad)).await;
        if bad.is_empty() {
            assert!(r.is_ok(), "an empty code is no code");
        } else {
            assert!(matches!(r, Err(QueueError::InvalidAccessCode)), "{bad}");
        }
    }
    assert_eq!(
        c.room
            .revoke_access_codes(&ev, &[codes[2].clone(), "never".into()])
            .await
            .unwrap(),
        1
    );
    let revoked = c
        .room
        .join_with_code(&ev, "late", None, Some(&codes[2]))
        .await;
    assert!(matches!(revoked, Err(QueueError::InvalidAccessCode)));
    assert!(c.room.mint_access_codes(&ev, 0).await.is_err());
    assert!(c.room.mint_access_codes(&ev, 10_001).await.is_err());
    assert!(matches!(
        c.room.mint_access_codes("nosuch", 1).await,
        Err(QueueError::EventNotFound(_))
    ));
    // The lottery takes the priority lane first, in order.
    c.switch(&ev, &EventConfig::new(2, 10), QueueingMethod::Random)
        .await;
    c.clock.advance_ms(1000);
    assert_eq!(c.tick(&ev).await, 2);
    assert_eq!(c.status(&p1.waiting_token).await.0, Status::Ready);
    assert_eq!(c.status(&p2.waiting_token).await.0, Status::Ready);
}

/// Before opening, a priority place is PRE_QUEUE like the rest, and at opening it is first,
/// ahead of the shuffled pre-queue.
async fn priority_in_the_pre_queue(c: &Ctx) {
    let mut conf = cfg(1, 10, QueueingMethod::Fifo);
    conf.opens_at = Some(
        time::OffsetDateTime::from_unix_timestamp((c.clock.now_ms() / 1000) as i64 + 60).unwrap(),
    );
    let ev = c.event(&conf).await;
    let code = c.room.mint_access_codes(&ev, 1).await.unwrap();
    let mut general = Vec::new();
    for i in 0..5 {
        general.push(c.room.join(&ev, &format!("e{i}"), None).await.unwrap());
    }
    let p = c
        .room
        .join_with_code(&ev, "vip", None, Some(&code[0]))
        .await
        .unwrap();
    assert_eq!(p.place.status, Status::PreQueue);
    c.clock.advance_ms(61_000);
    assert_eq!(c.status(&p.waiting_token).await, (Status::Waiting, 1));
}

async fn suite(c: Ctx) {
    testkit::run_checks!(
        &c,
        admits_at_once_when_there_is_room,
        passthrough_fills_capacity,
        switching_keeps_the_queue,
        random_is_uniform,
        access_codes,
        priority_in_the_pre_queue,
    );
}

#[tokio::test]
async fn memory_store() {
    suite(Ctx::new(Arc::new(MemoryStore::new()))).await;
}

#[tokio::test]
async fn redis_server() {
    let server = RedisServer::start().unwrap();
    let store = RedisStore::connect(&RedisOptions::new(server.url()))
        .await
        .unwrap();
    suite(Ctx::new(Arc::new(store))).await;
}

/// Many sessions race one code on real Redis, over separate connections: exactly one gets the
/// priority place, every other join is refused.
#[tokio::test]
async fn one_code_one_place_under_concurrency() {
    let server = RedisServer::start().unwrap();
    let mut rooms = Vec::new();
    let first = Ctx::new(Arc::new(
        RedisStore::connect(&RedisOptions::new(server.url()))
            .await
            .unwrap(),
    ));
    let ev = first.event(&cfg(0, 10, QueueingMethod::Fifo)).await;
    let code = first
        .room
        .mint_access_codes(&ev, 1)
        .await
        .unwrap()
        .remove(0);
    for _ in 0..8 {
        rooms.push(
            Ctx::new(Arc::new(
                RedisStore::connect(&RedisOptions::new(server.url()))
                    .await
                    .unwrap(),
            ))
            .room,
        );
    }
    let mut tasks = Vec::new();
    for i in 0..64 {
        let room = rooms[i % rooms.len()].clone();
        let (ev, code) = (ev.clone(), code.clone());
        tasks.push(tokio::spawn(async move {
            room.join_with_code(&ev, &format!("racer{i}"), None, Some(&code))
                .await
        }));
    }
    let (mut won, mut refused) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(j) => {
                assert_eq!((j.place.status, j.place.position), (Status::Waiting, 1));
                won += 1;
            }
            Err(QueueError::InvalidAccessCode) => refused += 1,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!((won, refused), (1, 63));
    assert_eq!(first.room.info(&ev).await.unwrap().stats.waiting, 1);
}
