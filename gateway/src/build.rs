//! [`Gateway::build`]: a [`Config`] turned into the store, keys, upstreams and state.

use crate::{
    audit, console, metrics, ratelimit, ratesync, resv, system, upstream, webhook, AppState,
    Config, Gateway, DEMO_EVENT,
};
use metrics::Metrics;
use queue::clock::{Clock, SystemClock};
use queue::model::EventConfig;
use queue::room::WaitingRoom;
use queue::store::{Batched, MemoryStore, RedisOptions, RedisStore, Store};
use queue::token::{AdmissionSigner, UserAssertions, WaitingTokens};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

impl Gateway {
    /// Builds the store, keys and state from `config` (connecting to Redis when configured).
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    /// As [`build`](Self::build), with an injected clock.
    pub async fn build_with_clock(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let store: Arc<dyn Store> = match config.redis.options() {
            Some(opts) => {
                let redis: Arc<dyn Store> = Arc::new(RedisStore::connect(&opts).await?);
                // Joins and status reads of one event are group-committed: one script call and
                // one round trip per batch instead of per request.
                Arc::new(Batched::new(redis, config.redis.batch()))
            }
            None => {
                let store = MemoryStore::new();
                let demo = queue::ids::EventId::parse(DEMO_EVENT)?;
                store
                    .configure(&demo, &EventConfig::new(2, 100), clock.now_ms())
                    .await?;
                tracing::info!(
                    event = DEMO_EVENT,
                    "no --redis-url: embedded in-memory store with a demo event"
                );
                Arc::new(store)
            }
        };
        let tokens = &config.tokens;
        let waiting = if tokens.token_secret.is_empty() {
            tracing::warn!(
                "no --token-secret: waiting tokens use an ephemeral key and die with this process"
            );
            WaitingTokens::ephemeral()
        } else {
            WaitingTokens::from_secrets(&tokens.token_secret).map_err(|e| {
                anyhow::anyhow!(
                    "--token-secret: {e} (values are split on commas: a secret cannot contain one)"
                )
            })?
        }
        .with_clock(clock.clone());
        let pems = tokens.signing_key_pems()?;
        let signer = if pems.is_empty() {
            tracing::warn!(
                "no --signing-key: admission tokens use an ephemeral key and die with this process"
            );
            AdmissionSigner::ephemeral()
        } else {
            AdmissionSigner::from_pems(&pems)?
        };
        // Key ids, not keys: they are public (in every token) and tell a rotation's steps apart.
        tracing::info!(
            waiting_token_kids = ?waiting.key_ids(),
            signing_kids = ?signer.kids(),
            "keys loaded (the first of each issues, all verify)"
        );
        if tokens.admin_token.is_none() {
            tracing::warn!("no --admin-token: the admin API is disabled");
        }
        let rate_limits = Arc::new(ratelimit::RateLimits::new(
            config.rate_limits.join_rate_per_ip,
            config.rate_limits.status_rate_per_ip,
            config.rate_limits.trusted_proxy.clone(),
            clock.clone(),
        ));
        // The audit trail and the rate-limit sync share one small connection of their own.
        let ops_redis = match config.redis.options() {
            Some(opts) => {
                let opts = RedisOptions {
                    pool_size: 1,
                    ..opts
                };
                Some(Arc::new(redis_layer::Redis::connect(&opts).await?))
            }
            None => None,
        };
        let audit = Arc::new(match &ops_redis {
            Some(r) => {
                audit::Audit::redis(r.clone(), config.audit.audit_max_entries, clock.clone())
            }
            None => audit::Audit::memory(config.audit.audit_max_entries, clock.clone()),
        });
        let rate_sync = match &ops_redis {
            Some(r)
                if config.rate_limits.rate_sync_ms > 0
                    && (rate_limits.join.is_some() || rate_limits.status.is_some()) =>
            {
                Some(Arc::new(ratesync::RateSync::new(
                    r.clone(),
                    rate_limits.clone(),
                    clock.clone(),
                    Duration::from_millis(config.rate_limits.rate_sync_ms),
                )))
            }
            _ => None,
        };
        let configs = Arc::new(queue::configs::EventConfigs::new(
            store.clone(),
            clock.clone(),
        ));
        let challenges = Arc::new(queue::challenge::Challenges::new(
            store.clone(),
            configs.clone(),
            clock.clone(),
            &waiting,
            config.queue.join_challenge_ttl_seconds,
        ));
        let mut room = WaitingRoom::new(store, clock.clone(), waiting, signer);
        if !tokens.user_assertion_key.is_empty() {
            let assertions = UserAssertions::from_keys(&tokens.user_assertion_key).map_err(|e| {
                anyhow::anyhow!(
                    "--user-assertion-key: {e} (values are split on commas: a key cannot contain one)"
                )
            })?;
            // A count, never the keys.
            tracing::info!(
                keys = assertions.key_count(),
                "user assertions verified (HS256)"
            );
            room = room.with_user_assertions(assertions);
        }
        let limits = config.server.limits();
        let metrics = Arc::new(Metrics::new());
        let upstreams = Arc::new(upstream::Upstreams::from_config(
            &config.upstreams,
            metrics.clone(),
        )?);
        let webhooks = webhook::Webhooks::from_config(
            &config.webhooks,
            &config.redis,
            &config.upstreams,
            metrics.clone(),
        )
        .await?;
        // The modes' reads and writes: the default pool, the configured timeouts and `WAIT`.
        let system_redis = config.redis.options().map(|opts| RedisOptions {
            command_timeout: opts.command_timeout,
            wait_replicas: opts.wait_replicas,
            wait_timeout: opts.wait_timeout,
            ..RedisOptions::new(opts.url)
        });
        let system = Arc::new(
            system::SystemModes::connect(
                system_redis,
                upstreams.forced_open.clone(),
                clock.clone(),
            )
            .await?,
        );
        // One subscription to every event's reservation updates, shared by all streams.
        // A subscription: no pool and no `WAIT` of its own.
        let resv_redis = config.redis.options().map(|opts| RedisOptions {
            command_timeout: opts.command_timeout,
            ..RedisOptions::new(opts.url)
        });
        let resv = Arc::new(
            resv::ResvUpdates::connect(resv_redis.as_ref(), &config.ws.hold_warning_seconds)
                .await?,
        );
        // Bound here, not in serve, so that `--grpc-listen 127.0.0.1:0` has a known port.
        let grpc = match config.server.grpc_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|e| anyhow::anyhow!("binding --grpc-listen {addr}: {e}"))?,
            ),
            None => None,
        };
        let metrics_listener = match config.server.metrics_listen {
            Some(addr) => Some(TcpListener::bind(addr).await.map_err(|e| {
                anyhow::anyhow!(
                    "binding --metrics-listen {addr}: {e} (another gateway on this host? \
                             give each its own port, or an empty value for no metrics listener)"
                )
            })?),
            None => None,
        };
        let admin_token_hash: Option<[u8; 32]> = tokens
            .admin_token
            .as_deref()
            .map(|t| Sha256::digest(t.as_bytes()).into());
        let state = AppState::new(crate::State {
            console: Arc::new(console::Console::new(
                admin_token_hash.as_ref(),
                tokens.console_session_ttl_seconds,
            )),
            hub: ws::Hub::new(
                room.clone(),
                ws::HubConfig {
                    close_for: crate::error::ws_close,
                    ..config.ws.hub()
                },
            ),
            permits: Arc::new(tokio::sync::Semaphore::new(limits.max_connections)),
            upstreams,
            webhooks,
            rate_limits,
            audit,
            rate_sync,
            system,
            configs,
            challenges,
            resv,
            room,
            metrics,
            admin_token_hash,
            limits,
        });
        Ok(Self {
            state,
            tick: Duration::from_millis(config.queue.admission_tick_ms),
            sweep_every: Duration::from_millis(config.queue.sweep_interval_ms),
            sweep_per_second: config.queue.sweep_places_per_second,
            grpc,
            metrics_listener,
        })
    }
}
