//! `fill`: joins N unique sessions to one event's queue straight through the Redis store (no
//! HTTP), then reports joins per second and Redis `used_memory` per waiting user.
//!
//! ```text
//! cargo run --release -p loadtest --bin fill -- --redis-url redis://127.0.0.1:6379 --users 1000000
//! ```
//!
//! Point it at a Redis that holds nothing else (or pass `--flush`): the memory figure is the
//! growth of `used_memory` from before the event is configured to after the last join, divided
//! by the number of users. The event admits nobody (`admit_per_second` 0), so every user stays
//! WAITING. The last line of output is `FILL_JSON {...}` for scripts.
//!
//! With `--existing-event` it joins into an event that is already configured (say, one a running
//! gateway serves) and leaves its configuration alone: `bench-queue.sh` uses it to put millions
//! of users in front of the gateway's own event before measuring joins again.

use anyhow::{bail, Context, Result};
use clap::Parser;
use fred::prelude::*;
use fred::types::{ClusterHash, CustomCommand, InfoKind};
use futures::stream::{self, StreamExt};
use loadtest::{human_bytes, info_field};
use queue::ids::{EventId, SessionKey};
use queue::model::EventConfig;
use queue::store::{JoinRequest, RedisOptions, RedisStore, Store};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, Parser)]
#[command(
    name = "fill",
    about = "Join N unique sessions through the Redis store; report joins/s and bytes per waiting user"
)]
struct Args {
    /// Redis URL.
    #[arg(long, env = "FILL_REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    /// Unique sessions to join.
    #[arg(long, default_value_t = 1_000_000)]
    users: u64,
    /// Store calls in flight at once (each of `--batch` joins).
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Connections in the store's pool.
    #[arg(long, default_value_t = 4)]
    pool_size: usize,
    /// Joins per store call (`join_many`), as the gateway's group commit sends them; 1 sends
    /// each join alone.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=4096))]
    batch: u64,
    /// The event's max_active (0: nobody is ever admitted, so a join never checks capacity;
    /// the gateway's benchmark event has 1, which makes each join look for a free slot).
    #[arg(long, default_value_t = 0)]
    max_active: u32,
    /// Event id to fill.
    #[arg(long, default_value = "fill")]
    event: String,
    /// Join into an event that already exists, without configuring it (fails if it does not).
    #[arg(long)]
    existing_event: bool,
    /// FLUSHALL before measuring (destroys everything in that Redis).
    #[arg(long)]
    flush: bool,
    /// Skip the per-structure breakdown (MEMORY USAGE of the queue zset and the hash buckets).
    #[arg(long)]
    no_breakdown: bool,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 900)]
    max_seconds: u64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

async fn used_memory(client: &Client) -> Result<(u64, u64)> {
    let info: String = client.info(Some(InfoKind::Memory)).await?;
    let used = info_field(&info, "used_memory").context("used_memory missing from INFO")?;
    let rss = info_field(&info, "used_memory_rss").unwrap_or(0);
    Ok((used, rss))
}

/// `MEMORY USAGE key SAMPLES 0` (exact), 0 when the key does not exist.
async fn memory_usage(client: &Client, key: String) -> Result<u64> {
    let cmd = CustomCommand::new_static("MEMORY", ClusterHash::Offset(1), false);
    let v: Option<u64> = client
        .custom(
            cmd,
            vec![
                Value::from("USAGE"),
                Value::from(key),
                Value::from("SAMPLES"),
                Value::from(0),
            ],
        )
        .await?;
    Ok(v.unwrap_or(0))
}

