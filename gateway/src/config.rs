//! The gateway's configuration: one typed struct, from flags or `GATEWAY_*` environment
//! variables, every value with a documented default. It is made of one sub-struct per part
//! (server, Redis, keys, upstreams, webhooks, ...), each given to that part alone.
//!
//! Values that make no sense (a zero timeout, an empty pool) are refused by the parser with a
//! message that names the flag, rather than silently raised.

use clap::{Args, CommandFactory, FromArgMatches, Parser};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

mod webhook_flags;

pub use webhook_flags::WebhookConfig;

/// Configuration of the `gateway` binary. Every flag is also an environment variable
/// `GATEWAY_<NAME>` (for example `--redis-url` is `GATEWAY_REDIS_URL`).
#[derive(Debug, Clone, PartialEq, Parser)]
#[command(
    name = "gateway",
    version,
    about = "Admission gateway: a fair virtual waiting room in front of a sale"
)]
pub struct Config {
    /// The HTTP server: where it listens (and the gRPC and metrics listeners), its limits and timeouts.
    #[command(flatten, next_help_heading = "Server")]
    pub server: ServerConfig,

    /// Redis: where it is, how long to wait for it, the pool, `WAIT` and the group commit.
    #[command(flatten, next_help_heading = "Redis")]
    pub redis: RedisConfig,

    /// Secrets and keys: the admin token (and the console sessions it opens), waiting-token secrets, admission signing keys, user-assertion keys.
    #[command(flatten, next_help_heading = "Tokens and keys")]
    pub tokens: TokenConfig,

    /// The waiting room's background work and join challenges.
    #[command(flatten, next_help_heading = "Queue")]
    pub queue: QueueConfig,

    /// The WebSocket fan-out and the reservation streams.
    #[command(flatten, next_help_heading = "WebSockets and streams")]
    pub ws: WsConfig,

    /// Per-address rate limits and their cross-replica sync.
    #[command(flatten, next_help_heading = "Rate limits")]
    pub rate_limits: RateLimitConfig,

    /// The admin audit trail.
    #[command(flatten, next_help_heading = "Audit")]
    pub audit: AuditConfig,

    /// The gRPC backends of the forwarded API: URLs, deadlines, concurrency, circuit breaker.
    #[command(flatten, next_help_heading = "Upstreams")]
    pub upstreams: UpstreamConfig,

    /// Payment webhooks: verification keys, the inbox and forwarding to the worker.
    #[command(flatten, next_help_heading = "Webhooks")]
    pub webhooks: WebhookConfig,

    /// Log format: `text` or `json`. The filter comes from `RUST_LOG` (default `info`).
    #[arg(long, env = "GATEWAY_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
}

