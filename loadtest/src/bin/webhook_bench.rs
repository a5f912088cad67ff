//! Webhook ingestion throughput: signed Standard Webhooks POSTed to a running gateway's
//! `/webhooks/payments` by `--concurrency` client tasks (each its own keep-alive connection),
//! every one with a fresh id, so each is verified (HMAC-SHA256 over the raw body), deduplicated
//! and appended to the Redis inbox before its 2xx. Reports accepted webhooks per second and
//! the time to 2xx (p50/p90/p99/p99.9), as a Markdown fragment.
//!
//! With `--backends`, the webhooks report on real pending payments created there first
//! (`--intents` one-seat reservations of `--event` with a `TIMEOUT` intent): each is
//! `payment.cancelled` for one of them, so the reference WorkerService applies the first per
//! payment and answers ALREADY_PROCESSED to the rest (as in the `webhook_flood` scenario).
//! With `--forwarded`, it then waits until the gateway has forwarded as many as it accepted and
//! also reports forwarded/s (from the first POST to the last forward) and the
//! received-to-applied latency p50/p99, read from the gateway's
//! `webhooks_end_to_end_latency_seconds` histogram (measured at the gateway when the worker's
//! answer arrives, from the envelope's received time; interpolated within its buckets).
//!
//! `--drain-watch REDIS_URL` measures a drain instead: it watches the inbox's length, and once
//! it starts falling (start the forwarding gateway after this) times it down to zero.

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
    /// Gateway metrics address (host:port, its `--metrics-listen`), read with `--forwarded`.
    #[arg(long, default_value = "127.0.0.1:9464")]
    metrics: String,
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
    /// The backends' gRPC URL: report on real pending payments created there.
    #[arg(long)]
    backends: Option<String>,
    /// Pending payments to create at the backends (one seat each of `--event`).
    #[arg(long, default_value_t = 1000)]
    intents: usize,
    /// The backends' event to reserve seats of.
    #[arg(long, default_value = "bench")]
    event: String,
    /// After sending, wait for the gateway to forward them; report forwarded/s and latency.
    #[arg(long)]
    forwarded: bool,
    /// Instead of sending: time the drain of the inbox in this Redis.
    #[arg(long)]
    drain_watch: Option<String>,
}

/// A payment the webhooks report on.
#[derive(Clone)]
struct Target {
    intent: String,
    reservation: String,
    amount: i64,
}

/// Creates `n` one-seat reservations with a pending TIMEOUT intent at the backends.
async fn targets(url: &str, event: &str, n: usize, run: u128) -> Result<Vec<Target>> {
    use proto::payment::v1 as pay;
    use proto::reservation::v1 as res;
    let ch = proto::lazy_channel(url, Duration::from_secs(5))?;
    let mut r = proto::ReservationClient::new(ch.clone());
    let mut p = proto::PaymentClient::new(ch);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let user = format!("bench-{run:x}-{i}");
        let rv = r
            .create_reservation(res::CreateReservationRequest {
                event_id: event.to_owned(),
                quantity: 1,
                user_id: user.clone(),
                idempotency_key: user.clone(),
                ..Default::default()
            })
            .await?
            .into_inner();
        let pi = p
            .create_payment_intent(pay::CreatePaymentIntentRequest {
                reservation_id: rv.reservation_id.clone(),
                user_id: user.clone(),
                scenario: pay::PaymentScenario::Timeout as i32,
                idempotency_key: user,
                ..Default::default()
            })
            .await?
            .into_inner();
        out.push(Target {
            intent: pi.payment_intent_id,
            reservation: rv.reservation_id,
            amount: rv.total_amount.map_or(0, |m| m.amount_cents),
        });
    }
    Ok(out)
}

fn body(i: usize, targets: &[Target]) -> String {
    if !targets.is_empty() {
        let t = &targets[i % targets.len()];
        return format!(
            r#"{{"type":"payment.cancelled","timestamp":"2026-11-24T08:00:00Z","data":{{"payment_intent_id":"{}","reservation_id":"{}","amount_cents":{},"currency":"USD"}}}}"#,
            t.intent, t.reservation, t.amount
        );
    }
    format!(
        r#"{{"type":"payment.approved","timestamp":"2026-11-24T08:00:00Z","data":{{"payment_intent_id":"pi_{i:032x}_bench","reservation_id":"r_{i:032x}_bench","amount_cents":5000,"currency":"USD"}}}}"#
    )
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// What the webhooks are: how they are signed, the run's id prefix, the payments they report on.
struct Webhooks {
    scheme: StandardWebhooks,
    run: u128,
    targets: Vec<Target>,
}

/// Sends webhooks numbered from the shared counter until `end`; the latencies (µs) of those at
/// or past `measure_from`.
async fn worker(
    http: reqwest::Client, url: String, what: Arc<Webhooks>, next: Arc<AtomicUsize>, end: usize,
    measure_from: usize,
) -> Result<Vec<u64>> {
    let Webhooks {
        scheme,
        run,
        targets,
    } = &*what;
    let mut lat = Vec::new();
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= end {
            return Ok(lat);
        }
        let id = format!("msg_bench_{run:x}_{i}");
        let b = body(i, targets);
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

/// One gateway metric (a line starting with `prefix`), 0 when absent.
fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(prefix).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

/// The end-to-end latency histogram: cumulative (upper bound s, count) per bucket.
fn latency_buckets(text: &str) -> Vec<(f64, f64)> {
    let name = "webhooks_end_to_end_latency_seconds_bucket{le=\"";
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let (le, v) = rest.split_once("\"}")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, v.trim().parse().ok()?))
        })
        .collect()
}

