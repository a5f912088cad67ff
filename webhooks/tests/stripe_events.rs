//! Real Stripe events (fixtures in the shapes of Stripe's API reference, `tests/fixtures/stripe`)
//! verified by the Stripe scheme and mapped to our payment outcomes.

use serde_json::{json, Value};
use webhooks::{
    parse_verified, IgnoreReason, Ignored, Parsed, PaymentData, PaymentEventType, Scheme, Stripe,
    VerifyError,
};

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/stripe/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn map(v: &Value) -> Parsed {
    parse_verified("stripe", v.to_string().as_bytes()).unwrap()
}

fn payment(v: &Value) -> (String, PaymentEventType, String, PaymentData) {
    match map(v) {
        Parsed::Payment(e) => (e.id.clone().unwrap(), e.kind, e.occurred_at(), e.data),
        other => panic!("not a payment: {other:?}"),
    }
}

fn ignored(kind: &str, reason: IgnoreReason) -> Parsed {
    Parsed::Ignored(Ignored {
        event_type: kind.into(),
        reason,
    })
}

#[test]
fn payment_intent_events_map_to_our_outcomes() {
    let (id, kind, at, d) = payment(&fixture("payment_intent.succeeded"));
    assert_eq!(id, "evt_3PfQ2bLkdIwHu7ix0Tb5Kq1A");
    assert_eq!(kind, PaymentEventType::Approved);
    assert_eq!(at, "2023-11-14T22:13:20Z");
    assert_eq!(
        d,
        PaymentData {
            payment_intent_id: "pi_3PfQ2bLkdIwHu7ix0wQm8Zc1".into(),
            reservation_id: "r_1_show".into(),
            amount_cents: 5000,
            currency: "USD".into(),
            failure_code: None,
        }
    );

    let (_, kind, _, d) = payment(&fixture("payment_intent.payment_failed"));
    assert_eq!(kind, PaymentEventType::Failed);
    assert_eq!(d.payment_intent_id, "pi_3PfQ3cLkdIwHu7ix1pR4Tt8s");
    assert_eq!(d.reservation_id, "r_2_show");
    assert_eq!(d.amount_cents, 2500);
    assert_eq!(d.failure_code.as_deref(), Some("card_declined"));

    let (_, kind, _, d) = payment(&fixture("payment_intent.canceled"));
    assert_eq!(kind, PaymentEventType::Cancelled);
    assert_eq!(
        (d.amount_cents, d.currency.as_str()),
        (7500, "EUR"),
        "amount and currency of the intent"
    );
    assert_eq!(d.failure_code.as_deref(), Some("abandoned"));
}

#[test]
fn the_amount_received_is_what_an_approval_reports_and_the_decline_code_backs_up_the_code() {
    let mut v = fixture("payment_intent.succeeded");
    v["data"]["object"]["amount_received"] = json!(4000);
    assert_eq!(payment(&v).3.amount_cents, 4000);
    v["data"]["object"]
        .as_object_mut()
        .unwrap()
        .remove("amount_received");
    assert_eq!(payment(&v).3.amount_cents, 5000);

    let mut v = fixture("payment_intent.payment_failed");
    v["data"]["object"]["last_payment_error"]["code"] = Value::Null;
    assert_eq!(
        payment(&v).3.failure_code.as_deref(),
        Some("insufficient_funds")
    );
    v["data"]["object"]["last_payment_error"] = Value::Null;
    assert_eq!(payment(&v).3.failure_code, None);
}

#[test]
fn checkout_session_events_map_through_the_sessions_metadata() {
    let (id, kind, _, d) = payment(&fixture("checkout.session.completed"));
    assert_eq!(id, "evt_1PfQ5eLkdIwHu7ixCs3Nn4D");
    assert_eq!(kind, PaymentEventType::Approved);
    assert_eq!(
        d,
        PaymentData {
            payment_intent_id: "pi_3PfQ5eLkdIwHu7ix3rT6Vv0u".into(),
            reservation_id: "r_4_show".into(),
            amount_cents: 5000,
            currency: "USD".into(),
            failure_code: None,
        }
    );
    // An expanded payment_intent gives its id.
    let mut v = fixture("checkout.session.completed");
    v["data"]["object"]["payment_intent"] =
        json!({"id": "pi_expanded", "object": "payment_intent", "amount": 5000});
    assert_eq!(payment(&v).3.payment_intent_id, "pi_expanded");

    // Expired: cancelled; it never had a payment intent, so the session id stands in.
    let (_, kind, _, d) = payment(&fixture("checkout.session.expired"));
    assert_eq!(kind, PaymentEventType::Cancelled);
    assert_eq!(
        d.payment_intent_id,
        "cs_test_b2C3d4E5f6G7h8I9j0K1lMnOpQrStUvWxYzA"
    );
    assert_eq!(d.reservation_id, "r_5_show");
    assert_eq!(d.failure_code.as_deref(), Some("expired"));

    // Completed but unpaid (a delayed payment method): not an outcome yet; the async events are.
    let mut v = fixture("checkout.session.completed");
    v["data"]["object"]["payment_status"] = json!("unpaid");
    assert_eq!(
        map(&v),
        ignored("checkout.session.completed", IgnoreReason::NotSettled)
    );
    v["type"] = json!("checkout.session.async_payment_succeeded");
    assert_eq!(payment(&v).1, PaymentEventType::Approved);
    v["type"] = json!("checkout.session.async_payment_failed");
    let (_, kind, _, d) = payment(&v);
    assert_eq!(kind, PaymentEventType::Failed);
    assert_eq!(d.failure_code.as_deref(), Some("async_payment_failed"));
}