/// The HTTP server: where it listens (and the gRPC and metrics listeners), its limits and timeouts.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct ServerConfig {
    /// Address the HTTP server listens on.
    #[arg(long, env = "GATEWAY_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Longest time one request may take, in milliseconds (then 503 TIMEOUT).
    #[arg(long, env = "GATEWAY_REQUEST_TIMEOUT_MS", default_value_t = 5000)]
    pub request_timeout_ms: u64,

    /// Largest request body in bytes (then 413 PAYLOAD_TOO_LARGE).
    #[arg(long, env = "GATEWAY_MAX_BODY_BYTES", default_value_t = 16 * 1024)]
    pub max_body_bytes: usize,

    /// Largest request head (request line and headers) in bytes; at least 8192.
    #[arg(long, env = "GATEWAY_MAX_HEADER_BYTES", default_value_t = 16 * 1024, value_parser = at_least::<usize, 8192>)]
    pub max_header_bytes: usize,

    /// Most simultaneous client connections, WebSockets included; more are closed on accept
    /// (and a WebSocket upgrade over the limit gets 503). Raise `ulimit -n` to match.
    #[arg(long, env = "GATEWAY_MAX_CONNECTIONS", default_value_t = 100_000, value_parser = at_least::<usize, 1>)]
    pub max_connections: usize,

    /// Time a client has to send a complete HTTP/1 request head, in milliseconds: it runs from
    /// the moment the server waits for a head (on a keep-alive connection, from the end of the
    /// previous response), so it also closes HTTP/1 connections idle for this long. It does not
    /// cover the protocol detection of a new connection (`--handshake-timeout-ms` does) nor
    /// HTTP/2.
    #[arg(long, env = "GATEWAY_HEADER_READ_TIMEOUT_MS", default_value_t = 10_000)]
    pub header_read_timeout_ms: u64,

    /// Time a new connection has to deliver its first request (HTTP/1: the complete head;
    /// HTTP/2: the preface, settings and first request headers), in milliseconds; a socket that
    /// sends nothing is closed after it and its connection permit freed.
    #[arg(long, env = "GATEWAY_HANDSHAKE_TIMEOUT_MS", default_value_t = 10_000, value_parser = at_least::<u64, 1>)]
    pub handshake_timeout_ms: u64,

    /// A connection with no request in flight for this long is closed, in milliseconds (HTTP/2:
    /// GOAWAY; HTTP/1 keep-alive: closed, or earlier by `--header-read-timeout-ms`).
    #[arg(long, env = "GATEWAY_IDLE_TIMEOUT_MS", default_value_t = 60_000, value_parser = at_least::<u64, 1>)]
    pub idle_timeout_ms: u64,

    /// Interval of HTTP/2 keep-alive pings, in milliseconds (0: no pings).
    #[arg(
        long,
        env = "GATEWAY_HTTP2_KEEPALIVE_INTERVAL_MS",
        default_value_t = 20_000
    )]
    pub http2_keepalive_interval_ms: u64,

    /// Time an HTTP/2 keep-alive ping has to be acknowledged before the connection is closed,
    /// in milliseconds.
    #[arg(
        long,
        env = "GATEWAY_HTTP2_KEEPALIVE_TIMEOUT_MS",
        default_value_t = 20_000,
        value_parser = at_least::<u64, 1>,
    )]
    pub http2_keepalive_timeout_ms: u64,

    /// Seconds that in-flight requests get to finish after SIGTERM/SIGINT.
    #[arg(long, env = "GATEWAY_DRAIN_GRACE_SECONDS", default_value_t = 30)]
    pub drain_grace_seconds: u64,

    /// Address of the gRPC `gateway.v1.QueueService` (e.g. `127.0.0.1:9091`). Absent: no gRPC.
    #[arg(long, env = "GATEWAY_GRPC_LISTEN")]
    pub grpc_listen: Option<SocketAddr>,

    /// Address of the Prometheus `/metrics` listener, apart from the public port (which no
    /// longer serves `/metrics`). Empty: no metrics listener. In a container, `0.0.0.0:9464`.
    // `std::option::Option`, spelled out, so that clap parses the whole value with
    // `parse_metrics_listen` (an empty value is None) instead of making the flag optional.
    #[arg(long, env = "GATEWAY_METRICS_LISTEN", default_value = "127.0.0.1:9464",
          value_parser = parse_metrics_listen)]
    pub metrics_listen: std::option::Option<SocketAddr>,
}

/// Redis: where it is, how long to wait for it, the pool, `WAIT` and the group commit.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct RedisConfig {
    /// Redis URL (`redis://host:port` or `redis-cluster://host:port?node=host:port`). Absent:
    /// the embedded in-memory store with a preconfigured `demo` event (one process only).
    #[arg(long, env = "GATEWAY_REDIS_URL")]
    pub redis_url: Option<String>,

    /// Redis command timeout in milliseconds; past it a request gets 503 UNAVAILABLE.
    #[arg(long, env = "GATEWAY_REDIS_TIMEOUT_MS", default_value_t = 1000, value_parser = at_least::<u64, 1>)]
    pub redis_timeout_ms: u64,

    /// Redis connections in the pool (commands are pipelined on each).
    #[arg(long, env = "GATEWAY_REDIS_POOL_SIZE", default_value_t = 4, value_parser = at_least::<usize, 1>)]
    pub redis_pool_size: usize,

    /// Replicas that must confirm a join, an enter, an event's configuration or a stored
    /// webhook (Redis `WAIT`, on the same connection and node, right after the write) before
    /// the gateway acknowledges it; fewer in time gives 503 UNAVAILABLE and the client retries (the same place comes
    /// back). 0: acknowledge what the primary has, which a failover can lose.
    #[arg(long, env = "GATEWAY_REDIS_WAIT_REPLICAS", default_value_t = 0)]
    pub redis_wait_replicas: u32,

    /// How long that `WAIT` waits for the replicas, in milliseconds.
    #[arg(long, env = "GATEWAY_REDIS_WAIT_TIMEOUT_MS", default_value_t = 100, value_parser = at_least::<u64, 1>)]
    pub redis_wait_timeout_ms: u64,

    /// Most joins (or status reads) of one event sent to Redis as one script call (group
    /// commit); 1 sends each on its own.
    #[arg(long, env = "GATEWAY_REDIS_BATCH_MAX", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub redis_batch_max: u32,

    /// Joins (or status reads) of one event that may wait for the next batch; more get 503
    /// OVERLOADED with Retry-After.
    #[arg(long, env = "GATEWAY_REDIS_BATCH_PENDING", default_value_t = 8192, value_parser = at_least::<u32, 1>)]
    pub redis_batch_pending: u32,

    /// Batches of one event and operation in flight at once. One makes the batches larger:
    /// less Redis and gateway CPU per join (docs/benchmarks.md, "One batch in flight"). With
    /// `--redis-wait-replicas`, 2 lets one batch's WAIT overlap the next batch.
    #[arg(long, env = "GATEWAY_REDIS_BATCH_IN_FLIGHT", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub redis_batch_in_flight: u32,
}

