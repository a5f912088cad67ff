//! Tests of the error table: its columns, and that every code is documented.

use super::*;
use proto::common::v1::{Error, ErrorCode};
use tonic::Code as C;

fn upstream(status: tonic::Status) -> ApiError {
    ApiError::Upstream(UpstreamError::Status {
        upstream: "inventory",
        status,
    })
}

#[test]
fn grpc_statuses_map_to_http_in_one_table() {
    let cases = [
        (C::InvalidArgument, 400, "INVALID_ARGUMENT"),
        (C::NotFound, 404, "NOT_FOUND"),
        (C::AlreadyExists, 409, "ALREADY_EXISTS"),
        (C::FailedPrecondition, 409, "FAILED_PRECONDITION"),
        (C::ResourceExhausted, 429, "RESOURCE_EXHAUSTED"),
        (C::Unavailable, 503, "UPSTREAM_UNAVAILABLE"),
        (C::DeadlineExceeded, 504, "UPSTREAM_TIMEOUT"),
        (C::PermissionDenied, 403, "FORBIDDEN"),
        (C::Unauthenticated, 401, "UNAUTHENTICATED"),
        (C::Internal, 502, "UPSTREAM_ERROR"),
        (C::Unknown, 502, "UPSTREAM_ERROR"),
        (C::Unimplemented, 502, "UPSTREAM_ERROR"),
    ];
    for (code, http, name) in cases {
        let (s, c) = upstream(tonic::Status::new(code, "x")).status_and_code();
        assert_eq!((s.as_u16(), c), (http, name), "{code:?}");
    }
    for (e, http, name) in [
        (
            UpstreamError::NotConfigured("payment"),
            501,
            "UPSTREAM_NOT_CONFIGURED",
        ),
        (
            UpstreamError::Overloaded("payment"),
            503,
            "UPSTREAM_OVERLOADED",
        ),
        (UpstreamError::CircuitOpen("payment"), 503, "CIRCUIT_OPEN"),
        (UpstreamError::Timeout("payment"), 504, "UPSTREAM_TIMEOUT"),
    ] {
        let (s, c) = ApiError::Upstream(e).status_and_code();
        assert_eq!((s.as_u16(), c), (http, name));
    }
}

#[test]
fn the_backend_error_code_names_client_errors_only() {
    let with = |code, ec: ErrorCode| {
        let detail = Error {
            code: ec as i32,
            message: "m".into(),
            ..Default::default()
        };
        upstream(proto::status_with_error(code, "m", detail)).status_and_code()
    };
    let (s, c) = with(C::FailedPrecondition, ErrorCode::InventoryConflict);
    assert_eq!((s.as_u16(), c), (409, "INVENTORY_CONFLICT"));
    let (s, c) = with(C::AlreadyExists, ErrorCode::IdempotencyConflict);
    assert_eq!((s.as_u16(), c), (409, "IDEMPOTENCY_CONFLICT"));
    let (s, c) = with(C::FailedPrecondition, ErrorCode::HoldLimit);
    assert_eq!((s.as_u16(), c), (409, "HOLD_LIMIT"));
    // A 5xx keeps the gateway's own code: the backend's UNAVAILABLE is about its store.
    let (s, c) = with(C::Unavailable, ErrorCode::Unavailable);
    assert_eq!((s.as_u16(), c), (503, "UPSTREAM_UNAVAILABLE"));
}

#[test]
fn internal_upstream_messages_are_not_shown() {
    let r = upstream(tonic::Status::internal("redis at 10.0.0.7:6379 refused")).public_message();
    assert!(!r.contains("10.0.0.7"), "{r}");
    let r = upstream(tonic::Status::failed_precondition("seats taken: A-1")).public_message();
    assert_eq!(r, "seats taken: A-1");
}

