//! The state a run's users and the harness share, and what the scenarios record in it.

use super::{Kind, Settings};
use crate::invariants::WebhookTally;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