/// Secrets and keys: the admin token (and the console sessions it opens), waiting-token secrets, admission signing keys, user-assertion keys.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct TokenConfig {
    /// Bearer token of the admin API. Absent: the admin API answers 401 to everyone.
    #[arg(long, env = "GATEWAY_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Lifetime of an operator console session (`/admin`), in seconds: the signed session
    /// cookie expires after it and the operator signs in again with the admin token.
    #[arg(long, env = "GATEWAY_CONSOLE_SESSION_TTL_SECONDS", default_value_t = 8 * 3600,
          value_parser = clap::value_parser!(u64).range(60..=7 * 24 * 3600))]
    pub console_session_ttl_seconds: u64,

    /// HMAC key of waiting tokens (at least 16 bytes); the same on every replica. Repeat the
    /// flag (comma-separated in the environment, so a secret cannot contain a comma) to rotate:
    /// the first issues new tokens, every one verifies. Absent: an ephemeral key, so tokens die
    /// with the process.
    #[arg(long, env = "GATEWAY_TOKEN_SECRET")]
    #[arg(hide_env_values = true, value_delimiter = ',')]
    pub token_secret: Vec<String>,

    /// Ed25519 private key of admission tokens, PKCS#8 PEM: the PEM text itself or a path to a
    /// file holding it. Repeat the flag (comma-separated in the environment; a PEM has no
    /// comma, a path must not have one either) to rotate: the first signs, every one verifies
    /// and is published in the JWKS. Absent: an ephemeral key.
    #[arg(long, env = "GATEWAY_SIGNING_KEY", allow_hyphen_values = true)]
    #[arg(hide_env_values = true, value_delimiter = ',')]
    pub signing_key: Vec<String>,

    /// HS256 key shared with the origin, which signs user assertions with it (at least 32
    /// bytes: the key is the value's bytes as given). A join's `user_assertion` that verifies
    /// under it names the admission's user (`sub`); without this flag a join that carries one
    /// is refused (400 ASSERTIONS_DISABLED), and `sub` is always the session. Repeat the flag
    /// (comma-separated in the environment, so a key cannot contain a comma) to rotate: an
    /// assertion verifies under any of them. Absent: no user assertions.
    #[arg(long, env = "GATEWAY_USER_ASSERTION_KEY")]
    #[arg(hide_env_values = true, value_delimiter = ',')]
    pub user_assertion_key: Vec<String>,
}

/// The waiting room's background work and join challenges.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct QueueConfig {
    /// Interval of the admission tick, in milliseconds.
    #[arg(long, env = "GATEWAY_ADMISSION_TICK_MS", default_value_t = 100, value_parser = at_least::<u64, 1>)]
    pub admission_tick_ms: u64,

    /// Interval between the starts of idle sweeps of each event, in milliseconds. A sweep walks
    /// the whole queue (about 1,000 redis-server instructions a waiting user with string
    /// heartbeat buckets, ~1 µs of Redis CPU with an older event's hash buckets), so this bounds
    /// its cost; idle users are also expired at once on their own next call, whatever this says.
    #[arg(long, env = "GATEWAY_SWEEP_INTERVAL_MS", default_value_t = 30_000, value_parser = at_least::<u64, 1>)]
    pub sweep_interval_ms: u64,

    /// The most waiting places one replica's idle sweep walks per second, per event (0: a whole
    /// sweep at once). Spreads a large queue's sweep so that it never takes Redis from joins in
    /// one block: at 20,000, a queue of 5,000,000 is walked in about 4 minutes. Idle users at
    /// the head are skipped by the admission tick anyway; the sweep reclaims the rest.
    #[arg(
        long,
        env = "GATEWAY_SWEEP_PLACES_PER_SECOND",
        default_value_t = 20_000
    )]
    pub sweep_places_per_second: u32,

    /// Lifetime of a join challenge (`GET /api/v1/queue/challenge`) in seconds, 1 to 3600:
    /// the time a client has to solve it and join. Events without `join_challenge` ignore it.
    #[arg(long, env = "GATEWAY_JOIN_CHALLENGE_TTL_SECONDS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub join_challenge_ttl_seconds: u64,
}

