//! The console's numbers: once a second this replica samples every event (the store's own
//! list) and keeps the last 15 minutes per event in a ring, so that a console opened now shows
//! history at once; each sample is also pushed to the open consoles.
//!
//! Per replica on purpose: the counters come from the shared store (every replica sees the
//! same), only the open WebSockets are this replica's; a console that reconnects to another
//! replica gets that replica's rings, which hold the same counters.

use crate::AppState;
use queue::model::{eta_seconds, EventInfo};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::format_description::well_known::Rfc3339;
use tokio::sync::{broadcast, watch};

/// Time between samples.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// Samples kept per event: 15 minutes of them.
pub const KEEP: usize = 15 * 60;

/// Most events sampled (the first by id): a console is for operators, not for thousands of
/// events at once.
pub const MAX_EVENTS: usize = 200;

/// One event at one instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// The clock's time (Unix ms).
    pub t: u64,
    /// Waiting users (pre-queue included).
    pub waiting: u64,
    /// READY users.
    pub ready: u64,
    /// Users holding an admission.
    pub active: u64,
    /// Users let through since the event was created.
    pub admitted_total: u64,
    /// Admissions per second since the previous sample (None for the first one).
    pub admitted_per_second: Option<f64>,
    /// The configured rate.
    pub admit_per_second: u32,
}

/// The rings and the live feed.
#[derive(Debug)]
pub struct Stats {
    rings: Mutex<BTreeMap<String, VecDeque<Sample>>>,
    feed: broadcast::Sender<Arc<str>>,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            rings: Mutex::default(),
            feed: broadcast::channel(16).0,
        }
    }
}

impl Stats {
    /// The live samples (JSON text of `sample` messages) from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.feed.subscribe()
    }

    /// The `history` message: every event's kept samples, as columns.
    pub fn history(&self) -> String {
        let rings = self.rings.lock().unwrap_or_else(|p| p.into_inner());
        let mut events = Map::new();
        for (id, ring) in rings.iter() {
            let col = |f: &dyn Fn(&Sample) -> Value| ring.iter().map(f).collect::<Vec<_>>();
            events.insert(
                id.clone(),
                json!({
                    "t": col(&|s| s.t.into()),
                    "waiting": col(&|s| s.waiting.into()),
                    "ready": col(&|s| s.ready.into()),
                    "active": col(&|s| s.active.into()),
                    "admitted_per_second": col(&|s| rate_json(s.admitted_per_second)),
                    "admit_per_second": col(&|s| s.admit_per_second.into()),
                }),
            );
        }
        json!({
            "type": "history",
            "interval_ms": INTERVAL.as_millis() as u64,
            "events": events,
        })
        .to_string()
    }

    /// Records `infos` taken at `t` (dropping the rings of events no longer listed) and
    /// returns each event's sample.
    fn record(&self, t: u64, infos: &[(String, EventInfo)]) -> Vec<Sample> {
        let mut rings = self.rings.lock().unwrap_or_else(|p| p.into_inner());
        rings.retain(|id, _| infos.iter().any(|(i, _)| i == id));
        infos
            .iter()
            .map(|(id, info)| {
                let ring = rings.entry(id.clone()).or_default();
                let admitted_per_second = ring.back().and_then(|prev| {
                    let dt = t.checked_sub(prev.t).filter(|d| *d > 0)?;
                    let n = info
                        .stats
                        .admitted_total
                        .saturating_sub(prev.admitted_total);
                    Some(n as f64 * 1000.0 / dt as f64)
                });
                let s = Sample {
                    t,
                    waiting: info.stats.waiting,
                    ready: info.stats.ready,
                    active: info.stats.active,
                    admitted_total: info.stats.admitted_total,
                    admitted_per_second,
                    admit_per_second: info.config.admit_per_second,
                };
                if ring.len() == KEEP {
                    ring.pop_front();
                }
                ring.push_back(s);
                s
            })
            .collect()
    }
}

fn rate_json(r: Option<f64>) -> Value {
    r.map_or(Value::Null, |r| json!((r * 100.0).round() / 100.0))
}

