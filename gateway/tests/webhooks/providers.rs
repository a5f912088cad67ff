//! Deliveries from real providers, through real gateways (the helpers of `webhooks.rs`): Stripe
//! events in the shapes of Stripe's API reference mapped through `metadata.reservation_id`,
//! and Standard Webhooks `v1a` (Ed25519) signatures checked against configured public keys.

use super::*;
use proto::payment::v1 as pay;
use webhooks::Ed25519Signer;

/// A Stripe event fixture (`webhooks/tests/fixtures/stripe`, in the shapes of Stripe's API
/// reference) made about one of our payments: its event id, intent, reservation and amount.
fn stripe_event(name: &str, event_id: &str, intent: &str, rid: &str, amount: i64) -> String {
    let path = format!(
        "{}/../webhooks/tests/fixtures/stripe/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["id"] = json!(event_id);
    let o = &mut v["data"]["object"];
    o["metadata"]["reservation_id"] = json!(rid);
    if name.starts_with("payment_intent.") {
        o["id"] = json!(intent);
        o["amount"] = json!(amount);
        if name == "payment_intent.succeeded" {
            o["amount_received"] = json!(amount);
        }
    } else {
        o["payment_intent"] = json!(intent);
        o["amount_total"] = json!(amount);
        o["amount_subtotal"] = json!(amount);
    }
    // Pretty-printed, as Stripe sends it: the signature covers these exact bytes.
    serde_json::to_string_pretty(&v).unwrap()
}

/// A POST to /webhooks/stripe with `Stripe-Signature: header`.
async fn post_stripe(base: &str, header: &str, body: &str) -> Resp {
    send(
        client()
            .post(format!("{base}/webhooks/stripe"))
            .header("content-type", "application/json; charset=utf-8")
            .header("Stripe-Signature", header)
            .body(body.to_owned()),
    )
    .await
}

/// A one-seat reservation through the gateway, paid at Stripe: the shop's server (which holds
/// the Stripe key) created the payment there and gives the PaymentService Stripe's own id for
/// it, straight over gRPC. (reservation, our intent id.)
async fn paid_at_stripe(
    backends: &Backends, base: &str, token: &str, key: &str, stripe_id: &str,
) -> (String, String) {
    let rid = reserve(base, token, &format!("r-{key}"), 1).await;
    let p = proto::PaymentClient::new(backends.channel().await)
        .create_payment_intent(pay::CreatePaymentIntentRequest {
            reservation_id: rid.clone(),
            idempotency_key: format!("p-{key}"),
            provider_intent_id: stripe_id.to_owned(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    (rid, p.payment_intent_id)
}

/// Posts `body` signed by `stripe` now: answered 200 with `status` for event `id`.
async fn answered(base: &str, stripe: &Stripe, body: &str, status: &str, id: &str) {
    let r = post_stripe(base, &stripe.sign(webhook_now(), body.as_bytes()), body).await;
    assert_eq!(
        (r.status, &r.body),
        (200, &json!({"status": status, "webhook_id": id}))
    );
}

/// The v1 hex of a `t=…,v1=…` header.
fn v1_of(header: &str) -> &str {
    header.split_once(",v1=").unwrap().1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn real_stripe_events_settle_our_reservations_through_their_metadata() {
    let redis = RedisServer::start().unwrap();
    // Six holds pending at once under one admission: the limit of one is lifted here.
    let backends = Backends::start_with_hold_limit(None, &[("show", 10)], 0).await;
    let new_secret = "whsec_rolled_stripe_secret";
    let flags = shop_flags(&backends, &["--stripe-webhook-secret", new_secret]);
    let gw = Gw::on_free_port(&redis, &flags).await;
    let base = gw.base.clone();
    let token = open_and_admit(&base, "show", "alice").await;
    let old = Stripe::new(&[STRIPE_SECRET]).unwrap();
    let new = Stripe::new(&[new_secret]).unwrap();
    // While an endpoint secret is rolled, Stripe signs with the old and the new one: two v1
    // entries (and, on test-mode endpoints, a v0 that counts for nothing).
    let rolled = |body: &str| {
        let t = webhook_now();
        format!(
            "t={t},v1={},v1={},v0={}",
            v1_of(&old.sign(t, body.as_bytes())),
            v1_of(&new.sign(t, body.as_bytes())),
            "0".repeat(64)
        )
    };

    let (r1, pi1) = buy(&base, &token, "1", 1, "APPROVE").await;
    let (r2, pi2) = buy(&base, &token, "2", 2, "APPROVE").await;
    let (r3, pi3) = buy(&base, &token, "3", 1, "FAIL").await;
    let (r4, pi4) = buy(&base, &token, "4", 1, "FAIL").await;
    let (r5, pi5) = buy(&base, &token, "5", 1, "FAIL").await;
    let (r6, pi6) = buy(&base, &token, "6", 1, "APPROVE").await;
    assert_eq!(remaining(&base, &token).await, 3);
    // The simulator settles in milliseconds (it reports to nobody here): the worker checks
    // each outcome against it.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let succeeded = stripe_event("payment_intent.succeeded", "evt_ok_1", &pi1, &r1, PRICE);
    let r = post_stripe(&base, &rolled(&succeeded), &succeeded).await;
    assert_eq!(
        (r.status, &r.body),
        (
            200,
            &json!({"status": "accepted", "webhook_id": "evt_ok_1"})
        )
    );
    // Signed with the new secret alone, as Stripe signs once the old one has expired.
    for (name, id, pi, rid, amount) in [
        (
            "checkout.session.completed",
            "evt_ok_2",
            &pi2,
            &r2,
            2 * PRICE,
        ),
        (
            "payment_intent.payment_failed",
            "evt_no_3",
            &pi3,
            &r3,
            PRICE,
        ),
        ("payment_intent.canceled", "evt_no_4", &pi4, &r4, PRICE),
        ("checkout.session.expired", "evt_no_5", &pi5, &r5, PRICE),
    ] {
        let body = stripe_event(name, id, pi, rid, amount);
        let r = post_stripe(&base, &new.sign(webhook_now(), body.as_bytes()), &body).await;
        assert_eq!(r.status, 200, "{name}: {}", r.body);
    }
    // Our own simulator's shape still works on this route too, with fields we do not know.
    let ours = approved_body(&pi6, &r6, PRICE)
        .replacen('{', r#"{"id":"evt_sim_6","livemode":false,"#, 1)
        .replacen(r#""currency":"USD""#, r#""currency":"USD","note":"x""#, 1);
    let r = post_stripe(&base, &new.sign(webhook_now(), ours.as_bytes()), &ours).await;
    assert_eq!(r.status, 200, "{}", r.body);

    for (rid, want) in [
        (&r1, "CONFIRMED"),
        (&r2, "CONFIRMED"),
        (&r3, "CANCELLED"),
        (&r4, "CANCELLED"),
        (&r5, "CANCELLED"),
        (&r6, "CONFIRMED"),
    ] {
        wait_reservation(&base, &token, rid, want, Duration::from_secs(15)).await;
    }
    assert_eq!(remaining(&base, &token).await, 6);
    let r = reservation(&base, &token, &r1).await;
    assert_eq!(r["payment_intent_id"], json!(pi1));

    // Stripe retries an event (re-signed, same event id): a duplicate, not applied again.
    let r = post_stripe(
        &base,
        &new.sign(webhook_now(), succeeded.as_bytes()),
        &succeeded,
    )
    .await;
    assert_eq!(
        (r.status, &r.body),
        (
            200,
            &json!({"status": "duplicate", "webhook_id": "evt_ok_1"})
        )
    );

    // Verified but not ours: a payment of another integration on the account (no
    // metadata.reservation_id), and a type we do not act on. Acknowledged, counted, ignored.
    let mut foreign: Value = serde_json::from_str(&succeeded).unwrap();
    foreign["id"] = json!("evt_foreign");
    foreign["data"]["object"]["metadata"] = json!({"order_id": "A-1"});
    let foreign = foreign.to_string();
    let mut charge: Value = serde_json::from_str(&succeeded).unwrap();
    charge["id"] = json!("evt_charge");
    charge["type"] = json!("charge.succeeded");
    let charge = charge.to_string();
    for (body, id) in [(&foreign, "evt_foreign"), (&charge, "evt_charge")] {
        answered(&base, &new, body, "ignored", id).await;
    }
    assert_metrics(
        &gw.metrics,
        &[
            (
                "webhooks_ignored_total{type=\"payment_intent.succeeded\",reason=\"no_reservation\"} ",
                1,
            ),
            (
                "webhooks_ignored_total{type=\"charge.succeeded\",reason=\"unhandled_type\"} ",
                1,
            ),
        ],
    )
    .await;

    // Only v1 counts: a correct signature in the v0 slot, or under a secret no longer
    // configured, is refused.
    let t = webhook_now();
    let v0 = format!("t={t},v0={}", v1_of(&new.sign(t, charge.as_bytes())));
    let r = post_stripe(&base, &v0, &charge).await;
    assert_eq!((r.status, r.code()), (401, "INVALID_SIGNATURE"));
    let v0_beside_bad_v1 = format!("{v0},v1={}", "0".repeat(64));
    let r = post_stripe(&base, &v0_beside_bad_v1, &charge).await;
    assert_eq!((r.status, r.code()), (401, "INVALID_SIGNATURE"));
    let r = post_stripe(&base, &old.sign(t, charge.as_bytes()), &charge).await;
    assert_eq!((r.status, r.code()), (401, "INVALID_SIGNATURE"));

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(backends.processed(), 6, "each outcome applied once");
    assert_eq!(metric(&gw.metrics, "webhooks_forwarded_total ").await, 6);
    let dlq = send(
        client()
            .get(format!("{base}/admin/v1/dlq"))
            .bearer_auth(ADMIN),
    )
    .await;
    assert_eq!(dlq.body["dead_letters"], json!([]), "nothing dead-lettered");

    // Payments made at Stripe: its events name Stripe's own id (`pi_` and 24 characters),
    // never ours, and the reservation through our metadata.
    let (stripe_7, stripe_8) = ("pi_3MtwBwLkdIwHu7ix28a3tqPa", "pi_3MtwBwLkdIwHu7ix0b1c2d3e");
    let (r7, pi7) = paid_at_stripe(&backends, &base, &token, "7", stripe_7).await;
    let (r8, _) = paid_at_stripe(&backends, &base, &token, "8", stripe_8).await;
    let paid = stripe_event("payment_intent.succeeded", "evt_ok_7", stripe_7, &r7, PRICE);
    let declined = stripe_event(
        "payment_intent.payment_failed",
        "evt_no_8",
        stripe_8,
        &r8,
        PRICE,
    );
    answered(&base, &new, &paid, "accepted", "evt_ok_7").await;
    answered(&base, &new, &declined, "accepted", "evt_no_8").await;
    wait_reservation(&base, &token, &r7, "CONFIRMED", Duration::from_secs(15)).await;
    wait_reservation(&base, &token, &r8, "CANCELLED", Duration::from_secs(15)).await;
    assert_eq!(remaining(&base, &token).await, 5);
    // The sale names our intent, whose record keeps Stripe's id and the outcome.
    assert_eq!(
        reservation(&base, &token, &r7).await["payment_intent_id"],
        json!(pi7)
    );
    let status = proto::PaymentClient::new(backends.channel().await)
        .get_payment_status(pay::GetPaymentStatusRequest {
            payment_intent_id: pi7,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (status.status(), status.provider_intent_id.as_str()),
        (pay::PaymentStatus::Approved, stripe_7)
    );
    // Stripe resends the success: a duplicate, still one sale.
    answered(&base, &new, &paid, "duplicate", "evt_ok_7").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(backends.processed(), 8, "each outcome applied once");
    assert_eq!(remaining(&base, &token).await, 5);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ed25519_v1a_signatures_verify_against_the_configured_public_keys() {
    let redis = RedisServer::start().unwrap();
    let backends = Backends::start(None, &[("show", 10)]).await;
    let sender = Ed25519Signer::generate();
    let stranger = Ed25519Signer::generate();
    // Only a public key: the gateway holds no secret that could forge a webhook.
    let mut flags = backends.flags();
    flags.extend(["--webhook-public-key".into(), sender.public_key()]);
    let gw = Gw::on_free_port(&redis, &flags).await;
    let base = gw.base.clone();
    let token = open_and_admit(&base, "show", "alice").await;
    let (rid, intent) = buy(&base, &token, "1", 1, "APPROVE").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let body = approved_body(&intent, &rid, PRICE);
    let now = webhook_now();

    // Refused: another key's signature, a tampered body, a stale one, an HMAC (no secret is
    // configured), and a v1a-looking entry that is not a signature.
    let hmac = sign(SECRET, "msg_a", now, &body);
    let tampered = body.replace(&PRICE.to_string(), "1");
    for (id, ts, b, sig) in [
        (
            "msg_a",
            now,
            &body,
            stranger.sign("msg_a", now, body.as_bytes()),
        ),
        (
            "msg_a",
            now,
            &tampered,
            sender.sign("msg_a", now, body.as_bytes()),
        ),
        (
            "msg_a",
            now - 301,
            &body,
            sender.sign("msg_a", now - 301, body.as_bytes()),
        ),
        ("msg_a", now, &body, hmac),
        ("msg_a", now, &body, "v1a,bm90IGEgc2lnbmF0dXJl".to_owned()),
    ] {
        let r = send(webhook_post(&client(), &base, id, ts, b, &sig)).await;
        assert_eq!((r.status, r.code()), (401, "INVALID_SIGNATURE"), "{sig}");
    }
    assert_eq!(reservation(&base, &token, &rid).await["status"], "PENDING");

    // Accepted: the sender's v1a, here among entries that match nothing (a sender rotating
    // keys lists several), then stored, forwarded and applied.
    let mixed = format!(
        "v1,Zm9yZ2VkIHNpZ25hdHVyZSBvZiB0aGlydHkgdHdvIGJ5dGVzIQ== {} {}",
        stranger.sign("msg_a", now, body.as_bytes()),
        sender.sign("msg_a", now, body.as_bytes())
    );
    let r = send(webhook_post(&client(), &base, "msg_a", now, &body, &mixed)).await;
    assert_eq!(
        (r.status, &r.body),
        (200, &json!({"status": "accepted", "webhook_id": "msg_a"}))
    );
    wait_reservation(&base, &token, &rid, "CONFIRMED", Duration::from_secs(15)).await;
    assert_metrics(
        &gw.metrics,
        &[
            ("webhooks_rejected_total{reason=\"bad_signature\"} ", 4),
            ("webhooks_rejected_total{reason=\"stale\"} ", 1),
        ],
    )
    .await;
    gw.shutdown().await;

    // A gateway with only an HMAC secret does not take v1a entries on trust.
    let hmac_only = Gw::on_free_port(&redis, &["--webhook-secret", SECRET]).await;
    let sig = sender.sign("msg_b", now, body.as_bytes());
    let r = send(webhook_post(
        &client(),
        &hmac_only.base,
        "msg_b",
        now,
        &body,
        &sig,
    ))
    .await;
    assert_eq!((r.status, r.code()), (401, "INVALID_SIGNATURE"));
    hmac_only.shutdown().await;

    // GATEWAY_WEBHOOK_PUBLIC_KEY takes a comma-separated list (a real process, so that the
    // environment of this test process stays untouched).
    let url = redis.url();
    let keys = format!("{},{}", stranger.public_key(), sender.public_key());
    let p = GatewayProcess::spawn_with_env(
        &["--redis-url", &url],
        &[("GATEWAY_WEBHOOK_PUBLIC_KEY", &keys)],
    );
    for (id, signer) in [("msg_c", &sender), ("msg_d", &stranger)] {
        let sig = signer.sign(id, webhook_now(), body.as_bytes());
        let r = send(webhook_post(
            &client(),
            &p.url(""),
            id,
            webhook_now(),
            &body,
            &sig,
        ))
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let third = Ed25519Signer::generate();
    let sig = third.sign("msg_e", webhook_now(), body.as_bytes());
    let r = send(webhook_post(
        &client(),
        &p.url(""),
        "msg_e",
        webhook_now(),
        &body,
        &sig,
    ))
    .await;
    assert_eq!(r.status, 401, "{}", r.body);
    drop(p);

    // A key that is not one refuses to start, naming the flag.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gateway"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--redis-url",
            &url,
            "--webhook-public-key",
            "whpk_AAAA",
        ])
        .env("GATEWAY_METRICS_LISTEN", "")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--webhook-public-key") && err.contains("whpk_"),
        "{err}"
    );
}