/// The WebSocket fan-out and the reservation streams.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct WsConfig {
    /// How often each event's position watcher reads the queue, in milliseconds: the bound on
    /// how late a position change reaches a WebSocket client.
    #[arg(long, env = "GATEWAY_WS_TICK_MS", default_value_t = 250, value_parser = at_least::<u64, 10>)]
    pub ws_tick_ms: u64,

    /// Interval of WebSocket pings in seconds; a client silent for two intervals is dropped.
    #[arg(long, env = "GATEWAY_WS_PING_SECONDS", default_value_t = 20, value_parser = at_least::<u64, 1>)]
    pub ws_ping_seconds: u64,

    /// Time one WebSocket frame may take to be sent, in milliseconds; a client that does not
    /// read in time is disconnected and its connection permit freed.
    #[arg(long, env = "GATEWAY_WS_SEND_TIMEOUT_MS", default_value_t = 10_000, value_parser = at_least::<u64, 1>)]
    pub ws_send_timeout_ms: u64,

    /// Most WebSockets open at once for one waiting token (one place in the queue) on this
    /// replica; the next upgrade gets 429 TOO_MANY_SOCKETS. Counted per replica, not across
    /// the cluster.
    #[arg(long, env = "GATEWAY_WS_PER_TOKEN", default_value_t = 4, value_parser = at_least::<usize, 1>)]
    pub ws_per_token: usize,

    /// When reservation streams (`/api/v1/reservations/{id}/ws`, gRPC
    /// `StreamReservationUpdates`) warn that a pending hold is about to run out: seconds before
    /// `hold_expires_at`, comma-separated. Each point sends one `HOLD_EXPIRING`; `0` sends
    /// none.
    #[arg(
        long,
        env = "GATEWAY_HOLD_WARNING_SECONDS",
        value_delimiter = ',',
        default_value = "30,10"
    )]
    pub hold_warning_seconds: Vec<u64>,
}

/// Per-address rate limits and their cross-replica sync.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct RateLimitConfig {
    /// Joins (`POST /api/v1/queue/join`) per minute per client address, bursts of up to as many;
    /// over it: 429 RATE_LIMITED with Retry-After. 0: off. Over all replicas with
    /// `--rate-sync-ms` and `--redis-url`, else per replica. The default is
    /// high because a carrier-grade NAT puts many users behind one IPv4 address (IPv6 clients
    /// are keyed by their /64).
    #[arg(long, env = "GATEWAY_JOIN_RATE_PER_IP", default_value_t = 600)]
    pub join_rate_per_ip: u32,

    /// Status reads (`GET /api/v1/queue/status`) and WebSocket upgrades (`GET
    /// /api/v1/queue/ws`) per minute per client address, bursts of up to as many; 0: off.
    #[arg(long, env = "GATEWAY_STATUS_RATE_PER_IP", default_value_t = 6000)]
    pub status_rate_per_ip: u32,

    /// Proxy address range (CIDR, e.g. `10.0.0.0/8`) whose `X-Forwarded-For` / `Forwarded`
    /// headers name the client for the rate limits; repeatable (comma-separated in the
    /// environment). Absent: the socket peer is the client and those headers are ignored.
    #[arg(long, env = "GATEWAY_TRUSTED_PROXY", value_delimiter = ',')]
    pub trusted_proxy: Vec<ipnet::IpNet>,

    /// How often each replica sends the per-address counts its rate limiters consumed to Redis
    /// and charges its buckets with what the other replicas consumed, in milliseconds, so that
    /// `--join-rate-per-ip` and `--status-rate-per-ip` hold across replicas (docs/operations.md,
    /// "Abuse and identity"). 0: per replica only. Needs `--redis-url`.
    #[arg(long, env = "GATEWAY_RATE_SYNC_MS", default_value_t = 250)]
    pub rate_sync_ms: u64,
}

