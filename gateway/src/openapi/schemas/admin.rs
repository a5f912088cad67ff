//! Schemas of the admin API.

use super::system::action_request;

json_schema!(
    AuditEntry,
    r##"{
 "type": "object",
 "required": [
  "id",
  "time",
  "action",
  "event_id",
  "before",
  "after",
  "peer",
  "request_id"
 ],
 "properties": {
  "id": {
   "type": "string",
   "description": "the stream entry id (increasing)",
   "example": "1764700000123-0"
  },
  "time": {
   "type": "string",
   "format": "date-time"
  },
  "action": {
   "type": "string",
   "description": "event.create, event.update, event.stop_admissions, event.resume_admissions, event.sold_out, access_codes.mint, access_codes.revoke, dlq.retry, dlq.resolve",
   "example": "event.update"
  },
  "event_id": {
   "type": [
    "string",
    "null"
   ]
  },
  "before": {
   "type": [
    "object",
    "null"
   ],
   "description": "the state before (an event's configuration with admissions_stopped and sold_out; a dead letter without its envelope); null for a creation"
  },
  "after": {
   "type": [
    "object",
    "null"
   ],
   "description": "the state after"
  },
  "peer": {
   "type": [
    "string",
    "null"
   ],
   "description": "socket peer of the request, ip:port"
  },
  "request_id": {
   "type": [
    "string",
    "null"
   ],
   "description": "the request's x-request-id"
  },
  "actor": {
   "type": "string",
   "description": "who signed the request: admin-token (the bearer token), or console:<8 hex digits> for an operator console session (the first digits of its id); absent for changes made over gRPC and in entries written before this field existed",
   "example": "console:3f9a1c2e"
  }
 }
}"##
);

/// The settings of an event that are schemas of their own, as [`EventConfig`] and
/// [`EventView`] both list them.
const BY_REFERENCE: &str = r##""join_challenge": {"$ref": "#/components/schemas/JoinChallenge"},
  "page": {"$ref": "#/components/schemas/PageSettings"},
  "queueing_method": {"$ref": "#/components/schemas/QueueingMethod"}"##;

json_schema!(
    EventConfig,
    &EVENT_CONFIG.replace("BY_REFERENCE", BY_REFERENCE)
);

/// [`EventConfig`]'s schema, with a blank in capitals for [`BY_REFERENCE`].
const EVENT_CONFIG: &str = r##"{
 "type": "object",
 "additionalProperties": false,
 "required": [
  "admit_per_second",
  "max_active"
 ],
 "properties": {
  "admit_per_second": {
   "type": "integer",
   "minimum": 0,
   "maximum": 1000000,
   "description": "Users made READY per second; 0 pauses admissions."
  },
  "max_active": {
   "type": "integer",
   "minimum": 0,
   "maximum": 4294967295,
   "description": "Most users READY plus unexpired ADMITTED at once."
  },
  "admission_ttl_seconds": {
   "type": "integer",
   "minimum": 1,
   "maximum": 2592000,
   "default": 300,
   "description": "Lifetime of an admission."
  },
  "idle_timeout_seconds": {
   "type": "integer",
   "minimum": 1,
   "maximum": 2592000,
   "default": 3600,
   "description": "A waiting place without a heartbeat for this long is removed."
  },
  "ready_timeout_seconds": {
   "type": "integer",
   "minimum": 1,
   "maximum": 2592000,
   "default": 120,
   "description": "Time a READY user has to call enter."
  },
  "opens_at": {
   "type": [
    "string",
    "null"
   ],
   "format": "date-time",
   "pattern": "^(19[7-9][0-9]|[2-9][0-9]{3})-",
   "default": null,
   "description": "When the queue opens, between 1970 and 9999; joins before it form the shuffled pre-queue. null = open now."
  },
  "target_url": {
   "$ref": "#/components/schemas/TargetUrl"
  },
  BY_REFERENCE
 }
}"##;

