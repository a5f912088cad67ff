//! `common.v1.AdminService` on the gateway's `--grpc-listen`, behind the admin token as the
//! metadata `authorization: Bearer <token>` (compared in constant time; no `--admin-token`:
//! every call is UNAUTHENTICATED). The work is [`crate::admin`]'s, shared with HTTP.

use super::convert::{bearer, timestamp};
use crate::admin::{self, Caller, Emergency};
use crate::AppState;
use proto::common::v1 as common;
use proto::common::v1::admin_service_server::{AdminService, AdminServiceServer};
use proto::common::v1::EmergencyActionType as T;
use tonic::{Request, Response};

/// The AdminService implementation over the gateway's state.
#[derive(Clone)]
pub struct AdminGrpc {
    state: AppState,
}

/// The admin token check in front of every call.
#[derive(Clone)]
pub struct AdminGuard {
    state: AppState,
}

impl tonic::service::Interceptor for AdminGuard {
    fn call(&mut self, req: Request<()>) -> Result<Request<()>, tonic::Status> {
        if crate::admin_token_ok(&self.state, bearer(req.metadata())) {
            Ok(req)
        } else {
            Err(crate::error::ApiError::Unauthorized.to_grpc_status())
        }
    }
}

/// The service behind its token check.
pub type Guarded =
    tonic::service::interceptor::InterceptedService<AdminServiceServer<AdminGrpc>, AdminGuard>;

/// The AdminService over `state`, each call checked against the admin token first.
pub fn server(state: AppState) -> Guarded {
    let guard = AdminGuard {
        state: state.clone(),
    };
    AdminServiceServer::with_interceptor(AdminGrpc { state }, guard)
}

fn caller<T>(req: &Request<T>, operator: &str, reason: &str) -> Caller {
    Caller {
        peer: req.remote_addr(),
        request_id: req
            .metadata()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        operator: operator.to_owned(),
        reason: reason.to_owned(),
        via: "grpc",
    }
}

#[tonic::async_trait]
impl AdminService for AdminGrpc {
    /// The gateway's health report; `include_dependencies: false` leaves the list out (the
    /// verdicts still count them).
    async fn get_system_health(
        &self, request: Request<common::SystemHealthRequest>,
    ) -> Result<Response<common::SystemHealthResponse>, tonic::Status> {
        let include = request.into_inner().include_dependencies;
        let r = crate::admin_health::system_health(&self.state).await;
        Ok(Response::new(common::SystemHealthResponse {
            overall_status: r.overall.proto() as i32,
            services: r
                .services
                .iter()
                .map(|s| common::ServiceHealthStatus {
                    name: s.name.to_owned(),
                    status: s.status.proto() as i32,
                    message: s.message.clone(),
                })
                .collect(),
            dependencies: if include {
                r.dependencies
                    .iter()
                    .map(|d| common::DependencyStatus {
                        name: d.name.clone(),
                        status: d.status.proto() as i32,
                        latency_ms: d.latency_ms.map_or(-1, |v| v as i64),
                        message: d.message.clone(),
                    })
                    .collect()
            } else {
                Vec::new()
            },
            checked_at: Some(timestamp(r.checked_at)),
            error: None,
        }))
    }

    /// The four emergency actions (STOP_ADMISSIONS needs `event_id`; CANCEL_RESERVATIONS
    /// without one cancels every event's holds) with `confirm: true`, and their ways back.
    async fn emergency_action(
        &self, request: Request<common::EmergencyActionRequest>,
    ) -> Result<Response<common::EmergencyActionResponse>, tonic::Status> {
        let who = {
            let r = request.get_ref();
            caller(&request, &r.operator_id, &r.reason)
        };
        let r = request.into_inner();
        let event = (!r.event_id.is_empty()).then(|| r.event_id.clone());
        let bad = |m: &str| crate::error::ApiError::BadRequest(m.into()).to_grpc_status();
        let per_event = |make: fn(String) -> Emergency| {
            event
                .clone()
                .map(make)
                .ok_or_else(|| bad("event_id is required for this action"))
        };
        let action = match T::try_from(r.action).unwrap_or(T::Unspecified) {
            T::StopAdmissions => per_event(Emergency::StopAdmissions)?,
            T::ResumeAdmissions => per_event(Emergency::ResumeAdmissions)?,
            T::CancelReservations => Emergency::CancelReservations(event.clone()),
            T::CircuitBreaker => Emergency::CircuitBreaker,
            T::EndCircuitBreaker => Emergency::EndCircuitBreaker,
            T::MaintenanceMode => Emergency::MaintenanceMode,
            T::EndMaintenanceMode => Emergency::EndMaintenanceMode,
            T::Unspecified => return Err(bad("action is required")),
        };
        if let Some(ev) = action.event().filter(|_| event.is_some()) {
            // An unknown event is NOT_FOUND before anything is done.
            self.state
                .room
                .info(ev)
                .await
                .map_err(|e| crate::error::ApiError::from(e).to_grpc_status())?;
        }
        let done = admin::execute(&self.state, action, r.confirm, &who)
            .await
            .map_err(|e| e.to_grpc_status())?;
        Ok(Response::new(common::EmergencyActionResponse {
            executed: true,
            action_id: done.action_id,
            executed_at: Some(timestamp(done.executed_at)),
            message: done.message,
            error: None,
        }))
    }
}
