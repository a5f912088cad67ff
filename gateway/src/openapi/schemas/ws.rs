//! Schemas of the ws API.

json_schema!(
    WsMessage,
    r##"{
 "description": "A frame of GET /api/v1/queue/ws (server to client), told apart by `type`.",
 "oneOf": [
  {
   "$ref": "#/components/schemas/WsPositionChanged"
  },
  {
   "$ref": "#/components/schemas/WsAdmissionReady"
  },
  {
   "$ref": "#/components/schemas/WsAdmissionsPaused"
  },
  {
   "$ref": "#/components/schemas/WsAdmissionsResumed"
  },
  {
   "$ref": "#/components/schemas/WsTokenExpired"
  },
  {
   "$ref": "#/components/schemas/WsEventSoldOut"
  },
  {
   "$ref": "#/components/schemas/WsMaintenance"
  },
  {
   "$ref": "#/components/schemas/WsMaintenanceEnded"
  }
 ],
 "discriminator": {
  "propertyName": "type",
  "mapping": {
   "POSITION_CHANGED": "#/components/schemas/WsPositionChanged",
   "ADMISSION_READY": "#/components/schemas/WsAdmissionReady",
   "ADMISSIONS_PAUSED": "#/components/schemas/WsAdmissionsPaused",
   "ADMISSIONS_RESUMED": "#/components/schemas/WsAdmissionsResumed",
   "TOKEN_EXPIRED": "#/components/schemas/WsTokenExpired",
   "EVENT_SOLD_OUT": "#/components/schemas/WsEventSoldOut",
   "MAINTENANCE": "#/components/schemas/WsMaintenance",
   "MAINTENANCE_ENDED": "#/components/schemas/WsMaintenanceEnded"
  }
 }
}"##
);

json_schema!(
    WsPositionChanged,
    r##"{
 "type": "object",
 "required": [
  "type",
  "status",
  "position",
  "eta_seconds",
  "timestamp"
 ],
 "description": "First frame of a WAITING or PRE_QUEUE place; then sent when the position\nchanges, and when a pre-queue place becomes WAITING at opening. eta_seconds\nis computed when the frame is sent; an ETA change alone sends no frame.\n",
 "properties": {
  "type": {
   "enum": [
    "POSITION_CHANGED"
   ],
   "type": "string"
  },
  "status": {
   "type": "string",
   "enum": [
    "WAITING",
    "PRE_QUEUE"
   ]
  },
  "position": {
   "$ref": "#/components/schemas/Position"
  },
  "eta_seconds": {
   "$ref": "#/components/schemas/EtaSeconds"
  },
  "timestamp": {
   "$ref": "#/components/schemas/Timestamp"
  }
 },
 "example": {
  "type": "POSITION_CHANGED",
  "status": "WAITING",
  "position": 1234,
  "eta_seconds": 617,
  "timestamp": "2026-03-01T09:00:03.25Z"
 }
}"##
);

json_schema!(
    WsAdmissionReady,
    r##"{
 "type": "object",
 "required": [
  "type",
  "timestamp"
 ],
 "description": "Once per connection: when the place becomes READY (or ADMITTED), or as the\nfirst frame of a READY or ADMITTED place. Call enter; the socket stays open.\n",
 "properties": {
  "type": {
   "enum": [
    "ADMISSION_READY"
   ],
   "type": "string"
  },
  "timestamp": {
   "$ref": "#/components/schemas/Timestamp"
  }
 },
 "example": {
  "type": "ADMISSION_READY",
  "timestamp": "2026-03-01T09:10:21.5Z"
 }
}"##
);

json_schema!(
    WsAdmissionsPaused,
    r##"{
 "type": "object",
 "required": [
  "type"
 ],
 "description": "STOP_ADMISSIONS took effect (sent to waiting, pre-queue and ready places),\nor is in force when a waiting or pre-queue place connects. Not sent for\nadmit_per_second 0.\n",
 "properties": {
  "type": {
   "enum": [
    "ADMISSIONS_PAUSED"
   ],
   "type": "string"
  }
 },
 "example": {
  "type": "ADMISSIONS_PAUSED"
 }
}"##
);

json_schema!(
    WsAdmissionsResumed,
    r##"{
 "type": "object",
 "required": [
  "type"
 ],
 "description": "RESUME_ADMISSIONS took effect; sent to clients that were told ADMISSIONS_PAUSED.",
 "properties": {
  "type": {
   "enum": [
    "ADMISSIONS_RESUMED"
   ],
   "type": "string"
  }
 },
 "example": {
  "type": "ADMISSIONS_RESUMED"
 }
}"##
);

