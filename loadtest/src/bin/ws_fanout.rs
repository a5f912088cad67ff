//! WebSocket fan-out benchmark: opens N concurrent position streams on one gateway, admits
//! users from another process sharing the Redis (as another replica would), and reports the
//! gateway's RSS per connection and the delay from each admission to every client seeing its new
//! position.
//!
//! Run it through `loadtest/bench-ws.sh`, which starts Redis and a release gateway, raises the fd
//! limit and passes the gateway's pid.

use anyhow::{bail, Context, Result};
use clap::Parser;
use futures::StreamExt;
use queue::clock::{Clock, SystemClock};
use queue::ids::EventId;
use queue::model::EventConfig;
use queue::store::{RedisOptions, RedisStore, Store};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser, Debug)]
struct Args {
    /// Gateway HTTP address (host:port).
    #[arg(long)]
    gateway: SocketAddr,
    /// The Redis the gateway uses (admissions are made here, as another replica would).
    #[arg(long)]
    redis_url: String,
    /// The gateway's admin token.
    #[arg(long)]
    admin_token: String,
    /// The gateway's process id (for its RSS).
    #[arg(long)]
    gateway_pid: u32,
    /// Concurrent WebSocket connections.
    #[arg(long, default_value_t = 100_000)]
    connections: usize,
    /// Admission rounds.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Users admitted per round.
    #[arg(long, default_value_t = 100)]
    per_round: u32,
    /// Loopback source addresses 127.0.0.1..=127.0.0.N (about 28,000 ports each).
    #[arg(long, default_value_t = 5)]
    sources: u8,
    /// Connections being opened at once.
    #[arg(long, default_value_t = 256)]
    connect_concurrency: usize,
    /// Event id used for the run.
    #[arg(long, default_value = "wsbench")]
    event: String,
}

fn rss_bytes(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmRSS")?;
    Ok(kb * 1024)
}

