//! The goose load-test scenarios of the `loadtest` binary and the harness around them: settings
//! from `LOADTEST_*` environment variables, the event set-up through the admin API before the
//! attack, and the invariant checks after it ([`run`]).
//!
//! * [`join_storm`]: a flash crowd of unique sessions joining one event (admissions paused).
//! * [`waiting_room`]: join, hold a WebSocket, refresh now and then, enter when admitted,
//!   sometimes leave or go idle.
//! * [`purchase_journey`]: the whole sale: queue, reservation, payment intent, the simulator's
//!   webhook, until the reservation is CONFIRMED (or CANCELLED).
//! * [`webhook_flood`]: signed payment webhooks with a share of duplicates, stale and forged ones.
//!
//! Goose's own command line chooses users, ramp, run time, reports and thresholds; exactly one
//! scenario runs per invocation, so that its invariants can be judged on their own.

pub mod join_storm;
pub mod purchase_journey;
pub mod waiting_room;
pub mod webhook_flood;

use crate::invariants::{Check, RateSample, WebhookTally};
use goose::config::{GooseConfiguration, Scenarios};
use goose::goose::{GooseMethod, GooseRequest, GooseUser, Scenario, Transaction, TransactionError};
use goose::metrics::GooseMetrics;
use goose::prelude::TransactionResult;
use goose::{GooseAttack, GooseError};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The scenario names, as `--list` shows them and `--scenarios` takes them.
pub const SCENARIOS: [&str; 4] = [
    "join_storm",
    "waiting_room",
    "purchase_journey",
    "webhook_flood",
];

/// One of the four scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// [`join_storm`].
    JoinStorm,
    /// [`waiting_room`].
    WaitingRoom,
    /// [`purchase_journey`].
    PurchaseJourney,
    /// [`webhook_flood`].
    WebhookFlood,
}

impl Kind {
    /// Every scenario, in the order of [`SCENARIOS`].
    pub const ALL: [Kind; 4] = [
        Kind::JoinStorm,
        Kind::WaitingRoom,
        Kind::PurchaseJourney,
        Kind::WebhookFlood,
    ];

    /// `join_storm`, ...
    pub fn name(self) -> &'static str {
        SCENARIOS[self as usize]
    }

    /// Goose's machine name of the scenario: the name without `_` (goose keeps only letters
    /// and digits), which its `--scenarios` filter matches.
    pub fn machine_name(self) -> String {
        self.name().replace('_', "")
    }
}

/// Errors of the harness (the attack itself reports through goose's metrics).
#[derive(Debug, thiserror::Error)]
pub enum LoadTestError {
    /// A `LOADTEST_*` variable has a value that cannot be used.
    #[error("{name}={value:?}: {reason}")]
    Setting {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// Why it was refused.
        reason: String,
    },
    /// `--scenarios` did not name exactly one scenario.
    #[error("choose exactly one scenario with --scenarios (join_storm, waiting_room, purchase_journey or webhook_flood); got {0}")]
    Scenario(String),
    /// No `--host`.
    #[error("--host is required (the gateway, e.g. http://127.0.0.1:8080)")]
    NoHost,
    /// The admin API refused or failed a set-up or read.
    #[error("admin API: {0}")]
    Admin(String),
    /// The backends' gRPC API refused or failed a call.
    #[error("backends: {0}")]
    Backends(String),
    /// An HTTP call of the harness failed.
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
    /// Goose refused the configuration.
    #[error("goose: {0}")]
    Goose(String),
}

