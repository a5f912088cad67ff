//! Each goose scenario run for a few seconds with a few users against a real stack: a
//! `redis-server` (testkit, free port), the `backends` services over gRPC on loopback (their
//! payment simulator posting signed webhooks to the gateway) and a gateway served in this
//! process on port 0. The runs go through [`loadtest::scenarios::run`], the binary's code path,
//! and must end with every request answered as expected and every invariant holding.

use goose::config::GooseConfiguration;
use loadtest::scenarios::{self, Report, Settings};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

const ADMIN: &str = "loadtest-admin-token";
const TOKEN_SECRET: &str = "loadtest token secret; 32 bytes!";
const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// A fixed Ed25519 key (PKCS#8 PEM).
const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIKca9U8Xj2DwNeABg6oDfidSMKbZVnlmV+qOwRIb3Trx\n-----END PRIVATE KEY-----\n";

/// Goose keeps some process-wide state (its log, its controllers): one attack at a time.
static ONE_ATTACK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Redis, the backends and a gateway, all on free ports.
struct Stack {
    _redis: testkit::RedisServer,
    gateway: String,
    /// The gateway's `/metrics` listener.
    metrics: String,
    backends: String,
    stops: Vec<oneshot::Sender<()>>,
}

impl Stack {
    /// Starts everything; the backends seed `events` (id, seats).
    async fn start(events: &[(&str, u64)]) -> Self {
        let redis = testkit::RedisServer::start().expect("redis-server");
        // The gateway's listener first: the simulator needs its webhook URL.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gw_addr = listener.local_addr().unwrap();

        let store = Arc::new(services::MemoryStore::new());
        let settings = services::Settings {
            // Simulated payments settle in milliseconds instead of seconds.
            sim_time_scale: 0.01,
            ..services::Settings::default()
        };
        let sender = services::WebhookSender::new(services::WebhookConfig {
            url: format!("http://{gw_addr}/webhooks/payments"),
            secret: services::WebhookSecret::parse(WEBHOOK_SECRET).unwrap(),
            max_attempts: 5,
            backoff_base: Duration::from_millis(20),
            backoff_max: Duration::from_millis(200),
            attempt_timeout: Duration::from_secs(5),
        });
        let backends = services::Backends::new(
            store,
            Arc::new(services::SystemClock),
            settings,
            Some(sender),
        );
        for (id, seats) in events {
            backends.seed(id, *seats, 2500, "USD").await.unwrap();
        }
        let be_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let be_addr = be_listener.local_addr().unwrap();
        let (be_stop, be_stopped) = oneshot::channel::<()>();
        {
            use proto::payment::v1::payment_service_server::PaymentServiceServer;
            use proto::reservation::v1::inventory_server::InventoryServer;
            use proto::reservation::v1::reservation_service_server::ReservationServiceServer;
            use proto::reservation::v1::worker_service_server::WorkerServiceServer;
            tokio::spawn(async move {
                let _ = proto::tonic::transport::Server::builder()
                    .add_service(ReservationServiceServer::new(backends.clone()))
                    .add_service(InventoryServer::new(backends.clone()))
                    .add_service(PaymentServiceServer::new(backends.clone()))
                    .add_service(WorkerServiceServer::new(backends))
                    .serve_with_incoming_shutdown(
                        tokio_stream::wrappers::TcpListenerStream::new(be_listener),
                        async {
                            let _ = be_stopped.await;
                        },
                    )
                    .await;
            });
        }
        let be_url = format!("http://{be_addr}");

        let redis_url = redis.url();
        let config = gateway::Config::from_args_no_env([
            "gateway",
            "--admin-token",
            ADMIN,
            "--token-secret",
            TOKEN_SECRET,
            "--signing-key",
            PEM,
            "--redis-url",
            &redis_url,
            "--reservation-url",
            &be_url,
            "--inventory-url",
            &be_url,
            "--payment-url",
            &be_url,
            "--webhook-secret",
            WEBHOOK_SECRET,
            "--webhook-backoff-ms",
            "50",
            "--ws-tick-ms",
            "100",
            // Every simulated user comes from 127.0.0.1: no per-address limits.
            "--join-rate-per-ip",
            "0",
            "--status-rate-per-ip",
            "0",
            "--metrics-listen",
            "127.0.0.1:0",
            // A debug build on a busy machine: no 504 for a slow upstream call.
            "--inventory-timeout-ms",
            "3000",
            "--upstream-timeout-ms",
            "3000",
        ])
        .expect("flags parse");
        let gw = gateway::Gateway::build(&config)
            .await
            .expect("gateway builds");
        let metrics = format!("http://{}", gw.metrics_addr().expect("metrics listener"));
        let (gw_stop, gw_stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            gw.serve(listener, async {
                let _ = gw_stopped.await;
            })
            .await
            .expect("serve");
        });
        Self {
            _redis: redis,
            gateway: format!("http://{gw_addr}"),
            metrics,
            backends: be_url,
            stops: vec![gw_stop, be_stop],
        }
    }

    /// The settings a run uses against this stack.
    fn settings(&self) -> Settings {
        Settings {
            admin_token: Some(ADMIN.into()),
            metrics_url: self.metrics.clone(),
            backends_url: self.backends.clone(),
            webhook_secret: WEBHOOK_SECRET.into(),
            poll_interval: Duration::from_millis(100),
            wait_timeout: Duration::from_secs(20),
            settle_timeout: Duration::from_secs(20),
            ..Settings::default()
        }
    }

    /// Runs `scenario` with goose's `args` (host, scenario and quiet output added).
    async fn run(&self, scenario: &str, args: &[&str], settings: Settings) -> Report {
        let mut all = vec![
            "--host",
            &self.gateway,
            "--scenarios",
            scenario,
            // No goose controller on a fixed port, and a short console.
            "--no-telnet",
            "--quiet",
            // Count the whole run, ramp included, as the invariants do.
            "--no-reset-metrics",
        ];
        all.extend_from_slice(args);
        let config = GooseConfiguration::parse_args_default(&all).expect("goose flags");
        let report = scenarios::run(config, settings).await.expect("the run");
        eprint!("{}", report.summary());
        report
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        for s in self.stops.drain(..) {
            let _ = s.send(());
        }
    }
}

