//! What the workspace's server binaries (`gateway`, `backends`) share around `main`: the future
//! that resolves when the process is asked to stop, which each passes to its server as the
//! start of its drain, and the gRPC health and reflection services both serve ([`grpc`]).

pub mod grpc;

/// Resolves on SIGTERM or SIGINT (Ctrl-C); elsewhere than Unix, on Ctrl-C only.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
