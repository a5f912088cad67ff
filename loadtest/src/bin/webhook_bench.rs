//! Webhook ingestion throughput: signed Standard Webhooks POSTed to a running gateway's
//! `/webhooks/payments` by `--concurrency` client tasks (each its own keep-alive connection),
//! every one with a fresh id, so each is verified (HMAC-SHA256 over the raw body), deduplicated
//! and appended to the Redis inbox before its 2xx. Reports accepted webhooks per second and
//! the time to 2xx (p50/p90/p99/p99.9), as a Markdown fragment.

use anyhow::{bail, Result};
use clap::Parser;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use webhooks::StandardWebhooks;

#[derive(Debug, Parser)]
#[command(about = "Verified and durably stored webhooks per second, and p99 time to 2xx")]
struct Args {
    /// Gateway HTTP address (host:port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    gateway: String,
    /// The gateway's `--webhook-secret`.
    #[arg(long)]
    secret: String,
    /// Measured webhooks in all.
    #[arg(long, default_value_t = 100_000)]
    requests: usize,
    /// Unmeasured webhooks first.
    #[arg(long, default_value_t = 5_000)]
    warmup: usize,
    /// Client tasks.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
}

fn body(i: usize) -> String {
    format!(
        r#"{{"type":"payment.approved","timestamp":"2026-11-24T08:00:00Z","data":{{"payment_intent_id":"pi_{i:032x}_bench","reservation_id":"r_{i:032x}_bench","amount_cents":5000,"currency":"USD"}}}}"#
    )
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Sends webhooks numbered from the shared counter until `end`; the latencies (µs) of those at
/// or past `measure_from`.
async fn worker(
    http: reqwest::Client,
    url: String,
    scheme: Arc<StandardWebhooks>,
    run: u128,
    next: Arc<AtomicUsize>,
    end: usize,
    measure_from: usize,
) -> Result<Vec<u64>> {
    let mut lat = Vec::new();
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= end {
            return Ok(lat);
        }
        let id = format!("msg_bench_{run:x}_{i}");
        let b = body(i);
        let ts = now_s();
        let sig = scheme.sign(&id, ts, b.as_bytes());
        let start = Instant::now();
        let r = http
            .post(&url)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", sig)
            .body(b)
            .send()
            .await?;
        let status = r.status();
        let _ = r.bytes().await?;
        if !status.is_success() {
            bail!("webhook {i} answered {status}");
        }
        if i >= measure_from {
            lat.push(start.elapsed().as_micros() as u64);
        }
    }
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

#[tokio::main]
async fn main() -> Result<()> {
    let a = Args::parse();
    let scheme = Arc::new(StandardWebhooks::new(&[a.secret.as_str()])?);
    let url = format!("http://{}/webhooks/payments", a.gateway);
    let run = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
    let total = a.warmup + a.requests;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..a.concurrency.max(1) {
        // One client per task: its own connection, as many providers' senders would be.
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .timeout(Duration::from_secs(30))
            .build()?;
        tasks.push(tokio::spawn(worker(
            http,
            url.clone(),
            scheme.clone(),
            run,
            next.clone(),
            total,
            a.warmup,
        )));
    }
    // The rate counts every webhook (warmup included) over the whole run; the latencies only
    // the measured ones.
    let mut all = Vec::with_capacity(a.requests);
    for t in tasks {
        all.extend(t.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    println!(
        "| webhooks (measured) | concurrency | accepted/s | p50 ms | p90 ms | p99 ms | p99.9 ms |"
    );
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} |",
        a.requests,
        a.concurrency,
        total as f64 / elapsed,
        pct(&all, 0.50),
        pct(&all, 0.90),
        pct(&all, 0.99),
        pct(&all, 0.999),
    );
    Ok(())
}
