//! Schemas of the queue API.

json_schema!(
    EventId,
    r##"{
 "type": "string",
 "pattern": "^[A-Za-z0-9_-]{1,64}$",
 "examples": [
  "demo"
 ]
}"##
);

json_schema!(
    Timestamp,
    r##"{
 "type": "string",
 "format": "date-time",
 "description": "RFC 3339, UTC.",
 "examples": [
  "2026-03-01T09:00:00Z"
 ]
}"##
);

json_schema!(
    Status,
    r##"{
 "type": "string",
 "enum": [
  "PRE_QUEUE",
  "WAITING",
  "READY",
  "ADMITTED",
  "EXPIRED",
  "SOLD_OUT"
 ],
 "description": "PRE_QUEUE - joined before opens_at; position 0 (pre-queue places are drawn\nat random at opening); eta_seconds is the time until opening.\nWAITING - in the queue; position 1-based, 1 = next in.\nREADY - let through; call enter before expires_at (the ready deadline).\nADMITTED - entered; expires_at is the end of the admission.\nEXPIRED - the place is gone; expires_at null.\nSOLD_OUT - the event was declared sold out while waiting; expires_at null.\n"
}"##
);

json_schema!(
    Position,
    r##"{
 "type": "integer",
 "minimum": 0,
 "description": "1-based among waiting users while WAITING; 0 otherwise, and always 0 under\nqueueing_method random (a lottery has no order).\n"
}"##
);

json_schema!(
    EtaSeconds,
    r##"{
 "type": "integer",
 "minimum": -1,
 "description": "Estimated seconds until READY: position over the measured admission rate\n(users made READY per second over a sliding 30 s window of time with a\nbacklog; configured admit_per_second until one is measured); time until opening\nfor PRE_QUEUE; -1 when no estimate exists (admissions stopped,\nadmit_per_second 0, or queueing_method random); 0 for READY, ADMITTED, EXPIRED, SOLD_OUT.\n"
}"##
);

json_schema!(
    ExpiresAt,
    r##"{
 "type": [
  "string",
  "null"
 ],
 "format": "date-time",
 "description": "Heartbeat deadline (PRE_QUEUE/WAITING: last heartbeat + idle_timeout_seconds),\nready deadline (READY), end of the admission (ADMITTED), null (EXPIRED, SOLD_OUT).\n"
}"##
);

json_schema!(
    QueueingMethod,
    r##"{
 "type": "string",
 "enum": [
  "fifo",
  "random",
  "passthrough",
  "reject"
 ],
 "default": "fifo",
 "description": "How the event's queue lets people through (docs/api.md, \"Queueing methods\"):\nfifo - first come, first served (the default);\nrandom - a lottery: each admission draws uniformly among everyone waiting\n(after the priority lane); position 0 and eta_seconds -1;\npassthrough - READY at once while max_active allows, without the rate; else\nqueued as fifo;\nreject - joins (refreshes included) are refused with 403 QUEUE_CLOSED; those\nalready waiting keep their places and are admitted in order.\nSwitching is live and keeps the queue's order.\n"
}"##
);

/// The properties that close both [`JoinResponse`] and [`StatusResponse`] (the place's
/// deadline, the poll hint and the queueing method) and the end of the object: a literal, for
/// `concat!`, so that the two answers describe them once and keep their property order.
macro_rules! place_properties_tail {
    () => {
        r##"  "expires_at": {
   "$ref": "#/components/schemas/ExpiresAt"
  },
  "poll_hint": {
   "type": [
    "string",
    "null"
   ],
   "description": "While WAITING: pass it back as the hint query parameter of the next GET /api/v1/queue/status, which can then answer from the departure log the gateway follows, without a Redis operation. Opaque, signed, bound to this waiting_token; null unless WAITING."
  },
  "queueing_method": {
   "$ref": "#/components/schemas/QueueingMethod"
  }
 }
}"##
    };
}

