//! Schemas of the forward API.

json_schema!(
    Money,
    r##"{
 "type": "object",
 "required": [
  "amount_cents",
  "currency"
 ],
 "properties": {
  "amount_cents": {
   "type": "integer"
  },
  "currency": {
   "type": "string",
   "examples": [
    "USD"
   ]
  }
 }
}"##
);

json_schema!(
    Seat,
    r##"{
 "type": "object",
 "properties": {
  "seat_id": {
   "type": "string",
   "examples": [
    "A-1"
   ]
  },
  "section": {
   "type": "string",
   "examples": [
    "A"
   ]
  },
  "row": {
   "type": "string",
   "examples": [
    "A"
   ]
  },
  "number": {
   "type": "integer",
   "examples": [
    1
   ]
  },
  "price": {
   "$ref": "#/components/schemas/Money"
  },
  "status": {
   "type": "string",
   "enum": [
    "UNSPECIFIED",
    "AVAILABLE",
    "HELD",
    "SOLD"
   ]
  }
 }
}"##
);

json_schema!(
    AvailabilityResponse,
    r##"{
 "type": "object",
 "required": [
  "event_id",
  "available",
  "available_seats",
  "unavailable_seat_ids",
  "remaining_in_section"
 ],
 "properties": {
  "event_id": {
   "$ref": "#/components/schemas/EventId"
  },
  "available": {
   "type": "boolean"
  },
  "available_seats": {
   "type": "array",
   "items": {
    "$ref": "#/components/schemas/Seat"
   }
  },
  "unavailable_seat_ids": {
   "type": "array",
   "items": {
    "type": "string"
   }
  },
  "remaining_in_section": {
   "type": "integer",
   "description": "Free seats in the section, or in the event without one."
  }
 }
}"##
);

/// The statuses of a reservation (also the `status` of a WebSocket frame, `WsReservationStatus`).
pub(super) const RESERVATION_STATUS: &str = r##"{
 "type": "string",
 "enum": [
  "PENDING",
  "CONFIRMED",
  "CANCELLED",
  "EXPIRED"
 ]
}"##;

json_schema!(ReservationStatus, RESERVATION_STATUS);

json_schema!(
    ReservationRequest,
    r##"{
 "description": "Seats by count (`quantity`) or by name (`seat_ids`, with `quantity` left out, 0 or their number).",
 "oneOf": [
  {
   "title": "ByCount",
   "type": "object",
   "additionalProperties": false,
   "required": [
    "event_id",
    "quantity"
   ],
   "properties": {
    "event_id": {
     "$ref": "#/components/schemas/EventId"
    },
    "quantity": {
     "type": "integer",
     "minimum": 1,
     "maximum": 10,
     "description": "Seats to hold."
    }
   }
  },
  {
   "title": "BySeat",
   "type": "object",
   "additionalProperties": false,
   "required": [
    "event_id",
    "seat_ids"
   ],
   "properties": {
    "event_id": {
     "$ref": "#/components/schemas/EventId"
    },
    "quantity": {
     "type": "integer",
     "enum": [
      0
     ],
     "description": "Left out or 0 (or the number of seat_ids)."
    },
    "seat_ids": {
     "type": "array",
     "minItems": 1,
     "uniqueItems": true,
     "items": {
      "type": "string",
      "pattern": "^[A-Z]{1,4}-[1-9][0-9]{0,3}$",
      "description": "ROW-NUMBER",
      "examples": [
       "B-3"
      ]
     },
     "description": "The seats to hold, each once."
    }
   }
  }
 ]
}"##
);

json_schema!(
    ReservationResponse,
    r##"{
 "type": "object",
 "required": [
  "reservation_id",
  "status",
  "hold_expires_at",
  "reserved_seats",
  "total_amount",
  "payment_url",
  "replayed"
 ],
 "properties": {
  "reservation_id": {
   "type": "string",
   "description": "r_<32 hex>_<event_id>"
  },
  "status": {
   "$ref": "#/components/schemas/ReservationStatus"
  },
  "hold_expires_at": {
   "$ref": "#/components/schemas/Timestamp"
  },
  "reserved_seats": {
   "type": "array",
   "items": {
    "$ref": "#/components/schemas/Seat"
   }
  },
  "total_amount": {
   "$ref": "#/components/schemas/Money"
  },
  "payment_url": {
   "type": "string",
   "description": "Where the buyer pays: the backend's URL when it gives one, else\n/api/v1/payments/intents (POST it with this reservation_id).\n"
  },
  "replayed": {
   "type": "boolean",
   "description": "True when an earlier request with the same Idempotency-Key made it."
  }
 }
}"##
);

json_schema!(
    Reservation,
    r##"{
 "type": "object",
 "properties": {
  "reservation_id": {
   "type": "string"
  },
  "event_id": {
   "$ref": "#/components/schemas/EventId"
  },
  "status": {
   "$ref": "#/components/schemas/ReservationStatus"
  },
  "seats": {
   "type": "array",
   "items": {
    "$ref": "#/components/schemas/Seat"
   }
  },
  "quantity": {
   "type": "integer"
  },
  "total_amount": {
   "$ref": "#/components/schemas/Money"
  },
  "created_at": {
   "$ref": "#/components/schemas/Timestamp"
  },
  "hold_expires_at": {
   "$ref": "#/components/schemas/Timestamp"
  },
  "order_id": {
   "type": [
    "string",
    "null"
   ],
   "description": "Set once CONFIRMED."
  },
  "payment_intent_id": {
   "type": [
    "string",
    "null"
   ],
   "description": "The payment that confirmed it."
  },
  "confirmed_at": {
   "type": [
    "string",
    "null"
   ],
   "format": "date-time"
  }
 }
}"##
);

json_schema!(
    PaymentIntentRequest,
    r##"{
 "type": "object",
 "additionalProperties": false,
 "required": [
  "reservation_id"
 ],
 "properties": {
  "reservation_id": {
   "type": "string",
   "pattern": "^r_[0-9A-Fa-f]{32}_[\\s\\S]+$",
   "description": "r_<32 hex>_<event_id>, as POST /api/v1/reservations returned it (else 400 INVALID_ARGUMENT)."
  },
  "scenario": {
   "type": "string",
   "enum": [
    "APPROVE",
    "FAIL",
    "DELAY",
    "RANDOM",
    "TIMEOUT"
   ],
   "default": "APPROVE",
   "description": "Outcome of the payment simulator (case-insensitive)."
  }
 }
}"##
);

json_schema!(
    PaymentIntentResponse,
    r##"{
 "type": "object",
 "required": [
  "payment_intent_id",
  "status",
  "expires_at",
  "replayed"
 ],
 "properties": {
  "payment_intent_id": {
   "type": "string",
   "description": "pi_<32 hex>_<event_id>"
  },
  "status": {
   "type": "string",
   "enum": [
    "PENDING",
    "APPROVED",
    "FAILED",
    "CANCELLED",
    "EXPIRED"
   ]
  },
  "expires_at": {
   "$ref": "#/components/schemas/Timestamp"
  },
  "client_secret": {
   "type": "string"
  },
  "replayed": {
   "type": "boolean"
  }
 }
}"##
);