json_schema!(
    WsReservationMessage,
    r##"{
 "description": "A frame of GET /api/v1/reservations/{reservation_id}/ws (server to client), told apart by `type`.",
 "oneOf": [
  {
   "$ref": "#/components/schemas/WsReservationStatus"
  },
  {
   "$ref": "#/components/schemas/WsHoldExpiring"
  },
  {
   "$ref": "#/components/schemas/WsPaymentConfirmed"
  }
 ],
 "discriminator": {
  "propertyName": "type"
 }
}"##
);

json_schema!(
    WsReservationStatus,
    &WS_RESERVATION_STATUS.replace("STATUSES", super::forward::RESERVATION_STATUS)
);

/// [`WsReservationStatus`]'s schema, with a blank in capitals for the reservation statuses.
const WS_RESERVATION_STATUS: &str = r##"{
 "type": "object",
 "required": [
  "type",
  "reservation_id",
  "status",
  "hold_expires_at",
  "order_id",
  "timestamp"
 ],
 "description": "The reservation's state; first on every connection, then on each change.",
 "properties": {
  "type": {
   "enum": [
    "RESERVATION_STATUS"
   ],
   "type": "string"
  },
  "reservation_id": {
   "type": "string"
  },
  "status": STATUSES,
  "hold_expires_at": {
   "type": [
    "string",
    "null"
   ],
   "format": "date-time"
  },
  "order_id": {
   "type": [
    "string",
    "null"
   ],
   "description": "Set once CONFIRMED."
  },
  "timestamp": {
   "type": "string",
   "format": "date-time"
  }
 }
}"##;

json_schema!(
    WsHoldExpiring,
    r##"{
 "type": "object",
 "required": [
  "type",
  "reservation_id",
  "seconds_left",
  "hold_expires_at",
  "timestamp"
 ],
 "description": "The PENDING hold runs out in seconds_left (at each --hold-warning-seconds point).",
 "properties": {
  "type": {
   "enum": [
    "HOLD_EXPIRING"
   ],
   "type": "string"
  },
  "reservation_id": {
   "type": "string"
  },
  "seconds_left": {
   "type": "integer",
   "minimum": 1
  },
  "hold_expires_at": {
   "type": "string",
   "format": "date-time"
  },
  "timestamp": {
   "type": "string",
   "format": "date-time"
  }
 }
}"##
);

json_schema!(
    WsPaymentConfirmed,
    r##"{
 "type": "object",
 "required": [
  "type",
  "reservation_id",
  "order_id",
  "timestamp"
 ],
 "description": "Paid; sent right after the CONFIRMED status.",
 "properties": {
  "type": {
   "enum": [
    "PAYMENT_CONFIRMED"
   ],
   "type": "string"
  },
  "reservation_id": {
   "type": "string"
  },
  "order_id": {
   "type": "string"
  },
  "timestamp": {
   "type": "string",
   "format": "date-time"
  }
 }
}"##
);

json_schema!(
    WsTokenExpired,
    r##"{
 "type": "object",
 "required": [
  "type"
 ],
 "description": "The place is gone; the server then closes with 1000.",
 "properties": {
  "type": {
   "enum": [
    "TOKEN_EXPIRED"
   ],
   "type": "string"
  }
 },
 "example": {
  "type": "TOKEN_EXPIRED"
 }
}"##
);

json_schema!(
    WsEventSoldOut,
    r##"{
 "type": "object",
 "required": [
  "type"
 ],
 "description": "The event was declared sold out; the server then closes with 1000.",
 "properties": {
  "type": {
   "enum": [
    "EVENT_SOLD_OUT"
   ],
   "type": "string"
  }
 },
 "example": {
  "type": "EVENT_SOLD_OUT"
 }
}"##
);

json_schema!(
    WsMaintenance,
    r##"{
 "type": "object",
 "required": [
  "type",
  "retry_after_seconds"
 ],
 "description": "MAINTENANCE_MODE began: the queue API answers 503 meanwhile. The place is\nkept and the socket stays open.\n",
 "properties": {
  "type": {
   "enum": [
    "MAINTENANCE"
   ],
   "type": "string"
  },
  "retry_after_seconds": {
   "type": "integer"
  }
 },
 "example": {
  "type": "MAINTENANCE",
  "retry_after_seconds": 30
 }
}"##
);

json_schema!(
    WsMaintenanceEnded,
    r##"{
 "type": "object",
 "required": [
  "type"
 ],
 "description": "MAINTENANCE_MODE ended; the queue API answers again.",
 "properties": {
  "type": {
   "enum": [
    "MAINTENANCE_ENDED"
   ],
   "type": "string"
  }
 },
 "example": {
  "type": "MAINTENANCE_ENDED"
 }
}"##
);
