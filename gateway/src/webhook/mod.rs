//! Incoming payment webhooks: `POST /webhooks/payments` (Standard Webhooks) and
//! `POST /webhooks/stripe` read the raw body (256 KiB at most), verify its signature before any
//! parsing, and store the envelope in the durable inbox of the `webhooks` crate before they
//! answer 2xx ([`ingest`]). The consumer started by [`crate::Gateway::serve`] forwards each
//! stored webhook to `WorkerService.ProcessPaymentResult` through the same upstream machinery
//! as the forwarded API (deadline, concurrency limit, circuit breaker) ([`forward`]). Also: the
//! dead-letter admin handlers ([`dlq`]). The webhook metrics are registered in the gateway's
//! one registry. Failures are [`WebhookError`]s, which [`crate::error`] maps like every other.

use crate::config::{RedisConfig, UpstreamConfig, WebhookConfig};
use crate::metrics::Metrics as GatewayMetrics;
use crate::upstream::{Upstream, UpstreamSettings};
use std::sync::Arc;
use std::time::Duration;
use webhooks::{
    ConsumerConfig, Forward, Inbox, InboxOptions, RetryPolicy, StandardWebhooks, Stripe,
};

mod dlq;
mod forward;
mod ingest;

pub use crate::error::WebhookError;
pub use dlq::{dlq_get, dlq_list, dlq_resolve, dlq_retry, ListQuery, ResolveBody};
pub use ingest::{payments, stripe};

/// The webhook side of the gateway: schemes, inbox and the upstream the consumer calls.
pub struct Webhooks {
    /// The durable inbox.
    pub inbox: Inbox,
    /// `--webhook-secret` and `--webhook-public-key`: Standard Webhooks on
    /// `/webhooks/payments`.
    pub standard: Option<StandardWebhooks>,
    /// `--stripe-webhook-secret`: Stripe on `/webhooks/stripe`.
    pub stripe: Option<Stripe>,
    /// WorkerService (`--payment-result-url`, else `--reservation-url`); None: stored, not
    /// forwarded.
    pub worker: Option<Upstream>,
    /// The consumers' settings (`--webhook-consumers` of them; names unique to this process).
    pub consumers: Vec<ConsumerConfig>,
    /// Largest webhook body.
    pub max_body_bytes: usize,
}

impl Webhooks {
    /// From the configuration: None when no webhook secret or public key is set. Needs
    /// `--redis-url` (the inbox is in Redis); forwards go to `--payment-result-url`, else
    /// `--reservation-url`, behind the upstreams' circuit breaker settings.
    pub async fn from_config(
        config: &WebhookConfig, redis: &RedisConfig, upstreams: &UpstreamConfig,
        metrics: Arc<GatewayMetrics>,
    ) -> anyhow::Result<Option<Arc<Self>>> {
        let standard_keys =
            !config.webhook_secret.is_empty() || !config.webhook_public_key.is_empty();
        if !standard_keys && config.stripe_webhook_secret.is_empty() {
            return Ok(None);
        }
        let Some(url) = &redis.redis_url else {
            anyhow::bail!("--webhook-secret, --webhook-public-key and --stripe-webhook-secret need --redis-url: webhooks are stored in Redis before they are acknowledged");
        };
        // Secrets are parsed here and never printed: the errors name the flag, not the value.
        let standard = if standard_keys {
            // The message says which kind of key is wrong (whsec_ or whpk_), never its value.
            Some(
                StandardWebhooks::with_keys(&config.webhook_secret, &config.webhook_public_key)
                    .map_err(|e| anyhow::anyhow!("--webhook-secret / --webhook-public-key: {e}"))?,
            )
        } else {
            None
        };
        let stripe = if config.stripe_webhook_secret.is_empty() {
            None
        } else {
            Some(
                Stripe::new(&config.stripe_webhook_secret)
                    .map_err(|e| anyhow::anyhow!("--stripe-webhook-secret: {e}"))?,
            )
        };
        let mut opts = InboxOptions::new(url.clone());
        opts.command_timeout = Duration::from_millis(redis.redis_timeout_ms);
        opts.pool_size = redis.redis_pool_size;
        opts.dedup_ttl = Duration::from_secs(config.webhook_dedup_ttl_seconds);
        opts.wait_replicas = redis.redis_wait_replicas;
        opts.wait_timeout = Duration::from_millis(redis.redis_wait_timeout_ms);
        opts.batch = redis.batch();
        let webhook_metrics = Arc::new(webhooks::Metrics::new());
        metrics.register_with(|r| webhook_metrics.register(r));
        let inbox = Inbox::connect(&opts, webhook_metrics).await?;
        let window = config.webhook_forward_window as usize;
        let consumers = config.webhook_consumers as usize;
        let settings = UpstreamSettings {
            // The consumers' windows bound the forwards already; a smaller limit here would
            // only turn forwards the window allows into "overloaded" failures and retries.
            max_in_flight: window * consumers,
            breaker_failures: upstreams.breaker_failures,
            breaker_open: Duration::from_millis(upstreams.breaker_open_ms),
            metrics: Some(metrics),
        };
        let worker = config
            .payment_result_url
            .as_deref()
            .or(upstreams.reservation_url.as_deref())
            .map(|u| {
                Upstream::new(
                    "worker",
                    u,
                    Duration::from_millis(config.webhook_forward_timeout_ms),
                    &settings,
                )
            })
            .transpose()?;
        if worker.is_none() {
            tracing::warn!("webhooks are stored but not forwarded: no --payment-result-url or --reservation-url");
        }
        let name = config
            .webhook_consumer_name
            .clone()
            .unwrap_or_else(|| format!("gw-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]));
        let mut consumer = ConsumerConfig::new(name.clone());
        consumer.window = window;
        consumer.claim_idle = Duration::from_millis(config.webhook_claim_idle_ms);
        consumer.claim_every =
            (consumer.claim_idle / 4).clamp(Duration::from_millis(10), Duration::from_secs(5));
        consumer.retry = RetryPolicy {
            max_attempts: config.webhook_max_attempts,
            base_delay: Duration::from_millis(config.webhook_backoff_ms),
            max_delay: Duration::from_millis(config.webhook_backoff_max_ms),
        };
        let consumers = (0..consumers)
            .map(|i| {
                let mut c = consumer.clone();
                if i > 0 {
                    c.name = format!("{name}-{i}");
                }
                c
            })
            .collect();
        Ok(Some(Arc::new(Self {
            inbox,
            standard,
            stripe,
            worker,
            consumers,
            max_body_bytes: config.webhook_max_body_bytes,
        })))
    }

    /// The consumer loops (none when there is no upstream to forward to).
    pub fn consumers(&self) -> Vec<webhooks::Consumer> {
        let Some(worker) = self.worker.clone() else {
            return Vec::new();
        };
        let forward: Arc<dyn Forward> = Arc::new(forward::WorkerForward { worker });
        self.consumers
            .iter()
            .map(|c| webhooks::Consumer::new(self.inbox.clone(), forward.clone(), c.clone()))
            .collect()
    }
}