json_schema!(
    JoinResponse,
    concat!(
        r##"{
 "type": "object",
 "required": [
  "waiting_token",
  "position",
  "eta_seconds",
  "status",
  "expires_at",
  "queueing_method"
 ],
 "properties": {
  "waiting_token": {
   "type": "string",
   "description": "Opaque bearer token for status, enter and leave."
  },
  "position": {
   "$ref": "#/components/schemas/Position"
  },
  "eta_seconds": {
   "$ref": "#/components/schemas/EtaSeconds"
  },
  "status": {
   "$ref": "#/components/schemas/Status"
  },
"##,
        place_properties_tail!()
    )
);

json_schema!(
    StatusResponse,
    concat!(
        r##"{
 "type": "object",
 "required": [
  "status",
  "position",
  "eta_seconds",
  "admission_ready",
  "expires_at",
  "queueing_method"
 ],
 "properties": {
  "status": {
   "$ref": "#/components/schemas/Status"
  },
  "position": {
   "$ref": "#/components/schemas/Position"
  },
  "eta_seconds": {
   "$ref": "#/components/schemas/EtaSeconds"
  },
  "admission_ready": {
   "type": "boolean",
   "description": "true if and only if status is READY."
  },
"##,
        place_properties_tail!()
    )
);

json_schema!(
    EnterResponse,
    r##"{
 "type": "object",
 "required": [
  "admission",
  "reservation_token",
  "ttl_seconds",
  "valid_until"
 ],
 "properties": {
  "admission": {
   "enum": [
    "GRANTED"
   ],
   "type": "string"
  },
  "reservation_token": {
   "type": "string",
   "description": "JWT signed with EdDSA (Ed25519); header kid = RFC 7638 thumbprint of the key.\nClaims iss \"admission-gateway\", aud event id, sub (the verified\nuser_assertion's sub, else session_id), exp (Unix seconds), jti (stable per\ngrant), tkt (private: the ticket, for the gateway's own check that the admission\nstands). Verify with /.well-known/jwks.json.\n"
  },
  "ttl_seconds": {
   "type": "integer",
   "minimum": 0,
   "description": "Seconds the grant has left."
  },
  "valid_until": {
   "$ref": "#/components/schemas/Timestamp"
  }
 }
}"##
);

json_schema!(
    Jwks,
    r##"{
 "type": "object",
 "required": [
  "keys"
 ],
 "properties": {
  "keys": {
   "type": "array",
   "description": "Every key the gateway verifies reservation tokens with, the signing key first (two while a signing key rotates). Pick the key by the token's kid.",
   "items": {
    "type": "object",
    "required": [
     "kty",
     "crv",
     "x",
     "kid",
     "alg",
     "use"
    ],
    "properties": {
     "kty": {
      "enum": [
       "OKP"
      ],
      "type": "string"
     },
     "crv": {
      "enum": [
       "Ed25519"
      ],
      "type": "string"
     },
     "x": {
      "type": "string",
      "description": "Public key, base64url."
     },
     "kid": {
      "type": "string",
      "description": "RFC 7638 thumbprint."
     },
     "alg": {
      "enum": [
       "EdDSA"
      ],
      "type": "string"
     },
     "use": {
      "enum": [
       "sig"
      ],
      "type": "string"
     }
    }
   }
  }
 },
 "example": {
  "keys": [
   {
    "kty": "OKP",
    "crv": "Ed25519",
    "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
    "kid": "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k",
    "alg": "EdDSA",
    "use": "sig"
   }
  ]
 }
}"##
);

json_schema!(
    JoinChallengeIssued,
    r##"{
 "type": "object",
 "required": [
  "required"
 ],
 "properties": {
  "required": {
   "type": "boolean",
   "description": "false for an event without a join_challenge (then no other field)."
  },
  "token": {
   "type": "string",
   "description": "The challenge, opaque and signed; hash it and send it back with the join."
  },
  "difficulty_bits": {
   "type": "integer",
   "minimum": 1,
   "maximum": 32
  },
  "expires_at": {
   "type": "string",
   "format": "date-time",
   "description": "A join with this challenge after this instant gets 403 CHALLENGE_FAILED."
  }
 }
}"##
);

/// The start of an answer whose `status` is one fixed string ([`Healthz`], [`Readiness`]), up to
/// that string: a literal, for `concat!`.
macro_rules! status_answer_head {
    () => {
        r##"{
 "type": "object",
 "required": [
  "status"
 ],
 "properties": {
  "status": {
   "enum": [
"##
    };
}

json_schema!(
    Healthz,
    concat!(
        status_answer_head!(),
        r##"    "ok"
   ],
   "type": "string"
  }
 }
}"##
    )
);

json_schema!(
    Readiness,
    concat!(
        status_answer_head!(),
        r##"    "ready"
   ],
   "type": "string"
  },
  "webhooks": {
   "description": "With webhooks configured: the inbox's entries not yet forwarded and its dead letters. Reported only: a backlog never makes the replica unready.",
   "type": "object",
   "required": [
    "backlog",
    "dead_letters"
   ],
   "properties": {
    "backlog": {
     "type": "integer",
     "minimum": 0
    },
    "dead_letters": {
     "type": "integer",
     "minimum": 0
    }
   }
  }
 }
}"##
    )
);
