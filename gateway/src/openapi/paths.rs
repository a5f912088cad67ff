//! The path declarations: one doc function per handler, in a module named after the
//! handler's module (the handlers themselves stay free of documentation attributes).

#![allow(dead_code)]

use super::responses;
use super::schemas::*;
use super::Error;
use common::*;

#[macro_use]
mod common;
pub mod access_codes;
pub mod console;
pub mod page;

pub mod handlers {
    use super::*;

    operation! {
        post "/api/v1/queue/join" => join, "joinQueue", tag "queue", public, "Take a place in an event's queue (or get the session's existing place)", [description = "201 for a new place. 200 when the same (event_id, session_id) already holds\na place: the same waiting_token and the current position are returned. A\nsession whose place is gone gets a new place at the back (201).\n\nIdentity: the admission's sub is the session_id, unless the join carries a\nuser_assertion (an HS256 JWT the origin signed with --user-assertion-key) that\nverifies: then sub is its sub, and the place belongs to the pair (session_id,\nuser), so a re-join of the session under another identity is another place and\nnever re-labels a ticket. user_id is accepted and ignored.\n\nFor an event with a join_challenge every join (a re-join included) must carry\n`challenge`: a fresh solution of GET /api/v1/queue/challenge.\n\nA join with a valid `access_code` (POST /admin/v1/events/{event_id}/access-codes)\ntakes its new place in the priority lane, ahead of the general queue, and spends\nthe code in the same atomic step; a session that already holds a place keeps it\nand does not spend the code. The reply says the event's queueing_method now.\n", params(RequestId), request_body(content = crate::handlers::JoinBody, content_type = "application/json", example = json!({"event_id": "demo", "session_id": "sess-123", "user_assertion": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTQyIiwiZXhwIjoxNzcyMzU1NjAwfQ.c2lnbmF0dXJl"}))],
        201 => echoed(description = "A new place.", content_type = "application/json", body = JoinResponse, example = json!({"waiting_token": "eyJlIjoiZGVtbyIsInQiOjcsInMiOiJzZXNzLTEyMyJ9.Wm9v", "position": 1234, "eta_seconds": 617, "status": "WAITING", "expires_at": "2026-03-01T10:00:00Z"})),
        200 => echoed(description = "The session already holds a place; its current position and a waiting_token for it (the same one within the same second).", content_type = "application/json", body = JoinResponse),
        403 => echoed(description = "INVALID_ASSERTION (the user_assertion did not verify; see InvalidAssertion), CHALLENGE_REQUIRED / CHALLENGE_FAILED (an event with a join_challenge; see ChallengeRefused), QUEUE_CLOSED (the event's queueing_method is reject: no joins, refreshes of a held place included) or INVALID_ACCESS_CODE (the access_code is unknown, malformed, revoked or spent by another session). No place is taken.", content_type = "application/json", body = Error),
        400 => InvalidArgument, 404 => EventNotFound, 410 => EventClosed, 429 => RateLimited, ServerFailures, BodyFailures,
    }

    operation! {
        get "/api/v1/queue/challenge" => challenge, "joinChallenge", tag "queue", public, "A single-use proof-of-work challenge for joining an event", [description = "For an event with a join_challenge: find a nonce (1-64 characters of\n[A-Za-z0-9_-]) such that SHA-256(token \":\" nonce) starts with at least\ndifficulty_bits zero bits, then join with {\"challenge\": {\"token\", \"nonce\"}}\nbefore expires_at (--join-challenge-ttl-seconds, 120 by default). Each\nchallenge joins once, on any replica. For an event without one:\n{\"required\": false}. Shares the --status-rate-per-ip bucket.\n", params(RequestId, ("event_id" = EventId, Query))],
        200 => echoed[("Cache-Control" = String)](description = "A challenge, or that the event asks for none.", content_type = "application/json", body = JoinChallengeIssued),
        400 => InvalidArgument, 404 => EventNotFound, 429 => RateLimited, ServerFailures,
    }

    operation! {
        get "/api/v1/queue/status" => status, "queueStatus", tag "queue", waiting, "Where the place stands (also a heartbeat)", [description = "Every call is a heartbeat: it keeps a waiting place alive for another\nidle_timeout_seconds.\n\nWith `hint` (the poll_hint of the last join or status answer for this\ntoken) a WAITING place is answered from the departure log this replica\nfollows, without a Redis operation, and its heartbeat is written only once a\ntenth of idle_timeout_seconds has passed since the last one written (so a\npoller idles out 0.9 to 1 idle_timeout_seconds after its last read). Its\nposition is the one Redis would give, up to one log tick (250 ms) of age;\nits expires_at is when the last heartbeat written lapses. A hint that does\nnot verify is ignored.\n", params(RequestId, ("hint" = Option<String>, Query, description = "The poll_hint of the last answer for this token (optional)."))],
        200 => echoed(description = "The place's current state.", content_type = "application/json", body = StatusResponse, example = json!({"status": "WAITING", "position": 12, "eta_seconds": 6, "admission_ready": false, "expires_at": "2026-03-01T10:00:05Z"})),
        401 => BadWaitingToken, 404 => EventNotFound, 429 => RateLimited, ServerFailures,
    }

    operation! {
        post "/api/v1/queue/enter" => enter, "enterEvent", tag "queue", waiting, "Turn a READY place into an admission and get the reservation token", [description = "No request body. Calling again for an admitted place returns the same\nreservation_token and valid_until.\n", params(RequestId)],
        200 => echoed(description = "Admission granted.", content_type = "application/json", body = EnterResponse, example = json!({"admission": "GRANTED", "reservation_token": "eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6Ii4uLiJ9.eyJpc3MiOiJhZG1pc3Npb24tZ2F0ZXdheSJ9.c2ln", "ttl_seconds": 300, "valid_until": "2026-03-01T09:05:00Z"})),
        409 => echoed(description = "NOT_READY - the place is still WAITING or PRE_QUEUE.", content_type = "application/json", body = Error, example = json!({"error": {"code": "NOT_READY", "message": "not ready yet"}})),
        410 => echoed(description = "TOKEN_EXPIRED - the place is gone (left, idle, ready deadline missed,\nadmission ended); or EVENT_CLOSED - the event was sold out before entering.\n", content_type = "application/json", body = Error),
        401 => BadWaitingToken, ServerFailures,
    }

    operation! {
        delete "/api/v1/queue" => leave, "leaveQueue", tag "queue", waiting, "Give the place up", [description = "Everyone behind moves up one; a READY or ADMITTED slot is freed, and the\nadmission's reservation token no longer creates holds (403 ADMISSION_ENDED).\nIdempotent: 204 again when the place is already gone.\n", params(RequestId)],
        204 => echoed(description = "Left (no body)."),
        401 => BadWaitingToken, ServerFailures,
    }

    operation! {
        get "/api/v1/queue/ws" => websocket, "queueWebSocket", tag "queue", public, "Live position stream (WebSocket upgrade)", [description = "Upgrades to a WebSocket (RFC 6455, HTTP/1.1, version 13, no subprotocol,\nno compression) that pushes every change of the token's place; it\nreplaces polling status. The waiting token is passed in the `token`\nquery parameter because browsers cannot set headers on a WebSocket.\nBefore the upgrade: 429 RATE_LIMITED (this client address is over\n--status-rate-per-ip, one bucket with status; Retry-After is the\nseconds until the next token), 401 UNAUTHENTICATED (no or empty token), 401\nINVALID_TOKEN, 400 INVALID_ARGUMENT (not a WebSocket upgrade), 429\nTOO_MANY_SOCKETS (the token already has --ws-per-token sockets, 4 by\ndefault, open on this replica), 503 TOO_MANY_CONNECTIONS (connection\nlimit reached), in that order.\n\nServer to client, JSON text frames with a `type` (schemas\n`WsPositionChanged`, `WsAdmissionReady`, `WsAdmissionsPaused`,\n`WsAdmissionsResumed`, `WsTokenExpired`, `WsEventSoldOut`, union\n`WsMessage`). The first frame goes out at once and tells where the place\nstands (POSITION_CHANGED for WAITING/PRE_QUEUE, ADMISSION_READY for\nREADY/ADMITTED, TOKEN_EXPIRED or EVENT_SOLD_OUT); then a frame is sent\nonly on a change. A position change reaches the client within about one\ntick (--ws-tick-ms, 250 ms by default) plus network time, also when the\nadmission happened on another replica. Clients should ignore unknown\ntypes. Text and binary frames from the client are ignored.\n\nAn open connection is a heartbeat: the place is kept alive at connect and\nthen every 30 s (every third of idle_timeout_seconds when shorter).\nReconnecting with the same token, to any replica, resumes the place. The\nserver pings every --ws-ping-seconds (20 s by default).\n\nLimits: client frames and messages up to 4096 bytes; 16 frames queued\nper client; a client silent (not even a pong) for two ping intervals\nplus one tick is dropped; a frame that cannot be written within\n--ws-send-timeout-ms (10000 ms by default; the client stopped reading)\ndrops the client; each socket holds one of --max-connections; at most\n--ws-per-token sockets per waiting token per replica.\n\nClose codes: 1000 after TOKEN_EXPIRED or EVENT_SOLD_OUT (do not\nreconnect); 1001 server shutting down (reconnect); 1008 too slow or\nunresponsive (reconnect); 1009 client message over 4096 bytes; 1013\nthe place could not be read at connect, store unavailable or event not\nconfigured (retry with backoff).\n", params(("token" = String, Query, description = "The waiting_token returned by join (URL-encoded)."), RequestId)],
        101 => echoed[("Upgrade" = String), ("Connection" = String), ("Sec-WebSocket-Accept" = String, description = "Derived from the request's Sec-WebSocket-Key.")](description = "Switching Protocols; the WebSocket stream follows."),
        400 => echoed(description = "INVALID_ARGUMENT - not a WebSocket upgrade (Upgrade: websocket,\nConnection: upgrade, Sec-WebSocket-Version: 13 and Sec-WebSocket-Key\nare required).\n", content_type = "application/json", body = Error, example = json!({"error": {"code": "INVALID_ARGUMENT", "message": "expected a WebSocket upgrade (version 13)"}})),
        401 => echoed(description = "UNAUTHENTICATED (no or empty token parameter) or INVALID_TOKEN (tampered or foreign waiting token).", content_type = "application/json", body = Error),
        405 => MethodNotAllowed, 500 => Internal, 429 => TooManySockets, 503 => TooManyConnections,
    }

    operation! {
        get "/.well-known/jwks.json" => jwks, "jwks", tag "queue", public, "Public keys for verifying reservation tokens (JWKS)", [params(RequestId)],
        200 => echoed(description = "JSON Web Key Set.", content_type = "application/json", body = Jwks),
        405 => MethodNotAllowed, 500 => Internal,
    }

    operation! {
        put "/admin/v1/events/{event_id}" => put_event, "putEvent", tag "admin", admin, "Create or replace an event's configuration", [description = "Unknown fields are rejected. Omitted optional fields take their defaults.\nStored in Redis, so every replica sees it.\n", params(("event_id" = EventId, Path), RequestId), request_body(content = EventConfig, content_type = "application/json", example = json!({"admit_per_second": 50, "max_active": 2000, "opens_at": "2026-03-01T09:00:00Z", "target_url": "https://shop.example/spring-tour/buy"}))],
        201 => echoed(description = "Event created.", content_type = "application/json", body = EventView),
        200 => echoed(description = "Event updated.", content_type = "application/json", body = EventView),
        AdminRefusals, ServerFailures, BodyFailures,
    }

    operation! {
        get "/admin/v1/events/{event_id}" => get_event, "getEvent", tag "admin", admin, "An event's configuration, flags and counters", [params(("event_id" = EventId, Path), RequestId)],
        200 => echoed(description = "The event.", content_type = "application/json", body = EventView),
        400 => InvalidArgument, 401 => Unauthorized, 404 => EventNotFound, ServerFailures,
    }

    operation! {
        get "/healthz" => healthz, "healthz", tag "operations", public, "Liveness (the process is up)", [params(RequestId)],
        200 => echoed(description = "Up.", content_type = "application/json", body = Healthz),
        405 => MethodNotAllowed,
    }

    operation! {
        get "/readyz" => readyz, "readyz", tag "operations", public, "Readiness (the store answers a PING)", [params(RequestId)],
        200 => echoed(description = "The store answers.", content_type = "application/json", body = Readiness),
        405 => MethodNotAllowed, 503 => Unavailable,
    }

    operation! {
        get "/metrics" => metrics, "metrics", tag "operations", public, "Prometheus metrics (on --metrics-listen only)", [description = "Served only on the metrics listener (`--metrics-listen`), never on the public port.\nCounters `gateway_audit_write_failures_total`, `gateway_rate_limit_syncs_total`,\n`gateway_rate_limit_sync_failures_total`;\n`gateway_http_request_duration_seconds` histogram (labels method, route,\nstatus); counters `waiting_room_joins_total{event}` (new places) and\n`waiting_room_admissions_total{event}` (users made READY),\n`waiting_room_status_reads_from_log_total` (status reads answered from the\nfollowed departure log with a poll hint, without Redis); gauges\n`waiting_room_queue_depth{event}`, `waiting_room_ready{event}`,\n`waiting_room_active{event}`, refreshed by the admission loop every tick;\n`waiting_room_admissions_held{event}` (1 while admissions are held on\npurpose) and `waiting_room_max_active{event}`, refreshed once a second.\nWith webhooks enabled: counters `webhooks_received_total`,\n`webhooks_rejected_total{reason}`, `webhooks_duplicates_total`,\n`webhooks_forwarded_total`, `webhooks_retried_total`,\n`webhooks_dead_lettered_total` and the histogram\n`webhooks_end_to_end_latency_seconds` (acceptance to successful forward).\n"],
        200 => (description = "OpenMetrics text exposition (Prometheus scrapes it as is).", content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8", body = String),
        405 => MethodNotAllowed,
    }
}

pub mod forward {
    use super::*;

    operation! {
        get "/api/v1/events/{event_id}/availability" => availability, "checkAvailability", tag "forwarded", admission, "Free seats of an event (forwarded to Inventory.CheckAvailability)", [description = "The reservation token must be for this event (aud). Deadline\n--inventory-timeout-ms (250 ms), sent upstream as grpc-timeout.\n", params(("event_id" = EventId, Path), RequestId, ("quantity" = Option<i64>, Query, minimum = 0, maximum = 2147483647, description = "Seats wanted; the answer lists at most that many (100 at most).", minimum = 0), ("section" = Option<String>, Query, pattern = "^[A-Z]{0,4}$", description = "A row label such as A (one to four capital letters; empty: every row)."))],
        200 => (description = "Availability.", content_type = "application/json", body = AvailabilityResponse),
        400 => ForwardedError, ForwardedFailures,
    }

    operation! {
        post "/api/v1/reservations" => create_reservation, "createReservation", tag "forwarded", admission, "Hold seats (forwarded to ReservationService.CreateReservation)", [description = "Holds all the seats or none, for the backends' hold time (60 s). The token\nmust be for the body's event_id; its sub is the user. The same\nIdempotency-Key (per user and event, 5 minutes) returns the same\nreservation with 200 and replayed true; never retried by the gateway.\nThe admission must still stand in the queue (not left, not expired: else 403\nADMISSION_ENDED, without an upstream call), and it may have one active hold at\na time (the backends' --holds-per-admission): another one while a hold is\nPENDING is 409 HOLD_LIMIT; a replayed Idempotency-Key still answers its hold.\n", params(RequestId, ("Idempotency-Key" = String, Header, description = "1 to 128 visible characters; per user and event, remembered 5 minutes. Missing is 400 IDEMPOTENCY_REQUIRED.", min_length = 1, max_length = 128)), request_body(content = ReservationRequest, content_type = "application/json", example = json!({"event_id": "spring-sale", "quantity": 2}))],
        201 => (description = "Seats held.", content_type = "application/json", body = ReservationResponse),
        200 => (description = "The same Idempotency-Key already made this reservation (replayed true).", content_type = "application/json", body = ReservationResponse),
        400 => ForwardedError, 409 => ForwardedError, ForwardedFailures, BodyFailures,
    }

    operation! {
        get "/api/v1/reservations/{reservation_id}" => get_reservation, "getReservation", tag "forwarded", admission, "A reservation and its status (forwarded to ReservationService.GetReservation)", [description = "Only the token user's reservations; another user's is 404.", params(("reservation_id" = String, Path, pattern = "^r_[0-9A-Fa-f]{32}_[\\s\\S]+$", description = "r_<32 hex>_<event_id>; the token must be for that event."), RequestId)],
        200 => (description = "The reservation.", content_type = "application/json", body = Reservation),
        ForwardedFailures,
    }

    operation! {
        post "/api/v1/payments/intents" => create_payment_intent, "createPaymentIntent", tag "forwarded", admission, "Start paying for a held reservation (forwarded to PaymentService.CreatePaymentIntent)", [description = "The token must be for the event of reservation_id, and the reservation the\ntoken user's and PENDING. The outcome arrives later by webhook to the payment\nprovider's configured URL. The same Idempotency-Key returns the same intent\nwith 200 and replayed true.\n", params(RequestId, ("Idempotency-Key" = String, Header, description = "1 to 128 visible characters; per user and event, remembered 5 minutes. Missing is 400 IDEMPOTENCY_REQUIRED.", min_length = 1, max_length = 128)), request_body(content = PaymentIntentRequest, content_type = "application/json")],
        201 => (description = "Intent created (PENDING).", content_type = "application/json", body = PaymentIntentResponse),
        200 => (description = "The same Idempotency-Key already made this intent (replayed true).", content_type = "application/json", body = PaymentIntentResponse),
        400 => ForwardedError, 409 => ForwardedError, ForwardedFailures, BodyFailures,
    }
}

pub mod resv_ws {
    use super::*;

    operation! {
        get "/api/v1/reservations/{reservation_id}/ws" => websocket, "reservationWebSocket", tag "forwarded", admission, "Live reservation updates (WebSocket upgrade)", [description = "Upgrades to a WebSocket (version 13) that pushes the reservation's status\nchanges, hold-expiry warnings and payment confirmation. The reservation\n(admission) token comes as `Authorization: Bearer` or as the `token`\nquery parameter. Before the upgrade the token is checked and the\nreservation read (ReservationService.GetReservation, forwarded); failures\nare JSON errors: 400 INVALID_ARGUMENT (not a WebSocket upgrade), 503\nTOO_MANY_CONNECTIONS, 401 UNAUTHENTICATED, 403 FORBIDDEN or\nADMISSION_EXPIRED, 404 NOT_FOUND (malformed id, unknown, another user's),\nand the forwarded errors (501, 502, 503, 504).\n\nServer to client, JSON text frames with a `type` (union\n`WsReservationMessage`): RESERVATION_STATUS first on every connection (a\nclient that reconnects is told the current state first) and on each\nchange; HOLD_EXPIRING while PENDING at each point of\n--hold-warning-seconds (30,10 by default) before hold_expires_at;\nPAYMENT_CONFIRMED with the order id right after CONFIRMED. After a final\nstatus (CONFIRMED, CANCELLED, EXPIRED) the server closes with 1000.\nUpdates come from the backends through Redis pub/sub (one subscription\nper gateway replica): an outcome applied anywhere reaches every replica.\nThe same stream is gRPC gateway.v1.WebSocketService/StreamReservationUpdates.\n", params(("reservation_id" = String, Path, pattern = "^r_[0-9A-Fa-f]{32}_[\\s\\S]+$", description = "r_<32 hex>_<event_id>; the token must be for that event and the reservation its user's."), ("token" = Option<String>, Query, description = "The reservation token, when not sent as a bearer (browsers)."), RequestId)],
        101 => (description = "Switching Protocols; frames of WsReservationMessage follow.", headers(("Upgrade" = String), ("Connection" = String), ("Sec-WebSocket-Accept" = String, description = "Derived from the request's Sec-WebSocket-Key."))),
        400 => ForwardedError, ForwardedFailures,
    }
}

pub mod admin {
    use super::*;

    operation! {
        post "/admin/v1/events/{event_id}/actions" => post_event_action, "eventAction", tag "admin", admin, "Per-event emergency actions (stop or resume admissions, cancel holds, sold out)", [description = "STOP_ADMISSIONS stops letting anyone through (joins continue);\nRESUME_ADMISSIONS undoes it; CANCEL_RESERVATIONS has the backends\n(AdminService.EmergencyAction) cancel every pending hold of the event, whose\nseats are free again; SOLD_OUT makes new joins get 410 EVENT_CLOSED,\nwaiting and ready users' status SOLD_OUT, while admitted users keep their\nadmission. STOP_ADMISSIONS and CANCEL_RESERVATIONS need `\"confirm\": true`\n(else 400 CONFIRMATION_REQUIRED, nothing done). Every call is logged\n(target `audit`) with action, peer and request id.\n", params(("event_id" = EventId, Path), RequestId), request_body(content = ActionRequest, content_type = "application/json", example = json!({"action": "STOP_ADMISSIONS", "confirm": true, "reason": "payment provider incident"}))],
        200 => echoed(description = "Action applied; the event after it, with what was done under `action`\n(CANCEL_RESERVATIONS: `action.message` says how many holds were cancelled).\n", content_type = "application/json", body = ActionResponse),
        400 => (description = "INVALID_ARGUMENT (unknown action, bad body) or CONFIRMATION_REQUIRED.", content_type = "application/json", body = Error),
        409 => (description = "CANCEL_RESERVATIONS refused by the backends (FAILED_PRECONDITION).", content_type = "application/json", body = Error),
        501 => (description = "CANCEL_RESERVATIONS without --reservation-url (UPSTREAM_NOT_CONFIGURED).", content_type = "application/json", body = Error),
        504 => (description = "CANCEL_RESERVATIONS did not finish within the request timeout (UPSTREAM_TIMEOUT).", content_type = "application/json", body = Error),
        401 => Unauthorized, 403 => CsrfFailed, 404 => EventNotFound, ServerFailures, BodyFailures,
    }

    operation! {
        post "/admin/v1/actions" => post_system_action, "systemAction", tag "admin", admin, "System-wide emergency actions (maintenance mode, circuit breaker)", [description = "MAINTENANCE_MODE closes the queue API (503 MAINTENANCE, `Retry-After: 30`),\nthe pages (503 HTML maintenance page) and the gRPC QueueService\n(UNAVAILABLE) on every replica; WebSocket clients are told MAINTENANCE and\nstay connected; admissions and the idle sweep pause and every waiting place\nis kept alive until END_MAINTENANCE_MODE. CIRCUIT_BREAKER holds every\nupstream circuit open on every replica: the forwarded API (HTTP and gRPC)\nanswers 503 CIRCUIT_OPEN without calling until END_CIRCUIT_BREAKER; places\nand admissions are untouched. Both are kept in Redis; other replicas follow\nwithin 0.5 s. MAINTENANCE_MODE and CIRCUIT_BREAKER need `\"confirm\": true`\n(else 400 CONFIRMATION_REQUIRED); the END_ actions do not. Every call is\nlogged (target `audit`).\n", params(RequestId), request_body(content = SystemActionRequest, content_type = "application/json", example = json!({"action": "MAINTENANCE_MODE", "confirm": true, "reason": "database upgrade"}))],
        200 => echoed(description = "Action applied.", content_type = "application/json", body = ActionResult),
        400 => (description = "INVALID_ARGUMENT (unknown action, bad body) or CONFIRMATION_REQUIRED.", content_type = "application/json", body = Error),
        401 => Unauthorized, 403 => CsrfFailed, 405 => MethodNotAllowed, 503 => Unavailable, BodyFailures,
    }

    operation! {
        get "/admin/v1/health" => get_health, "systemHealth", tag "admin", admin, "GetSystemHealth as JSON", [description = "Checks every dependency at once (each within its own timeout) and judges:\nUNHEALTHY when every Redis primary is down (the queue cannot serve),\nDEGRADED when anything else is not HEALTHY (a primary down, an upstream\ndown or its circuit open, dead letters waiting, maintenance mode or the\ncircuit breaker in force), else HEALTHY. Always 200: the verdict is in the\nbody.\n", params(RequestId)],
        200 => echoed(description = "The report.", content_type = "application/json", body = SystemHealth),
        401 => Unauthorized, 405 => MethodNotAllowed,
    }
}

pub mod webhook {
    use super::*;

    operation! {
        post "/webhooks/payments" => payments, "paymentWebhook", tag "webhooks", public, "A payment provider's signed webhook (Standard Webhooks)", [description = "Enabled by --webhook-secret and/or --webhook-public-key (each repeatable:\nany configured key verifies, for rotation). `webhook-signature` is a\nspace-separated list of `v1,<base64 HMAC-SHA256(key, \"id.timestamp.body\")>`\nand `v1a,<base64 Ed25519 signature of \"id.timestamp.body\">` entries; any v1\nmatching a secret or any v1a matching a public key (`whpk_<base64>`)\nverifies. It is checked over the raw body before anything parses it;\n`webhook-timestamp` must be within 5 minutes of the gateway's clock either\nway. Fields the gateway does not know are kept (the body is stored\nverbatim); a verified event of a type it does not act on answers 200\n`ignored` and is counted, not stored. A verified payment event is\ndeduplicated on `webhook-id` (remembered 7 days) and appended to the Redis\ninbox in one atomic step before the 200; a consumer then forwards it to\nWorkerService.ProcessPaymentResult with retries and a dead-letter queue.\nA repeated delivery answers 200 `duplicate` and is not applied again.\n", params(RequestId, ("webhook-id" = String, Header, max_length = 256), ("webhook-timestamp" = i64, Header, description = "Unix seconds"), ("webhook-signature" = String, Header)), request_body(content = PaymentWebhook, content_type = "application/json")],
        200 => WebhookAccepted, WebhookFailures,
    }

    operation! {
        post "/webhooks/stripe" => stripe, "stripeWebhook", tag "webhooks", public, "A signed webhook in Stripe's scheme", [description = "Enabled by --stripe-webhook-secret. `Stripe-Signature: t=<unix seconds>,v1=<hex>`\n(several v1 while a secret is rolled; v0 is ignored) where the hex is\nHMAC-SHA256 over `t.body` keyed by the secret string as given; 5-minute\ntolerance. The body is a Stripe event (its `id` is the dedup key):\npayment_intent.succeeded / payment_failed / canceled and\ncheckout.session.completed / async_payment_succeeded / async_payment_failed /\nexpired are mapped to payment outcomes through `metadata.reservation_id`\n(docs/api.md has the field mapping); an event without\n`metadata.reservation_id`, an unpaid completed session, or any other type\nanswers 200 `ignored`. The simulator's payment event (as on\n/webhooks/payments, with an `id`) is accepted too. Answers as\n/webhooks/payments.\n", params(RequestId, ("Stripe-Signature" = String, Header)), request_body(content = StripeWebhook, content_type = "application/json")],
        200 => WebhookAccepted, WebhookFailures,
    }

    operation! {
        get "/admin/v1/dlq" => dlq_list, "listDeadLetters", tag "admin", admin, "Dead-lettered webhooks, newest first", [params(RequestId, ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000))],
        200 => (description = "The dead letters (active, retried and resolved).", content_type = "application/json", body = DeadLetterList),
        400 => InvalidArgument, DeadLetterFailures,
    }

    operation! {
        get "/admin/v1/dlq/{id}" => dlq_get, "getDeadLetter", tag "admin", admin, "One dead letter", [params(("id" = String, Path, description = "A dead letter's id (a stream id such as 1795000000123-0)."), RequestId)],
        200 => (description = "The dead letter.", content_type = "application/json", body = DeadLetter),
        404 => NotFound, DeadLetterFailures,
    }

    operation! {
        post "/admin/v1/dlq/{id}/retry" => dlq_retry, "retryDeadLetter", tag "admin", admin, "Re-enqueue a dead letter for forwarding, once", [description = "Idempotent: the first call enqueues the envelope again (202, `enqueued: true`);\nlater calls answer the same `stream_id` with 200 and `enqueued: false`. The\nconsumer then forwards it with a fresh set of attempts. A resolved dead letter\ncannot be retried (409 ALREADY_RESOLVED).\n", params(("id" = String, Path, description = "A dead letter's id (a stream id such as 1795000000123-0)."), RequestId)],
        202 => DeadLetterRetried, 200 => DeadLetterRetried, 403 => CsrfFailed, 404 => NotFound, 409 => AlreadyResolved, DeadLetterFailures,
    }

    operation! {
        post "/admin/v1/dlq/{id}/resolve" => dlq_resolve, "resolveDeadLetter", tag "admin", admin, "Mark a dead letter resolved (one-shot)", [params(("id" = String, Path, description = "A dead letter's id (a stream id such as 1795000000123-0)."), RequestId), request_body(content = ResolveRequest, content_type = "application/json", example = json!({"resolved_by": "ops@example.com", "note": "refunded by hand"}))],
        200 => (description = "The resolved dead letter.", content_type = "application/json", body = DeadLetter),
        400 => InvalidArgument, 403 => CsrfFailed, 404 => NotFound, 409 => AlreadyResolved, DeadLetterFailures, BodyFailures,
    }
}

pub mod audit {
    use super::*;

    operation! {
        get "/admin/v1/audit" => list, "listAudit", tag "admin", admin, "The admin audit trail, newest first", [description = "Every admin change (event create and update, each action, access codes minted and\nrevoked (counts only), a dead letter's retry and resolution) with the state before and\nafter, who made it (actor), the peer and the request id, kept in the\nRedis stream `wr:audit` (the latest `--audit-max-entries`, 10,000 by default, trimmed\napproximately). Fields that name a secret are stored as \"[redacted]\".\n", params(RequestId, ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000))],
        200 => (description = "The newest entries.", content_type = "application/json", body = AuditList),
        400 => InvalidArgument, 401 => Unauthorized, 503 => Unavailable,
    }
}

pub mod openapi {
    use super::*;

    operation! {
        get "/openapi.json" => openapi_json, "openapi", tag "operations", public, "This API's OpenAPI document", [description = "The OpenAPI 3.1 document of the gateway's HTTP API, generated from its code (docs/openapi.yaml is the same document as YAML)."],
        200 => (description = "The document.", content_type = "application/json", body = Object),
        405 => MethodNotAllowed,
    }
}
