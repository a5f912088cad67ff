//! Schemas of the webhooks API.

json_schema!(
    PaymentWebhook,
    r##"{
 "type": "object",
 "description": "A payment outcome. Other properties are allowed and kept (the body is stored\nverbatim). A `type` other than these three is acknowledged as `ignored`.\n",
 "required": [
  "type",
  "timestamp",
  "data"
 ],
 "properties": {
  "id": {
   "type": "string",
   "description": "The provider's event id (Stripe); optional."
  },
  "type": {
   "type": "string",
   "enum": [
    "payment.approved",
    "payment.failed",
    "payment.cancelled"
   ]
  },
  "timestamp": {
   "$ref": "#/components/schemas/Timestamp"
  },
  "data": {
   "type": "object",
   "required": [
    "payment_intent_id",
    "reservation_id",
    "amount_cents",
    "currency"
   ],
   "properties": {
    "payment_intent_id": {
     "type": "string"
    },
    "reservation_id": {
     "type": "string"
    },
    "amount_cents": {
     "type": "integer",
     "minimum": 0
    },
    "currency": {
     "type": "string",
     "pattern": "^[A-Za-z]{3}$"
    },
    "failure_code": {
     "type": "string"
    }
   }
  }
 }
}"##
);

json_schema!(
    StripeEvent,
    r##"{
 "type": "object",
 "description": "A Stripe event (https://docs.stripe.com/api/events/object); only the properties\nbelow are read, all others are kept. `data.object` is a PaymentIntent or a\nCheckout Session.\n",
 "required": [
  "id",
  "type",
  "created",
  "data"
 ],
 "properties": {
  "id": {
   "type": "string",
   "description": "The event id (`evt_…`)",
   "the dedup key.": null
  },
  "object": {
   "type": "string",
   "enum": [
    "event"
   ]
  },
  "type": {
   "type": "string",
   "examples": [
    "payment_intent.succeeded",
    "checkout.session.completed"
   ]
  },
  "created": {
   "type": "integer",
   "description": "Unix seconds; the envelope's occurred_at."
  },
  "data": {
   "type": "object",
   "required": [
    "object"
   ],
   "properties": {
    "object": {
     "type": "object",
     "properties": {
      "id": {
       "type": "string"
      },
      "metadata": {
       "type": "object",
       "properties": {
        "reservation_id": {
         "type": "string",
         "description": "Ours; absent: the event is ignored."
        }
       }
      },
      "amount": {
       "type": "integer"
      },
      "amount_received": {
       "type": "integer"
      },
      "amount_total": {
       "type": "integer"
      },
      "currency": {
       "type": "string"
      },
      "payment_intent": {
       "oneOf": [
        {
         "type": "string"
        },
        {
         "type": "object"
        },
        {
         "type": "null"
        }
       ]
      },
      "payment_status": {
       "type": "string"
      },
      "last_payment_error": {
       "oneOf": [
        {
         "type": "object"
        },
        {
         "type": "null"
        }
       ]
      },
      "cancellation_reason": {
       "oneOf": [
        {
         "type": "string"
        },
        {
         "type": "null"
        }
       ]
      }
     }
    }
   }
  }
 }
}"##
);

json_schema!(
    StripeWebhook,
    r##"{
 "oneOf": [
  {
   "$ref": "#/components/schemas/StripeEvent"
  },
  {
   "$ref": "#/components/schemas/PaymentWebhook"
  }
 ]
}"##
);

json_schema!(
    WebhookEnvelope,
    r##"{
 "type": "object",
 "description": "A stored webhook.",
 "properties": {
  "event_id": {
   "type": "string",
   "description": "The webhook id (dedup key)."
  },
  "event_type": {
   "type": "string",
   "description": "The payment outcome (`payment.approved`, …; a Stripe event's mapped outcome), or `invalid` for a malformed payload."
  },
  "source": {
   "type": "string",
   "enum": [
    "standard-webhooks",
    "stripe"
   ]
  },
  "occurred_at": {
   "type": "string",
   "description": "The payload's timestamp (empty when malformed)."
  },
  "received_at": {
   "$ref": "#/components/schemas/Timestamp"
  },
  "received_ms": {
   "type": "integer"
  },
  "schema_version": {
   "type": "integer",
   "enum": [
    1
   ]
  },
  "payload": {
   "type": "string",
   "description": "The verified body as received."
  }
 }
}"##
);

json_schema!(
    DeadLetter,
    r##"{
 "type": "object",
 "required": [
  "id",
  "status",
  "envelope",
  "attempts",
  "last_error",
  "failed_at"
 ],
 "properties": {
  "id": {
   "type": "string",
   "pattern": "^[0-9]+-[0-9]+$",
   "description": "Its id in the dead-letter stream."
  },
  "status": {
   "type": "string",
   "enum": [
    "active",
    "retried",
    "resolved"
   ]
  },
  "envelope": {
   "$ref": "#/components/schemas/WebhookEnvelope"
  },
  "attempts": {
   "type": "integer",
   "description": "Forward attempts made (0 for a malformed payload)."
  },
  "last_error": {
   "type": "string"
  },
  "failed_at": {
   "$ref": "#/components/schemas/Timestamp"
  },
  "retry_of": {
   "type": "string",
   "description": "The dead letter it was re-enqueued from",
   "if any.": null
  },
  "retried_at": {
   "$ref": "#/components/schemas/Timestamp"
  },
  "retry_stream_id": {
   "type": "string"
  },
  "resolved_at": {
   "$ref": "#/components/schemas/Timestamp"
  },
  "resolved_by": {
   "type": "string"
  },
  "note": {
   "type": "string"
  }
 }
}"##
);

json_schema!(
    DeadLetterList,
    r##"{
 "type": "object",
 "required": [
  "dead_letters"
 ],
 "properties": {
  "dead_letters": {
   "type": "array",
   "items": {
    "$ref": "#/components/schemas/DeadLetter"
   }
  }
 }
}"##
);

json_schema!(
    ResolveRequest,
    r##"{
 "type": "object",
 "additionalProperties": false,
 "required": [
  "resolved_by"
 ],
 "properties": {
  "resolved_by": {
   "type": "string",
   "minLength": 1,
   "maxLength": 200,
   "pattern": "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]",
   "description": "Who resolved it: at most 200 characters, not only white space."
  },
  "note": {
   "type": "string",
   "maxLength": 2000
  }
 }
}"##
);
