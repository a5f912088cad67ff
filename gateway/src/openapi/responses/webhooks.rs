//! Response components of the webhook endpoints and the dead-letter API.

use super::{error_answer, example, no_example, retry_after_one};

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

error_answers! {
    InvalidSignature: "INVALID_SIGNATURE - a missing header, a bad or stale timestamp, or no matching signature (one generic answer).", [], example("INVALID_SIGNATURE", "invalid webhook signature");
    InvalidPayload: "INVALID_PAYLOAD - well signed but not a payment event (not JSON, no `type`, or one of the payment types without what it needs); stored as a dead letter.", [], no_example();
    WebhooksDisabled: "WEBHOOKS_DISABLED - no webhook secret is configured for this endpoint (the dead-letter API - none at all); permanent, so no Retry-After.", [], example("WEBHOOKS_DISABLED", "webhooks are not enabled on this gateway");
    WebhookUnavailable: "UNAVAILABLE (Redis unreachable; nothing was stored, the provider should retry).", [retry_after_one()], no_example();
}

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

error_answers! {
    AlreadyResolved: "ALREADY_RESOLVED - the dead letter was resolved before.", [], no_example();
}
