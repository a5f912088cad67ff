//! Response components: answers several operations share.

mod webhooks;
pub use webhooks::*;

json_response!(
    RequestTimeout,
    r##"{
 "description": "REQUEST_TIMEOUT - the request body did not arrive within --request-timeout-ms\n(5000 ms by default): the client stopped sending before Content-Length was\nreached. No Retry-After; on HTTP/1 the connection is closed (Connection: close).\n",
 "content": {
  "application/json": {
   "schema": {
    "$ref": "#/components/schemas/Error"
   }
  }
 }
}"##
);

json_response!(
    ChallengeRefused,
    r##"{
 "description": "CHALLENGE_REQUIRED - the event has a join_challenge and the join carried no\n`challenge`; CHALLENGE_FAILED - the solution is forged, for another event,\nexpired, already used, issued at a lower difficulty than the event now asks,\nor the nonce has too few leading zero bits. Get a new challenge.\n",
 "content": {
  "application/json": {
   "schema": {
    "$ref": "#/components/schemas/Error"
   },
   "examples": {
    "required": {
     "value": {
      "error": {
       "code": "CHALLENGE_REQUIRED",
       "message": "this event requires a solved join challenge (GET /api/v1/queue/challenge)"
      }
     }
    },
    "failed": {
     "value": {
      "error": {
       "code": "CHALLENGE_FAILED",
       "message": "the join challenge failed: already used; get a new challenge"
      }
     }
    }
   }
  }
 }
}"##
);

json_response!(
    RateLimited,
    r##"{
 "description": "RATE_LIMITED - this client address is over its per-minute limit\n(join: --join-rate-per-ip, 600 by default; status and WebSocket\nupgrades: --status-rate-per-ip, 6000 by default), counted per replica.\nThe client is the TCP peer, or the right-most untrusted\nX-Forwarded-For / Forwarded address when the peer is a --trusted-proxy;\nIPv6 clients are counted by their /64.\n",
 "headers": {
  "x-request-id": {
   "description": "The request's x-request-id, or a generated one.",
   "schema": {
    "type": "string"
   }
  },
  "Retry-After": {
   "description": "Whole seconds until the client's next token (at least 1).",
   "schema": {
    "type": "integer",
    "minimum": 1
   }
  }
 },
 "content": {
  "application/json": {
   "schema": {
    "$ref": "#/components/schemas/Error"
   },
   "example": {
    "error": {
     "code": "RATE_LIMITED",
     "message": "too many requests from this address; retry in 20 s"
    }
   }
  }
 }
}"##
);

json_response!(
    TooManySockets,
    r##"{
 "description": "TOO_MANY_SOCKETS - this waiting token already has --ws-per-token (4 by\ndefault) WebSockets open on this replica; close one first.\n",
 "headers": {
  "x-request-id": {
   "description": "The request's x-request-id, or a generated one.",
   "schema": {
    "type": "string"
   }
  },
  "Retry-After": {
   "description": "Seconds to wait before retrying (always 1).",
   "schema": {
    "type": "integer",
    "enum": [
     1
    ]
   }
  }
 },
 "content": {
  "application/json": {
   "schema": {
    "$ref": "#/components/schemas/Error"
   }
  }
 }
}"##
);

json_response!(
    ForwardedError,
    r##"{
 "description": "An error of the forwarded API: the gateway's own (UNAUTHENTICATED 401,\nFORBIDDEN, ADMISSION_EXPIRED or (holds) ADMISSION_ENDED 403, IDEMPOTENCY_REQUIRED or INVALID_ARGUMENT\n400, UPSTREAM_NOT_CONFIGURED 501 (no URL configured for that upstream;\npermanent, no Retry-After), UPSTREAM_UNAVAILABLE, UPSTREAM_OVERLOADED or CIRCUIT_OPEN 503,\nUPSTREAM_TIMEOUT 504) or the upstream's gRPC status mapped to HTTP\n(INVALID_ARGUMENT 400, NOT_FOUND 404, ALREADY_EXISTS and FAILED_PRECONDITION\n409, RESOURCE_EXHAUSTED 429, PERMISSION_DENIED 403, UNAUTHENTICATED 401,\nUNAVAILABLE 503, DEADLINE_EXCEEDED 504, others 502 UPSTREAM_ERROR), with the\nbackend's common.v1.Error code when it sent one (INVENTORY_CONFLICT,\nRESERVATION_EXPIRED, IDEMPOTENCY_CONFLICT, HOLD_LIMIT, ...). 503 and 429 carry Retry-After 1.\n",
 "headers": {
  "x-request-id": {
   "description": "The request's x-request-id, or a generated one.",
   "schema": {
    "type": "string"
   }
  }
 },
 "content": {
  "application/json": {
   "schema": {
    "$ref": "#/components/schemas/Error"
   },
   "examples": {
    "taken": {
     "value": {
      "error": {
       "code": "INVENTORY_CONFLICT",
       "message": "not enough free seats"
      }
     }
    },
    "holdLimit": {
     "value": {
      "error": {
       "code": "HOLD_LIMIT",
       "message": "this admission already has 1 active hold(s): pay for it, or let it be released or expire, before holding again"
      }
     }
    },
    "ended": {
     "value": {
      "error": {
       "code": "ADMISSION_ENDED",
       "message": "the admission has ended (left or expired); queue again"
      }
     }
    },
    "forbidden": {
     "value": {
      "error": {
       "code": "FORBIDDEN",
       "message": "the admission token is not valid for this event"
      }
     }
    },
    "circuit": {
     "value": {
      "error": {
       "code": "CIRCUIT_OPEN",
       "message": "the inventory service is unavailable; retry shortly"
      }
     }
    }
   }
  }
 }
}"##
);

