//! Bad input over real gRPC, on the in-memory store and on a real Redis: every service answers
//! INVALID_ARGUMENT (or NOT_FOUND for what does not exist) and changes nothing.

mod common;

use anyhow::Result;
use common::{
    approval, assert_refusal, availability, check, code_of, hold, hold_refused, intent, lookup,
    lookup_refused, pay_refused, process_refused, refusal, reserve, with_seats, Harness, Kind,
    Options,
};
use proto::common::v1::{ErrorCode, Money};
use proto::payment::v1::{CreatePaymentIntentRequest, GetPaymentStatusRequest, PaymentScenario};
use proto::reservation::v1::{CheckAvailabilityRequest, PaymentResult, ProcessPaymentRequest};
use tonic::Code;

both_stores!(bad_input_is_invalid_argument);
async fn bad_input_is_invalid_argument(kind: Kind) -> Result<()> {
    let h = Harness::start(kind, Options::default()).await?;
    let bad = [
        reserve("", 1, "u", "k"),
        reserve("no spaces", 1, "u", "k"),
        reserve(&"x".repeat(65), 1, "u", "k"),
        reserve("show", 0, "u", "k"),
        reserve("show", -1, "u", "k"),
        reserve("show", 11, "u", "k"),
        reserve("show", 1, "", "k"),
        with_seats(&["A-1", "A-1"], reserve("show", 0, "u", "k")),
        with_seats(&["a-1"], reserve("show", 0, "u", "k")),
        with_seats(&["A-1"], reserve("show", 2, "u", "k")),
    ];
    for req in bad {
        let e = hold_refused(&h, req.clone()).await?;
        assert_eq!(e.code(), Code::InvalidArgument, "{req:?}: {e:?}");
        assert_eq!(code_of(&e), Some(ErrorCode::InvalidArgument));
    }
    let e = hold_refused(&h, reserve("show", 1, "u", "")).await?;
    assert_refusal(&e, Code::InvalidArgument, ErrorCode::IdempotencyRequired);
    let e = hold_refused(&h, reserve("nope", 1, "u", "k")).await?;
    assert_eq!(e.code(), Code::NotFound);

    for id in [
        "",
        "r_",
        "r_123_show",
        "x_00000000000000000000000000000000_show",
        "r_00000000000000000000000000000000_bad event",
    ] {
        let e = lookup_refused(&h, lookup(id, "")).await?;
        assert_eq!(e.code(), Code::InvalidArgument, "{id}");
    }
    let e = lookup_refused(&h, lookup("r_00000000000000000000000000000000_show", "")).await?;
    assert_eq!(e.code(), Code::NotFound);

    let r = hold(&h, reserve("show", 1, "u", "k")).await?;
    // Someone else's reservation is not found.
    let e = lookup_refused(&h, lookup(&r.reservation_id, "mallory")).await?;
    assert_eq!(e.code(), Code::NotFound);
    let approve = intent(&r.reservation_id, PaymentScenario::Approve, "p");
    for req in [
        CreatePaymentIntentRequest {
            scenario: 99,
            ..approve.clone()
        },
        intent(&r.reservation_id, PaymentScenario::Approve, ""),
        CreatePaymentIntentRequest {
            amount: Some(Money {
                amount_cents: 1,
                currency: "USD".into(),
            }),
            ..approve
        },
    ] {
        let e = pay_refused(&h, req.clone()).await?;
        assert_eq!(e.code(), Code::InvalidArgument, "{req:?}");
    }
    let e = h
        .payments()
        .get_payment_status(GetPaymentStatusRequest {
            payment_intent_id: "pi_zz".into(),
        })
        .await;
    assert_eq!(refusal(e)?.code(), Code::InvalidArgument);

    let unknown_intent = "pi_00000000000000000000000000000000_show";
    let unspecified = ProcessPaymentRequest {
        result: PaymentResult::Unspecified as i32,
        ..approval(unknown_intent, &r.reservation_id)
    };
    let e = process_refused(&h, unspecified).await?;
    assert_eq!(e.code(), Code::InvalidArgument, "unspecified result");
    let e = process_refused(&h, approval(unknown_intent, &r.reservation_id)).await?;
    assert_eq!(e.code(), Code::NotFound);

    let mut i = h.inventory();
    for req in [
        CheckAvailabilityRequest {
            section: "a".into(),
            ..availability("show", &[])
        },
        CheckAvailabilityRequest {
            quantity: -1,
            ..availability("show", &[])
        },
        availability("show", &["A-1-2"]),
    ] {
        let e = refusal(i.check_availability(req).await)?;
        assert_eq!(e.code(), Code::InvalidArgument);
    }
    let by_section = CheckAvailabilityRequest {
        section: "A".into(),
        quantity: 3,
        ..availability("show", &[])
    };
    let by_section = check(&h, by_section).await?;
    assert!(by_section.available);
    assert_eq!(
        by_section.remaining_in_section, 9,
        "10 seats in row A, one held"
    );
    assert_eq!(by_section.available_seats.len(), 3);
    h.stop().await
}