/// Scenario settings that goose has no flag for, from `LOADTEST_*` environment variables
/// (defaults in parentheses; `loadtest/README.md` lists them all).
#[derive(Debug, Clone)]
pub struct Settings {
    /// `LOADTEST_EVENT`: the event (join_storm and waiting_room: a fresh `lt-<scenario>-<unix
    /// time>`; purchase_journey and webhook_flood: `loadtest`, which the backends must seed).
    pub event: Option<String>,
    /// `LOADTEST_SETUP` (1): create/configure the event through the admin API before the run;
    /// 0 uses it as it is.
    pub setup: bool,
    /// `LOADTEST_ADMIN_TOKEN` (none; required): the gateway's admin token.
    pub admin_token: Option<String>,
    /// `LOADTEST_ADMIN_URL` (`--host`): where the admin API is.
    pub admin_url: Option<String>,
    /// `LOADTEST_METRICS_URL` (`http://127.0.0.1:9464`, the gateway's `--metrics-listen`
    /// default): where `/metrics` is.
    pub metrics_url: String,
    /// `LOADTEST_ADMIT_PER_SECOND` (100): the event's admission rate (waiting_room,
    /// purchase_journey; join_storm pauses admissions).
    pub admit_per_second: u32,
    /// `LOADTEST_MAX_ACTIVE` (1000000): the event's `max_active`.
    pub max_active: u64,
    /// `LOADTEST_BACKENDS_URL` (`http://127.0.0.1:9090`): the backends' gRPC address, for the
    /// inventory and reservation reads and the webhook_flood set-up.
    pub backends_url: String,
    /// `LOADTEST_WEBHOOK_SECRET` (`whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw`, the docs' example):
    /// the gateway's `--webhook-secret`.
    pub webhook_secret: String,
    /// `LOADTEST_WEBHOOK_INTENTS` (50): reservations with a pending payment intent that the
    /// webhook flood reports on (created at the backends before the run).
    pub webhook_intents: usize,
    /// `LOADTEST_DUPLICATE_SHARE` (0.2): share of webhooks that repeat an accepted one.
    pub duplicate_share: f64,
    /// `LOADTEST_STALE_SHARE` (0.05): share signed with a timestamp 10 minutes old.
    pub stale_share: f64,
    /// `LOADTEST_FORGED_SHARE` (0.05): share signed with a wrong key.
    pub forged_share: f64,
    /// `LOADTEST_STATUS_SHARE` (0.3): chance per second of waiting that a waiting_room user
    /// also polls its status (a tab regaining focus).
    pub status_share: f64,
    /// `LOADTEST_LEAVE_SHARE` (0.1): share of waiting_room visits that leave the queue early.
    pub leave_share: f64,
    /// `LOADTEST_IDLE_SHARE` (0.1): share that close the tab without leaving (go idle).
    pub idle_share: f64,
    /// `LOADTEST_FAIL_SHARE` (0.1): share of purchase_journey payments with the `FAIL` scenario.
    pub fail_share: f64,
    /// `LOADTEST_POLL_MS` (1000): status / reservation polling interval of purchase_journey.
    pub poll_interval: Duration,
    /// `LOADTEST_WAIT_TIMEOUT_SECS` (120): longest a user waits in the queue.
    pub wait_timeout: Duration,
    /// `LOADTEST_SETTLE_TIMEOUT_SECS` (60): longest a payment may take to settle, also after the
    /// run; and longest the webhook consumer may take to drain.
    pub settle_timeout: Duration,
    /// `LOADTEST_RATE_TOLERANCE` (0.05): allowed relative error of the admission rate.
    pub rate_tolerance: f64,
    /// `LOADTEST_VERIFY_SAMPLE` (2000): join_storm places re-read after the run.
    pub verify_sample: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            event: None,
            setup: true,
            admin_token: None,
            admin_url: None,
            metrics_url: "http://127.0.0.1:9464".into(),
            admit_per_second: 100,
            max_active: 1_000_000,
            backends_url: "http://127.0.0.1:9090".into(),
            webhook_secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
            webhook_intents: 50,
            duplicate_share: 0.2,
            stale_share: 0.05,
            forged_share: 0.05,
            status_share: 0.3,
            leave_share: 0.1,
            idle_share: 0.1,
            fail_share: 0.1,
            poll_interval: Duration::from_millis(1000),
            wait_timeout: Duration::from_secs(120),
            settle_timeout: Duration::from_secs(60),
            rate_tolerance: 0.05,
            verify_sample: 2000,
        }
    }
}