/// The `sample` message of one tick.
fn sample_json(
    t: u64, infos: &[(String, EventInfo)], samples: &[Sample], websockets: usize, webhooks: Value,
) -> String {
    let events: Vec<Value> = infos
        .iter()
        .zip(samples)
        .map(|((id, info), s)| {
            let c = &info.config;
            json!({
                "event_id": id,
                "waiting": s.waiting,
                "ready": s.ready,
                "active": s.active,
                "joined_total": info.stats.joined_total,
                "admitted_total": s.admitted_total,
                "entered_total": info.stats.entered_total,
                "admitted_per_second": rate_json(s.admitted_per_second),
                "measured_admit_per_second": (info.measured_rate_milli >= 0)
                    .then(|| info.measured_rate_milli as f64 / 1000.0),
                "admit_per_second": c.admit_per_second,
                "max_active": c.max_active,
                "opens_at": c.opens_at.and_then(|t| t.format(&Rfc3339).ok()),
                "admissions_stopped": info.stopped,
                "sold_out": info.sold_out,
                // The last in line waits for everyone ahead: the position is the queue's length.
                "eta_last_seconds": eta_seconds(
                    s.waiting,
                    info.measured_rate_milli,
                    c.admit_per_second,
                    info.stopped,
                ),
            })
        })
        .collect();
    json!({
        "type": "sample",
        "t": t,
        "events": events,
        "replica": {"websockets": websockets},
        "webhooks": webhooks,
    })
    .to_string()
}

/// Samples every [`INTERVAL`] until `stop`; nothing when the admin API (and so the console) is
/// off.
pub async fn run(st: AppState, mut stop: watch::Receiver<bool>) {
    if st.admin_token_hash.is_none() {
        return;
    }
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        sample_once(&st).await;
    }
}

/// One sample of every event (public for tests that drive it by hand).
pub async fn sample_once(st: &AppState) {
    let mut ids = match st.room.store().events().await {
        Ok(ids) => ids,
        Err(e) => {
            tracing::debug!(error = %e, "console: events not listed this tick");
            return;
        }
    };
    ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    ids.truncate(MAX_EVENTS);
    let infos = futures::future::join_all(ids.iter().map(|id| st.room.info(id.as_str()))).await;
    let infos: Vec<(String, EventInfo)> = ids
        .iter()
        .zip(infos)
        .filter_map(|(id, i)| Some((id.as_str().to_owned(), i.ok()?)))
        .collect();
    let t = st.room.now_ms();
    let samples = st.console.stats.record(t, &infos);
    let webhooks = match &st.webhooks {
        Some(w) => {
            let (backlog, dead) = tokio::join!(w.inbox.backlog(), w.inbox.dead_letters());
            json!({"backlog": backlog.ok(), "dead_letters": dead.ok()})
        }
        None => Value::Null,
    };
    let msg = sample_json(t, &infos, &samples, st.hub.connections(), webhooks);
    // No console open: nobody to tell.
    let _ = st.console.stats.feed.send(msg.into());
}

#[cfg(test)]
mod tests {
    use super::*;
    use queue::model::{EventConfig, EventStats};

    fn info(admitted_total: u64, waiting: u64) -> EventInfo {
        EventInfo {
            config: EventConfig::new(10, 100),
            stopped: false,
            sold_out: false,
            measured_rate_milli: -1,
            stats: EventStats {
                waiting,
                admitted_total,
                ..EventStats::default()
            },
        }
    }

    #[test]
    fn rings_keep_15_minutes_rate_from_deltas_and_forget_gone_events() {
        let stats = Stats::default();
        let s = stats.record(1_000, &[("a".into(), info(0, 5)), ("b".into(), info(0, 1))]);
        assert_eq!(s[0].admitted_per_second, None, "no previous sample");
        let s = stats.record(3_000, &[("a".into(), info(8, 5))]);
        assert_eq!(s[0].admitted_per_second, Some(4.0), "8 in 2 s");
        let h: Value = serde_json::from_str(&stats.history()).unwrap();
        assert!(h["events"].get("b").is_none(), "b is no longer configured");
        assert_eq!(h["events"]["a"]["t"], json!([1_000, 3_000]));
        assert_eq!(h["events"]["a"]["admitted_per_second"], json!([null, 4.0]));
        for i in 0..KEEP as u64 {
            stats.record(4_000 + i * 1_000, &[("a".into(), info(8, 5))]);
        }
        let h: Value = serde_json::from_str(&stats.history()).unwrap();
        let t = h["events"]["a"]["t"].as_array().unwrap();
        assert_eq!(t.len(), KEEP);
        assert_eq!(t[0], 4_000, "the oldest two fell out");
    }

    #[test]
    fn the_last_in_line_waits_for_everyone_ahead() {
        let infos = [("a".to_owned(), info(0, 50))];
        let stats = Stats::default();
        let samples = stats.record(0, &infos);
        let m: Value =
            serde_json::from_str(&sample_json(0, &infos, &samples, 3, Value::Null)).unwrap();
        assert_eq!(m["events"][0]["eta_last_seconds"], 5, "50 at 10 per second");
        assert_eq!(m["replica"]["websockets"], 3);
    }
}
