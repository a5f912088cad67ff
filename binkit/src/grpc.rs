//! The standard gRPC surface both servers put beside their own services: grpc.health.v1
//! (what Kubernetes gRPC probes and load balancers ask) following a readiness check, and server
//! reflection (what grpcurl and grpcui ask) limited to what the server serves.

use std::future::Future;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;
use tonic_reflection::server::v1::{ServerReflection, ServerReflectionServer};

/// The health and reflection services of a server that serves `services`, and the task that
/// keeps the health status of the server (`""`) and of each of `services` equal to
/// `ready(state)`, asked once a second, until `stopped` turns true: then NOT_SERVING, and the
/// task ends.
pub fn standard_services<S, F, R>(
    services: &'static [&'static str], stopped: watch::Receiver<bool>, state: S, ready: F,
) -> (
    HealthServer<impl Health>,
    ServerReflectionServer<impl ServerReflection>,
    JoinHandle<()>,
)
where
    S: Clone + Send + 'static,
    F: Fn(S) -> R + Send + 'static,
    R: Future<Output = bool> + Send + 'static,
{
    let (health, health_service) = tonic_health::server::health_reporter();
    let follow = tokio::spawn(follow_health(health, services, stopped, move || {
        ready(state.clone())
    }));
    (health_service, reflection(services), follow)
}

/// Reflection over every `.proto` of the workspace, naming only `services` (the descriptor set
/// holds every service of proto/) and the health and reflection services themselves.
fn reflection(services: &[&str]) -> ServerReflectionServer<impl ServerReflection> {
    let mut builder = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
    for name in services {
        builder = builder.with_service_name(*name);
    }
    builder
        .with_service_name("grpc.health.v1.Health")
        .with_service_name("grpc.reflection.v1.ServerReflection")
        .build_v1()
        .expect("the compiled descriptor set is valid")
}

async fn follow_health<R: Future<Output = bool>>(
    health: HealthReporter, services: &[&str], mut stopped: watch::Receiver<bool>,
    ready: impl Fn() -> R,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let status = if *stopped.borrow() {
            ServingStatus::NotServing
        } else if ready().await {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        for name in std::iter::once("").chain(services.iter().copied()) {
            health.set_service_status(name, status).await;
        }
        if status == ServingStatus::NotServing && *stopped.borrow() {
            return;
        }
        tokio::select! {
            _ = tick.tick() => {}
            // The server is gone (it failed before draining): nothing left to report for.
            r = stopped.changed() => if r.is_err() { return },
        }
    }
}
