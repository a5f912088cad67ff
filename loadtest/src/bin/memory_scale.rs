//! How the in-memory store scales with the number of waiting users (a benchmark, not a test).
//!
//! For each size it fills one event's queue with that many joins (join throughput), then times
//! single `Store::status` reads of random tickets (p50 / p99), `places` batches of 4096 random
//! tickets, a sweep where nothing is idle, and a sweep that expires 1% of the queue. Prints a
//! Markdown table. Run it in release:
//!
//! ```text
//! cargo run --release -p loadtest --bin memory_scale -- --sizes 10000,100000,1000000
//! ```

use clap::Parser;
use queue::ids::{EventId, SessionKey};
use queue::model::EventConfig;
use queue::store::{Holder, MemoryStore, Store, PLACES_BATCH};
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "In-memory store: join, status, places and sweep costs by queue size")]
struct Args {
    /// Queue sizes to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
    sizes: Vec<u64>,
    /// Timed status reads per size.
    #[arg(long, default_value_t = 100_000)]
    reads: usize,
    /// Timed `places` batches (of 4096 tickets) per size.
    #[arg(long, default_value_t = 50)]
    batches: usize,
}

const T0: u64 = 1_800_000_000_000;
const IDLE_S: u64 = 600;

struct Row {
    size: u64,
    joins_per_s: f64,
    status: (Duration, Duration, Duration),
    places: (Duration, Duration),
    sweep_none: Duration,
    sweep_some: (u64, Duration),
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn us(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e6)
}

async fn measure(size: u64, args: &Args) -> anyhow::Result<Row> {
    let store = MemoryStore::new();
    let ev = EventId::parse("bench")?;
    // Admissions paused: the queue only grows, and the sweeps below expire by IDLE_S alone.
    let config = EventConfig {
        admission_ttl_seconds: 60,
        idle_timeout_seconds: IDLE_S as u32,
        ready_timeout_seconds: 30,
        ..EventConfig::new(0, 100)
    };
    store.configure(&ev, &config, T0).await?;
    // Session keys are made before the clock starts: hashing them is not the store's cost.
    let sessions: Vec<SessionKey> = (0..size)
        .map(|i| SessionKey::of(&format!("s{i}")))
        .collect();
    // The first 1% joined 100 s before the rest, so one sweep below expires exactly them.
    let early = size / 100;
    let started = Instant::now();
    for (i, &s) in sessions.iter().enumerate() {
        let now = if (i as u64) < early { T0 } else { T0 + 100_000 };
        store.join(&ev, s, -1, now).await?;
    }
    let joins_per_s = size as f64 / started.elapsed().as_secs_f64();
    let held = |t: u64| Holder {
        ticket: t,
        session: sessions[t as usize - 1],
    };

    // Nobody is idle yet: the reads below change nothing.
    let now = T0 + 1000 * (IDLE_S - 50);
    let mut rng = rand::rngs::StdRng::seed_from_u64(size);
    let mut lat = Vec::with_capacity(args.reads);
    for _ in 0..args.reads {
        let t = rng.gen_range(1..=size);
        let at = Instant::now();
        let p = store.status(&ev, held(t), false, now).await?;
        lat.push(at.elapsed());
        std::hint::black_box(p);
    }
    lat.sort_unstable();
    let status = (pct(&lat, 0.5), pct(&lat, 0.99), lat[lat.len() - 1]);

    let mut batch_lat = Vec::with_capacity(args.batches);
    for _ in 0..args.batches {
        let tickets: Vec<Holder> = (0..PLACES_BATCH)
            .map(|_| held(rng.gen_range(1..=size)))
            .collect();
        let at = Instant::now();
        let r = store.places(&ev, &tickets, false, now).await?;
        batch_lat.push(at.elapsed());
        std::hint::black_box(r);
    }
    batch_lat.sort_unstable();
    let places = (pct(&batch_lat, 0.5), pct(&batch_lat, 0.99));

    let at = Instant::now();
    let none = store.sweep(&ev, 1, now).await?;
    let sweep_none = at.elapsed();
    anyhow::ensure!(none.expired == 0, "nothing should be idle yet");
    // Now only the early 1% have been idle for IDLE_S.
    let now = T0 + 1000 * (IDLE_S + 10);
    let at = Instant::now();
    let some = store.sweep(&ev, 1, now).await?;
    let sweep_some = (some.expired, at.elapsed());
    anyhow::ensure!(some.expired == early, "expired {} of {early}", some.expired);

    Ok(Row {
        size,
        joins_per_s,
        status,
        places,
        sweep_none,
        sweep_some,
    })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    println!(
        "| waiting | joins/s (fill) | status p50 µs | status p99 µs | status max µs \
         | places(4096) p50 ms | places p99 ms | sweep, 0 idle, ms | sweep, 1% idle, ms |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &size in &args.sizes {
        let r = rt.block_on(measure(size, &args))?;
        let ms = |d: Duration| format!("{:.3}", d.as_secs_f64() * 1e3);
        println!(
            "| {} | {:.0} | {} | {} | {} | {} | {} | {} | {} ({} expired) |",
            r.size,
            r.joins_per_s,
            us(r.status.0),
            us(r.status.1),
            us(r.status.2),
            ms(r.places.0),
            ms(r.places.1),
            ms(r.sweep_none),
            ms(r.sweep_some.1),
            r.sweep_some.0,
        );
    }
    Ok(())
}