json_response!(
    TooManyConnections,
    r##"{
 "description": "TOO_MANY_CONNECTIONS - the connection limit (--max-connections) is reached.",
 "headers": {
  "x-request-id": {
   "description": "The request's x-request-id, or a generated one.",
   "schema": {
    "type": "string"
   }
  },
  "Retry-After": {
   "description": "Seconds to wait before retrying (always 1).",
   "schema": {
    "type": "integer",
    "enum": [
     1
    ]
   }
  }
 },
 "content": {
  "application/json": {
   "schema": {
    "$ref": "#/components/schemas/Error"
   },
   "example": {
    "error": {
     "code": "TOO_MANY_CONNECTIONS",
     "message": "too many connections; retry shortly"
    }
   }
  }
 }
}"##
);

json_response!(
    InvalidAssertion,
    r##"{
 "description": "INVALID_ASSERTION - the join's user_assertion does not verify (signature, alg, exp, nbf, aud, sid or sub); the message names the failed check. No place is taken.",
 "headers": {
  "x-request-id": {
   "description": "The request's x-request-id, or a generated one.",
   "schema": {
    "type": "string"
   }
  }
 },
 "content": {
  "application/json": {
   "schema": {
    "$ref": "#/components/schemas/Error"
   },
   "example": {
    "error": {
     "code": "INVALID_ASSERTION",
     "message": "the user assertion is invalid: it has expired"
    }
   }
  }
 }
}"##
);

json_response!(
    InvalidArgument,
    r##"{
 "description": "INVALID_ARGUMENT - malformed JSON, wrong types, missing or unknown fields, bad ids or values; on join also ASSERTIONS_DISABLED (a user_assertion sent to a gateway without --user-assertion-key).",
 "headers": {
  "x-request-id": {
   "description": "The request's x-request-id, or a generated one.",
   "schema": {
    "type": "string"
   }
  }
 },
 "content": {
  "application/json": {
   "schema": {
    "$ref": "#/components/schemas/Error"
   },
   "example": {
    "error": {
     "code": "INVALID_ARGUMENT",
     "message": "event_id must match [A-Za-z0-9_-]{1,64}"
    }
   }
  }
 }
}"##
);

json_response!(
    BadWaitingToken,
    r##"{
 "description": "UNAUTHENTICATED (no Authorization Bearer header) or INVALID_TOKEN (tampered or foreign waiting token).",
 "headers": {
  "x-request-id": {
   "description": "The request's x-request-id, or a generated one.",
   "schema": {
    "type": "string"
   }
  }
 },
 "content": {
  "application/json": {
   "schema": {
    "$ref": "#/components/schemas/Error"
   },
   "examples": {
    "missing": {
     "value": {
      "error": {
       "code": "UNAUTHENTICATED",
       "message": "missing bearer token"
      }
     }
    },
    "invalid": {
     "value": {
      "error": {
       "code": "INVALID_TOKEN",
       "message": "invalid waiting token"
      }
     }
    }
   }
  }
 }
}"##
);

json_response!(
    Unauthorized,
    r##"{
 "description": "UNAUTHORIZED - neither the admin token (a wrong bearer token is refused even with a\nvalid console session cookie) nor a valid console session, or the admin API is\ndisabled (no --admin-token).\n",
 "headers": {
  "x-request-id": {
   "description": "The request's x-request-id, or a generated one.",
   "schema": {
    "type": "string"
   }
  }
 },
 "content": {
  "application/json": {
   "schema": {
    "$ref": "#/components/schemas/Error"
   },
   "example": {
    "error": {
     "code": "UNAUTHORIZED",
     "message": "admin token required"
    }
   }
  }
 }
}"##
);

