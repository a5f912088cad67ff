//! `gateway.v1.QueueService`: the waiting-room operations of the HTTP API for server-side
//! clients, on the same [`queue::room::WaitingRoom`], with errors mapped by
//! [`ApiError::to_grpc_status`].

use super::convert::timestamp;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::AppState;
use proto::gateway::v1 as gw;
use proto::gateway::v1::queue_service_server::QueueService;
use queue::model::Status;
use queue::room::PlaceView;
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
                poll_hint: joined.poll_hint.unwrap_or_default(),
            }),
        ))
    }

    async fn get_queue_status(
        &self, request: Request<gw::GetQueueStatusRequest>,
    ) -> Result<Response<gw::GetQueueStatusResponse>, tonic::Status> {
        let r = self.open(request)?;
        // As `GET /api/v1/queue/status?hint=`: with the last answer's hint a waiting place is
        // answered from the followed departure log.
        let hint = Some(r.poll_hint.as_str()).filter(|h| !h.is_empty());
        let answer = self
            .state
            .room
            .status_hinted(&r.waiting_token, hint)
            .await
            .map_err(err)?;
        if answer.from_log {
            self.state.metrics.status_reads_from_log.inc();
        }
        let p = &answer.place;
        Ok(Response::new(place_reply!(gw::GetQueueStatusResponse, p, {
            position: position(p),
            admission_ready: p.admission_ready,
            poll_hint: answer.poll_hint.unwrap_or_default(),
        })))
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
