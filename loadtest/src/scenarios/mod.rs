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
//!
//! The harness, by job: [`Settings`] (the `LOADTEST_*` variables), [`LoadTestError`], [`Ctx`]
//! (the state users share), the users' HTTP through goose, the [`Admin`] client, the [`Report`]
//! and the reading of goose's command line ([`selected`], [`informational`]).

pub mod join_storm;
pub mod purchase_journey;
pub mod waiting_room;
pub mod webhook_flood;

mod admin;
mod cli;
mod ctx;
mod error;
mod http;
mod report;
mod settings;

pub use admin::Admin;
pub use cli::{inform, informational, parse_time, selected};
pub use ctx::{Ctx, JoinRecord, Purchase, WebhookTarget, WsTally};
pub use error::LoadTestError;
pub(crate) use http::{call, fail, join_as, place, record, transaction, BoxFuture, Place};
pub use report::{Report, RequestCounts};
pub use settings::Settings;

use goose::config::{GooseConfiguration, Scenarios};
use goose::goose::{GooseUser, Scenario};
use goose::{GooseAttack, GooseError};
use serde::Serialize;
use std::sync::Arc;
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

/// A scenario's one transaction: its name and what each iteration of a user does.
type Step = (
    &'static str,
    for<'r> fn(Arc<Ctx>, &'r mut GooseUser) -> BoxFuture<'r>,
);

impl Kind {
    fn step(self) -> Step {
        match self {
            Kind::JoinStorm => ("join", join_storm::join),
            Kind::WaitingRoom => ("visit", waiting_room::visit),
            Kind::PurchaseJourney => ("purchase", purchase_journey::purchase),
            Kind::WebhookFlood => ("webhook", webhook_flood::webhook),
        }
    }
}

/// Registers the four scenarios, each with its transaction calling into `ctx`.
pub fn register(attack: GooseAttack, ctx: &Arc<Ctx>) -> GooseAttack {
    Kind::ALL.into_iter().fold(attack, |attack, kind| {
        let (name, f) = kind.step();
        attack.register_scenario(
            Scenario::new(kind.name()).register_transaction(transaction(ctx, name, f)),
        )
    })
}

/// Runs the scenario `--scenarios` names against `--host`: sets the event up (unless
/// `LOADTEST_SETUP=0`), runs goose's attack as configured, then checks the invariants.
pub async fn run(
    mut config: GooseConfiguration, settings: Settings,
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
        name: "LOADTEST_ADMIN_TOKEN".into(),
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
    *ctx.stop_at.get_mut().unwrap() = cli::run_end(&config).map(|d| ctx.started + d);
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
    Ok(report::report(
        kind,
        &ctx.event,
        invariants,
        &metrics,
        goose_error,
    ))
}

/// What a scenario's set-up read before the run.
enum Prepared {
    None,
    Join(join_storm::Before),
    Purchase(u64),
    Webhooks(crate::invariants::WebhookCounters),
}