json_schema!(
    JoinChallenge,
    r##"{
 "type": [
  "object",
  "null"
 ],
 "additionalProperties": false,
 "required": [
  "difficulty_bits"
 ],
 "default": null,
 "description": "Proof of work asked of every join: the leading zero bits that\nSHA-256(challenge \":\" nonce) must have (about 2^difficulty_bits hashes;\nmeasured times in docs/operations.md). 0 or null = off (shown as null).\n",
 "properties": {
  "difficulty_bits": {
   "type": "integer",
   "minimum": 0,
   "maximum": 32
  }
 }
}"##
);

json_schema!(
    TargetUrl,
    r##"{
 "type": [
  "string",
  "null"
 ],
 "format": "uri",
 "maxLength": 2048,
 "pattern": "^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?([/?]([A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-Fa-f]{2})*)?(#([A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-Fa-f]{2})*)?$",
 "default": null,
 "description": "Where the waiting-room page sends admitted users, with\n`reservation_token=<JWT>` appended as a query parameter (`&` when the URL\nalready has a `?`). An absolute http(s) URI of at most 2048 bytes: a host name (letters, digits,\n`.` and `-`; no user info, no IP-literal `[...]`), an optional port, then\npath, query and fragment of RFC 3986 characters (percent-encode others). null = the page shows that the user is in.\n",
 "examples": [
  "https://shop.example/spring-tour/buy"
 ]
}"##
);

json_schema!(EventView, &EVENT_VIEW.replace("BY_REFERENCE", BY_REFERENCE));

/// [`EventView`]'s schema, with a blank in capitals for [`BY_REFERENCE`].
const EVENT_VIEW: &str = r##"{
 "type": "object",
 "required": [
  "event_id",
  "admit_per_second",
  "max_active",
  "admission_ttl_seconds",
  "idle_timeout_seconds",
  "ready_timeout_seconds",
  "opens_at",
  "target_url",
  "join_challenge",
  "page",
  "queueing_method",
  "admissions_stopped",
  "sold_out",
  "measured_admit_per_second",
  "stats"
 ],
 "properties": {
  "event_id": {
   "$ref": "#/components/schemas/EventId"
  },
  "admit_per_second": {
   "type": "integer"
  },
  "max_active": {
   "type": "integer"
  },
  "admission_ttl_seconds": {
   "type": "integer"
  },
  "idle_timeout_seconds": {
   "type": "integer"
  },
  "ready_timeout_seconds": {
   "type": "integer"
  },
  "opens_at": {
   "type": [
    "string",
    "null"
   ],
   "format": "date-time"
  },
  "target_url": {
   "type": [
    "string",
    "null"
   ],
   "description": "The configured target_url; null when not set."
  },
  BY_REFERENCE,
  "admissions_stopped": {
   "type": "boolean"
  },
  "sold_out": {
   "type": "boolean"
  },
  "measured_admit_per_second": {
   "type": [
    "number",
    "null"
   ],
   "description": "Measured admission rate (users/s, sliding 30 s window over time with a backlog); null before any measurement."
  },
  "stats": {
   "$ref": "#/components/schemas/EventStats"
  }
 },
 "example": {
  "event_id": "spring-tour",
  "admit_per_second": 50,
  "max_active": 2000,
  "admission_ttl_seconds": 300,
  "idle_timeout_seconds": 3600,
  "ready_timeout_seconds": 120,
  "opens_at": "2026-03-01T09:00:00Z",
  "target_url": "https://shop.example/spring-tour/buy",
  "join_challenge": {
   "difficulty_bits": 16
  },
  "page": {
   "title": "Spring tour 2026",
   "accent_color": "#ffd700"
  },
  "queueing_method": "fifo",
  "admissions_stopped": false,
  "sold_out": false,
  "measured_admit_per_second": 49.8,
  "stats": {
   "waiting": 18240,
   "ready": 61,
   "active": 1939,
   "joined_total": 24500,
   "admitted_total": 6260,
   "entered_total": 6150
  }
 }
}"##;

