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

/// Serves ReservationService, Inventory, PaymentService, WorkerService and AdminService
/// (health, CANCEL_RESERVATIONS) on `listener` and
/// sweeps expired holds every `expiry_every`, until `shutdown` resolves; then stops accepting
/// and waits for in-flight calls.
pub async fn serve(
    backends: Backends,
    listener: TcpListener,
    expiry_every: Duration,
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
    // The standard gRPC surface: grpc.health.v1 following the store (what Kubernetes gRPC
    // probes ask) and server reflection (what grpcurl asks).
    let (health, health_service) = tonic_health::server::health_reporter();
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        // Only what this server serves (the descriptor set holds every service of proto/).
        .with_service_name(
            <ReservationServiceServer<Backends> as tonic::server::NamedService>::NAME,
        )
        .with_service_name(<InventoryServer<Backends> as tonic::server::NamedService>::NAME)
        .with_service_name(<PaymentServiceServer<Backends> as tonic::server::NamedService>::NAME)
        .with_service_name(<WorkerServiceServer<Backends> as tonic::server::NamedService>::NAME)
        .with_service_name(<AdminServiceServer<Backends> as tonic::server::NamedService>::NAME)
        .with_service_name("grpc.health.v1.Health")
        .with_service_name("grpc.reflection.v1.ServerReflection")
        .build_v1()
        .expect("the compiled descriptor set is valid");
    let follow = tokio::spawn(follow_store(backends.clone(), health, stop_rx.clone()));
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

/// Keeps the gRPC health status of the server (`""`) and of each service equal to whether the
/// store answers a PING, checked once a second, until `stopped`.
async fn follow_store(
    backends: Backends,
    health: tonic_health::server::HealthReporter,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    use tonic::server::NamedService;
    use tonic_health::ServingStatus;
    let names = [
        "",
        <ReservationServiceServer<Backends> as NamedService>::NAME,
        <InventoryServer<Backends> as NamedService>::NAME,
        <PaymentServiceServer<Backends> as NamedService>::NAME,
        <WorkerServiceServer<Backends> as NamedService>::NAME,
        <AdminServiceServer<Backends> as NamedService>::NAME,
    ];
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while !*stopped.borrow() {
        let status = if backends.store().ping().await.is_ok() {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        for name in names {
            health.set_service_status(name, status).await;
        }
        tokio::select! {
            _ = tick.tick() => {}
            r = stopped.changed() => if r.is_err() { return },
        }
    }
}
