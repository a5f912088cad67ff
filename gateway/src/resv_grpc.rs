//! `gateway.v1.WebSocketService` on `--grpc-listen`: `StreamReservationUpdates`, the gRPC form
//! of the reservation WebSocket ([`crate::resv`]): the same source, the same messages.

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
    match ev {
        Event::Status(s) => gw::ReservationUpdateEvent {
            r#type: gw::ReservationEventType::Status as i32,
            status: status_of(&s.status) as i32,
            hold_expires_at: s.hold_expires_ms.map(ts_ms),
            order_id: s.order_id.unwrap_or_default(),
            reservation_id: s.reservation_id,
            timestamp,
            ..Default::default()
        },
        Event::HoldExpiring {
            reservation_id,
            seconds_left,
            hold_expires_ms,
        } => gw::ReservationUpdateEvent {
            r#type: gw::ReservationEventType::HoldExpiring as i32,
            reservation_id,
            status: ReservationStatus::Pending as i32,
            seconds_left: i32::try_from(seconds_left).unwrap_or(i32::MAX),
            hold_expires_at: Some(ts_ms(hold_expires_ms)),
            timestamp,
            ..Default::default()
        },
        Event::PaymentConfirmed {
            reservation_id,
            order_id,
        } => gw::ReservationUpdateEvent {
            r#type: gw::ReservationEventType::PaymentConfirmed as i32,
            reservation_id,
            status: ReservationStatus::Confirmed as i32,
            order_id,
            timestamp,
            ..Default::default()
        },
    }
}

type Updates = Pin<Box<dyn Stream<Item = Result<gw::ReservationUpdateEvent, Status>> + Send>>;

#[tonic::async_trait]
impl WebSocketService for StreamsGrpc {
    type StreamReservationUpdatesStream = Updates;

    async fn stream_reservation_updates(
        &self,
        request: Request<gw::StreamReservationRequest>,
    ) -> Result<Response<Self::StreamReservationUpdatesStream>, Status> {
        // The token in the request, or as `authorization: Bearer` metadata.
        let meta = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, t) = v.split_once(' ')?;
                scheme
                    .eq_ignore_ascii_case("bearer")
                    .then(|| t.trim().to_owned())
            });
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
