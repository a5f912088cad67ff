//! Shared helpers of the gateway's integration tests: gateways on port 0, in this process or as
//! real `gateway` processes, and a JSON HTTP client.
#![allow(dead_code)]

pub mod admin_http;
pub mod backends;
pub mod chrome;
pub mod cluster;
pub mod http;
pub mod webhook_http;

mod flow;

// Not every test binary takes every step.
#[allow(unused_imports)]
pub use flow::*;

use gateway::{Config, Gateway};
use serde_json::Value;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

pub const ADMIN: &str = "test-admin-token";
/// (No comma: `--token-secret` values are split on commas.)
pub const SECRET: &str = "test token secret; 32 bytes long!";
/// A fixed Ed25519 key (PKCS#8 PEM) so that replicas and restarts share it.
pub const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIKca9U8Xj2DwNeABg6oDfidSMKbZVnlmV+qOwRIb3Trx\n-----END PRIVATE KEY-----\n";

/// The admin token and the fixed keys, as flags: what every test gateway starts with.
pub const KEY_FLAGS: [&str; 6] = [
    "--admin-token",
    ADMIN,
    "--token-secret",
    SECRET,
    "--signing-key",
    PEM,
];

/// A gateway served in this process on 127.0.0.1:0.
pub struct TestGateway {
    pub addr: SocketAddr,
    /// The gRPC QueueService address, when started with `--grpc-listen`.
    pub grpc: Option<SocketAddr>,
    /// The `/metrics` listener (`--metrics-listen`, 127.0.0.1:0 unless a test says otherwise).
    pub metrics: Option<SocketAddr>,
    /// The gateway's shared state (a clone: the parts are behind Arcs).
    pub state: gateway::AppState,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestGateway {
    /// Starts a gateway with the given extra flags (`--redis-url` etc.).
    pub async fn start(extra: &[&str]) -> Self {
        Self::start_with_clock(extra, std::sync::Arc::new(queue::clock::SystemClock)).await
    }

    /// As [`Self::start`], serving HTTP on `listener` (bound beforehand, so that its address
    /// can be given to what must call it, such as the payment simulator's webhook URL).
    pub async fn start_on(listener: tokio::net::TcpListener, extra: &[&str]) -> Self {
        Self::start_with(
            extra,
            std::sync::Arc::new(queue::clock::SystemClock),
            Some(listener),
        )
        .await
    }

    /// As [`Self::start`], on `clock` (a `ManualClock` moves the queue's time).
    pub async fn start_with_clock(
        extra: &[&str], clock: std::sync::Arc<dyn queue::clock::Clock>,
    ) -> Self {
        Self::start_with(extra, clock, None).await
    }

    async fn start_with(
        extra: &[&str], clock: std::sync::Arc<dyn queue::clock::Clock>,
        listener: Option<tokio::net::TcpListener>,
    ) -> Self {
        let mut args = vec!["gateway"];
        args.extend_from_slice(&KEY_FLAGS);
        // Every client of these tests is 127.0.0.1: the per-address limits are off unless a
        // test sets them (tests/rate_limit.rs tests them).
        if !extra.contains(&"--join-rate-per-ip") {
            args.extend_from_slice(&["--join-rate-per-ip", "0"]);
        }
        if !extra.contains(&"--status-rate-per-ip") {
            args.extend_from_slice(&["--status-rate-per-ip", "0"]);
        }
        if !extra.contains(&"--metrics-listen") {
            args.extend_from_slice(&["--metrics-listen", "127.0.0.1:0"]);
        }
        args.extend_from_slice(extra);
        let config = Config::from_args_no_env(args).expect("flags parse");
        let gw = Gateway::build_with_clock(&config, clock)
            .await
            .expect("gateway builds");
        let grpc = gw.grpc_addr();
        let metrics = gw.metrics_addr();
        let state = gw.state.clone();
        let listener = match listener {
            Some(l) => l,
            None => tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        };
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            gw.serve(listener, async {
                let _ = rx.await;
            })
            .await
            .expect("serve");
        });
        Self {
            addr,
            grpc,
            metrics,
            state,
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// `path` on the metrics listener.
    pub fn metrics_url(&self, path: &str) -> String {
        let addr = self.metrics.expect("started with a metrics listener");
        format!("http://{addr}{path}")
    }

    /// Stops accepting and drains.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

/// A real `gateway` process on a free port.
pub struct GatewayProcess {
    pub child: Child,
    pub addr: SocketAddr,
}

impl GatewayProcess {
    /// A gateway process with the test keys and `extra` flags.
    pub fn spawn(extra: &[&str]) -> Self {
        Self::spawn_with_env(extra, &[])
    }

    /// As [`Self::spawn`], with environment variables `env` (which win over the defaults of
    /// [`gateway_command`]).
    pub fn spawn_with_env(extra: &[&str], env: &[(&str, &str)]) -> Self {
        let addr = free_addr();
        let mut cmd = gateway_command(addr);
        cmd.args(KEY_FLAGS).args(extra).envs(env.iter().copied());
        Self::start(&mut cmd, addr, Duration::from_secs(20))
    }

    /// Spawns `cmd` (from [`gateway_command`] for `addr`) and waits until it listens.
    pub fn start(cmd: &mut Command, addr: SocketAddr, within: Duration) -> Self {
        let child = cmd.spawn().expect("spawn gateway");
        let p = Self { child, addr };
        let deadline = Instant::now() + within;
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "gateway did not start listening");
            std::thread::sleep(Duration::from_millis(20));
        }
        p
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn signal(&self, sig: &str) {
        Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap();
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback address.
pub fn free_addr() -> SocketAddr {
    let port = testkit::free_port().unwrap();
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The `gateway` binary listening on `addr`, with none of the developer's `GATEWAY_*`
/// variables (a test says what it runs), no per-address limits (every client here is
/// 127.0.0.1), no metrics listener (several processes at once) and warnings only. Flags and
/// later `env` calls override these.
pub fn gateway_command(addr: SocketAddr) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gateway"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("GATEWAY_") {
            cmd.env_remove(name);
        }
    }
    cmd.args(["--listen", &addr.to_string()])
        .env("GATEWAY_JOIN_RATE_PER_IP", "0")
        .env("GATEWAY_METRICS_LISTEN", "")
        .env("GATEWAY_STATUS_RATE_PER_IP", "0")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    cmd
}

/// A response: status, headers and JSON body (Null when empty).
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Resp {
    /// The error code of an error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

pub async fn send(req: reqwest::RequestBuilder) -> Resp {
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let bytes = r.bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    Resp {
        status,
        headers,
        body,
    }
}

/// `PUT /admin/v1/events/{id}` with `config`.
pub async fn put_event(base: &str, id: &str, config: Value) -> Resp {
    send(
        client()
            .put(format!("{base}/admin/v1/events/{id}"))
            .bearer_auth(ADMIN)
            .json(&config),
    )
    .await
}

pub async fn join(base: &str, event: &str, session: &str) -> Resp {
    send(
        client()
            .post(format!("{base}/api/v1/queue/join"))
            .json(&serde_json::json!({"event_id": event, "session_id": session})),
    )
    .await
}

/// `GET {base}{path}` with `token` as the bearer.
pub async fn get_as(base: &str, path: &str, token: &str) -> Resp {
    send(client().get(format!("{base}{path}")).bearer_auth(token)).await
}

pub async fn status(base: &str, token: &str) -> Resp {
    get_as(base, "/api/v1/queue/status", token).await
}

pub async fn enter(base: &str, token: &str) -> Resp {
    send(
        client()
            .post(format!("{base}/api/v1/queue/enter"))
            .bearer_auth(token),
    )
    .await
}

/// Polls status until it is `want` (or panics after `within`).
pub async fn wait_status(base: &str, token: &str, want: &str, within: Duration) -> Resp {
    let deadline = Instant::now() + within;
    loop {
        let r = status(base, token).await;
        if r.body["status"] == want {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "status never became {want}: {}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `f` every 20 ms until it holds; fails the test after 20 s.
pub async fn until(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
