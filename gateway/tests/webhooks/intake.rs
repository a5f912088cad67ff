//! The webhook door: only well-signed, fresh deliveries within the size limit are taken, with
//! one generic refusal; verified bodies are stored verbatim, other types acknowledged and
//! ignored, junk dead-lettered; Stripe's scheme on its own route; no door without a secret.

use super::*;
use std::time::{SystemTime, UNIX_EPOCH};

/// The current Unix second, waiting first for a fresh one to begin: a timestamp just past the
/// window in the future (now + 301) is then judged within the same second by the gateway, not
/// one second later, when it would be back inside the window.
async fn at_second_start() -> i64 {
    let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    tokio::time::sleep(Duration::from_nanos(
        1_000_000_000 - u64::from(t.subsec_nanos()),
    ))
    .await;
    webhook_now()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_well_signed_fresh_webhooks_are_accepted() {
    let redis = RedisServer::start().unwrap();
    // No worker: webhooks are stored, not forwarded (this test is about the door).
    let gw = Gw::on_free_port(
        &redis,
        &[
            "--webhook-secret",
            SECRET,
            "--webhook-secret",
            OLD_SECRET,
            "--stripe-webhook-secret",
            STRIPE_SECRET,
        ],
    )
    .await;
    let base = gw.base.clone();
    let body = approved_body("pi_1_show", "r_1_show", 5000);
    let now = webhook_now();
    // `id` signed by `secret` at `ts`, all headers there.
    let deliver =
        |secret: &str, id: &str, ts: i64, b: &str| send(signed(&base, secret, id, ts, b, None));

    let ok = deliver(SECRET, "msg_ok", now, &body).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(
        ok.body,
        json!({"status": "accepted", "webhook_id": "msg_ok"})
    );
    let again = deliver(SECRET, "msg_ok", now, &body).await;
    assert_eq!(
        (again.status, &again.body["status"]),
        (200, &json!("duplicate"))
    );
    // Rotation: the old secret still verifies while it is configured.
    let old = deliver(OLD_SECRET, "msg_old", now, &body).await;
    assert_eq!(old.status, 200, "{}", old.body);
    // Within the window either way.
    for (id, ts) in [("msg_early", now - 290), ("msg_late", now + 290)] {
        assert_eq!(deliver(SECRET, id, ts, &body).await.status, 200);
    }

    let wrong = "whsec_d3Jvbmcgc2VjcmV0IGtleSBmb3IgdGVzdHM=";
    let mut refusals = vec![
        deliver(wrong, "msg_wrong", now, &body).await,
        deliver(SECRET, "msg_stale", now - 301, &body).await,
        deliver(SECRET, "msg_future", at_second_start().await + 301, &body).await,
    ];
    for (id, missing) in [
        ("msg_noid", "webhook-id"),
        ("msg_nots", "webhook-timestamp"),
        ("msg_nosig", "webhook-signature"),
    ] {
        refusals.push(send(signed(&base, SECRET, id, now, &body, Some(missing))).await);
    }
    // Tampered: a valid signature over another body, amount changed.
    let sig = sign(SECRET, "msg_tamper", now, &body);
    let tampered = body.replace("5000", "1");
    let forged = [
        (sig.clone(), tampered.clone()),
        (
            "v1,Zm9yZ2VkIHNpZ25hdHVyZSBvZiB0aGlydHkgdHdvIGJ5dGVzIQ==".into(),
            body.clone(),
        ),
        ("v1a,whatever v2,abc".into(), body.clone()),
    ];
    for (sig, b) in forged {
        refusals.push(send(webhook_post(&client(), &base, "msg_tamper", now, &b, &sig)).await);
    }
    let first_message = refusals[0].body["error"]["message"].clone();
    for r in &refusals {
        assert_eq!(
            (r.status, r.code()),
            (401, "INVALID_SIGNATURE"),
            "{}",
            r.body
        );
        // One generic answer: nothing tells a forger which check failed.
        assert_eq!(r.body["error"]["message"], first_message);
    }

    // Near the 256 KiB limit: accepted; past it: 413.
    let pad = |n: usize| {
        let mut v: Value = serde_json::from_str(&body).unwrap();
        let base_len = body.len() + r#","failure_code":"""#.len();
        v["data"]["failure_code"] = json!("x".repeat(n - base_len));
        let s = v.to_string();
        assert_eq!(s.len(), n);
        s
    };
    let r = deliver(SECRET, "msg_big", now, &pad(256 * 1024 - 16)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = deliver(SECRET, "msg_huge", now, &pad(256 * 1024 + 1)).await;
    assert_eq!(
        (r.status, r.code()),
        (413, "PAYLOAD_TOO_LARGE"),
        "{}",
        r.body
    );

    // Forward compatibility: a field we do not know (at the top or in `data`) is no reason to
    // refuse a verified webhook; it is stored with the rest of the body, verbatim.
    let extended = body.replacen(
        r#""currency":"USD""#,
        r#""currency":"USD","note":"gift for Ada""#,
        1,
    );
    let extended = extended.replacen('{', r#"{"api_version":"2027-01-01","#, 1);
    assert!(extended.contains("note") && extended.contains("api_version"));
    let r = deliver(SECRET, "msg_extra", now, &extended).await;
    assert_eq!(
        (r.status, &r.body),
        (
            200,
            &json!({"status": "accepted", "webhook_id": "msg_extra"})
        )
    );
    let stored =
        testkit::raw_command(redis.port(), "XREVRANGE wh:{payments}:inbox + - COUNT 1").unwrap();
    assert!(
        stored.contains("msg_extra") && stored.contains(&extended),
        "{stored}"
    );

    // A verified event of a type we do not act on is acknowledged (so the provider stops
    // retrying it), counted, and neither stored nor dead-lettered.
    let refund = r#"{"type":"payment.refunded","timestamp":"2026-11-24T08:00:00Z","data":{"payment_intent_id":"pi_1_show"}}"#;
    for _ in 0..2 {
        let r = deliver(SECRET, "msg_refund", now, refund).await;
        assert_eq!(
            (r.status, &r.body),
            (
                200,
                &json!({"status": "ignored", "webhook_id": "msg_refund"})
            )
        );
    }

    // Well signed but not a payment event (not JSON, or one of our types without its data):
    // 400 and a dead letter.
    let junk = r#"{"type":"payment.approved","data":{}}"#;
    for (id, b) in [("msg_junk", junk), ("msg_text", "approved!")] {
        let r = deliver(SECRET, id, now, b).await;
        assert_eq!((r.status, r.code()), (400, "INVALID_PAYLOAD"), "{}", r.body);
    }
    let dlq = get_as(&base, "/admin/v1/dlq", ADMIN).await;
    assert_eq!(dlq.status, 200, "{}", dlq.body);
    let letters = dlq.body["dead_letters"].as_array().unwrap();
    assert_eq!(letters.len(), 2, "{}", dlq.body);
    assert_eq!(letters[0]["envelope"]["event_id"], "msg_text");
    assert_eq!(letters[0]["envelope"]["payload"], "approved!");
    assert_eq!(letters[1]["envelope"]["event_id"], "msg_junk");
    assert_eq!(letters[1]["envelope"]["payload"], junk);
    assert_eq!(letters[1]["attempts"], 0);
    assert_eq!(letters[1]["status"], "active");

    // Stripe's scheme on its own route.
    let stripe = Stripe::new(&[STRIPE_SECRET]).unwrap();
    let sbody = approved_body("pi_2_show", "r_2_show", 5000).replacen('{', r#"{"id":"evt_1","#, 1);
    let to_stripe = |signed_at: i64| {
        send(
            client()
                .post(format!("{base}/webhooks/stripe"))
                .header("Stripe-Signature", stripe.sign(signed_at, sbody.as_bytes()))
                .body(sbody.clone()),
        )
    };
    let ok = to_stripe(now).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["webhook_id"], "evt_1");
    let bad = to_stripe(now - 301).await;
    assert_eq!((bad.status, bad.code()), (401, "INVALID_SIGNATURE"));

    assert_metrics(
        &gw.metrics,
        &[
            ("webhooks_rejected_total{reason=\"stale\"} ", 2),
            ("webhooks_rejected_total{reason=\"future\"} ", 1),
            ("webhooks_rejected_total{reason=\"missing_header\"} ", 3),
            ("webhooks_rejected_total{reason=\"bad_signature\"} ", 4),
            ("webhooks_rejected_total{reason=\"too_large\"} ", 1),
            ("webhooks_rejected_total{reason=\"malformed\"} ", 2),
            (
                "webhooks_ignored_total{type=\"payment.refunded\",reason=\"unhandled_type\"} ",
                2,
            ),
            ("webhooks_duplicates_total ", 1),
        ],
    )
    .await;
    gw.shutdown().await;

    // A gateway without webhook secrets has no webhook door.
    let plain = TestGateway::start(&[]).await;
    let r = send(signed(&plain.url(""), SECRET, "msg_x", now, &body, None)).await;
    assert_eq!((r.status, r.code()), (501, "WEBHOOKS_DISABLED"));
    assert!(!r.headers.contains_key("retry-after"));
    plain.shutdown().await;
}
