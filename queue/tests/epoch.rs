//! Waiting tokens are bound to one incarnation of an event: when an event's data is lost and
//! the event is created again, a token of the old queue is refused (`InvalidToken`, a 401)
//! rather than read against whoever holds that ticket in the new queue. The epoch that tells
//! incarnations apart is random, not the creation time, and seeds the lottery.

use queue::clock::ManualClock;
use queue::ids::EventId;
use queue::model::{Departure, EventConfig, QueueingMethod, Status};
use queue::room::WaitingRoom;
use queue::store::{MemoryStore, Store, MAX_EPOCH};
use queue::token::WaitingTokens;
use queue::QueueError;
use std::sync::Arc;
use testkit::raw_command;

mod common;
use common::{room, SECRET};

const T0: u64 = 1_800_000_000_000;
/// Joins `alice`, loses the event (`lose` wipes the store's data), creates it again and joins
/// `bob` then `alice` into the new queue: alice's old token is refused, her new one works.
async fn old_tokens_are_refused(r: &WaitingRoom, clock: &ManualClock, lose: impl FnOnce()) {
    let cfg = EventConfig::new(0, 10);
    assert!(r.configure("sale", &cfg).await.unwrap());
    let old = r.join("sale", "alice", None).await.unwrap().waiting_token;
    assert_eq!(r.status(&old).await.unwrap().position, 1);

    lose();
    clock.advance_ms(5_000);
    assert!(r.configure("sale", &cfg).await.unwrap(), "created again");
    // Bob now holds ticket 1, the ticket alice's old token names.
    r.join("sale", "bob", None).await.unwrap();
    let new = r.join("sale", "alice", None).await.unwrap().waiting_token;

    assert!(matches!(
        r.status(&old).await,
        Err(QueueError::InvalidToken)
    ));
    assert!(matches!(r.enter(&old).await, Err(QueueError::InvalidToken)));
    let p = r.status(&new).await.unwrap();
    assert_eq!((p.status, p.position), (Status::Waiting, 2));
}

#[tokio::test]
async fn redis_refuses_tokens_of_an_earlier_incarnation() {
    let (server, store) = common::redis_store().await;
    let clock = ManualClock::new(T0);
    let r = room(Arc::new(store), &clock);
    let port = server.port();
    old_tokens_are_refused(&r, &clock, || {
        raw_command(port, "FLUSHALL").unwrap();
    })
    .await;
}

#[tokio::test]
async fn the_embedded_store_refuses_them_too() {
    let clock = ManualClock::new(T0);
    let first = room(Arc::new(MemoryStore::new()), &clock);
    let cfg = EventConfig::new(0, 10);
    first.configure("sale", &cfg).await.unwrap();
    let old = first
        .join("sale", "alice", None)
        .await
        .unwrap()
        .waiting_token;
    // A restarted process: a new, empty store under the same secret.
    clock.advance_ms(5_000);
    let second = room(Arc::new(MemoryStore::new()), &clock);
    second.configure("sale", &cfg).await.unwrap();
    second.join("sale", "bob", None).await.unwrap();
    assert!(matches!(
        second.status(&old).await,
        Err(QueueError::InvalidToken)
    ));
}

/// The epoch a waiting token carries.
fn epoch_of(token: &str) -> u64 {
    let claims = WaitingTokens::from_secret(SECRET)
        .unwrap()
        .verify(token)
        .unwrap();
    claims.epoch.unwrap()
}

/// On `store`, with a clock at `T0`: creates `draw`, a `random` event (with `epoch` when
/// given, else as the queue does), joins twelve, and lets twelve admission ticks draw them one
/// by one. The epoch the tokens carry and the ranks drawn.
async fn lottery_at_t0(store: Arc<dyn Store>, epoch: Option<u64>) -> (u64, Vec<Departure>) {
    let clock = ManualClock::new(T0);
    let r = room(store.clone(), &clock);
    let id = EventId::parse("draw").unwrap();
    let cfg = EventConfig {
        queueing_method: QueueingMethod::Random,
        ..EventConfig::new(1, 100)
    };
    let created = match epoch {
        Some(e) => store.configure_with_epoch(&id, &cfg, e, T0).await,
        None => r.configure("draw", &cfg).await,
    };
    assert!(created.unwrap());
    let mut tokens = Vec::new();
    for i in 0..12 {
        tokens.push(
            r.join("draw", &format!("s{i}"), None)
                .await
                .unwrap()
                .waiting_token,
        );
    }
    let epoch = epoch_of(&tokens[0]);
    assert!(tokens.iter().all(|t| epoch_of(t) == epoch));
    let mut seq = store.pulse(&id, 0).await.unwrap().seq;
    let mut ranks = Vec::new();
    for _ in 0..12 {
        clock.advance_ms(1000);
        assert_eq!(r.admit(&id).await.unwrap().admitted, 1);
        let p = store.pulse(&id, seq).await.unwrap();
        seq = p.seq;
        ranks.extend(p.departures.unwrap());
    }
    (epoch, ranks)
}

/// Nothing about an event's epoch or its lottery follows from when it was created: two events
/// created in the same millisecond get different epochs, and an event created again at the
/// very time it was first created, joined by the same sessions at the same times, gets another
/// epoch and another draw. Given the epoch, the draw is the same again. `fresh` is a store
/// without data (a new one, or the same one wiped).
async fn epochs_are_random(fresh: impl Fn() -> Arc<dyn Store>) {
    let clock = ManualClock::new(T0);
    let r = room(fresh(), &clock);
    let cfg = EventConfig::new(0, 10);
    assert!(r.configure("a", &cfg).await.unwrap());
    assert!(r.configure("b", &cfg).await.unwrap());
    let alice = r.join("a", "alice", None).await.unwrap().waiting_token;
    let (a, b) = (
        epoch_of(&alice),
        epoch_of(&r.join("b", "alice", None).await.unwrap().waiting_token),
    );
    assert_ne!(a, b, "two events created in the same millisecond");
    assert!(
        [a, b].iter().all(|e| (1..=MAX_EPOCH).contains(e)),
        "{a} {b}"
    );
    // Updating an event keeps its epoch: tokens issued before stay valid.
    assert!(!r.configure("a", &EventConfig::new(1, 10)).await.unwrap());
    assert_eq!(r.status(&alice).await.unwrap().position, 1);
    let bob = r.join("a", "bob", None).await.unwrap().waiting_token;
    assert_eq!(epoch_of(&bob), a);

    let (epoch, ranks) = lottery_at_t0(fresh(), None).await;
    let (other_epoch, other_ranks) = lottery_at_t0(fresh(), None).await;
    assert_ne!(epoch, other_epoch, "created again at the same time");
    assert_ne!(ranks, other_ranks, "the same joins at the same times");
    assert_eq!(lottery_at_t0(fresh(), Some(epoch)).await, (epoch, ranks));
}

#[tokio::test]
async fn redis_epochs_are_random_not_the_creation_time() {
    let (server, store) = common::redis_store().await;
    let store: Arc<dyn Store> = Arc::new(store);
    let port = server.port();
    epochs_are_random(|| {
        raw_command(port, "FLUSHALL").unwrap();
        store.clone()
    })
    .await;
}

#[tokio::test]
async fn embedded_epochs_are_random_too() {
    epochs_are_random(|| -> Arc<dyn Store> { Arc::new(MemoryStore::new()) }).await;
}
