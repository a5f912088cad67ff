//! Schemas of the operator console (`/admin`): its sign-in form and the frames of its live
//! WebSocket (gateway::console).

json_schema!(
    ConsoleSignIn,
    r##"{
 "type": "object",
 "required": [
  "token"
 ],
 "properties": {
  "token": {
   "type": "string",
   "description": "The value of the gateway's --admin-token (only ever in this body, never in a URL)."
  }
 }
}"##
);

json_schema!(
    ConsoleMessage,
    r##"{
 "description": "A frame of GET /admin/ws (JSON text), told apart by `type`: first a `history`, then a `sample` every second.",
 "oneOf": [
  {
   "$ref": "#/components/schemas/ConsoleHistory"
  },
  {
   "$ref": "#/components/schemas/ConsoleSample"
  }
 ],
 "discriminator": {
  "propertyName": "type",
  "mapping": {
   "history": "#/components/schemas/ConsoleHistory",
   "sample": "#/components/schemas/ConsoleSample"
  }
 }
}"##
);

json_schema!(
    ConsoleHistory,
    r##"{
 "type": "object",
 "description": "The first frame: the samples this replica kept (the last 15 minutes), per event as columns, oldest first.",
 "required": [
  "type",
  "interval_ms",
  "events"
 ],
 "properties": {
  "type": {
   "type": "string",
   "enum": [
    "history"
   ]
  },
  "interval_ms": {
   "type": "integer",
   "description": "Time between two samples."
  },
  "events": {
   "type": "object",
   "description": "Keyed by event id.",
   "additionalProperties": {
    "type": "object",
    "required": [
     "t",
     "waiting",
     "ready",
     "active",
     "admitted_per_second",
     "admit_per_second"
    ],
    "properties": {
     "t": {
      "type": "array",
      "description": "Sample times (Unix ms).",
      "items": {
       "type": "integer"
      }
     },
     "waiting": {
      "type": "array",
      "items": {
       "type": "integer"
      }
     },
     "ready": {
      "type": "array",
      "items": {
       "type": "integer"
      }
     },
     "active": {
      "type": "array",
      "items": {
       "type": "integer"
      }
     },
     "admitted_per_second": {
      "type": "array",
      "description": "Admissions per second since the previous sample; null for an event's first sample.",
      "items": {
       "type": [
        "number",
        "null"
       ]
      }
     },
     "admit_per_second": {
      "type": "array",
      "description": "The configured rate.",
      "items": {
       "type": "integer"
      }
     }
    }
   }
  }
 },
 "example": {
  "type": "history",
  "interval_ms": 1000,
  "events": {
   "spring-tour": {
    "t": [
     1764700000000,
     1764700001000
    ],
    "waiting": [
     1200,
     1180
    ],
    "ready": [
     40,
     38
    ],
    "active": [
     900,
     905
    ],
    "admitted_per_second": [
     null,
     20.0
    ],
    "admit_per_second": [
     20,
     20
    ]
   }
  }
 }
}"##
);

json_schema!(
    ConsoleSample,
    r##"{
 "type": "object",
 "description": "Every second: every event's numbers (the store's configured events, the first 200 by id), this replica's WebSockets and the webhook inbox.",
 "required": [
  "type",
  "t",
  "events",
  "replica",
  "webhooks"
 ],
 "properties": {
  "type": {
   "type": "string",
   "enum": [
    "sample"
   ]
  },
  "t": {
   "type": "integer",
   "description": "The sample's time (Unix ms)."
  },
  "events": {
   "type": "array",
   "items": {
    "type": "object",
    "required": [
     "event_id",
     "waiting",
     "ready",
     "active",
     "joined_total",
     "admitted_total",
     "entered_total",
     "admitted_per_second",
     "measured_admit_per_second",
     "admit_per_second",
     "max_active",
     "opens_at",
     "admissions_stopped",
     "sold_out",
     "eta_last_seconds"
    ],
    "properties": {
     "event_id": {
      "$ref": "#/components/schemas/EventId"
     },
     "waiting": {
      "type": "integer"
     },
     "ready": {
      "type": "integer"
     },
     "active": {
      "type": "integer"
     },
     "joined_total": {
      "type": "integer"
     },
     "admitted_total": {
      "type": "integer"
     },
     "entered_total": {
      "type": "integer"
     },
     "admitted_per_second": {
      "type": [
       "number",
       "null"
      ],
      "description": "Admissions per second since the previous sample; null for an event's first sample."
     },
     "measured_admit_per_second": {
      "type": [
       "number",
       "null"
      ],
      "description": "The rate the queue measured (as in the event view); null before a measurement."
     },
     "admit_per_second": {
      "type": "integer"
     },
     "max_active": {
      "type": "integer"
     },
     "opens_at": {
      "type": [
       "string",
       "null"
      ],
      "format": "date-time"
     },
     "admissions_stopped": {
      "type": "boolean"
     },
     "sold_out": {
      "type": "boolean"
     },
     "eta_last_seconds": {
      "type": "integer",
      "minimum": -1,
      "description": "Estimated seconds until the last in line is admitted; -1 while admissions are stopped or the rate is 0."
     }
    }
   }
  },
  "replica": {
   "type": "object",
   "required": [
    "websockets"
   ],
   "properties": {
    "websockets": {
     "type": "integer",
     "description": "Queue WebSockets open on this replica."
    }
   }
  },
  "webhooks": {
   "type": [
    "object",
    "null"
   ],
   "description": "The webhook inbox (null without webhooks); a count is null when Redis did not answer.",
   "required": [
    "backlog",
    "dead_letters"
   ],
   "properties": {
    "backlog": {
     "type": [
      "integer",
      "null"
     ]
    },
    "dead_letters": {
     "type": [
      "integer",
      "null"
     ]
    }
   }
  }
 }
}"##
);
