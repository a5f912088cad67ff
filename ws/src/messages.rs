//! The JSON text frames sent to clients, built once per distinct value.

use queue::model::Status;
use tokio_tungstenite::tungstenite::Message;

/// `{"type":"POSITION_CHANGED","status","position","eta_seconds","timestamp"}`; `status` is
/// WAITING, or PRE_QUEUE before opening (position 0, ETA = time to opening).
pub fn position_changed(
    status: Status, position: u64, eta_seconds: i64, timestamp: &str,
) -> Message {
    Message::text(format!(
        r#"{{"type":"POSITION_CHANGED","status":"{}","position":{position},"eta_seconds":{eta_seconds},"timestamp":"{timestamp}"}}"#,
        status.as_str()
    ))
}

/// `{"type":"ADMISSION_READY","timestamp"}`: the client may call `/api/v1/queue/enter`.
pub fn admission_ready(timestamp: &str) -> Message {
    Message::text(format!(
        r#"{{"type":"ADMISSION_READY","timestamp":"{timestamp}"}}"#
    ))
}

/// `{"type":"TOKEN_EXPIRED"}`: the place is gone; the server closes the socket.
pub fn token_expired() -> Message {
    Message::text(r#"{"type":"TOKEN_EXPIRED"}"#)
}

/// `{"type":"EVENT_SOLD_OUT"}`: the event sold out; the server closes the socket.
pub fn sold_out() -> Message {
    Message::text(r#"{"type":"EVENT_SOLD_OUT"}"#)
}

/// `{"type":"ADMISSIONS_PAUSED"}`.
pub fn paused() -> Message {
    Message::text(r#"{"type":"ADMISSIONS_PAUSED"}"#)
}

/// `{"type":"ADMISSIONS_RESUMED"}`.
pub fn resumed() -> Message {
    Message::text(r#"{"type":"ADMISSIONS_RESUMED"}"#)
}

/// `{"type":"MAINTENANCE","retry_after_seconds"}`: the waiting room is down for maintenance
/// (the queue API answers 503 meanwhile). The place is kept and the socket stays open.
pub fn maintenance(retry_after_seconds: u64) -> Message {
    Message::text(format!(
        r#"{{"type":"MAINTENANCE","retry_after_seconds":{retry_after_seconds}}}"#
    ))
}

/// `{"type":"MAINTENANCE_ENDED"}`: the queue API answers again.
pub fn maintenance_ended() -> Message {
    Message::text(r#"{"type":"MAINTENANCE_ENDED"}"#)
}