json_schema!(
    EventStats,
    r##"{
 "type": "object",
 "required": [
  "waiting",
  "ready",
  "active",
  "joined_total",
  "admitted_total",
  "entered_total"
 ],
 "properties": {
  "waiting": {
   "type": "integer",
   "description": "Places waiting, pre-queue included."
  },
  "ready": {
   "type": "integer",
   "description": "Places READY."
  },
  "active": {
   "type": "integer",
   "description": "Unexpired admissions."
  },
  "joined_total": {
   "type": "integer",
   "description": "New places handed out."
  },
  "admitted_total": {
   "type": "integer",
   "description": "Users let through the queue (made READY)."
  },
  "entered_total": {
   "type": "integer",
   "description": "Admissions granted by enter."
  }
 }
}"##
);

json_schema!(
    ActionRequest,
    &action_request(
        "STOP_ADMISSIONS and CANCEL_RESERVATIONS are emergency actions: they must carry `\"confirm\": true` (else 400 CONFIRMATION_REQUIRED); RESUME_ADMISSIONS and SOLD_OUT need none.",
        ["STOP_ADMISSIONS", "CANCEL_RESERVATIONS"],
        "Other",
        ["RESUME_ADMISSIONS", "SOLD_OUT"],
    )
);

json_schema!(
    ActionResponse,
    r##"{
 "allOf": [
  {
   "$ref": "#/components/schemas/EventView"
  },
  {
   "type": "object",
   "required": [
    "action"
   ],
   "properties": {
    "action": {
     "$ref": "#/components/schemas/ActionResult"
    }
   }
  }
 ]
}"##
);

json_schema!(
    AuditList,
    r##"{
 "type": "object",
 "required": [
  "entries"
 ],
 "properties": {
  "entries": {
   "type": "array",
   "items": {
    "$ref": "#/components/schemas/AuditEntry"
   }
  }
 }
}"##
);

json_schema!(
    MintAccessCodesRequest,
    r##"{
 "type": "object",
 "additionalProperties": false,
 "required": [
  "count"
 ],
 "properties": {
  "count": {
   "type": "integer",
   "minimum": 1,
   "maximum": 10000,
   "description": "How many codes to mint."
  }
 }
}"##
);

json_schema!(
    AccessCodesMinted,
    r##"{
 "type": "object",
 "required": [
  "event_id",
  "count",
  "codes"
 ],
 "properties": {
  "event_id": {
   "$ref": "#/components/schemas/EventId"
  },
  "count": {
   "type": "integer",
   "minimum": 1,
   "maximum": 10000,
   "description": "How many codes were minted (the length of codes)."
  },
  "codes": {
   "type": "array",
   "description": "The new single-use codes: 128 random bits each, URL-safe base64 without padding (22 characters). Only their SHA-256 is stored: they are shown here only.",
   "items": {
    "type": "string",
    "pattern": "^[A-Za-z0-9_-]{22}$"
   }
  }
 },
 "example": {
  "event_id": "spring-tour",
  "count": 2,
  "codes": [
   "q3Zk0v9mVd2n3xYbJf8wLg",
   "T1w2hJ6d0YxZ9pQe5r7s3A"
  ]
 }
}"##
);

json_schema!(
    RevokeAccessCodesRequest,
    r##"{
 "type": "object",
 "additionalProperties": false,
 "required": [
  "codes"
 ],
 "properties": {
  "codes": {
   "type": "array",
   "maxItems": 10000,
   "description": "The codes to revoke (at most 10000, within --max-body-bytes). A code that was never minted (unknown or malformed) counts as not there.",
   "items": {
    "type": "string"
   }
  }
 }
}"##
);

json_schema!(
    AccessCodesRevoked,
    r##"{
 "type": "object",
 "required": [
  "event_id",
  "revoked"
 ],
 "properties": {
  "event_id": {
   "$ref": "#/components/schemas/EventId"
  },
  "revoked": {
   "type": "integer",
   "minimum": 0,
   "description": "How many of the codes existed (spent or not); 0 again for a repeated call."
  }
 },
 "example": {
  "event_id": "spring-tour",
  "revoked": 2
 }
}"##
);
