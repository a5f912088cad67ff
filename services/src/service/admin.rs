//! AdminService: health of the store, and the backends' emergency action.

use super::convert::ts;
use super::{answer, Backends};
use crate::error::ServiceError;
use tonic::{Request, Response, Status};

#[tonic::async_trait]
impl proto::common::v1::admin_service_server::AdminService for Backends {
    async fn get_system_health(
        &self, _request: Request<proto::common::v1::SystemHealthRequest>,
    ) -> std::result::Result<Response<proto::common::v1::SystemHealthResponse>, Status> {
        use proto::common::v1::{DependencyStatus, ServiceHealthStatus, SystemHealthStatus as H};
        let t0 = std::time::Instant::now();
        let ping = self.0.store.ping().await;
        let status = if ping.is_ok() {
            H::Healthy
        } else {
            H::Unhealthy
        };
        let services = [
            "reservation.v1.ReservationService",
            "reservation.v1.Inventory",
            "payment.v1.PaymentService",
            "reservation.v1.WorkerService",
        ]
        .iter()
        .map(|name| ServiceHealthStatus {
            name: (*name).to_owned(),
            status: status as i32,
            message: String::new(),
        })
        .collect();
        Ok(Response::new(proto::common::v1::SystemHealthResponse {
            overall_status: status as i32,
            services,
            dependencies: vec![DependencyStatus {
                name: "store".into(),
                status: status as i32,
                latency_ms: t0.elapsed().as_millis() as i64,
                message: ping.err().map(|e| e.to_string()).unwrap_or_default(),
            }],
            checked_at: Some(ts(self.now())),
            error: None,
        }))
    }

    async fn emergency_action(
        &self, request: Request<proto::common::v1::EmergencyActionRequest>,
    ) -> std::result::Result<Response<proto::common::v1::EmergencyActionResponse>, Status> {
        use proto::common::v1::EmergencyActionType as A;
        let req = request.into_inner();
        let out = async {
            if !req.confirm {
                return Err(ServiceError::InvalidArgument("confirm must be true".into()));
            }
            match A::try_from(req.action) {
                Ok(A::CancelReservations) => {}
                _ => {
                    return Err(ServiceError::InvalidArgument(
                        "the backends take only CANCEL_RESERVATIONS; the other actions are the gateway's"
                            .into(),
                    ))
                }
            }
            let n = self.cancel_all_holds(&req.event_id).await?;
            tracing::warn!(event_id = %req.event_id, operator = %req.operator_id, reason = %req.reason, cancelled = n, "emergency: pending reservations cancelled");
            Ok(proto::common::v1::EmergencyActionResponse {
                executed: true,
                action_id: format!("act_{}", uuid::Uuid::new_v4().simple()),
                executed_at: Some(ts(self.now())),
                message: format!("cancelled {n} pending reservations"),
                error: None,
            })
        }
        .await;
        answer(out)
    }
}
