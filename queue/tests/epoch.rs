//! Waiting tokens are bound to one incarnation of an event: when an event's data is lost and
//! the event is created again, a token of the old queue is refused (`InvalidToken`, a 401)
//! rather than read against whoever holds that ticket in the new queue.

mod common;

use common::room;
use queue::clock::ManualClock;
use queue::model::{EventConfig, Status};
use queue::room::WaitingRoom;
use queue::store::MemoryStore;
use queue::QueueError;
use std::sync::Arc;
use testkit::raw_command;

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
