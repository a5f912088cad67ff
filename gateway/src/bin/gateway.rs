//! The `gateway` binary: parse config, start tracing, build, serve until SIGTERM/SIGINT, drain.

use anyhow::Context;
use clap::Parser;
use gateway::{Config, Gateway};
use tracing_subscriber::EnvFilter;

/// mimalloc instead of glibc's malloc: a request allocates and frees many small buffers on
/// whichever worker thread runs it, and glibc's arena locks and consolidation were about a
/// sixth of the gateway's CPU per join (measured, docs/benchmarks.md, "The allocator").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    if config.log_format == "json" {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .json()
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let gw = Gateway::build(&config).await?;
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("binding {}", config.server.listen))?;
    tracing::info!(addr = %listener.local_addr()?, "gateway listening");
    gw.serve(listener, shutdown_signal()).await?;
    tracing::info!("gateway stopped");
    Ok(())
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    binkit::shutdown_signal().await;
    tracing::info!("shutdown signal received; draining");
}
