//! The admin API of priority access codes (gateway::access_codes).

use super::*;

operation! {
    post "/admin/v1/events/{event_id}/access-codes" => mint, "mintAccessCodes", tag "admin", admin, "Mint single-use priority access codes", [description = "Codes for the event's priority lane: a join carrying one (`access_code`) takes\na new place ahead of the general queue and spends the code. 128 random bits\neach, URL-safe base64 (22 characters); only their SHA-256 is stored, so the\ncodes are shown in this answer only (Cache-Control: no-store). Audited as\naccess_codes.mint with the count, never the codes.\n", params(("event_id" = EventId, Path), RequestId), request_body(content = MintAccessCodesRequest, content_type = "application/json", example = json!({"count": 2}))],
    201 => echoed[("Cache-Control" = String, description = "no-store")](description = "The new codes.", content_type = "application/json", body = AccessCodesMinted),
    404 => EventNotFound, AdminRefusals, ServerFailures, BodyFailures,
}

operation! {
    post "/admin/v1/events/{event_id}/access-codes/revoke" => revoke, "revokeAccessCodes", tag "admin", admin, "Revoke access codes (idempotent)", [description = "The codes travel in the body, never the path, so that none reaches an access\nlog (at most 10000 a call, within --max-body-bytes: about 600 codes at the\ndefault 16 KiB). `revoked` counts the codes that existed, spent or not; an\nunknown or malformed code counts 0, so a repeated call answers 0. A place\nalready taken with a revoked code stays. Audited as access_codes.revoke with\ncounts only.\n", params(("event_id" = EventId, Path), RequestId), request_body(content = RevokeAccessCodesRequest, content_type = "application/json", example = json!({"codes": ["q3Zk0v9mVd2n3xYbJf8wLg", "T1w2hJ6d0YxZ9pQe5r7s3A"]}))],
    200 => echoed(description = "Revoked.", content_type = "application/json", body = AccessCodesRevoked),
    404 => EventNotFound, AdminRefusals, ServerFailures, BodyFailures,
}