impl Settings {
    /// Reads the `LOADTEST_*` environment variables.
    pub fn from_env() -> Result<Self, LoadTestError> {
        Self::from_lookup(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    /// Reads the settings through `get` (a variable's value, or None).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, LoadTestError> {
        fn num<T: std::str::FromStr>(
            get: &impl Fn(&str) -> Option<String>,
            name: &'static str,
            default: T,
        ) -> Result<T, LoadTestError> {
            match get(name) {
                None => Ok(default),
                Some(v) => v.trim().parse().map_err(|_| LoadTestError::Setting {
                    name,
                    value: v,
                    reason: "not a number of the expected kind".into(),
                }),
            }
        }
        fn share(
            get: &impl Fn(&str) -> Option<String>,
            name: &'static str,
            default: f64,
        ) -> Result<f64, LoadTestError> {
            let v: f64 = num(get, name, default)?;
            if (0.0..=1.0).contains(&v) {
                Ok(v)
            } else {
                Err(LoadTestError::Setting {
                    name,
                    value: v.to_string(),
                    reason: "must be between 0 and 1".into(),
                })
            }
        }
        let d = Self::default();
        let setup = match get("LOADTEST_SETUP").as_deref() {
            None | Some("1") | Some("true") | Some("yes") => true,
            Some("0") | Some("false") | Some("no") => false,
            Some(v) => {
                return Err(LoadTestError::Setting {
                    name: "LOADTEST_SETUP",
                    value: v.into(),
                    reason: "1 or 0".into(),
                })
            }
        };
        let s = Self {
            event: get("LOADTEST_EVENT"),
            setup,
            admin_token: get("LOADTEST_ADMIN_TOKEN"),
            admin_url: get("LOADTEST_ADMIN_URL"),
            metrics_url: get("LOADTEST_METRICS_URL").unwrap_or(d.metrics_url),
            admit_per_second: num(&get, "LOADTEST_ADMIT_PER_SECOND", d.admit_per_second)?,
            max_active: num(&get, "LOADTEST_MAX_ACTIVE", d.max_active)?,
            backends_url: get("LOADTEST_BACKENDS_URL").unwrap_or(d.backends_url),
            webhook_secret: get("LOADTEST_WEBHOOK_SECRET").unwrap_or(d.webhook_secret),
            webhook_intents: num(&get, "LOADTEST_WEBHOOK_INTENTS", d.webhook_intents)?,
            duplicate_share: share(&get, "LOADTEST_DUPLICATE_SHARE", d.duplicate_share)?,
            stale_share: share(&get, "LOADTEST_STALE_SHARE", d.stale_share)?,
            forged_share: share(&get, "LOADTEST_FORGED_SHARE", d.forged_share)?,
            status_share: share(&get, "LOADTEST_STATUS_SHARE", d.status_share)?,
            leave_share: share(&get, "LOADTEST_LEAVE_SHARE", d.leave_share)?,
            idle_share: share(&get, "LOADTEST_IDLE_SHARE", d.idle_share)?,
            fail_share: share(&get, "LOADTEST_FAIL_SHARE", d.fail_share)?,
            poll_interval: Duration::from_millis(num(&get, "LOADTEST_POLL_MS", 1000u64)?.max(10)),
            wait_timeout: Duration::from_secs(num(&get, "LOADTEST_WAIT_TIMEOUT_SECS", 120u64)?),
            settle_timeout: Duration::from_secs(num(&get, "LOADTEST_SETTLE_TIMEOUT_SECS", 60u64)?),
            rate_tolerance: num(&get, "LOADTEST_RATE_TOLERANCE", d.rate_tolerance)?,
            verify_sample: num(&get, "LOADTEST_VERIFY_SAMPLE", d.verify_sample)?,
        };
        if s.duplicate_share + s.stale_share + s.forged_share > 1.0 {
            return Err(LoadTestError::Setting {
                name: "LOADTEST_DUPLICATE_SHARE",
                value: s.duplicate_share.to_string(),
                reason: "duplicate + stale + forged shares exceed 1".into(),
            });
        }
        if s.leave_share + s.idle_share > 1.0 {
            return Err(LoadTestError::Setting {
                name: "LOADTEST_LEAVE_SHARE",
                value: s.leave_share.to_string(),
                reason: "leave + idle shares exceed 1".into(),
            });
        }
        Ok(s)
    }
}

/// One join of join_storm as the client saw it.
#[derive(Debug, Clone)]
pub struct JoinRecord {
    /// The waiting token.
    pub token: String,
    /// The position in the answer.
    pub position: u64,
    /// Sent, since the run started.
    pub sent: Duration,
    /// Answered, since the run started.
    pub received: Duration,
}

/// What the WebSocket clients of waiting_room saw.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WsTally {
    /// Connections that delivered a first frame.
    pub connected: u64,
    /// Position frames received.
    pub position_frames: u64,
    /// Connections on which a position went up, or started behind the join's position.
    pub position_went_up: u64,
    /// Visits that got ADMISSION_READY.
    pub admitted: u64,
    /// Visits that entered (200 from enter).
    pub entered: u64,
    /// Visits that left early.
    pub left: u64,
    /// Visits that went idle.
    pub idle: u64,
    /// Visits that gave up waiting (timeout or the run ending).
    pub gave_up: u64,
}

