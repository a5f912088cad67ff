//! The `backends` binary: Reservation, Inventory, Payment (simulator) and Worker services on one
//! gRPC listener, over Redis or in memory.

use anyhow::{bail, Context, Result};
use clap::Parser;
use services::{
    Backends, MemoryStore, RedisOptions, RedisStore, Settings, Store, SystemClock, WebhookConfig,
    WebhookSecret, WebhookSender,
};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Reference backing services of the admission gateway (flags are also `BACKENDS_<NAME>`).
#[derive(Debug, Parser)]
#[command(name = "backends", version)]
struct Args {
    /// gRPC listen address.
    #[arg(long, env = "BACKENDS_LISTEN", default_value = "127.0.0.1:9090")]
    listen: SocketAddr,
    /// Redis URL (`redis://host:port` or `redis-cluster://…`); in memory when absent.
    #[arg(long, env = "BACKENDS_REDIS_URL")]
    redis_url: Option<String>,
    /// Seeds an event: `ID:SEATS[:PRICE_CENTS]` (repeatable; comma-separated in the env var).
    /// Without any, `demo:100` is seeded.
    #[arg(long = "event", env = "BACKENDS_EVENT", value_delimiter = ',')]
    events: Vec<String>,
    /// Price of a seat when an --event gives none, in cents.
    #[arg(long, env = "BACKENDS_DEFAULT_PRICE_CENTS", default_value_t = 5000)]
    default_price_cents: i64,
    /// Currency of every price.
    #[arg(long, env = "BACKENDS_CURRENCY", default_value = "USD")]
    currency: String,
    /// How long a reservation holds its seats unpaid.
    #[arg(long, env = "BACKENDS_HOLD_SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    hold_seconds: u64,
    /// How long an idempotency key returns the same reservation or intent.
    #[arg(
        long,
        env = "BACKENDS_IDEMPOTENCY_WINDOW_SECONDS",
        default_value_t = 300,
        value_parser = clap::value_parser!(u64).range(1..=86_400)
    )]
    idempotency_window_seconds: u64,
    /// Most seats per reservation.
    #[arg(long, env = "BACKENDS_MAX_SEATS_PER_RESERVATION", default_value_t = 10)]
    max_seats_per_reservation: u32,
    /// Most active holds (PENDING, unexpired) per admission, counted by the `admission_id`
    /// the gateway sends with each hold; a further hold is refused (FAILED_PRECONDITION,
    /// HOLD_LIMIT) until one is paid, released or expired. 0: no limit.
    #[arg(long, env = "BACKENDS_HOLDS_PER_ADMISSION", default_value_t = 1)]
    holds_per_admission: u32,
    /// Interval of the sweep that expires unpaid holds.
    #[arg(long, env = "BACKENDS_EXPIRY_INTERVAL_MS", default_value_t = 1000)]
    expiry_interval_ms: u64,
    /// Where payment outcomes are POSTed (http); outcomes are only recorded when absent.
    #[arg(long, env = "BACKENDS_WEBHOOK_URL")]
    webhook_url: Option<String>,
    /// Standard Webhooks signing secret `whsec_<base64>`; required with --webhook-url.
    #[arg(long, env = "BACKENDS_WEBHOOK_SECRET", hide_env_values = true)]
    webhook_secret: Option<String>,
    /// Delivery attempts per webhook.
    #[arg(long, env = "BACKENDS_WEBHOOK_MAX_ATTEMPTS", default_value_t = 8)]
    webhook_max_attempts: u32,
    /// Cap of the first retry's wait (doubles per attempt up to 30 s; the wait is random below it).
    #[arg(long, env = "BACKENDS_WEBHOOK_BACKOFF_MS", default_value_t = 500)]
    webhook_backoff_ms: u64,
    /// Multiplies the simulator's delays (0.01 makes APPROVE take 20–50 ms).
    #[arg(long, env = "BACKENDS_SIM_TIME_SCALE", default_value_t = 1.0)]
    sim_time_scale: f64,
    /// Redis command timeout.
    #[arg(long, env = "BACKENDS_REDIS_TIMEOUT_MS", default_value_t = 1000)]
    redis_timeout_ms: u64,
    /// Time in-flight calls get to finish after SIGTERM/SIGINT before the process exits anyway
    /// (clients that keep idle connections open do not hold it up longer).
    #[arg(long, env = "BACKENDS_DRAIN_GRACE_SECONDS", default_value_t = 10)]
    drain_grace_seconds: u64,
    /// Log format: `text` or `json`; filter from RUST_LOG (default `info`).
    #[arg(long, env = "BACKENDS_LOG_FORMAT", default_value = "text")]
    log_format: String,
}