/// The admin audit trail.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct AuditConfig {
    /// Entries kept in the admin audit trail (the Redis stream `wr:audit`, trimmed with
    /// `XADD MAXLEN ~`, so it may hold up to about 100 more; in memory exactly this many).
    #[arg(long, env = "GATEWAY_AUDIT_MAX_ENTRIES", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub audit_max_entries: u64,
}

/// The gRPC backends of the forwarded API: URLs, deadlines, concurrency, circuit breaker.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct UpstreamConfig {
    /// ReservationService URL (`http://host:port`). Absent: the reservation routes answer 501
    /// UPSTREAM_NOT_CONFIGURED.
    #[arg(long, env = "GATEWAY_RESERVATION_URL")]
    pub reservation_url: Option<String>,

    /// Inventory URL (`http://host:port`). Absent: the availability route answers 501.
    #[arg(long, env = "GATEWAY_INVENTORY_URL")]
    pub inventory_url: Option<String>,

    /// PaymentService URL (`http://host:port`). Absent: the payment route answers 501.
    #[arg(long, env = "GATEWAY_PAYMENT_URL")]
    pub payment_url: Option<String>,

    /// Deadline of reservation and payment calls in milliseconds, sent as `grpc-timeout`; past
    /// it the request gets 504 UPSTREAM_TIMEOUT.
    #[arg(long, env = "GATEWAY_UPSTREAM_TIMEOUT_MS", default_value_t = 500, value_parser = at_least::<u64, 1>)]
    pub upstream_timeout_ms: u64,

    /// Deadline of inventory calls in milliseconds (availability is a read on the hot path).
    #[arg(long, env = "GATEWAY_INVENTORY_TIMEOUT_MS", default_value_t = 250, value_parser = at_least::<u64, 1>)]
    pub inventory_timeout_ms: u64,

    /// Most calls in flight to each upstream; further requests get 503 UPSTREAM_OVERLOADED at
    /// once instead of queueing.
    #[arg(long, env = "GATEWAY_UPSTREAM_MAX_IN_FLIGHT", default_value_t = 256, value_parser = at_least::<usize, 1>)]
    pub upstream_max_in_flight: usize,

    /// Consecutive failures (unavailable, timed out, internal) that open an upstream's circuit.
    #[arg(long, env = "GATEWAY_BREAKER_FAILURES", default_value_t = 5, value_parser = at_least::<u32, 1>)]
    pub breaker_failures: u32,

    /// Milliseconds an open circuit answers 503 CIRCUIT_OPEN without calling; then one probe
    /// call decides whether it closes.
    #[arg(long, env = "GATEWAY_BREAKER_OPEN_MS", default_value_t = 5000)]
    pub breaker_open_ms: u64,
}

impl Config {
    /// Parses `args` (the first is the program name) as the binary does, except that no
    /// `GATEWAY_*` environment variable is read: what is not in `args` takes its default.
    /// For tests and tools that build a configuration in a process whose environment is
    /// not theirs (an exported `GATEWAY_REDIS_URL` must not change what a test tests).
    pub fn from_args_no_env<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        // clap has no switch for "ignore the environment": drop the `env` of every argument.
        let cmd = Self::command().mut_args(|a| a.env(None));
        let mut matches = cmd.try_get_matches_from(args)?;
        Self::from_arg_matches_mut(&mut matches)
    }
}

/// The defaults, as documented on each flag, whatever the environment says.
impl Default for Config {
    fn default() -> Self {
        Self::from_args_no_env(["gateway"]).expect("the defaults parse")
    }
}

macro_rules! default_from_config {
    ($($t:ty => $field:ident),* $(,)?) => {$(
        /// The defaults of these flags, whatever the environment says.
        impl Default for $t {
            fn default() -> Self {
                Config::default().$field
            }
        }
    )*};
}

default_from_config! {
    ServerConfig => server,
    RedisConfig => redis,
    TokenConfig => tokens,
    QueueConfig => queue,
    WsConfig => ws,
    RateLimitConfig => rate_limits,
    AuditConfig => audit,
    UpstreamConfig => upstreams,
    WebhookConfig => webhooks,
}

impl ServerConfig {
    /// Limits of the HTTP server derived from this configuration.
    pub fn limits(&self) -> Limits {
        Limits {
            max_body_bytes: self.max_body_bytes,
            max_header_bytes: self.max_header_bytes,
            max_connections: self.max_connections,
            header_read_timeout: Duration::from_millis(self.header_read_timeout_ms),
            handshake_timeout: Duration::from_millis(self.handshake_timeout_ms),
            idle_timeout: Duration::from_millis(self.idle_timeout_ms),
            http2_keepalive_interval: (self.http2_keepalive_interval_ms > 0)
                .then(|| Duration::from_millis(self.http2_keepalive_interval_ms)),
            http2_keepalive_timeout: Duration::from_millis(self.http2_keepalive_timeout_ms),
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            drain_grace: Duration::from_secs(self.drain_grace_seconds),
        }
    }
}

