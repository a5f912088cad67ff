//! Response components of the webhook endpoints and the dead-letter API.

json_response!(
    WebhookAccepted,
    r##"{
 "description": "Stored durably (`accepted`), stored before (`duplicate`), or verified but not acted on and not stored (`ignored`; counted in webhooks_ignored_total).",
 "content": {
  "application/json": {
   "schema": {
    "type": "object",
    "required": [
     "status",
     "webhook_id"
    ],
    "properties": {
     "status": {
      "type": "string",
      "enum": [
       "accepted",
       "duplicate",
       "ignored"
      ]
     },
     "webhook_id": {
      "type": "string"
     }
    }
   },
   "example": {
    "status": "accepted",
    "webhook_id": "msg_p5jXN8AQM9LWM0D4loKWxJek"
   }
  }
 }
}"##
);

json_response!(
    InvalidSignature,
    r##"{
 "description": "INVALID_SIGNATURE - a missing header, a bad or stale timestamp, or no matching signature (one generic answer).",
 "content": {
  "application/json": {
   "schema": {
    "$ref": "#/components/schemas/Error"
   },
   "example": {
    "error": {
     "code": "INVALID_SIGNATURE",
     "message": "invalid webhook signature"
    }
   }
  }
 }
}"##
);

json_response!(
    InvalidPayload,
    r##"{
 "description": "INVALID_PAYLOAD - well signed but not a payment event (not JSON, no `type`, or one of the payment types without what it needs); stored as a dead letter.",
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
    WebhooksDisabled,
    r##"{
 "description": "WEBHOOKS_DISABLED - no webhook secret is configured for this endpoint (the dead-letter API - none at all); permanent, so no Retry-After.",
 "content": {
  "application/json": {
   "schema": {
    "$ref": "#/components/schemas/Error"
   },
   "example": {
    "error": {
     "code": "WEBHOOKS_DISABLED",
     "message": "webhooks are not enabled on this gateway"
    }
   }
  }
 }
}"##
);

json_response!(
    WebhookUnavailable,
    r##"{
 "description": "UNAVAILABLE (Redis unreachable; nothing was stored, the provider should retry).",
 "headers": {
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
    DeadLetterRetried,
    r##"{
 "description": "Enqueued now (202) or by an earlier call (200).",
 "content": {
  "application/json": {
   "schema": {
    "type": "object",
    "properties": {
     "id": {
      "type": "string"
     },
     "stream_id": {
      "type": "string",
      "description": "The inbox entry of the retry."
     },
     "enqueued": {
      "type": "boolean"
     }
    }
   }
  }
 }
}"##
);

json_response!(
    AlreadyResolved,
    r##"{
 "description": "ALREADY_RESOLVED - the dead letter was resolved before.",
 "content": {
  "application/json": {
   "schema": {
    "$ref": "#/components/schemas/Error"
   }
  }
 }
}"##
);