/// Parses `ID:SEATS[:PRICE_CENTS]`.
fn parse_event(s: &str, default_price: i64) -> Result<(String, u64, i64)> {
    let mut parts = s.split(':');
    let id = parts.next().unwrap_or_default().to_owned();
    let seats: u64 = parts
        .next()
        .context("--event needs ID:SEATS[:PRICE_CENTS]")?
        .parse()
        .context("SEATS must be a number")?;
    let price = match parts.next() {
        Some(p) => p.parse().context("PRICE_CENTS must be a number")?,
        None => default_price,
    };
    if parts.next().is_some() || seats == 0 || seats > 1_000_000 || price < 0 {
        bail!("--event {s}: want ID:SEATS[:PRICE_CENTS] with 1..=1000000 seats");
    }
    Ok((id, seats, price))
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    binkit::shutdown_signal().await;
    tracing::info!("shutting down: draining in-flight calls");
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt().with_env_filter(filter);
    match args.log_format.as_str() {
        "json" => fmt.json().init(),
        "text" => fmt.init(),
        other => bail!("--log-format must be text or json, not {other}"),
    }

    let store: Arc<dyn Store> = match &args.redis_url {
        Some(url) => {
            let mut opts = RedisOptions::new(url);
            opts.command_timeout = Duration::from_millis(args.redis_timeout_ms);
            Arc::new(RedisStore::connect(&opts).await?)
        }
        None => Arc::new(MemoryStore::new()),
    };
    let webhooks = match (&args.webhook_url, &args.webhook_secret) {
        (Some(url), _) if !url.starts_with("http://") => {
            bail!("--webhook-url must be an http:// URL (this build has no TLS client)")
        }
        (Some(url), Some(secret)) => Some(WebhookSender::new(WebhookConfig {
            url: url.clone(),
            secret: WebhookSecret::parse(secret).map_err(anyhow::Error::msg)?,
            max_attempts: args.webhook_max_attempts.max(1),
            backoff_base: Duration::from_millis(args.webhook_backoff_ms),
            backoff_max: Duration::from_secs(30),
            attempt_timeout: Duration::from_secs(10),
        })),
        (Some(_), None) => bail!("--webhook-url needs --webhook-secret"),
        (None, _) => {
            tracing::warn!("no --webhook-url: payment outcomes are recorded but not reported");
            None
        }
    };
    let settings = Settings {
        hold: Duration::from_secs(args.hold_seconds),
        idempotency_window: Duration::from_secs(args.idempotency_window_seconds),
        max_seats_per_reservation: args.max_seats_per_reservation.max(1),
        holds_per_admission: args.holds_per_admission,
        sim_time_scale: args.sim_time_scale,
        ..Settings::default()
    };
    let backends = Backends::new(store, Arc::new(SystemClock), settings, webhooks);

    let events = if args.events.is_empty() {
        vec!["demo:100".to_owned()]
    } else {
        args.events.clone()
    };
    for e in &events {
        let (id, seats, price) = parse_event(e, args.default_price_cents)?;
        backends
            .seed(&id, seats, price, &args.currency)
            .await
            .with_context(|| format!("seeding {id}"))?;
        tracing::info!(event_id = %id, seats, price_cents = price, "event seeded");
    }

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(addr = %listener.local_addr()?, "backends listening (gRPC)");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut server = tokio::spawn(services::serve(
        backends,
        listener,
        Duration::from_millis(args.expiry_interval_ms.max(10)),
        async {
            let _ = stopped.await;
        },
    ));
    tokio::select! {
        r = &mut server => return Ok(r??),
        _ = shutdown_signal() => {}
    }
    let _ = stop.send(());
    match tokio::time::timeout(Duration::from_secs(args.drain_grace_seconds), &mut server).await {
        Ok(r) => r??,
        Err(_) => tracing::warn!("drain grace elapsed with connections still open; exiting"),
    }
    Ok(())
}
