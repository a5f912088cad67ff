//! Schemas of the system-wide admin API (emergency actions, health).

/// The body of an emergency-actions endpoint (`SystemActionRequest`, `ActionRequest`): the
/// `emergency` actions must carry `"confirm": true`, the `other` ones (a variant titled
/// `other_title`) need none; any may name a reason and an operator for the audit log.
pub(super) fn action_request(
    description: &str, emergency: [&str; 2], other_title: &str, other: [&str; 2],
) -> String {
    let text = |value: &str| serde_json::Value::from(value).to_string();
    let list = |values: [&str; 2]| serde_json::Value::from(values.to_vec()).to_string();
    ACTION_REQUEST
        .replace("DESCRIPTION", &text(description))
        .replace("EMERGENCY_ACTIONS", &list(emergency))
        .replace("OTHER_TITLE", &text(other_title))
        .replace("OTHER_ACTIONS", &list(other))
        .replace("AUDIT_FIELDS", AUDIT_FIELDS)
}

/// [`action_request`]'s schema, with its blanks in capitals.
const ACTION_REQUEST: &str = r##"{
 "description": DESCRIPTION,
 "oneOf": [
  {
   "type": "object",
   "title": "Emergency",
   "required": ["action", "confirm"],
   "additionalProperties": false,
   "properties": {
    "action": {"type": "string", "enum": EMERGENCY_ACTIONS},
    "confirm": {"type": "boolean", "enum": [true]},
    AUDIT_FIELDS
   }
  },
  {
   "type": "object",
   "title": OTHER_TITLE,
   "required": ["action"],
   "additionalProperties": false,
   "properties": {
    "action": {"type": "string", "enum": OTHER_ACTIONS},
    "confirm": {"type": "boolean", "default": false, "description": "Not needed; accepted."},
    AUDIT_FIELDS
   }
  }
 ]
}"##;

/// The optional audit fields of an action's body.
const AUDIT_FIELDS: &str = r##""reason": {"type": ["string", "null"], "description": "For the audit log (null: none)."},
    "operator_id": {"type": ["string", "null"], "description": "For the audit log (null: none)."}"##;

json_schema!(
    SystemActionRequest,
    &action_request(
        "MAINTENANCE_MODE and CIRCUIT_BREAKER are emergency actions: they must carry `\"confirm\": true` (else 400 CONFIRMATION_REQUIRED); their way back needs none.",
        ["MAINTENANCE_MODE", "CIRCUIT_BREAKER"],
        "WayBack",
        ["END_MAINTENANCE_MODE", "END_CIRCUIT_BREAKER"],
    )
);

json_schema!(
    SystemModes,
    r##"{
 "type": "object",
 "required": [
  "maintenance",
  "maintenance_since",
  "circuit_breaker",
  "circuit_breaker_since"
 ],
 "properties": {
  "maintenance": {
   "type": "boolean"
  },
  "maintenance_since": {
   "oneOf": [
    {
     "$ref": "#/components/schemas/Timestamp"
    },
    {
     "type": "null"
    }
   ]
  },
  "circuit_breaker": {
   "type": "boolean"
  },
  "circuit_breaker_since": {
   "oneOf": [
    {
     "$ref": "#/components/schemas/Timestamp"
    },
    {
     "type": "null"
    }
   ]
  }
 }
}"##
);

json_schema!(
    ActionResult,
    r##"{
 "type": "object",
 "required": [
  "action_id",
  "action",
  "executed",
  "executed_at",
  "message",
  "modes"
 ],
 "properties": {
  "action_id": {
   "type": "string",
   "description": "act_<32 hex>, also in the audit log line"
  },
  "action": {
   "type": "string"
  },
  "executed": {
   "enum": [
    true
   ],
   "type": "boolean"
  },
  "executed_at": {
   "$ref": "#/components/schemas/Timestamp"
  },
  "message": {
   "type": "string"
  },
  "modes": {
   "$ref": "#/components/schemas/SystemModes"
  }
 }
}"##
);

json_schema!(
    HealthStatus,
    r##"{
 "type": "string",
 "enum": [
  "HEALTHY",
  "DEGRADED",
  "UNHEALTHY"
 ]
}"##
);

json_schema!(
    SystemHealth,
    r##"{
 "type": "object",
 "required": [
  "overall_status",
  "checked_at",
  "modes",
  "services",
  "dependencies"
 ],
 "properties": {
  "overall_status": {
   "$ref": "#/components/schemas/HealthStatus"
  },
  "checked_at": {
   "$ref": "#/components/schemas/Timestamp"
  },
  "modes": {
   "$ref": "#/components/schemas/SystemModes"
  },
  "services": {
   "type": "array",
   "description": "queue_api and forwarded_api.",
   "items": {
    "type": "object",
    "required": [
     "name",
     "status",
     "message"
    ],
    "properties": {
     "name": {
      "type": "string",
      "enum": [
       "queue_api",
       "forwarded_api"
      ]
     },
     "status": {
      "$ref": "#/components/schemas/HealthStatus"
     },
     "message": {
      "type": "string"
     }
    }
   }
  },
  "dependencies": {
   "type": "array",
   "items": {
    "type": "object",
    "required": [
     "name",
     "kind",
     "status",
     "latency_ms",
     "message"
    ],
    "properties": {
     "name": {
      "type": "string",
      "description": "redis:<host:port> (each primary), store:memory, upstream:<reservation|inventory|payment|worker>, webhooks"
     },
     "kind": {
      "type": "string",
      "enum": [
       "redis_primary",
       "store",
       "upstream",
       "webhook_consumer"
      ]
     },
     "status": {
      "$ref": "#/components/schemas/HealthStatus"
     },
     "latency_ms": {
      "type": [
       "integer",
       "null"
      ]
     },
     "message": {
      "type": "string"
     },
     "breaker": {
      "type": "string",
      "enum": [
       "CLOSED",
       "OPEN",
       "HALF_OPEN",
       "FORCED_OPEN"
      ],
      "description": "Upstreams only."
     },
     "backlog": {
      "type": "integer",
      "description": "webhooks only, the consumer's lag (stored, not yet forwarded)."
     },
     "dead_letters": {
      "type": "integer",
      "description": "webhooks only."
     }
    }
   }
  }
 },
 "example": {
  "overall_status": "DEGRADED",
  "checked_at": "2026-03-01T09:00:00Z",
  "modes": {
   "maintenance": false,
   "maintenance_since": null,
   "circuit_breaker": false,
   "circuit_breaker_since": null
  },
  "services": [
   {
    "name": "queue_api",
    "status": "HEALTHY",
    "message": "serving"
   },
   {
    "name": "forwarded_api",
    "status": "DEGRADED",
    "message": "an upstream is down or its circuit open"
   }
  ],
  "dependencies": [
   {
    "name": "redis:10.0.0.5:6379",
    "kind": "redis_primary",
    "status": "HEALTHY",
    "latency_ms": 0,
    "message": "PING answered"
   },
   {
    "name": "upstream:inventory",
    "kind": "upstream",
    "status": "UNHEALTHY",
    "latency_ms": null,
    "message": "probe failed (Unavailable); breaker OPEN",
    "breaker": "OPEN"
   },
   {
    "name": "webhooks",
    "kind": "webhook_consumer",
    "status": "HEALTHY",
    "latency_ms": 1,
    "message": "lag 0 webhook(s); 0 dead letter(s)",
    "backlog": 0,
    "dead_letters": 0
   }
  ]
 }
}"##
);