/// A reservation of purchase_journey that got a payment intent.
#[derive(Debug, Clone)]
pub struct Purchase {
    /// `r_…`.
    pub reservation_id: String,
    /// The status the user last saw.
    pub seen_status: String,
}

/// A pending payment the webhook flood reports on.
#[derive(Debug, Clone)]
pub struct WebhookTarget {
    /// `pi_…`.
    pub payment_intent_id: String,
    /// `r_…`.
    pub reservation_id: String,
    /// The intent's amount.
    pub amount_cents: i64,
    /// Its currency.
    pub currency: String,
}

/// State shared by every user of a run and the harness.
pub struct Ctx {
    /// The scenario that runs.
    pub kind: Kind,
    /// The settings.
    pub settings: Settings,
    /// The event.
    pub event: String,
    /// The gateway (`--host`), without a trailing `/`.
    pub host: String,
    /// A prefix that makes session and webhook ids unique to this run.
    pub run_id: String,
    /// When the attack started.
    pub started: Instant,
    /// When users should stop starting long waits (run time over); None: unknown.
    pub stop_at: Mutex<Option<Instant>>,
    next: AtomicU64,
    /// join_storm: every 201 join.
    pub joins: Mutex<Vec<JoinRecord>>,
    /// join_storm: joins answered 200 (an existing place: must not happen for fresh sessions).
    pub joins_existing: AtomicU64,
    /// waiting_room: what the WebSockets saw.
    pub ws: Mutex<WsTally>,
    /// purchase_journey: reservations with a payment intent.
    pub purchases: Mutex<Vec<Purchase>>,
    /// purchase_journey: reservations refused for want of seats.
    pub sold_out: AtomicU64,
    /// webhook_flood: the payments reported on.
    pub targets: Vec<WebhookTarget>,
    /// webhook_flood: accepted `(id, body)`, the pool duplicates are drawn from.
    pub accepted: Mutex<Vec<(String, String)>>,
    /// webhook_flood: the tally.
    pub webhooks: Mutex<WebhookTally>,
}

impl Ctx {
    /// A context for a run of `kind` on `event` at `host`.
    pub fn new(kind: Kind, settings: Settings, event: String, host: String) -> Self {
        let run_id = format!(
            "{:x}",
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_micros())
        );
        Self {
            kind,
            settings,
            event,
            host: host.trim_end_matches('/').to_owned(),
            run_id,
            started: Instant::now(),
            stop_at: Mutex::new(None),
            next: AtomicU64::new(0),
            joins: Mutex::new(Vec::new()),
            joins_existing: AtomicU64::new(0),
            ws: Mutex::new(WsTally::default()),
            purchases: Mutex::new(Vec::new()),
            sold_out: AtomicU64::new(0),
            targets: Vec::new(),
            accepted: Mutex::new(Vec::new()),
            webhooks: Mutex::new(WebhookTally::default()),
        }
    }

    /// A new number, unique in this run.
    pub fn next_id(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// A session id never used before.
    pub fn new_session(&self) -> String {
        format!("lt-{}-{}", self.run_id, self.next_id())
    }

    /// Whether the run time is over (users then end their journeys instead of waiting on).
    pub fn stopping(&self) -> bool {
        self.stop_at
            .lock()
            .unwrap()
            .is_some_and(|t| Instant::now() >= t)
    }
}

/// A goose transaction that calls `f` with the shared context.
pub(crate) fn transaction(
    ctx: &Arc<Ctx>,
    name: &str,
    f: for<'r> fn(Arc<Ctx>, &'r mut GooseUser) -> BoxFuture<'r>,
) -> Transaction {
    fn hr<F>(f: F) -> F
    where
        F: for<'r> Fn(&'r mut GooseUser) -> BoxFuture<'r> + Send + Sync,
    {
        f
    }
    let ctx = ctx.clone();
    Transaction::new(Arc::new(hr(move |user| f(ctx.clone(), user)))).set_name(name)
}

/// The future of a transaction.
pub(crate) type BoxFuture<'r> = Pin<Box<dyn Future<Output = TransactionResult> + Send + 'r>>;

/// An HTTP answer: status and JSON body (Null when empty or not JSON).
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: Value,
}

