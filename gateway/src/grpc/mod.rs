//! The gateway's gRPC server (`--grpc-listen`): `gateway.v1.QueueService`
//! ([`queue_service`]) for server-side clients, `gateway.v1.GatewayService` ([`bff`]),
//! `gateway.v1.WebSocketService` ([`streams`]) and `common.v1.AdminService` ([`admin`]), beside
//! health and reflection.

pub mod admin;
pub mod bff;
mod convert;
pub mod queue_service;
pub mod streams;

use crate::AppState;
use admin::AdminGrpc;
use bff::GatewayGrpc;
use proto::common::v1::admin_service_server::AdminServiceServer;
use proto::gateway::v1::gateway_service_server::GatewayServiceServer;
use proto::gateway::v1::queue_service_server::QueueServiceServer;
use proto::gateway::v1::web_socket_service_server::WebSocketServiceServer;
use queue_service::QueueGrpc;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;
use tonic::server::NamedService;

/// What this server serves besides health and reflection: the services whose health status
/// follows readiness and that reflection names.
const SERVICES: [&str; 4] = [
    <QueueServiceServer<QueueGrpc> as NamedService>::NAME,
    <GatewayServiceServer<GatewayGrpc> as NamedService>::NAME,
    <AdminServiceServer<AdminGrpc> as NamedService>::NAME,
    <WebSocketServiceServer<streams::StreamsGrpc> as NamedService>::NAME,
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
        .add_service(streams::server(state.clone()))
        .add_service(admin::server(state))
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
