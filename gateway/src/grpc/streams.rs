//! `gateway.v1.WebSocketService` on `--grpc-listen`: `StreamReservationUpdates`, the gRPC form
//! of the reservation WebSocket ([`crate::resv`]): the same source, the same messages; and
//! `StreamQueueUpdates`, a place's queue updates from the same per-event watcher as the queue
//! WebSocket ([`ws::Hub::listen`]): no per-stream Redis polling.

use crate::error::ApiError;
use crate::resv::{self, Event};
use crate::AppState;
use proto::gateway::v1 as gw;
use proto::gateway::v1::web_socket_service_server::{WebSocketService, WebSocketServiceServer};
use proto::reservation::v1::ReservationStatus;
use std::pin::Pin;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

/// The WebSocketService over the gateway's state.
#[derive(Clone)]
pub struct StreamsGrpc {
    state: AppState,
}

/// The service, ready to add to the gRPC server.
pub fn server(state: AppState) -> WebSocketServiceServer<StreamsGrpc> {
    WebSocketServiceServer::new(StreamsGrpc { state })
}

fn ts_ms(ms: i64) -> proto::prost_types::Timestamp {
    proto::prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

fn now() -> proto::prost_types::Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    ts_ms(ms)
}

fn status_of(s: &str) -> ReservationStatus {
    ReservationStatus::from_str_name(&format!("RESERVATION_STATUS_{s}")).unwrap_or_default()
}

/// The protobuf form of a stream event.
pub fn to_proto(ev: Event) -> gw::ReservationUpdateEvent {
    let timestamp = Some(now());
    // What every event says: its type, the reservation, its status and the time.
    let event =
        |kind: gw::ReservationEventType, reservation_id: String, status: ReservationStatus| {
            gw::ReservationUpdateEvent {
                r#type: kind as i32,
                reservation_id,
                status: status as i32,
                timestamp,
                ..Default::default()
            }
        };
    match ev {
        Event::Status(s) => gw::ReservationUpdateEvent {
            hold_expires_at: s.hold_expires_ms.map(ts_ms),
            order_id: s.order_id.unwrap_or_default(),
            ..event(
                gw::ReservationEventType::Status,
                s.reservation_id,
                status_of(&s.status),
            )
        },
        Event::HoldExpiring {
            reservation_id,
            seconds_left,
            hold_expires_ms,
        } => gw::ReservationUpdateEvent {
            seconds_left: i32::try_from(seconds_left).unwrap_or(i32::MAX),
            hold_expires_at: Some(ts_ms(hold_expires_ms)),
            ..event(
                gw::ReservationEventType::HoldExpiring,
                reservation_id,
                ReservationStatus::Pending,
            )
        },
        Event::PaymentConfirmed {
            reservation_id,
            order_id,
        } => gw::ReservationUpdateEvent {
            order_id,
            ..event(
                gw::ReservationEventType::PaymentConfirmed,
                reservation_id,
                ReservationStatus::Confirmed,
            )
        },
    }
}

type Updates = Pin<Box<dyn Stream<Item = Result<gw::ReservationUpdateEvent, Status>> + Send>>;
type QueueUpdates = Pin<Box<dyn Stream<Item = Result<gw::QueueUpdateEvent, Status>> + Send>>;

fn queue_status(s: &str) -> gw::QueueStatus {
    gw::QueueStatus::from_str_name(&format!("QUEUE_STATUS_{s}")).unwrap_or_default()
}