impl RedisConfig {
    /// Connection options for `--redis-url` (None without it): the command timeout, the pool
    /// and `WAIT` of these flags. Parts that need less (one connection, no `WAIT`) change the
    /// copy they get.
    pub fn options(&self) -> Option<redis_layer::RedisOptions> {
        self.redis_url.as_ref().map(|url| {
            let mut opts = redis_layer::RedisOptions::new(url.clone());
            opts.command_timeout = Duration::from_millis(self.redis_timeout_ms);
            opts.pool_size = self.redis_pool_size;
            opts.wait_replicas = self.redis_wait_replicas;
            opts.wait_timeout = Duration::from_millis(self.redis_wait_timeout_ms);
            opts
        })
    }

    /// The group commit of joins and status reads (and of stored webhooks).
    pub fn batch(&self) -> redis_layer::GroupOptions {
        redis_layer::GroupOptions {
            max_batch: self.redis_batch_max as usize,
            max_pending: self.redis_batch_pending as usize,
            max_in_flight: self.redis_batch_in_flight as usize,
        }
    }
}

impl WsConfig {
    /// Settings of the WebSocket fan-out derived from this configuration (close frames as the
    /// default `close_for` makes them: the gateway sets its own).
    pub fn hub(&self) -> ws::HubConfig {
        ws::HubConfig {
            tick: Duration::from_millis(self.ws_tick_ms),
            ping_interval: Duration::from_secs(self.ws_ping_seconds),
            send_timeout: Duration::from_millis(self.ws_send_timeout_ms),
            max_per_token: self.ws_per_token,
            ..ws::HubConfig::default()
        }
    }
}

impl TokenConfig {
    /// The signing keys' PEM texts, in order: each value itself, or the file it names.
    pub fn signing_key_pems(&self) -> anyhow::Result<Vec<String>> {
        self.signing_key
            .iter()
            .enumerate()
            .map(|(n, v)| {
                if v.trim_start().starts_with("-----BEGIN") {
                    Ok(v.clone())
                } else {
                    std::fs::read_to_string(PathBuf::from(v)).map_err(|e| {
                        anyhow::anyhow!("reading --signing-key #{} from the file {v:?}: {e}", n + 1)
                    })
                }
            })
            .collect()
    }
}

/// A whole number of at least `MIN` (clap's own range check would print the upper bound as
/// 18446744073709551615).
fn at_least<T: TryFrom<u64>, const MIN: u64>(s: &str) -> Result<T, String> {
    let v: u64 = s
        .trim()
        .parse()
        .map_err(|e| format!("{e} (a whole number, at least {MIN})"))?;
    if v < MIN {
        return Err(format!("must be at least {MIN}"));
    }
    T::try_from(v).map_err(|_| format!("too large (at least {MIN}, at most {})", u64::MAX))
}

/// `--metrics-listen`: an address, or nothing (empty or `off`) for no metrics listener.
fn parse_metrics_listen(s: &str) -> Result<Option<SocketAddr>, String> {
    let s = s.trim();
    if s.is_empty() || s.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    s.parse()
        .map(Some)
        .map_err(|e| format!("{e} (an address such as 127.0.0.1:9464, or empty for none)"))
}

/// The HTTP server's limits, each with the default documented on [`Config`].
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// Largest request head in bytes.
    pub max_header_bytes: usize,
    /// Most simultaneous connections.
    pub max_connections: usize,
    /// Time allowed to send a request head.
    pub header_read_timeout: Duration,
    /// Time a new connection has to deliver its first request.
    pub handshake_timeout: Duration,
    /// Time a connection may stay without a request in flight.
    pub idle_timeout: Duration,
    /// Interval of HTTP/2 keep-alive pings (None: no pings).
    pub http2_keepalive_interval: Option<Duration>,
    /// Time an HTTP/2 ping has to be acknowledged.
    pub http2_keepalive_timeout: Duration,
    /// Longest time one request may take.
    pub request_timeout: Duration,
    /// Time in-flight requests get after shutdown begins.
    pub drain_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        ServerConfig::default().limits()
    }
}

#[cfg(test)]
mod tests;