json_response!(
    CsrfFailed,
    r##"{
 "description": "CSRF_FAILED - a change (any method but GET and HEAD) made with an operator console\nsession cookie without the session's X-CSRF-Token header, or with a wrong one\n(another session's). Nothing was changed; reload the console.\n",
 "headers": {
  "x-request-id": {
   "description": "The request's x-request-id, or a generated one.",
   "schema": {
    "type": "string"
   }
  }
 },
 "content": {
  "application/json": {
   "schema": {
    "$ref": "#/components/schemas/Error"
   },
   "example": {
    "error": {
     "code": "CSRF_FAILED",
     "message": "this change needs the console session's X-CSRF-Token header; reload the console"
    }
   }
  }
 }
}"##
);

json_response!(
    EventNotFound,
    r##"{
 "description": "EVENT_NOT_FOUND - no such event.",
 "headers": {
  "x-request-id": {
   "description": "The request's x-request-id, or a generated one.",
   "schema": {
    "type": "string"
   }
  }
 },
 "content": {
  "application/json": {
   "schema": {
    "$ref": "#/components/schemas/Error"
   },
   "example": {
    "error": {
     "code": "EVENT_NOT_FOUND",
     "message": "event not found"
    }
   }
  }
 }
}"##
);

json_response!(
    NotFound,
    r##"{
 "description": "NOT_FOUND - no such route.",
 "headers": {
  "x-request-id": {
   "description": "The request's x-request-id, or a generated one.",
   "schema": {
    "type": "string"
   }
  }
 },
 "content": {
  "application/json": {
   "schema": {
    "$ref": "#/components/schemas/Error"
   },
   "example": {
    "error": {
     "code": "NOT_FOUND",
     "message": "no such route"
    }
   }
  }
 }
}"##
);

json_response!(
    MethodNotAllowed,
    r##"{
 "description": "METHOD_NOT_ALLOWED - the route does not accept this method.",
 "headers": {
  "x-request-id": {
   "description": "The request's x-request-id, or a generated one.",
   "schema": {
    "type": "string"
   }
  }
 },
 "content": {
  "application/json": {
   "schema": {
    "$ref": "#/components/schemas/Error"
   },
   "example": {
    "error": {
     "code": "METHOD_NOT_ALLOWED",
     "message": "method not allowed"
    }
   }
  }
 }
}"##
);

json_response!(
    EventClosed,
    r##"{
 "description": "EVENT_CLOSED - the event is sold out.",
 "headers": {
  "x-request-id": {
   "description": "The request's x-request-id, or a generated one.",
   "schema": {
    "type": "string"
   }
  }
 },
 "content": {
  "application/json": {
   "schema": {
    "$ref": "#/components/schemas/Error"
   },
   "example": {
    "error": {
     "code": "EVENT_CLOSED",
     "message": "the event is sold out"
    }
   }
  }
 }
}"##
);

json_response!(
    PayloadTooLarge,
    r##"{
 "description": "PAYLOAD_TOO_LARGE - body over --max-body-bytes (16384 by default).",
 "headers": {
  "x-request-id": {
   "description": "The request's x-request-id, or a generated one.",
   "schema": {
    "type": "string"
   }
  }
 },
 "content": {
  "application/json": {
   "schema": {
    "$ref": "#/components/schemas/Error"
   },
   "example": {
    "error": {
     "code": "PAYLOAD_TOO_LARGE",
     "message": "request body too large"
    }
   }
  }
 }
}"##
);

json_response!(
    Internal,
    r##"{
 "description": "INTERNAL - a bug in the gateway; never caused by client input.",
 "headers": {
  "x-request-id": {
   "description": "The request's x-request-id, or a generated one.",
   "schema": {
    "type": "string"
   }
  }
 },
 "content": {
  "application/json": {
   "schema": {
    "$ref": "#/components/schemas/Error"
   },
   "example": {
    "error": {
     "code": "INTERNAL",
     "message": "internal error"
    }
   }
  }
 }
}"##
);

json_response!(
    Unavailable,
    r##"{
 "description": "UNAVAILABLE - Redis unreachable or too slow; OVERLOADED - too many\nrequests of this event already wait for the next Redis batch\n(--redis-batch-pending, 8192 by default); or TIMEOUT - the request\nexceeded --request-timeout-ms (5000 by default).\n",
 "headers": {
  "x-request-id": {
   "description": "The request's x-request-id, or a generated one.",
   "schema": {
    "type": "string"
   }
  },
  "Retry-After": {
   "description": "Seconds to wait before retrying (always 1).",
   "schema": {
    "type": "integer",
    "enum": [
     1
    ]
   }
  }
 },
 "content": {
  "application/json": {
   "schema": {
    "$ref": "#/components/schemas/Error"
   },
   "examples": {
    "unavailable": {
     "value": {
      "error": {
       "code": "UNAVAILABLE",
       "message": "store unavailable"
      }
     }
    },
    "timeout": {
     "value": {
      "error": {
       "code": "TIMEOUT",
       "message": "request timed out"
      }
     }
    }
   }
  }
 }
}"##
);