/// Successes and failures of the requests whose goose name ends with `name`.
fn counts(r: &Report, name: &str) -> (usize, usize) {
    r.requests
        .iter()
        .filter(|(k, _)| k.ends_with(&format!(" {name}")))
        .fold((0, 0), |(ok, fail), (_, c)| (ok + c.ok, fail + c.fail))
}

fn assert_passed(r: &Report) {
    assert!(r.passed, "invariants failed: {}", r.summary());
    assert!(r.goose_error.is_none(), "{:?}", r.goose_error);
    let names: Vec<&str> = r.invariants.iter().map(|c| c.name.as_str()).collect();
    assert!(!names.is_empty());
}

/// The successes of the requests named `name` (as [`counts`]), none of which may have failed.
fn no_failures(r: &Report, name: &str) -> usize {
    let (ok, fail) = counts(r, name);
    assert_eq!(fail, 0, "{name} failed");
    ok
}

/// Runs `scenario` on a fresh stack seeding `events` (the run's event is the first of them, if
/// any): `users` started at once, for `seconds`, with goose's `extra` arguments and the stack's
/// settings as `tune` changes them. The run must pass.
async fn passing_run(
    scenario: &str, events: &[(&str, u64)], users: u32, seconds: u32, extra: &[&str],
    tune: impl FnOnce(Settings) -> Settings,
) -> Report {
    let _one = ONE_ATTACK.lock().await;
    let stack = Stack::start(events).await;
    let (users, seconds) = (users.to_string(), seconds.to_string());
    let (users, seconds) = (users.as_str(), seconds.as_str());
    let mut args = vec![
        "--users",
        users,
        "--increase-rate",
        users,
        "--run-time",
        seconds,
    ];
    args.extend_from_slice(extra);
    let mut settings = stack.settings();
    settings.event = events.first().map(|(id, _)| id.to_string());
    let r = stack.run(scenario, &args, tune(settings)).await;
    assert_passed(&r);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn join_storm_hands_out_unique_gap_free_places() {
    let dir = std::env::temp_dir().join(format!("loadtest-join-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("requests.csv");
    let log_s = log.to_str().unwrap().to_owned();
    let extra = ["--request-log", &log_s, "--request-format", "csv"];
    let r = passing_run("join_storm", &[], 8, 3, &extra, |s| s).await;
    let ok = no_failures(&r, "join");
    assert!(ok >= 20, "only {ok} joins");
    let gap = &r
        .invariants
        .iter()
        .find(|c| c.name == "positions_unique_gap_free")
        .unwrap();
    assert_eq!(gap.detail["joins"].as_u64(), Some(ok as u64));
    // The per-request log the benchmark harness plots: one line per request.
    let lines = std::fs::read_to_string(&log).unwrap();
    assert!(
        lines.lines().filter(|l| l.contains("join")).count() >= ok,
        "{}",
        &lines[..lines.len().min(500)]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn waiting_room_admits_at_the_configured_rate() {
    let r = passing_run("waiting_room", &[], 40, 7, &[], |s| Settings {
        admit_per_second: 10,
        ..s
    })
    .await;
    let ok = no_failures(&r, "connect");
    assert!(ok >= 40, "{ok} sockets");
    let entered = no_failures(&r, "enter");
    assert!(entered >= 30, "{entered} entered");
    no_failures(&r, "join");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn purchase_journey_sells_each_seat_once() {
    // Fewer seats than buyers: the sale sells out during the run.
    let r = passing_run("purchase_journey", &[("shop", 25)], 6, 5, &[], |s| {
        Settings {
            admit_per_second: 50,
            fail_share: 0.2,
            ..s
        }
    })
    .await;
    let paid = no_failures(&r, "pay");
    assert!(paid >= 10, "{paid} payments");
    for name in ["join", "enter", "reserve", "reservation", "availability"] {
        no_failures(&r, name);
    }
    let oversell = r
        .invariants
        .iter()
        .find(|c| c.name == "no_oversell")
        .unwrap();
    assert!(
        oversell.detail["seats_sold"].as_u64().unwrap() > 0,
        "{}",
        oversell.detail
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhook_flood_processes_each_webhook_once() {
    let r = passing_run("webhook_flood", &[("hooks", 100)], 4, 3, &[], |s| {
        Settings {
            webhook_intents: 20,
            ..s
        }
    })
    .await;
    let fresh = no_failures(&r, "fresh");
    assert!(fresh >= 50, "{fresh} fresh webhooks");
    for name in ["duplicate", "stale", "forged"] {
        assert!(no_failures(&r, name) > 0, "no {name} webhook sent");
    }
}

#[test]
fn the_binary_lists_the_scenarios_and_refuses_an_unclear_choice() {
    let bin = env!("CARGO_BIN_EXE_loadtest");
    let out = std::process::Command::new(bin)
        .arg("--list")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for name in scenarios::SCENARIOS {
        assert!(
            text.contains(&format!(" - {name} ")),
            "{name} missing from {text}"
        );
    }
    // No scenario chosen: nothing is attacked, exit 2 with the reason, no LOADTEST_JSON.
    let out = std::process::Command::new(bin)
        .args(["--host", "http://127.0.0.1:9", "--no-telnet"])
        .env("LOADTEST_ADMIN_TOKEN", "x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--scenarios"));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("LOADTEST_JSON"));
}