/// Sum of MEMORY USAGE over the keys, `concurrency` requests in flight.
async fn sum_usage(client: &Client, keys: Vec<String>, concurrency: usize) -> Result<(u64, u64)> {
    let n = keys.len() as u64;
    let sizes: Vec<Result<u64>> = stream::iter(keys)
        .map(|k| memory_usage(client, k))
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut total = 0;
    for s in sizes {
        total += s?;
    }
    Ok((total, n))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if args.users == 0 {
        bail!("--users must be at least 1");
    }
    let deadline = Instant::now() + Duration::from_secs(args.max_seconds);
    let event = EventId::parse(&args.event)?;

    let client = Builder::from_config(Config::from_url(&args.redis_url)?).build()?;
    client.init().await.context("connecting to Redis")?;
    if args.flush {
        let _: () = client.flushall(false).await?;
    }
    let (before, rss_before) = used_memory(&client).await?;

    let mut opts = RedisOptions::new(args.redis_url.clone());
    opts.pool_size = args.pool_size.max(1);
    opts.command_timeout = Duration::from_secs(10);
    let store = RedisStore::connect(&opts).await?;
    if args.existing_event {
        if store.info(&event, now_ms()).await?.is_none() {
            bail!("event {:?} does not exist (--existing-event)", args.event);
        }
    } else {
        store
            .configure(&event, &EventConfig::new(0, args.max_active), now_ms())
            .await?;
    }

    let created = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    let step = (args.users / 10).max(1);
    let started = Instant::now();
    let results: Vec<Result<()>> = stream::iter((0..args.users).step_by(args.batch as usize))
        .map(|first| {
            let (store, event, created, done) = (&store, &event, &created, &done);
            async move {
                if Instant::now() > deadline {
                    bail!("gave up after --max-seconds {}", args.max_seconds);
                }
                let last = (first + args.batch).min(args.users);
                let joins: Vec<JoinRequest> = (first..last)
                    .map(|i| JoinRequest {
                        session: SessionKey::of(&format!("fill-{}-{i}", event.as_str())),
                        pre_score: -1,
                        access_code: None,
                    })
                    .collect();
                let joined = store.join_many(event, &joins, now_ms()).await?;
                let new = joined.iter().filter(|j| j.created).count() as u64;
                created.fetch_add(new, Ordering::Relaxed);
                let n = last - first;
                let d = done.fetch_add(n, Ordering::Relaxed) + n;
                if d / step != (d - n) / step {
                    let secs = started.elapsed().as_secs_f64();
                    eprintln!("  {d} joined, {:.0} joins/s", d as f64 / secs);
                }
                Ok(())
            }
        })
        .buffer_unordered(args.concurrency.max(1))
        .filter(|r| futures::future::ready(r.is_err()))
        .take(1)
        .collect()
        .await;
    if let Some(Err(e)) = results.into_iter().next() {
        return Err(e.context("join failed"));
    }
    let secs = started.elapsed().as_secs_f64();
    let created = created.into_inner();
    let rate = args.users as f64 / secs;

    let (after, rss_after) = used_memory(&client).await?;
    let delta = after.saturating_sub(before);
    let per_user = delta as f64 / args.users as f64;
    let info = store
        .info(&event, now_ms())
        .await?
        .context("event vanished")?;

    println!(
        "fill: {} users into event {:?} at {}",
        args.users, args.event, args.redis_url
    );
    println!(
        "  joins: {} new, {} existing, {:.1} s, {:.0} joins/s ({} in flight, pool {})",
        created,
        args.users - created,
        secs,
        rate,
        args.concurrency,
        opts.pool_size
    );
    println!("  waiting in queue: {}", info.stats.waiting);
    println!(
        "  used_memory: {} -> {} (+{}), {:.1} bytes per waiting user",
        before,
        after,
        human_bytes(delta as f64),
        per_user
    );
    println!(
        "  used_memory_rss: {} -> {} (+{}, includes allocator slack)",
        rss_before,
        rss_after,
        human_bytes(rss_after.saturating_sub(rss_before) as f64)
    );

    let mut breakdown = String::new();
    if !args.no_breakdown {
        let p = format!("wr:{{{}}}:", event.as_str());
        let (q, _) = sum_usage(&client, vec![format!("{p}q")], 1).await?;
        // The session index of READY and ADMITTED places (empty after a fill: nobody admitted).
        let (s, s_keys) = sum_usage(&client, vec![format!("{p}tk")], 1).await?;
        let seq: Option<u64> = client.get(format!("{p}seq")).await?;
        // Heartbeat buckets: strings of 63 tickets, or hashes of 64 for an event created before
        // string buckets (BUCKET in queue/src/store/lua/lib.lua).
        let layout: Option<String> = client.hget(format!("{p}ev"), "hbl").await?;
        let per_bucket = if layout.as_deref() == Some("1") {
            63
        } else {
            64
        };
        let last_bucket = seq.unwrap_or(0) / per_bucket;
        let (h, h_keys) = sum_usage(
            &client,
            (0..=last_bucket).map(|b| format!("{p}h:{b}")).collect(),
            256,
        )
        .await?;
        let u = args.users as f64;
        println!("  MEMORY USAGE breakdown (per waiting user):");
        println!("    q  (zset, 1 key)        {:>7.1} B", q as f64 / u);
        println!(
            "    tk (READY/ADMITTED sessions, {s_keys} keys) {:>7.1} B",
            s as f64 / u
        );
        println!(
            "    h:* (heartbeat buckets, {h_keys} keys) {:>7.1} B",
            h as f64 / u
        );
        println!(
            "    sum                     {:>7.1} B (used_memory delta {:.1} B)",
            (q + s + h) as f64 / u,
            per_user
        );
        breakdown = format!(
            ",\"q_bytes\":{q},\"s_bytes\":{s},\"s_keys\":{s_keys},\"h_bytes\":{h},\"h_keys\":{h_keys}"
        );
    }
    println!(
        "FILL_JSON {{\"users\":{},\"created\":{},\"seconds\":{:.3},\"joins_per_s\":{:.0},\"waiting\":{},\"used_before\":{},\"used_after\":{},\"bytes_per_user\":{:.1},\"rss_before\":{},\"rss_after\":{}{}}}",
        args.users, created, secs, rate, info.stats.waiting, before, after, per_user, rss_before, rss_after, breakdown
    );
    if created != args.users {
        bail!(
            "only {created} of {} joins created a place (session collision or stale data: use a fresh Redis or --flush)",
            args.users
        );
    }
    Ok(())
}