impl Answer {
    /// The error code of an error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

/// `POST /api/v1/queue/join` of `session` to the run's event, recorded as `join`; only 201 (a
/// new place) counts as a success.
pub(crate) async fn join_as(
    ctx: &Ctx,
    user: &mut GooseUser,
    session: &str,
) -> Result<Answer, Box<TransactionError>> {
    let body = json!({"event_id": ctx.event, "session_id": session});
    call(
        user,
        GooseMethod::Post,
        "/api/v1/queue/join",
        "join",
        |rb| rb.json(&body),
        &[201],
    )
    .await
}

/// One request through goose (so it is measured and logged), named `name`; statuses in `ok`
/// count as successes, any other as a failure.
pub(crate) async fn call(
    user: &mut GooseUser,
    method: GooseMethod,
    path: &str,
    name: &str,
    build: impl FnOnce(goose_reqwest::RequestBuilder) -> goose_reqwest::RequestBuilder,
    ok: &[u16],
) -> Result<Answer, Box<TransactionError>> {
    let rb = build(user.get_request_builder(&method, path)?);
    let mut req = GooseRequest::builder()
        .method(method)
        .path(path)
        .name(name)
        .set_request_builder(rb);
    // Goose judges the first expected status itself, when the request is recorded; a later
    // set_success is an update that can land after goose reset its metrics (end of the ramp)
    // and then leaves a failure counted.
    if let Some(first) = ok.first() {
        req = req.expect_status_code(*first);
    }
    let req = req.build();
    let mut g = user.request(req).await?;
    let resp = match g.response {
        Ok(r) => r,
        Err(e) => return Err(Box::new(TransactionError::Reqwest(e))),
    };
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.unwrap_or_default();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let expected = ok.contains(&status);
    if expected && !g.request.success {
        user.set_success(&mut g.request)?;
    } else if !expected && g.request.success {
        // set_failure records the failure and answers Err to end the transaction; the caller
        // decides that from the status instead.
        let _ = user.set_failure(&format!("unexpected {status}"), &mut g.request, None, None);
    }
    Ok(Answer { status, body })
}

/// A custom error that ends a transaction.
pub(crate) fn fail(msg: impl Into<String>) -> Box<TransactionError> {
    Box::new(TransactionError::Custom(msg.into()))
}

/// The admin API and `/metrics` of the gateway, for the set-up and the checks.
#[derive(Clone)]
pub struct Admin {
    http: reqwest::Client,
    base: String,
    token: String,
    /// Where `/metrics` is (the gateway's `--metrics-listen`, not its public port).
    metrics_base: String,
}

impl Admin {
    /// The admin API at `base` with `token`.
    pub fn new(base: &str, token: &str) -> Result<Self, LoadTestError> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            metrics_base: "http://127.0.0.1:9464".into(),
        })
    }

    /// The same, reading `/metrics` at `base` (the gateway's `--metrics-listen`).
    pub fn with_metrics(mut self, base: &str) -> Self {
        self.metrics_base = base.trim_end_matches('/').to_owned();
        self
    }

    async fn json(&self, req: reqwest::RequestBuilder) -> Result<Value, LoadTestError> {
        let r = req.bearer_auth(&self.token).send().await?;
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(LoadTestError::Admin(format!("{status}: {body}")));
        }
        Ok(body)
    }

    /// `PUT /admin/v1/events/{event}` with `config`.
    pub async fn put_event(&self, event: &str, config: Value) -> Result<Value, LoadTestError> {
        self.json(
            self.http
                .put(format!("{}/admin/v1/events/{event}", self.base))
                .json(&config),
        )
        .await
    }

    /// `GET /admin/v1/events/{event}`.
    pub async fn event(&self, event: &str) -> Result<Value, LoadTestError> {
        self.json(
            self.http
                .get(format!("{}/admin/v1/events/{event}", self.base)),
        )
        .await
    }

    /// `POST /admin/v1/events/{event}/actions`.
    pub async fn action(&self, event: &str, action: &str) -> Result<Value, LoadTestError> {
        self.json(
            self.http
                .post(format!("{}/admin/v1/events/{event}/actions", self.base))
                .json(&json!({ "action": action, "confirm": true })),
        )
        .await
    }

    /// `GET /metrics` as text.
    pub async fn metrics(&self) -> Result<String, LoadTestError> {
        let r = self
            .http
            .get(format!("{}/metrics", self.metrics_base))
            .send()
            .await?;
        Ok(r.error_for_status()?.text().await?)
    }

    /// A sample of the event's counters, timed at the middle of the request (the read happened
    /// somewhere in it; on a busy machine the answer can take a while to come back).
    pub async fn sample(&self, event: &str, since: Instant) -> Result<RateSample, LoadTestError> {
        let sent = since.elapsed().as_secs_f64();
        let v = self.event(event).await?;
        let received = since.elapsed().as_secs_f64();
        Ok(RateSample {
            t: (sent + received) / 2.0,
            admitted_total: v["stats"]["admitted_total"].as_u64().unwrap_or(0),
            waiting: v["stats"]["waiting"].as_u64().unwrap_or(0),
        })
    }
}

