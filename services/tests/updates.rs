//! Reservation updates: every status change applied by the backends (a payment outcome, a
//! cancel, an expiry) is published on the event's Redis channel, heard here through a real
//! subscription; the memory store hands the same updates to in-process receivers.

mod common;

use anyhow::{Context, Result};
use common::{approval, approved, hold, intent, pay, process, reserve, Harness, Kind, Options};
use proto::payment::v1::PaymentScenario;
use proto::reservation::v1::CancelReservationRequest;
use services::updates::{channel, ReservationUpdate, CHANNEL_PATTERN};
use services::MemoryStore;
use std::time::Duration;
use tokio::sync::broadcast;

/// The next update about `id` (others are skipped), waiting at most 10 s.
async fn next_about(
    rx: &mut broadcast::Receiver<redis_layer::Published>, id: &str,
) -> Result<(String, ReservationUpdate)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let m = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .context("no update in time")??;
        if m.is_resubscribed() {
            continue;
        }
        let u: ReservationUpdate = serde_json::from_str(&m.payload)?;
        if u.reservation_id == id {
            return Ok((m.channel, u));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_changes_are_published_on_the_event_channel() -> Result<()> {
    let mut h = Harness::start(Kind::Redis, Options::default()).await?;
    let url = h.redis_server().context("redis")?.url();
    let sub = redis_layer::Subscription::pattern(
        &redis_layer::RedisOptions::new(url),
        CHANNEL_PATTERN,
        64,
    )
    .await?;
    let mut rx = sub.receiver();

    // A payment outcome applied through WorkerService confirms the reservation: CONFIRMED with
    // its order id, on the event's channel.
    let r = hold(&h, reserve("show", 2, "alice", "k1")).await?;
    let pi = pay(
        &h,
        intent(&r.reservation_id, PaymentScenario::Approve, "p1"),
    )
    .await?;
    approved(&h, &pi.payment_intent_id, Duration::from_secs(10)).await?;
    let done = process(&h, approval(&pi.payment_intent_id, &r.reservation_id)).await?;
    let (ch, u) = next_about(&mut rx, &r.reservation_id).await?;
    assert_eq!(ch, channel("show"));
    assert_eq!(ch, "bk:{show}:resv");
    assert_eq!(u.status, "CONFIRMED");
    assert_eq!(u.event_id, "show");
    assert_eq!(u.order_id.as_deref(), Some(done.order_id.as_str()));
    assert!(u.hold_expires_at.is_some());

    // A cancel.
    let c = hold(&h, reserve("show", 1, "bob", "k2")).await?;
    h.reservations()
        .cancel_reservation(CancelReservationRequest {
            reservation_id: c.reservation_id.clone(),
            user_id: "bob".into(),
            ..Default::default()
        })
        .await?;
    let (_, u) = next_about(&mut rx, &c.reservation_id).await?;
    assert_eq!(u.status, "CANCELLED");
    assert_eq!(u.order_id, None);

    // An expiry by the sweep.
    let e = hold(&h, reserve("show", 1, "carol", "k3")).await?;
    h.clock.advance_ms(61_000);
    assert_eq!(h.backends.expire_due().await?, 1);
    let (_, u) = next_about(&mut rx, &e.reservation_id).await?;
    assert_eq!(u.status, "EXPIRED");
    h.stop().await
}

#[tokio::test]
async fn the_memory_store_hands_updates_to_local_receivers() -> Result<()> {
    use services::store::{HoldRequest, IdemKey};
    use services::Store;
    let store = MemoryStore::new();
    let mut rx = store.subscribe();
    store.seed("ev", 3, 100, "USD").await?;
    let req = HoldRequest {
        event_id: "ev".into(),
        reservation_id: "r_0123456789abcdef0123456789abcdef_ev".into(),
        user_id: "u".into(),
        idem: IdemKey {
            slot: "i".into(),
            fingerprint: "f".into(),
            ttl_ms: 60_000,
        },
        quantity: 1,
        seats: vec![],
        hold_ms: 60_000,
        admission: None,
    };
    let (r, _) = store.hold(&req, 1_000).await?;
    store.commit(&r.id, "pi_x", "ord_1", 2_000).await?;
    let u = rx.try_recv()?;
    assert_eq!(u.reservation_id, r.id);
    assert_eq!(u.status, "CONFIRMED");
    assert_eq!(u.order_id.as_deref(), Some("ord_1"));
    // Confirming again changes nothing, and says nothing.
    store.commit(&r.id, "pi_x", "ord_1", 3_000).await?;
    assert!(rx.try_recv().is_err());
    Ok(())
}
