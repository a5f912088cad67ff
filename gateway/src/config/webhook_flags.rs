//! The webhook flags, a part of [`super::Config`].

use super::at_least;
use clap::Args;

/// Payment webhooks: verification keys, the inbox and forwarding to the worker.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct WebhookConfig {
    /// Standard Webhooks secret (`whsec_<base64>`) of `POST /webhooks/payments`. Repeat the flag
    /// (comma-separated in the environment) to accept several during a rotation. Absent (and no
    /// Stripe secret): the webhook endpoints answer 501. Needs `--redis-url`.
    #[arg(long, env = "GATEWAY_WEBHOOK_SECRET")]
    #[arg(hide_env_values = true, value_delimiter = ',')]
    pub webhook_secret: Vec<String>,

    /// Standard Webhooks Ed25519 public key (`whpk_<base64 of 32 bytes>`) of `POST
    /// /webhooks/payments`: `v1a` signatures are checked against it, beside the `v1` HMACs of
    /// `--webhook-secret`. Repeatable (comma-separated in the environment); either flag enables
    /// the endpoint. Needs `--redis-url`.
    #[arg(long, env = "GATEWAY_WEBHOOK_PUBLIC_KEY", value_delimiter = ',')]
    pub webhook_public_key: Vec<String>,

    /// Stripe endpoint secret of `POST /webhooks/stripe` (the string as Stripe shows it);
    /// repeatable like `--webhook-secret`. Absent: that endpoint answers 501.
    #[arg(long, env = "GATEWAY_STRIPE_WEBHOOK_SECRET")]
    #[arg(hide_env_values = true, value_delimiter = ',')]
    pub stripe_webhook_secret: Vec<String>,

    /// WorkerService URL (`http://host:port`) that stored webhooks are forwarded to
    /// (ProcessPaymentResult). Absent: `--reservation-url`; neither: stored, not forwarded.
    #[arg(long, env = "GATEWAY_PAYMENT_RESULT_URL")]
    pub payment_result_url: Option<String>,

    /// Largest webhook body in bytes (then 413); the other routes keep `--max-body-bytes`.
    #[arg(long, env = "GATEWAY_WEBHOOK_MAX_BODY_BYTES", default_value_t = 256 * 1024)]
    pub webhook_max_body_bytes: usize,

    /// Deadline of one ProcessPaymentResult call, in milliseconds.
    #[arg(
        long,
        env = "GATEWAY_WEBHOOK_FORWARD_TIMEOUT_MS",
        default_value_t = 2000,
        value_parser = at_least::<u64, 1>,
    )]
    pub webhook_forward_timeout_ms: u64,

    /// Forward attempts per webhook, the first included; then it is dead-lettered.
    #[arg(long, env = "GATEWAY_WEBHOOK_MAX_ATTEMPTS", default_value_t = 8, value_parser = at_least::<u32, 1>)]
    pub webhook_max_attempts: u32,

    /// Cap of the first retry's delay in milliseconds; doubles per attempt (full jitter).
    #[arg(long, env = "GATEWAY_WEBHOOK_BACKOFF_MS", default_value_t = 500, value_parser = at_least::<u64, 1>)]
    pub webhook_backoff_ms: u64,

    /// Cap of any retry delay, in milliseconds.
    #[arg(long, env = "GATEWAY_WEBHOOK_BACKOFF_MAX_MS", default_value_t = 60_000, value_parser = at_least::<u64, 1>)]
    pub webhook_backoff_max_ms: u64,

    /// A webhook pending this long with a consumer (a crashed replica) is taken over by another,
    /// in milliseconds; keep it above the forward timeout.
    #[arg(long, env = "GATEWAY_WEBHOOK_CLAIM_IDLE_MS", default_value_t = 30_000, value_parser = at_least::<u64, 1>)]
    pub webhook_claim_idle_ms: u64,

    /// How long a webhook id is remembered for deduplication, in seconds (7 days).
    #[arg(long, env = "GATEWAY_WEBHOOK_DEDUP_TTL_SECONDS", default_value_t = 7 * 24 * 3600, value_parser = at_least::<u64, 1>)]
    pub webhook_dedup_ttl_seconds: u64,

    /// Most webhook forwards in flight per consumer: a sliding window (when one forward ends,
    /// the next stored webhook starts; a slow one holds back only itself). Also the forwards'
    /// concurrency limit towards the worker (window × consumers), instead of
    /// `--upstream-max-in-flight`. Under CPU contention each forward takes longer, and the
    /// window divided by that time is the consumer's ceiling: at 256 a saturated 2-core machine
    /// forwarded slower than it accepted (docs/benchmarks.md).
    #[arg(long, env = "GATEWAY_WEBHOOK_FORWARD_WINDOW", default_value_t = webhooks::DEFAULT_WINDOW as u64,
          value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub webhook_forward_window: u64,

    /// Webhook consumers per replica, each a member of the consumer group with its own window
    /// (named `<name>`, `<name>-1`, `<name>-2`, ...).
    #[arg(long, env = "GATEWAY_WEBHOOK_CONSUMERS", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..=64))]
    pub webhook_consumers: u64,

    /// This replica's consumer name in the webhook consumer group. Absent: random per process
    /// (a restarted replica's old pending entries are then taken over after the claim idle).
    #[arg(long, env = "GATEWAY_WEBHOOK_CONSUMER_NAME")]
    pub webhook_consumer_name: Option<String>,
}