/// Request counts of one goose request name.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RequestCounts {
    /// Successes.
    pub ok: usize,
    /// Failures.
    pub fail: usize,
}

/// The result of a run: the `LOADTEST_JSON` document.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The scenario.
    pub scenario: &'static str,
    /// The event.
    pub event: String,
    /// Whether every invariant held.
    pub passed: bool,
    /// The invariants.
    pub invariants: Vec<Check>,
    /// Goose's request counts by `METHOD name` (since the ramp ended, unless
    /// `--no-reset-metrics`).
    pub requests: BTreeMap<String, RequestCounts>,
    /// Goose's failed requests by error text, with how often each happened.
    pub errors: BTreeMap<String, usize>,
    /// Run duration (goose's measured part), seconds.
    pub duration_seconds: usize,
    /// Most users at once.
    pub users: usize,
    /// Goose's error, when the attack ended with one (a failed `--threshold`, ...).
    pub goose_error: Option<String>,
}

impl Report {
    /// The human summary (stderr).
    pub fn summary(&self) -> String {
        let mut s = format!(
            "loadtest {} on event {}: {} ({} s, {} users)\n",
            self.scenario,
            self.event,
            if self.passed { "PASSED" } else { "FAILED" },
            self.duration_seconds,
            self.users
        );
        for c in &self.invariants {
            s += &format!(
                "  [{}] {}: {}\n",
                if c.pass { "ok" } else { "FAIL" },
                c.name,
                c.detail
            );
        }
        for (name, r) in &self.requests {
            s += &format!("  {name}: {} ok, {} failed\n", r.ok, r.fail);
        }
        for (e, n) in &self.errors {
            s += &format!("  error {n}x: {e}\n");
        }
        if let Some(e) = &self.goose_error {
            s += &format!("  goose: {e}\n");
        }
        s
    }
}

/// Registers the four scenarios, each with its transactions calling into `ctx`.
pub fn register(attack: GooseAttack, ctx: &Arc<Ctx>) -> GooseAttack {
    attack
        .register_scenario(
            Scenario::new("join_storm").register_transaction(transaction(
                ctx,
                "join",
                join_storm::join,
            )),
        )
        .register_scenario(
            Scenario::new("waiting_room").register_transaction(transaction(
                ctx,
                "visit",
                waiting_room::visit,
            )),
        )
        .register_scenario(
            Scenario::new("purchase_journey").register_transaction(transaction(
                ctx,
                "purchase",
                purchase_journey::purchase,
            )),
        )
        .register_scenario(
            Scenario::new("webhook_flood").register_transaction(transaction(
                ctx,
                "webhook",
                webhook_flood::webhook,
            )),
        )
}

/// Whether the command line only asks for information (`--list`, `--scenarios-list`,
/// `--version`): then goose prints it and exits, and nothing is set up.
pub fn informational(config: &GooseConfiguration) -> bool {
    config.list || config.scenarios_list || config.version
}

/// The attack for an informational command line (it exits the process).
pub async fn inform(config: GooseConfiguration) -> Result<(), GooseError> {
    let ctx = Arc::new(Ctx::new(
        Kind::JoinStorm,
        Settings::default(),
        String::new(),
        String::new(),
    ));
    register(GooseAttack::initialize_with_config(config)?, &ctx)
        .execute()
        .await
        .map(|_| ())
}

/// The scenario `--scenarios` selects: exactly one, by name (`join_storm`) or goose's machine
/// name (`joinstorm`), `*` wildcards allowed.
pub fn selected(config: &GooseConfiguration) -> Result<Kind, LoadTestError> {
    let patterns: Vec<String> = config
        .scenarios
        .as_ref()
        .map(|s| s.active.iter().map(|p| p.replace('_', "")).collect())
        .unwrap_or_default();
    let chosen: Vec<Kind> = Kind::ALL
        .into_iter()
        .filter(|k| patterns.iter().any(|p| wildcard(p, &k.machine_name())))
        .collect();
    match chosen.as_slice() {
        [one] => Ok(*one),
        _ if patterns.is_empty() => Err(LoadTestError::Scenario("none".into())),
        _ => Err(LoadTestError::Scenario(format!("{patterns:?}"))),
    }
}

