//! Serving the four services on an already-bound listener, with graceful shutdown.

use crate::service::Backends;
use proto::common::v1::admin_service_server::AdminServiceServer;
use proto::payment::v1::payment_service_server::PaymentServiceServer;
use proto::reservation::v1::inventory_server::InventoryServer;
use proto::reservation::v1::reservation_service_server::ReservationServiceServer;
use proto::reservation::v1::worker_service_server::WorkerServiceServer;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::server::NamedService;

/// The services served besides health and reflection.
const SERVICES: [&str; 5] = [
    <ReservationServiceServer<Backends> as NamedService>::NAME,
    <InventoryServer<Backends> as NamedService>::NAME,
    <PaymentServiceServer<Backends> as NamedService>::NAME,
    <WorkerServiceServer<Backends> as NamedService>::NAME,
    <AdminServiceServer<Backends> as NamedService>::NAME,
];

/// Serves ReservationService, Inventory, PaymentService, WorkerService and AdminService
/// (health, CANCEL_RESERVATIONS) on `listener` and
/// sweeps expired holds every `expiry_every`, until `shutdown` resolves; then stops accepting
/// and waits for in-flight calls.
pub async fn serve(
    backends: Backends, listener: TcpListener, expiry_every: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    // Outcomes a previous process kept but did not report (it stopped or crashed first).
    {
        let b = backends.clone();
        tokio::spawn(async move {
            if let Err(e) = b.resume_outcomes().await {
                tracing::warn!(error = %e, "resuming kept payment outcomes failed");
            }
        });
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let sweeper = {
        let b = backends.clone();
        let mut rx = stop_rx.clone();
        tokio::spawn(async move {
            b.run_expiry(expiry_every, async move {
                let _ = rx.wait_for(|s| *s).await;
            })
            .await
        })
    };
    // Health follows whether the store answers a PING.
    let (health_service, reflection, follow) = binkit::grpc::standard_services(
        &SERVICES,
        stop_rx.clone(),
        backends.clone(),
        |b: Backends| async move { b.store().ping().await.is_ok() },
    );
    let result = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(reflection)
        .add_service(ReservationServiceServer::new(backends.clone()))
        .add_service(InventoryServer::new(backends.clone()))
        .add_service(PaymentServiceServer::new(backends.clone()))
        .add_service(WorkerServiceServer::new(backends.clone()))
        .add_service(AdminServiceServer::new(backends))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await;
    let _ = stop_tx.send(true);
    let _ = sweeper.await;
    let _ = follow.await;
    result
}