/// A frame of the queue watcher (the WebSocket's JSON text) as a `QueueUpdateEvent`; None for
/// what a stream does not carry (pings, close frames).
pub fn queue_frame(msg: &ws::tungstenite::Message) -> Option<gw::QueueUpdateEvent> {
    let ws::tungstenite::Message::Text(t) = msg else {
        return None;
    };
    let v: serde_json::Value = serde_json::from_str(t.as_str()).ok()?;
    let kind = v["type"].as_str()?;
    let int = |k: &str| v[k].as_i64().unwrap_or(0).clamp(0, i64::from(i32::MAX)) as i32;
    let system = |t: gw::EventType| {
        (
            t,
            None,
            Some(gw::SystemUpdate {
                kind: kind.to_owned(),
                retry_after_seconds: int("retry_after_seconds"),
            }),
        )
    };
    // A place that has no position any more: only its status.
    let settled = |t: gw::EventType, status: gw::QueueStatus| {
        let update = gw::QueueUpdate {
            status: status as i32,
            ..Default::default()
        };
        (t, Some(update), None)
    };
    let (t, queue_update, system_update) = match kind {
        "POSITION_CHANGED" => (
            gw::EventType::QueueEventTypePositionChanged,
            Some(gw::QueueUpdate {
                status: queue_status(v["status"].as_str().unwrap_or("WAITING")) as i32,
                position: int("position"),
                eta_seconds: int("eta_seconds"),
            }),
            None,
        ),
        "ADMISSION_READY" => settled(
            gw::EventType::QueueEventTypeAdmissionReady,
            gw::QueueStatus::Ready,
        ),
        "TOKEN_EXPIRED" => settled(
            gw::EventType::QueueEventTypeTokenExpired,
            gw::QueueStatus::Expired,
        ),
        "EVENT_SOLD_OUT" => system(gw::EventType::SystemEventTypeEventSoldOut),
        "ADMISSIONS_PAUSED" => system(gw::EventType::SystemEventTypeAdmissionsPaused),
        "ADMISSIONS_RESUMED" => system(gw::EventType::SystemEventTypeAdmissionsResumed),
        "MAINTENANCE" => system(gw::EventType::SystemEventTypeMaintenance),
        "MAINTENANCE_ENDED" => system(gw::EventType::SystemEventTypeMaintenanceEnded),
        _ => return None,
    };
    Some(gw::QueueUpdateEvent {
        r#type: t as i32,
        queue_update,
        system_update,
        timestamp: Some(now()),
        correlation_id: String::new(),
    })
}

#[tonic::async_trait]
impl WebSocketService for StreamsGrpc {
    type StreamReservationUpdatesStream = Updates;
    type StreamQueueUpdatesStream = QueueUpdates;

    async fn stream_queue_updates(
        &self, request: Request<gw::StreamQueueRequest>,
    ) -> Result<Response<Self::StreamQueueUpdatesStream>, Status> {
        let req = request.into_inner();
        if req.waiting_token.is_empty() {
            return Err(ApiError::Unauthenticated.to_grpc_status());
        }
        let (event, ticket, session) = self
            .state
            .room
            .holder_of(&req.waiting_token)
            .map_err(|e| ApiError::from(e).to_grpc_status())?;
        if !req.event_id.is_empty() && req.event_id != event.as_str() {
            return Err(ApiError::Forbidden.to_grpc_status());
        }
        let rx = self.state.hub.listen(event, ticket, session).await;
        // A close ends the stream; one that reports a failure (the place could not be read)
        // ends it with that failure's status from the error table (UNAVAILABLE where the
        // WebSocket says 1013, NOT_FOUND where it says 4404).
        use ws::tungstenite::Message;
        let close_status = |m: &Message| match m {
            Message::Close(Some(f)) => crate::error::grpc_of_ws_close(f.code.into(), &f.reason),
            _ => None,
        };
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx)
            .take_while(move |m| match m {
                Message::Close(Some(_)) => close_status(m).is_some(),
                Message::Close(None) => false,
                _ => true,
            })
            .filter_map(move |m| match close_status(&m) {
                Some(status) => Some(Err(status)),
                None => queue_frame(&m).map(Ok),
            });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn stream_reservation_updates(
        &self, request: Request<gw::StreamReservationRequest>,
    ) -> Result<Response<Self::StreamReservationUpdatesStream>, Status> {
        // The token in the request, or as `authorization: Bearer` metadata.
        let meta = super::convert::bearer(request.metadata()).map(str::to_owned);
        let request_id = request
            .metadata()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let req = request.into_inner();
        let token = Some(req.reservation_token)
            .filter(|t| !t.is_empty())
            .or(meta);
        let opened = resv::open(
            &self.state,
            &req.reservation_id,
            token.as_deref(),
            &request_id,
        )
        .await
        .map_err(|e| e.to_grpc_status())?;
        let rx = resv::spawn(opened);
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx).map(|ev| Ok(to_proto(ev)));
        Ok(Response::new(Box::pin(stream)))
    }
}

use tokio_stream::StreamExt as _;