/// The `q` quantile (ms) of the observations between two readings of the histogram, linear
/// within the bucket it falls in.
fn quantile_ms(before: &[(f64, f64)], after: &[(f64, f64)], q: f64) -> f64 {
    let d: Vec<(f64, f64)> = after
        .iter()
        .map(|(le, c)| {
            let b = before.iter().find(|(l, _)| l == le).map_or(0.0, |x| x.1);
            (*le, c - b)
        })
        .collect();
    let Some(total) = d.last().map(|x| x.1).filter(|t| *t > 0.0) else {
        return 0.0;
    };
    let rank = q * total;
    let (mut lo, mut below) = (0.0, 0.0);
    for (le, c) in d {
        if c >= rank {
            let hi = if le.is_finite() { le } else { lo * 2.0 };
            let frac = if c > below {
                (rank - below) / (c - below)
            } else {
                1.0
            };
            return (lo + (hi - lo) * frac) * 1000.0;
        }
        lo = le;
        below = c;
    }
    lo * 1000.0
}

async fn metrics_text(http: &reqwest::Client, metrics: &str) -> Result<String> {
    Ok(http
        .get(format!("http://{metrics}/metrics"))
        .send()
        .await?
        .text()
        .await?)
}

/// Watches the inbox drain: from its first decrease to empty.
async fn drain_watch(url: &str) -> Result<()> {
    let mut opts = webhooks::InboxOptions::new(url);
    opts.command_timeout = Duration::from_secs(5);
    let inbox = webhooks::Inbox::connect(&opts, Arc::new(webhooks::Metrics::new())).await?;
    let full = inbox.backlog().await?;
    if full == 0 {
        bail!("the inbox is empty: nothing to drain");
    }
    eprintln!("drain-watch: {full} entries; waiting for the forwarding to start");
    let mut started = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let n = inbox.backlog().await?;
        if started.is_none() && n < full {
            started = Some(Instant::now());
        }
        if n == 0 {
            break;
        }
        if Instant::now() > deadline {
            bail!("the inbox still holds {n} entries after 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let secs = started.map_or(0.0, |s| s.elapsed().as_secs_f64());
    println!("| drained | seconds | drained/s |");
    println!("|---|---|---|");
    println!(
        "| {full} | {secs:.2} | {:.0} |",
        full as f64 / secs.max(1e-9)
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let a = Args::parse();
    if let Some(url) = &a.drain_watch {
        return drain_watch(url).await;
    }
    let scheme = StandardWebhooks::new(&[a.secret.as_str()])?;
    let url = format!("http://{}/webhooks/payments", a.gateway);
    let run = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
    let targets = match &a.backends {
        Some(b) => targets(b, &a.event, a.intents.max(1), run).await?,
        None => Vec::new(),
    };
    let what = Arc::new(Webhooks {
        scheme,
        run,
        targets,
    });
    let total = a.warmup + a.requests;
    let next = Arc::new(AtomicUsize::new(0));
    let probe = reqwest::Client::new();
    let before = if a.forwarded {
        Some(metrics_text(&probe, &a.metrics).await?)
    } else {
        None
    };
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
            what.clone(),
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
    if let Some(before) = before {
        let f0 = metric(&before, "webhooks_forwarded_total ");
        let deadline = Instant::now() + Duration::from_secs(600);
        let after = loop {
            let m = metrics_text(&probe, &a.metrics).await?;
            if metric(&m, "webhooks_forwarded_total ") - f0 >= total as f64 {
                break m;
            }
            if Instant::now() > deadline {
                bail!("not all webhooks forwarded after 10 minutes");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let fwd_elapsed = started.elapsed().as_secs_f64();
        let (b, c) = (latency_buckets(&before), latency_buckets(&after));
        println!();
        println!(
            "| accepted/s | forwarded/s | forwarded/accepted | received→applied p50 ms | p99 ms |"
        );
        println!("|---|---|---|---|---|");
        println!(
            "| {:.0} | {:.0} | {:.2} | {:.1} | {:.1} |",
            total as f64 / elapsed,
            total as f64 / fwd_elapsed,
            elapsed / fwd_elapsed,
            quantile_ms(&b, &c, 0.50),
            quantile_ms(&b, &c, 0.99),
        );
    }
    Ok(())
}