#[test]
fn an_object_without_our_reservation_is_verified_but_not_ours() {
    for name in [
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "payment_intent.canceled",
        "checkout.session.completed",
        "checkout.session.expired",
    ] {
        for metadata in [
            json!({}),
            json!({"order": "42"}),
            json!({"reservation_id": ""}),
            Value::Null,
        ] {
            let mut v = fixture(name);
            v["data"]["object"]["metadata"] = metadata.clone();
            assert_eq!(
                map(&v),
                ignored(name, IgnoreReason::NoReservation),
                "{name} {metadata}"
            );
        }
        // Not ours even when the rest of the object is not what we would need.
        let mut v = fixture(name);
        v["data"]["object"] = json!({"id": "x", "metadata": {}});
        assert_eq!(map(&v), ignored(name, IgnoreReason::NoReservation));
    }
}

#[test]
fn other_types_are_ignored_and_broken_mapped_events_are_refused() {
    let mut v = fixture("payment_intent.succeeded");
    v["type"] = json!("charge.succeeded");
    assert_eq!(
        map(&v),
        ignored("charge.succeeded", IgnoreReason::UnhandledType)
    );
    // The Standard Webhooks route does not speak Stripe.
    let v = fixture("payment_intent.succeeded");
    assert_eq!(
        parse_verified("standard-webhooks", v.to_string().as_bytes()).unwrap(),
        ignored("payment_intent.succeeded", IgnoreReason::UnhandledType)
    );

    type Break = fn(&mut Value);
    let broken: [(&str, Break); 6] = [
        ("payment_intent.succeeded", |v| {
            v["data"]["object"]
                .as_object_mut()
                .unwrap()
                .remove("currency");
        }),
        ("payment_intent.payment_failed", |v| {
            v["data"]["object"]
                .as_object_mut()
                .unwrap()
                .remove("amount");
        }),
        ("payment_intent.canceled", |v| {
            v["data"]["object"]["amount"] = json!("lots")
        }),
        ("checkout.session.completed", |v| {
            v["data"]["object"]["amount_total"] = Value::Null;
        }),
        ("checkout.session.expired", |v| {
            v.as_object_mut().unwrap().remove("created");
        }),
        ("payment_intent.succeeded", |v| {
            v.as_object_mut().unwrap().remove("data");
        }),
    ];
    for (name, breaks) in broken {
        let mut v = fixture(name);
        breaks(&mut v);
        assert!(
            parse_verified("stripe", v.to_string().as_bytes()).is_err(),
            "{name}: {v}"
        );
    }
}

#[test]
fn a_signed_stripe_event_is_deduplicated_by_its_event_id() {
    let secret = "whsec_test_secret";
    let s = Stripe::new(&[secret]).unwrap();
    let body = fixture("payment_intent.succeeded").to_string();
    let t = 1_700_000_000;
    let header = s.sign(t, body.as_bytes());
    let h = vec![("Stripe-Signature", header.as_str())];
    let v = s.verify(&h, body.as_bytes(), t + 1).unwrap();
    assert_eq!(v.id, "evt_3PfQ2bLkdIwHu7ix0Tb5Kq1A");

    let Parsed::Payment(e) = map(&fixture("payment_intent.succeeded")) else {
        panic!()
    };
    let env = webhooks::envelope_of(&v, s.name(), Some(&e), body.as_bytes(), 1_700_000_001_000);
    assert_eq!(env.event_id, "evt_3PfQ2bLkdIwHu7ix0Tb5Kq1A");
    assert_eq!(env.event_type, "payment.approved");
    assert_eq!(env.source, "stripe");
    assert_eq!(env.occurred_at, "2023-11-14T22:13:20Z");
    // The stored payload is Stripe's event verbatim, every field we do not read included.
    assert_eq!(env.payload, body);

    // Secret roll: Stripe signs with the old and the new secret while both are live; an
    // endpoint that knows only the new one finds its v1 among them.
    let new = Stripe::new(&["whsec_new_secret"]).unwrap();
    let old_sig = header.split_once(",v1=").unwrap().1;
    let new_sig = new.sign(t, body.as_bytes());
    let new_sig = new_sig.split_once(",v1=").unwrap().1;
    let rolled = format!("t={t},v1={old_sig},v1={new_sig}");
    let h = vec![("Stripe-Signature", rolled.as_str())];
    assert!(new.verify(&h, body.as_bytes(), t).is_ok());
    assert!(s.verify(&h, body.as_bytes(), t).is_ok());
    // A valid signature in the v0 slot counts for nothing: only v1 is checked.
    let v0_only = format!("t={t},v0={old_sig},v1={}", "0".repeat(64));
    let h = vec![("Stripe-Signature", v0_only.as_str())];
    assert_eq!(
        s.verify(&h, body.as_bytes(), t),
        Err(VerifyError::BadSignature)
    );
    let v0_alone = format!("t={t},v0={old_sig}");
    let h = vec![("Stripe-Signature", v0_alone.as_str())];
    assert_eq!(
        s.verify(&h, body.as_bytes(), t),
        Err(VerifyError::MissingHeader)
    );
}