fn wildcard(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(t) = text.strip_prefix(head) else {
                return false;
            };
            (0..=t.len()).any(|i| wildcard(rest, &t[i..]))
        }
    }
}

/// Goose's TIME (`30`, `30s`, `2m30s`, `1h`) in seconds.
pub fn parse_time(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Ok(n) = s.parse() {
        return Some(n);
    }
    let (mut total, mut n) = (0u64, String::new());
    for c in s.chars() {
        if c.is_ascii_digit() {
            n.push(c);
            continue;
        }
        let v: u64 = n.parse().ok()?;
        n.clear();
        total += match c {
            'h' => v * 3600,
            'm' => v * 60,
            's' => v,
            _ => return None,
        };
    }
    n.is_empty().then_some(total)
}

/// When the run time will be over: the ramp (`--users` over `--increase-rate`, or
/// `--increase-time`) plus `--run-time`; None without a run time.
fn run_end(config: &GooseConfiguration) -> Option<Duration> {
    let run = parse_time(config.run_time.as_deref()?)?;
    let users = config.users.unwrap_or(1) as f64;
    let ramp = match (&config.increase_time, &config.increase_rate) {
        (Some(t), _) => parse_time(t).unwrap_or(0) as f64,
        (None, Some(r)) => users / r.parse::<f64>().ok().filter(|r| *r > 0.0).unwrap_or(1.0),
        (None, None) => users,
    };
    Some(Duration::from_secs_f64(ramp + run as f64))
}

/// Runs the scenario `--scenarios` names against `--host`: sets the event up (unless
/// `LOADTEST_SETUP=0`), runs goose's attack as configured, then checks the invariants.
pub async fn run(
    mut config: GooseConfiguration,
    settings: Settings,
) -> Result<Report, LoadTestError> {
    let kind = selected(&config)?;
    config.scenarios = Some(Scenarios {
        active: vec![kind.machine_name()],
    });
    let host = config.host.clone().ok_or(LoadTestError::NoHost)?;
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let event = settings.event.clone().unwrap_or_else(|| match kind {
        Kind::JoinStorm | Kind::WaitingRoom => {
            format!("lt-{}-{unix}", kind.name().replace('_', "-"))
        }
        Kind::PurchaseJourney | Kind::WebhookFlood => "loadtest".into(),
    });
    let token = settings.admin_token.clone().ok_or(LoadTestError::Setting {
        name: "LOADTEST_ADMIN_TOKEN",
        value: String::new(),
        reason: "required: the gateway's --admin-token".into(),
    })?;
    let admin = Admin::new(settings.admin_url.as_deref().unwrap_or(&host), &token)?
        .with_metrics(&settings.metrics_url);
    let mut ctx = Ctx::new(kind, settings, event, host);
    let before = match kind {
        Kind::JoinStorm => Prepared::Join(join_storm::setup(&ctx, &admin).await?),
        Kind::WaitingRoom => {
            waiting_room::setup(&ctx, &admin).await?;
            Prepared::None
        }
        Kind::PurchaseJourney => Prepared::Purchase(purchase_journey::setup(&ctx, &admin).await?),
        Kind::WebhookFlood => {
            let (targets, counters) = webhook_flood::setup(&ctx, &admin).await?;
            ctx.targets = targets;
            Prepared::Webhooks(counters)
        }
    };
    ctx.started = Instant::now();
    *ctx.stop_at.get_mut().unwrap() = run_end(&config).map(|d| ctx.started + d);
    let ctx = Arc::new(ctx);

    // The admission counters, sampled through the run (waiting_room judges the rate on them).
    let sampler = (kind == Kind::WaitingRoom).then(|| {
        let (admin, ctx) = (admin.clone(), ctx.clone());
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        if let Ok(s) = admin.sample(&ctx.event, ctx.started).await {
                            samples.push(s);
                        }
                    }
                    _ = &mut stop_rx => return samples,
                }
            }
        });
        (stop_tx, task)
    });

    let attack = GooseAttack::initialize_with_config(config)
        .map_err(|e| LoadTestError::Goose(e.to_string()))?;
    let result = register(attack, &ctx).execute().await;
    let (metrics, goose_error) = match result {
        Ok(m) => (m, None),
        Err(GooseError::ThresholdsFailed { failed, metrics }) => (
            *metrics.0,
            Some(format!("{} threshold(s) failed", failed.len())),
        ),
        Err(e) => return Err(LoadTestError::Goose(e.to_string())),
    };
    let samples = match sampler {
        Some((stop, task)) => {
            let _ = stop.send(());
            task.await.unwrap_or_default()
        }
        None => Vec::new(),
    };

    let invariants = match before {
        Prepared::Join(b) => join_storm::check(&ctx, &admin, b).await?,
        Prepared::None => waiting_room::check(&ctx, &samples),
        Prepared::Purchase(free) => purchase_journey::check(&ctx, free).await?,
        Prepared::Webhooks(b) => webhook_flood::check(&ctx, &admin, b).await?,
    };
    Ok(report(kind, &ctx.event, invariants, &metrics, goose_error))
}