#[test]
fn gateway_errors_become_grpc_statuses_with_the_http_code_as_reason() {
    let s = ApiError::Queue(QueueError::NotReady).to_grpc_status();
    assert_eq!(s.code(), C::FailedPrecondition);
    let e = proto::error_of(&s).unwrap();
    assert_eq!(e.code, ErrorCode::FailedPrecondition as i32);
    assert_eq!(e.details[0].reason, "NOT_READY");
    let s = ApiError::Queue(QueueError::InvalidToken).to_grpc_status();
    assert_eq!(s.code(), C::Unauthenticated);
    let s = ApiError::Queue(QueueError::InvalidAssertion("it has expired")).to_grpc_status();
    assert_eq!(s.code(), C::PermissionDenied);
    assert_eq!(
        proto::error_of(&s).unwrap().details[0].reason,
        "INVALID_ASSERTION"
    );
    let s = ApiError::Queue(QueueError::AssertionsDisabled).to_grpc_status();
    assert_eq!(s.code(), C::InvalidArgument);
    assert_eq!(
        proto::error_of(&s).unwrap().details[0].reason,
        "ASSERTIONS_DISABLED"
    );
    let s = ApiError::Queue(QueueError::EventNotFound("x".into())).to_grpc_status();
    assert_eq!(s.code(), C::NotFound);
    let s = ApiError::Queue(QueueError::Unavailable("redis".into())).to_grpc_status();
    assert_eq!(s.code(), C::Unavailable);
    assert!(!s.message().contains("redis"));
    let e = ApiError::Queue(QueueError::NotReplicated {
        wanted: 1,
        acked: 0,
    });
    assert_eq!(
        e.status_and_code(),
        (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE")
    );
    assert_eq!(ApiError::Timeout.to_grpc_status().code(), C::Unavailable);
    let s = ApiError::Upstream(UpstreamError::Timeout("inventory")).to_grpc_status();
    assert_eq!(s.code(), C::DeadlineExceeded);
    assert_eq!(
        proto::error_of(&s).unwrap().code,
        ErrorCode::UpstreamTimeout as i32
    );
}

#[test]
fn the_grpc_column_keeps_the_upstream_client_codes_and_names_the_admin_ones() {
    let s = upstream(tonic::Status::already_exists("key reused")).to_grpc_status();
    assert_eq!(
        s.code(),
        C::AlreadyExists,
        "HTTP says 409, gRPC keeps the code"
    );
    let s = upstream(tonic::Status::internal("x")).to_grpc_status();
    assert_eq!(
        s.code(),
        C::Unavailable,
        "a 5xx is the gateway's report (502)"
    );
    let s = ApiError::Upstream(UpstreamError::CircuitOpen("inventory")).to_grpc_status();
    assert_eq!(s.code(), C::Unavailable);
    assert_eq!(
        proto::error_of(&s).unwrap().details[0].reason,
        "CIRCUIT_OPEN"
    );
    let m = ApiError::Maintenance;
    assert_eq!(
        m.status_and_code(),
        (StatusCode::SERVICE_UNAVAILABLE, "MAINTENANCE")
    );
    assert_eq!(m.to_grpc_status().code(), C::Unavailable);
    let r = ApiError::Maintenance.into_response();
    assert_eq!(r.headers()[header::RETRY_AFTER], MAINTENANCE_RETRY_AFTER);
    let c = ApiError::ConfirmationRequired;
    assert_eq!(
        c.status_and_code(),
        (StatusCode::BAD_REQUEST, "CONFIRMATION_REQUIRED")
    );
    assert_eq!(c.to_grpc_status().code(), C::InvalidArgument);
}

#[test]
fn webhook_failures_map_to_one_generic_401_and_hide_inbox_details() {
    use webhooks::{InboxError as I, VerifyError as V};
    for v in [
        V::MissingHeader,
        V::BadTimestamp,
        V::Stale,
        V::Future,
        V::BadSignature,
    ] {
        let e = ApiError::Webhook(WebhookError::InvalidSignature(v));
        assert_eq!(
            e.status_and_code(),
            (StatusCode::UNAUTHORIZED, "INVALID_SIGNATURE")
        );
        assert_eq!(e.public_message(), "invalid webhook signature");
    }
    let cases = [
        (WebhookError::Disabled, 501, "WEBHOOKS_DISABLED"),
        (WebhookError::Malformed("x".into()), 400, "INVALID_PAYLOAD"),
        (WebhookError::TooLarge, 413, "PAYLOAD_TOO_LARGE"),
        (WebhookError::Inbox(I::NotFound), 404, "NOT_FOUND"),
        (WebhookError::Inbox(I::InvalidId), 404, "NOT_FOUND"),
        (
            WebhookError::Inbox(I::AlreadyResolved),
            409,
            "ALREADY_RESOLVED",
        ),
        (
            WebhookError::Inbox(I::Unavailable("10.0.0.7".into())),
            503,
            "UNAVAILABLE",
        ),
        (
            WebhookError::Inbox(I::Protocol("10.0.0.7".into())),
            500,
            "INTERNAL",
        ),
    ];
    for (e, http, code) in cases {
        let e = ApiError::Webhook(e);
        let (s, c) = e.status_and_code();
        assert_eq!((s.as_u16(), c), (http, code));
        assert!(!e.public_message().contains("10.0.0.7"));
    }
}

#[test]
fn the_table_alone_decides_retry_after() {
    for k in Kind::ALL {
        // Retrying helps exactly where the status says "later": a 503 that retrying
        // cannot help would be a lie (configuration is 501, a bug 500).
        if k.http == StatusCode::SERVICE_UNAVAILABLE {
            assert!(k.retry_after.is_some(), "{k:?}");
        }
        if k.retry_after.is_some() {
            assert!(
                [
                    StatusCode::SERVICE_UNAVAILABLE,
                    StatusCode::TOO_MANY_REQUESTS
                ]
                .contains(&k.http),
                "{k:?}"
            );
        }
    }
    let retry = |e: ApiError| {
        e.into_response()
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(retry(ApiError::Timeout).as_deref(), Some("1"));
    assert_eq!(
        retry(ApiError::RateLimited {
            retry_after_secs: 20
        })
        .as_deref(),
        Some("20")
    );
    assert_eq!(retry(ApiError::Maintenance).as_deref(), Some("30"));
    assert_eq!(
        MAINTENANCE_RETRY_AFTER,
        MAINTENANCE_RETRY_AFTER_SECS.to_string()
    );
    for permanent in [
        ApiError::Webhook(WebhookError::Disabled),
        ApiError::Upstream(UpstreamError::NotConfigured("payment")),
        ApiError::Queue(QueueError::Protocol("x".into())),
        ApiError::RequestTimeout,
        ApiError::Upstream(UpstreamError::Timeout("payment")),
    ] {
        assert_eq!(retry(permanent), None);
    }
}

#[test]
fn pages_take_status_text_and_retry_after_from_the_table() {
    let p = page(&ApiError::Queue(QueueError::EventNotFound("x".into())));
    assert_eq!((p.status.as_u16(), p.retry_after), (404, None));
    let p = page(&ApiError::Queue(QueueError::Unavailable("10.0.0.7".into())));
    assert_eq!((p.status.as_u16(), p.retry_after), (503, Some(5)));
    assert_eq!(p.title, "Please wait");
    let p = page(&ApiError::Maintenance);
    assert_eq!((p.status.as_u16(), p.retry_after), (503, Some(30)));
    // A bug is not "busy": reloading cannot help, so no 503 and no Retry-After (it was a
    // 503 "Please wait" with Retry-After: 5).
    let p = page(&ApiError::Queue(QueueError::Key("bad key".into())));
    assert_eq!((p.status.as_u16(), p.retry_after), (500, None));
}

#[test]
fn websocket_close_codes_follow_the_table() {
    assert_eq!(
        ws_close(&QueueError::Unavailable("10.0.0.7".into())),
        (1013, "queue unavailable, retry")
    );
    assert_eq!(ws_close(&QueueError::Overloaded).0, 1013);
    // Retrying cannot bring back an event that does not exist (it was 1013 "try again").
    assert_eq!(
        ws_close(&QueueError::EventNotFound("x".into())),
        (4404, "event not found")
    );
    assert_eq!(ws_close(&QueueError::Protocol("x".into())).0, 4500);
    let s = grpc_of_ws_close(4404, "event not found").unwrap();
    assert_eq!(s.code(), C::NotFound);
    assert_eq!(grpc_of_ws_close(1013, "r").unwrap().code(), C::Unavailable);
    assert!(grpc_of_ws_close(1000, "token expired").is_none());
    assert_eq!(
        ws::default_close(&QueueError::EventNotFound("x".into())),
        ws_close(&QueueError::EventNotFound("x".into()))
    );
}

#[test]
fn the_backend_codes_are_named_by_the_table_not_built_from_strings() {
    use ErrorCode as E;
    for c in [
        E::InvalidArgument,
        E::Unauthenticated,
        E::Forbidden,
        E::NotFound,
        E::AlreadyExists,
        E::IdempotencyRequired,
        E::ReservationExpired,
        E::InventoryConflict,
        E::FailedPrecondition,
        E::IdempotencyConflict,
        E::HoldLimit,
        E::Internal,
        E::Unavailable,
        E::Timeout,
        E::UpstreamTimeout,
    ] {
        let k = Kind::of_backend_code(c).unwrap();
        assert_eq!(Some(k.code), c.as_str_name().strip_prefix("ERROR_CODE_"));
        assert_eq!(k.proto, c);
    }
    // A row whose code names a common.v1 code carries that code in gRPC details.
    for k in Kind::ALL {
        if let Some(c) = ErrorCode::from_str_name(&format!("ERROR_CODE_{}", k.code)) {
            assert_eq!(k.proto, c, "{k:?}");
        }
    }
}

#[test]
fn every_code_is_documented_in_the_api_reference_and_the_openapi_enum() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let api = std::fs::read_to_string(root.join("docs/api.md")).unwrap();
    let openapi = std::fs::read_to_string(root.join("docs/openapi.yaml")).unwrap();
    // The enum of the Error schema: the `- CODE` lines after `code:` … `enum:`.
    let at = openapi.find("    Error:\n").expect("the Error schema");
    let schema = &openapi[at..];
    let start = schema.find("enum:").unwrap();
    let listed: Vec<&str> = schema[start..]
        .lines()
        .skip(1)
        .map_while(|l| l.trim().strip_prefix("- "))
        .collect();
    let codes: Vec<&str> = codes().collect();
    assert!(codes.len() > 40, "{codes:?}");
    for code in &codes {
        assert!(
            api.contains(&format!("`{code}`")),
            "{code} not in docs/api.md"
        );
        assert!(listed.contains(code), "{code} not in the OpenAPI enum");
    }
    for code in listed {
        assert!(codes.contains(&code), "{code} is in the OpenAPI enum only");
    }
}
