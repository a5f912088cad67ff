//! The gateway's gRPC server (`--grpc-listen`): `gateway.v1.QueueService` here, for
//! server-side clients (the same waiting-room operations as the HTTP API, on the same
//! [`queue::room::WaitingRoom`], with errors mapped by [`ApiError::to_grpc_status`]), beside
//! `gateway.v1.GatewayService` ([`crate::bff`]), health and reflection.

use crate::admin_grpc::AdminGrpc;
use crate::bff::GatewayGrpc;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::AppState;
use proto::common::v1::admin_service_server::AdminServiceServer;
use proto::gateway::v1 as gw;
use proto::gateway::v1::gateway_service_server::GatewayServiceServer;
use proto::gateway::v1::queue_service_server::{QueueService, QueueServiceServer};
use proto::gateway::v1::web_socket_service_server::WebSocketServiceServer;
use queue::model::Status;
use queue::room::PlaceView;
use std::future::Future;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tonic::server::NamedService;
use tonic::{Request, Response};

/// The QueueService implementation over the gateway's state.
#[derive(Clone)]
pub struct QueueGrpc {
    state: AppState,
}

impl QueueGrpc {
    /// A service over `state`.
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

fn err(e: impl Into<ApiError>) -> tonic::Status {
    e.into().to_grpc_status()
}

impl QueueGrpc {
    /// The message of a call; UNAVAILABLE (`MAINTENANCE`) instead while MAINTENANCE_MODE is in
    /// force, as the HTTP queue API.
    fn open<T>(&self, request: Request<T>) -> Result<T, tonic::Status> {
        if self.state.system.maintenance() {
            return Err(err(ApiError::Maintenance));
        }
        Ok(request.into_inner())
    }
}

/// The protobuf form of an instant (the gateway's gRPC services all answer with these).
pub(crate) fn timestamp(t: OffsetDateTime) -> proto::prost_types::Timestamp {
    proto::prost_types::Timestamp {
        seconds: t.unix_timestamp(),
        nanos: t.nanosecond() as i32,
    }
}

/// The gRPC status of a place: the same states as the HTTP API's `status`.
fn queue_status(s: Status) -> gw::QueueStatus {
    match s {
        Status::PreQueue => gw::QueueStatus::PreQueue,
        Status::Waiting => gw::QueueStatus::Waiting,
        Status::Ready => gw::QueueStatus::Ready,
        Status::Admitted => gw::QueueStatus::Admitted,
        Status::Expired => gw::QueueStatus::Expired,
        Status::SoldOut => gw::QueueStatus::SoldOut,
    }
}

fn clamp(v: i64) -> i32 {
    v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

fn position(p: &PlaceView) -> i32 {
    clamp(i64::try_from(p.position).unwrap_or(i64::MAX))
}

/// `$reply` (JoinQueueResponse, GetQueueStatusResponse: two messages, no common type) with its
/// own `$field`s and the fields every reply about a place carries, from the [`PlaceView`] `$p`.
macro_rules! place_reply {
    ($reply:path, $p:expr, { $($field:ident: $value:expr),* $(,)? }) => {{
        let p: &PlaceView = $p;
        $reply {
            $($field: $value,)*
            status: queue_status(p.status) as i32,
            eta_seconds: clamp(p.eta_seconds),
            expires_at: p.expires_at.map(timestamp),
            error: None,
            queueing_method: p.queueing_method.as_str().to_owned(),
        }
    }};
}

#[tonic::async_trait]
impl QueueService for QueueGrpc {
    async fn join_queue(
        &self, request: Request<gw::JoinQueueRequest>,
    ) -> Result<Response<gw::JoinQueueResponse>, tonic::Status> {
        let r = self.open(request)?;
        // `user_id` is not trusted (as over HTTP): only a verified assertion names a user.
        let assertion = (!r.user_assertion.is_empty()).then_some(r.user_assertion.as_str());
        // JoinQueueRequest has no field for a solution: an event with `join_challenge` is
        // joined over HTTP (where the page solves it), never around it.
        self.state
            .challenges
            .check(&r.event_id, None)
            .await
            .map_err(err)?;
        let joined = self
            .state
            .room
            .join_with_code(&r.event_id, &r.session_id, assertion, Some(&r.access_code))
            .await
            .map_err(err)?;
        if joined.created {
            self.state
                .metrics
                .joins
                .get_or_create(&Metrics::event(&r.event_id))
                .inc();
        }
        Ok(Response::new(
            place_reply!(gw::JoinQueueResponse, &joined.place, {
                waiting_token: joined.waiting_token,
                position_hint: position(&joined.place),
            }),
        ))
    }

    async fn get_queue_status(
        &self, request: Request<gw::GetQueueStatusRequest>,
    ) -> Result<Response<gw::GetQueueStatusResponse>, tonic::Status> {
        let token = self.open(request)?.waiting_token;
        let p = self.state.room.status(&token).await.map_err(err)?;
        Ok(Response::new(
            place_reply!(gw::GetQueueStatusResponse, &p, {
                position: position(&p),
                admission_ready: p.admission_ready,
            }),
        ))
    }

    async fn request_admission(
        &self, request: Request<gw::RequestAdmissionRequest>,
    ) -> Result<Response<gw::RequestAdmissionResponse>, tonic::Status> {
        let r = self.open(request)?;
        let (event, _) = self.state.room.ticket_of(&r.waiting_token).map_err(err)?;
        if !r.event_id.is_empty() && r.event_id != event.as_str() {
            return Err(err(ApiError::BadRequest(
                "event_id is not the waiting token's event".into(),
            )));
        }
        let g = self.state.room.enter(&r.waiting_token).await.map_err(err)?;
        Ok(Response::new(gw::RequestAdmissionResponse {
            admission: gw::AdmissionStatus::Granted as i32,
            reservation_token: g.reservation_token,
            ttl_seconds: clamp(i64::try_from(g.ttl_seconds).unwrap_or(i64::MAX)),
            valid_until: Some(timestamp(g.valid_until)),
            error: None,
        }))
    }

    async fn leave_queue(
        &self, request: Request<gw::LeaveQueueRequest>,
    ) -> Result<Response<gw::LeaveQueueResponse>, tonic::Status> {
        let token = self.open(request)?.waiting_token;
        self.state.room.leave(&token).await.map_err(err)?;
        Ok(Response::new(gw::LeaveQueueResponse {
            left: true,
            error: None,
        }))
    }
}

/// What this server serves besides health and reflection: the services whose health status
/// follows readiness and that reflection names.
const SERVICES: [&str; 4] = [
    <QueueServiceServer<QueueGrpc> as NamedService>::NAME,
    <GatewayServiceServer<GatewayGrpc> as NamedService>::NAME,
    <AdminServiceServer<AdminGrpc> as NamedService>::NAME,
    <WebSocketServiceServer<crate::resv_grpc::StreamsGrpc> as NamedService>::NAME,
];

/// Ready while the store answers a PING.
async fn ready(state: AppState) -> bool {
    state.room.store().ping().await.is_ok()
}

/// Serves QueueService on `listener` until `shutdown` resolves, then gives in-flight calls
/// `drain_grace`. Calls past `request_timeout` end with CANCELLED, as HTTP requests end with
/// 503.
pub async fn serve(
    state: AppState, listener: TcpListener, shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let limits = state.limits.clone();
    let (tx, mut rx) = tokio::sync::watch::channel(false);
    // Health follows readiness, and is NOT_SERVING once draining starts.
    let (health_service, reflection, follow) =
        binkit::grpc::standard_services(&SERVICES, tx.subscribe(), state.clone(), ready);
    let server = tonic::transport::Server::builder()
        .timeout(limits.request_timeout)
        .add_service(health_service)
        .add_service(reflection)
        .add_service(QueueServiceServer::new(QueueGrpc::new(state.clone())))
        .add_service(GatewayServiceServer::new(GatewayGrpc::new(state.clone())))
        .add_service(crate::resv_grpc::server(state.clone()))
        .add_service(crate::admin_grpc::server(state))
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            async move {
                let _ = rx.wait_for(|stopped| *stopped).await;
            },
        );
    tokio::pin!(server);
    tokio::select! {
        r = &mut server => return r,
        () = shutdown => {}
    }
    let _ = tx.send(true);
    let _ = follow.await;
    // Long-lived client connections must not hold the process past the grace period.
    match tokio::time::timeout(limits.drain_grace + Duration::from_millis(100), server).await {
        Ok(r) => r,
        Err(_) => {
            tracing::warn!("gRPC drain grace period over; closing remaining connections");
            Ok(())
        }
    }
}
