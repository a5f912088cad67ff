//! The gateway's added latency on the forwarded path: `GET /api/v1/events/{id}/availability`
//! through a running gateway against a direct gRPC `Inventory.CheckAvailability` to the same
//! backends, measured in one run. Each client task alternates the two (direct, then through
//! the gateway) so both see the same machine state; the added latency is reported as the
//! difference of the percentiles and as the percentiles of the per-pair differences.
//!
//! The admission token comes from the gateway itself (join, wait for READY, enter), so the
//! forwarded requests carry a real JWT that the gateway verifies on every request.

use anyhow::{bail, Context, Result};
use clap::Parser;
use proto::reservation::v1::CheckAvailabilityRequest;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
#[command(about = "Gateway added latency (p50/p99) over a direct gRPC call to the backends")]
struct Args {
    /// Gateway HTTP address (host:port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    gateway: String,
    /// Backends gRPC URL.
    #[arg(long, default_value = "http://127.0.0.1:9090")]
    backends: String,
    /// Event (configured on the gateway and seeded on the backends).
    #[arg(long, default_value = "demo")]
    event: String,
    /// Measured request pairs per task.
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
    /// Unmeasured pairs per task first (connections, caches, CPU frequency).
    #[arg(long, default_value_t = 2_000)]
    warmup: usize,
    /// Client tasks, each with its own HTTP connection and gRPC channel.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// `quantity` of each availability check.
    #[arg(long, default_value_t = 2)]
    quantity: i32,
}

/// Answers in microseconds: direct gRPC, through the gateway.
type Pair = (f64, f64);

async fn admission_token(http: &reqwest::Client, base: &str, event: &str) -> Result<String> {
    let session = format!("bench-{}", std::process::id());
    let j: Value = http
        .post(format!("{base}/api/v1/queue/join"))
        .json(&json!({"event_id": event, "session_id": session}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let waiting = j["waiting_token"]
        .as_str()
        .context("no waiting_token")?
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s: Value = http
            .get(format!("{base}/api/v1/queue/status"))
            .bearer_auth(&waiting)
            .send()
            .await?
            .json()
            .await?;
        if s["status"] == "READY" || s["status"] == "ADMITTED" {
            break;
        }
        if Instant::now() > deadline {
            bail!("not admitted within 60 s: {s}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let e: Value = http
        .post(format!("{base}/api/v1/queue/enter"))
        .bearer_auth(&waiting)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(e["reservation_token"]
        .as_str()
        .context("no reservation_token")?
        .to_owned())
}

async fn run_task(args: &Args, token: &str, n: usize, warm: usize) -> Result<Vec<Pair>> {
    // One connection each way, reused: the steady state of a busy gateway.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .tcp_nodelay(true)
        .build()?;
    let channel = proto::lazy_channel(&args.backends, Duration::from_secs(1))?;
    let mut inventory = proto::InventoryClient::new(channel);
    let url = format!(
        "http://{}/api/v1/events/{}/availability?quantity={}",
        args.gateway, args.event, args.quantity
    );
    let mut out = Vec::with_capacity(n);
    for i in 0..warm + n {
        let t = Instant::now();
        inventory
            .check_availability(CheckAvailabilityRequest {
                event_id: args.event.clone(),
                quantity: args.quantity,
                ..Default::default()
            })
            .await
            .context("direct CheckAvailability")?;
        let direct = t.elapsed();
        let t = Instant::now();
        let r = http.get(&url).bearer_auth(token).send().await?;
        let status = r.status();
        let _ = r.bytes().await?;
        let via = t.elapsed();
        if !status.is_success() {
            bail!("the gateway answered {status}");
        }
        if i >= warm {
            out.push((direct.as_secs_f64() * 1e6, via.as_secs_f64() * 1e6));
        }
    }
    Ok(out)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = std::sync::Arc::new(Args::parse());
    let base = format!("http://{}", args.gateway);
    let http = reqwest::Client::new();
    let token = admission_token(&http, &base, &args.event).await?;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency.max(1) {
        let (args, token) = (args.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            run_task(&args, &token, args.requests, args.warmup).await
        }));
    }
    let mut pairs = Vec::new();
    for t in tasks {
        pairs.extend(t.await??);
    }
    let wall = started.elapsed();
    let direct = sorted(pairs.iter().map(|p| p.0).collect());
    let via = sorted(pairs.iter().map(|p| p.1).collect());
    let diff = sorted(pairs.iter().map(|p| p.1 - p.0).collect());
    let ms = |us: f64| format!("{:.3}", us / 1000.0);
    println!(
        "Gateway added latency on `GET /api/v1/events/{{id}}/availability` (quantity={}), {} measured pairs ({} task(s) × {}, after {} warm-up pairs each), {:.1} s:",
        args.quantity,
        pairs.len(),
        args.concurrency.max(1),
        args.requests,
        args.warmup,
        wall.as_secs_f64()
    );
    println!();
    println!("| Path | p50 (ms) | p90 (ms) | p99 (ms) | p99.9 (ms) |");
    println!("|---|---:|---:|---:|---:|");
    for (name, v) in [
        ("direct gRPC `Inventory.CheckAvailability`", &direct),
        ("HTTP through the gateway (JWT check + gRPC)", &via),
        ("added by the gateway (per-pair difference)", &diff),
    ] {
        println!(
            "| {name} | {} | {} | {} | {} |",
            ms(pct(v, 50.0)),
            ms(pct(v, 90.0)),
            ms(pct(v, 99.0)),
            ms(pct(v, 99.9))
        );
    }
    println!(
        "| added by the gateway (difference of percentiles) | {} | {} | {} | {} |",
        ms(pct(&via, 50.0) - pct(&direct, 50.0)),
        ms(pct(&via, 90.0) - pct(&direct, 90.0)),
        ms(pct(&via, 99.0) - pct(&direct, 99.0)),
        ms(pct(&via, 99.9) - pct(&direct, 99.9)),
    );
    let added_p99 = (pct(&via, 99.0) - pct(&direct, 99.0)) / 1000.0;
    println!();
    println!(
        "Target: added p99 under 2 ms: {} ({added_p99:.3} ms).",
        if added_p99 < 2.0 { "met" } else { "NOT met" }
    );
    Ok(())
}