/// What every client task shares: the current round's admission instant and the delays seen.
struct Shared {
    round: Mutex<Option<(usize, Instant)>>,
    delays_us: Mutex<Vec<u64>>,
    per_round: Vec<AtomicUsize>,
    connected: AtomicUsize,
    first_frames: AtomicUsize,
    closed: AtomicUsize,
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

async fn join_all(args: &Args) -> Result<Vec<String>> {
    let http = reqwest::Client::new();
    let url = format!("http://{}/api/v1/queue/join", args.gateway);
    let tokens = futures::stream::iter(0..args.connections)
        .map(|i| {
            let http = http.clone();
            let url = url.clone();
            let event = args.event.clone();
            async move {
                let body =
                    serde_json::json!({"event_id": event, "session_id": format!("ws-bench-{i}")});
                let r: serde_json::Value = http.post(&url).json(&body).send().await?.json().await?;
                r["waiting_token"]
                    .as_str()
                    .map(str::to_owned)
                    .context("no token")
            }
        })
        .buffered(128)
        .collect::<Vec<Result<String>>>()
        .await;
    tokens.into_iter().collect()
}

async fn client(
    shared: Arc<Shared>, gateway: SocketAddr, src: Ipv4Addr, token: String,
    handshake: tokio::sync::oneshot::Sender<()>,
) -> Result<()> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(IpAddr::V4(src), 0))?;
    let stream = socket.connect(gateway).await?;
    let url = format!("ws://{gateway}/api/v1/queue/ws?token={token}");
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (mut ws, _) =
        tokio_tungstenite::client_async_with_config(url, stream, Some(config)).await?;
    shared.connected.fetch_add(1, Ordering::Relaxed);
    let _ = handshake.send(());
    let mut first = true;
    while let Some(msg) = ws.next().await {
        let Message::Text(text) = msg? else { continue };
        if first {
            first = false;
            shared.first_frames.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        if text.contains("POSITION_CHANGED") || text.contains("ADMISSION_READY") {
            let round = *shared.round.lock().unwrap();
            if let Some((r, at)) = round {
                let us = at.elapsed().as_micros() as u64;
                shared.delays_us.lock().unwrap().push(us);
                shared.per_round[r].fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    shared.closed.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let http = reqwest::Client::new();
    let admin = |path: &str| format!("http://{}{}", args.gateway, path);
    let put = http
        .put(admin(&format!("/admin/v1/events/{}", args.event)))
        .bearer_auth(&args.admin_token)
        .json(&serde_json::json!({"admit_per_second": 0, "max_active": 10_000_000}))
        .send()
        .await?;
    if !put.status().is_success() {
        bail!("configuring the event failed: {}", put.status());
    }
    let t = Instant::now();
    let tokens = join_all(&args).await?;
    eprintln!(
        "joined {} users in {:.1} s",
        tokens.len(),
        t.elapsed().as_secs_f64()
    );

    let rss_before = rss_bytes(args.gateway_pid)?;
    let shared = Arc::new(Shared {
        round: Mutex::new(None),
        delays_us: Mutex::new(Vec::with_capacity(args.connections * args.rounds)),
        per_round: (0..args.rounds).map(|_| AtomicUsize::new(0)).collect(),
        connected: AtomicUsize::new(0),
        first_frames: AtomicUsize::new(0),
        closed: AtomicUsize::new(0),
    });
    let t = Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(args.connect_concurrency));
    let failures = Arc::new(AtomicUsize::new(0));
    for (i, token) in tokens.into_iter().enumerate() {
        let src = Ipv4Addr::new(127, 0, 0, 1 + (i % args.sources.max(1) as usize) as u8);
        let permit = sem.clone().acquire_owned().await?;
        let shared = shared.clone();
        let failures = failures.clone();
        let gateway = args.gateway;
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        // The permit is held until the handshake is done (or failed): bounded opening rate.
        tokio::spawn(async move {
            let _ = done_rx.await;
            drop(permit);
        });
        tokio::spawn(async move {
            if let Err(e) = client(shared, gateway, src, token, done_tx).await {
                if failures.fetch_add(1, Ordering::Relaxed) < 5 {
                    eprintln!("client failed: {e:#}");
                }
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    while shared.first_frames.load(Ordering::Relaxed) + failures.load(Ordering::Relaxed)
        < args.connections
    {
        if Instant::now() > deadline {
            bail!(
                "only {} first frames after 600 s",
                shared.first_frames.load(Ordering::Relaxed)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let connect_secs = t.elapsed().as_secs_f64();
    let open = shared.first_frames.load(Ordering::Relaxed);
    if open == 0 {
        bail!("no WebSocket connection could be opened");
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_after = rss_bytes(args.gateway_pid)?;
    eprintln!("{open} connections open in {connect_secs:.1} s");

    let store = RedisStore::connect(&RedisOptions::new(args.redis_url.clone())).await?;
    let event = EventId::parse(&args.event)?;
    let clock = SystemClock;
    let mut config = EventConfig::new(args.per_round, 10_000_000);
    config.idle_timeout_seconds = 3600;
    store.configure(&event, &config, clock.now_ms()).await?;
    let mut admitted = 0;
    for r in 0..args.rounds {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let at = Instant::now();
        *shared.round.lock().unwrap() = Some((r, at));
        let report = store.admit(&event, clock.now_ms()).await?;
        admitted += report.admitted;
        eprintln!(
            "round {r}: admitted {} in {:?}",
            report.admitted,
            at.elapsed()
        );
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut delays = shared.delays_us.lock().unwrap().clone();
    delays.sort_unstable();
    let expected: usize = (0..args.rounds)
        .map(|r| open.saturating_sub(r * args.per_round as usize))
        .sum();
    let per_conn = (rss_after.saturating_sub(rss_before)) as f64 / open.max(1) as f64;
    println!("### WebSocket fan-out, {} connections", open);
    println!();
    println!("| figure | value |");
    println!("|---|---:|");
    println!(
        "| connections open (first frame received) | {open} of {} |",
        args.connections
    );
    println!("| time to open them | {connect_secs:.1} s |");
    println!(
        "| gateway RSS before / after | {:.1} MiB / {:.1} MiB |",
        rss_before as f64 / 1048576.0,
        rss_after as f64 / 1048576.0
    );
    println!(
        "| **gateway RSS per connection** | **{:.1} KiB** |",
        per_conn / 1024.0
    );
    println!(
        "| admissions (rounds x per round) | {} x {} = {admitted} |",
        args.rounds, args.per_round
    );
    println!(
        "| updates received / expected | {} / {expected} |",
        delays.len()
    );
    println!(
        "| **delay admission -> client, p50 / p99 / max** | **{:.0} ms / {:.0} ms** / {:.0} ms |",
        percentile(&delays, 0.5),
        percentile(&delays, 0.99),
        percentile(&delays, 1.0)
    );
    println!(
        "| connections closed by the server during the run | {} |",
        shared.closed.load(Ordering::Relaxed)
    );
    println!();
    println!(
        "<!-- ws-summary connections={open} rss_per_conn_kib={:.2} p50_ms={:.1} p99_ms={:.1} received={} expected={expected} -->",
        per_conn / 1024.0,
        percentile(&delays, 0.5),
        percentile(&delays, 0.99),
        delays.len()
    );
    Ok(())
}
