//! Forwarding at intake speed: the consumer's sliding window (a slow ProcessPaymentResult holds
//! back only its own webhook), and `/readyz` checking the inbox's Redis node.

use super::*;
use proto::payment::v1 as pay;
use proto::reservation::v1 as res;

/// A one-seat reservation with a pending payment intent (scenario TIMEOUT: the simulator never
/// settles it), made straight at the backends: (reservation id, intent id, user).
async fn pending_payment(backends: &Backends, i: usize) -> (String, String, String) {
    let ch = backends.channel().await;
    let user = format!("u{i}");
    let r = proto::ReservationClient::new(ch.clone())
        .create_reservation(res::CreateReservationRequest {
            event_id: "show".into(),
            quantity: 1,
            user_id: user.clone(),
            idempotency_key: format!("hold-{i}"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let p = proto::PaymentClient::new(ch)
        .create_payment_intent(pay::CreatePaymentIntentRequest {
            reservation_id: r.reservation_id.clone(),
            user_id: user.clone(),
            scenario: pay::PaymentScenario::Timeout as i32,
            idempotency_key: format!("pay-{i}"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    (r.reservation_id, p.payment_intent_id, user)
}

/// The reservation's status as the backends record it.
async fn status_at_backends(backends: &Backends, rid: &str, user: &str) -> i32 {
    proto::ReservationClient::new(backends.channel().await)
        .get_reservation(res::GetReservationRequest {
            reservation_id: rid.to_owned(),
            user_id: user.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .reservation
        .unwrap()
        .status
}

/// A window of 4: a held call takes one slot, the other webhooks pass through the other 3. The
/// held call must not time out or be taken over during the test.
const WINDOW_OF_FOUR: &[&str] = &[
    "--webhook-forward-window",
    "4",
    "--webhook-forward-timeout-ms",
    "120000",
    "--webhook-claim-idle-ms",
    "300000",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_forward_holds_back_only_its_own_webhook() {
    const OTHERS: usize = 12;
    let redis = RedisServer::start().unwrap();
    let backends = Backends::start(None, &[("show", 20)]).await;
    let gw = Gw::on_free_port(&redis, &shop_flags(&backends, WINDOW_OF_FOUR)).await;
    let base = gw.base.clone();
    let inbox = webhooks::Inbox::connect(
        &webhooks::InboxOptions::new(redis.url()),
        std::sync::Arc::new(webhooks::Metrics::new()),
    )
    .await
    .unwrap();
    let mut payments = Vec::new();
    for i in 0..=OTHERS {
        payments.push(pending_payment(&backends, i).await);
    }
    let (slow_rid, slow_intent, slow_user) = payments[0].clone();
    backends.hold.hold(&slow_rid);
    let r = send(signed(
        &base,
        SECRET,
        "msg_slow",
        webhook_now(),
        &payment_body("payment.cancelled", &slow_intent, &slow_rid, PRICE),
        None,
    ))
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    until("the slow forward to reach the worker", async || {
        backends.hold.waiting.load(Ordering::SeqCst) == 1
    })
    .await;
    for (i, (rid, intent, _)) in payments.iter().enumerate().skip(1) {
        let body = payment_body("payment.cancelled", intent, rid, PRICE);
        let r = send(signed(
            &base,
            SECRET,
            &format!("msg_{i}"),
            webhook_now(),
            &body,
            None,
        ))
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    // Every other webhook is applied and acknowledged while the slow one is still in flight.
    until("the other webhooks to be acknowledged", async || {
        metric(&gw.metrics, "webhooks_forwarded_total ").await == OTHERS as u64
            && inbox.backlog().await.unwrap() == 1
    })
    .await;
    for (rid, _, user) in &payments[1..] {
        assert_eq!(
            status_at_backends(&backends, rid, user).await,
            res::ReservationStatus::Cancelled as i32
        );
    }
    assert_eq!(backends.hold.waiting.load(Ordering::SeqCst), 1);
    assert_eq!(
        status_at_backends(&backends, &slow_rid, &slow_user).await,
        res::ReservationStatus::Pending as i32
    );

    // The slow call ends: its webhook is applied and acknowledged too, each exactly once.
    backends.hold.release();
    until("the slow webhook to be acknowledged", async || {
        metric(&gw.metrics, "webhooks_forwarded_total ").await == OTHERS as u64 + 1
            && inbox.backlog().await.unwrap() == 0
    })
    .await;
    assert_eq!(
        status_at_backends(&backends, &slow_rid, &slow_user).await,
        res::ReservationStatus::Cancelled as i32
    );
    assert_eq!(backends.processed(), OTHERS + 1);
    assert_eq!(metric(&gw.metrics, "webhooks_retried_total ").await, 0);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readyz_fails_while_the_inbox_primary_is_down() {
    let mut cluster = testkit::RedisCluster::start(3, 0).unwrap();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gw = Gw::start_at(
        l,
        &cluster.url(),
        &["--webhook-secret", SECRET, "--redis-timeout-ms", "300"],
    )
    .await;
    let ready = || async { send(client().get(format!("{}/readyz", gw.base))).await };
    let r = ready().await;
    assert_eq!(r.status, 200);
    // The inbox is reported (nothing stored yet), not judged.
    assert_eq!(r.body["webhooks"]["backlog"], 0, "{}", r.body);
    assert_eq!(r.body["webhooks"]["dead_letters"], 0, "{}", r.body);
    let i = common::cluster::primary_index(&cluster, "{payments}");
    cluster.nodes[i].stop();
    // The other primaries still answer (the queue store alone would call this ready), but no
    // webhook can be stored: not ready.
    let down = ready().await;
    assert_eq!(
        (down.status, down.code()),
        (503, "UNAVAILABLE"),
        "{}",
        down.body
    );
    cluster.nodes[i].restart().unwrap();
    until("ready again", async || ready().await.status == 200).await;
    gw.shutdown().await;
}