/// What a scenario's set-up read before the run.
enum Prepared {
    None,
    Join(join_storm::Before),
    Purchase(u64),
    Webhooks(crate::invariants::WebhookCounters),
}

fn report(
    kind: Kind,
    event: &str,
    invariants: Vec<Check>,
    m: &GooseMetrics,
    goose_error: Option<String>,
) -> Report {
    let requests = m
        .requests
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                RequestCounts {
                    ok: v.success_count,
                    fail: v.fail_count,
                },
            )
        })
        .collect();
    // Goose lists an error when the answer came, even if the scenario then counted it a
    // success (a 409 sold out): list only errors of requests that have failures.
    let failing = |method: &str, name: &str| {
        m.requests
            .get(&format!("{method} {name}"))
            .is_none_or(|r| r.fail_count > 0)
    };
    let errors = m
        .errors
        .values()
        .filter(|e| failing(&e.method.to_string(), &e.name))
        .map(|e| {
            (
                format!("{} {}: {}", e.method, e.name, e.error),
                e.occurrences,
            )
        })
        .collect();
    Report {
        scenario: kind.name(),
        event: event.to_owned(),
        passed: invariants.iter().all(|c| c.pass),
        invariants,
        requests,
        errors,
        duration_seconds: m.duration,
        users: m.maximum_users,
        goose_error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> GooseConfiguration {
        GooseConfiguration::parse_args_default(args).unwrap()
    }

    #[test]
    fn scenarios_are_selected_by_name_or_machine_name() {
        assert_eq!(
            selected(&config(&["--scenarios", "join_storm"])).unwrap(),
            Kind::JoinStorm
        );
        assert_eq!(
            selected(&config(&["--scenarios", "webhookflood"])).unwrap(),
            Kind::WebhookFlood
        );
        assert_eq!(
            selected(&config(&["--scenarios", "purchase*"])).unwrap(),
            Kind::PurchaseJourney
        );
        assert!(selected(&config(&[])).is_err());
        assert!(selected(&config(&["--scenarios", "join_storm,waiting_room"])).is_err());
        assert!(selected(&config(&["--scenarios", "nope"])).is_err());
    }

    #[test]
    fn goose_times_are_parsed() {
        assert_eq!(parse_time("30"), Some(30));
        assert_eq!(parse_time("30s"), Some(30));
        assert_eq!(parse_time("2m30s"), Some(150));
        assert_eq!(parse_time("1h"), Some(3600));
        assert_eq!(parse_time("1x"), None);
        assert_eq!(parse_time("5m3"), None);
    }

    #[test]
    fn settings_have_defaults_and_refuse_bad_values() {
        let s = Settings::from_lookup(|_| None).unwrap();
        assert_eq!(s.admit_per_second, 100);
        assert!(s.setup);
        let env = |k: &str| (k == "LOADTEST_ADMIT_PER_SECOND").then(|| "25".to_string());
        assert_eq!(Settings::from_lookup(env).unwrap().admit_per_second, 25);
        let bad = |k: &str| (k == "LOADTEST_STALE_SHARE").then(|| "1.5".to_string());
        assert!(Settings::from_lookup(bad).is_err());
        let nan = |k: &str| (k == "LOADTEST_MAX_ACTIVE").then(|| "lots".to_string());
        assert!(Settings::from_lookup(nan).is_err());
    }
}
