//! One event's watcher: every tick it reads the event's pulse once and derives every local
//! connection's position from it, re-reading in batches what cannot be derived.

use super::{offer, timestamp, update, Conn, Hub, Watch};
use crate::messages;
use queue::ids::EventId;
use queue::model::{eta_seconds, Departure, Pulse, QueueingMethod, Status};
use queue::store::{Holder, PLACES_BATCH};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// Derives positions from the departure log; marks connections pending where it cannot.
fn apply_departures(conns: &mut HashMap<u64, Conn>, since: Option<u64>, pulse: &Pulse) -> Vec<u64> {
    let mut moved = Vec::new();
    let (Some(since), Some(deps)) = (since, pulse.departures.as_ref()) else {
        conns.values_mut().for_each(|c| c.pending = true);
        return moved;
    };
    for (&id, c) in conns.iter_mut() {
        if c.pending || c.status != Status::Waiting {
            continue;
        }
        if c.base < since {
            // Read before the log position we hold, registered after: the gap is unknown.
            c.pending = true;
            continue;
        }
        let before = c.position;
        for (i, d) in deps.iter().enumerate() {
            let seq = since + i as u64 + 1;
            if seq <= c.base {
                continue;
            }
            match Departure::apply(*d, c.position) {
                Some(p) => c.position = p,
                None => {
                    // This user left the queue (READY, or gone): re-read to know which.
                    c.pending = true;
                    break;
                }
            }
        }
        if !c.pending {
            c.base = c.base.max(pulse.seq);
            // A lottery's positions are tracked (a switch back to fifo shows them) but never
            // shown: nothing to tell the client.
            c.lottery = pulse.queueing_method == QueueingMethod::Random;
            if c.position != before && !c.lottery {
                moved.push(id);
            }
        }
    }
    moved
}

/// One event's watcher: runs while the event has local connections.
pub(super) async fn watch_loop(hub: Hub, event: EventId, watch: Arc<Watch>) {
    let cfg = hub.inner.cfg.clone();
    let store = hub.inner.room.store().clone();
    let mut interval = tokio::time::interval(cfg.tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq: Option<u64> = None;
    let mut last_heartbeat = Instant::now();
    let mut last_ping = Instant::now();
    let mut failing = false;
    loop {
        interval.tick().await;
        if hub.retire(&event, &watch) {
            break;
        }
        let now = hub.inner.room.now_ms();
        let pulse = match store.pulse(&event, seq.unwrap_or(0)).await {
            Ok(p) => {
                if failing {
                    tracing::info!(event = %event, "position watcher recovered");
                    failing = false;
                }
                p
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(event = %event, error = %e, "position watcher cannot read the queue");
                    failing = true;
                }
                continue;
            }
        };
        let ts = timestamp(now);
        let idle = Duration::from_secs(u64::from(pulse.idle_timeout_seconds.max(3)) / 3);
        let heartbeat = last_heartbeat.elapsed() >= cfg.max_heartbeat_interval.min(idle);
        if heartbeat {
            last_heartbeat = Instant::now();
        }
        let ping = last_ping.elapsed() >= cfg.ping_interval;
        if ping {
            last_ping = Instant::now();
        }
        let opened = pulse.opens_at_ms.is_some_and(|o| now >= o);
        let eta = |position: u64| {
            eta_seconds(
                position,
                pulse.measured_rate_milli,
                pulse.admit_per_second,
                pulse.stopped,
            )
        };
        {
            let mut conns = watch.lock();
            let mut dead = Vec::new();
            let mut gone = Vec::new();
            for id in apply_departures(&mut conns, seq, &pulse) {
                if let Some(c) = conns.get(&id) {
                    if !offer(
                        c,
                        messages::position_changed(
                            Status::Waiting,
                            c.position,
                            eta(c.position),
                            &ts,
                        ),
                    ) {
                        dead.push(id);
                    }
                }
            }
            // Serialized once, sent to every waiting client whose last word differs.
            let flag_msg = if pulse.stopped {
                messages::paused()
            } else {
                messages::resumed()
            };
            let silent_for = (cfg.ping_interval * 2 + cfg.tick).as_millis() as u64;
            let now_mono = hub.elapsed_ms();
            for (&id, c) in conns.iter_mut() {
                if heartbeat || pulse.sold_out || (opened && c.status == Status::PreQueue) {
                    c.pending = true;
                }
                let waiting =
                    matches!(c.status, Status::Waiting | Status::PreQueue | Status::Ready);
                if waiting && c.paused != pulse.stopped {
                    c.paused = pulse.stopped;
                    if !offer(c, flag_msg.clone()) {
                        dead.push(id);
                    }
                }
                // A listener that went away (a gRPC stream's receiver dropped) just leaves.
                if c.tx.is_closed() {
                    gone.push(id);
                    continue;
                }
                // Silent for two ping intervals, or too slow to take a ping: let it go.
                let silent =
                    now_mono.saturating_sub(c.last_seen.load(Ordering::Relaxed)) > silent_for;
                if ping && (silent || !offer(c, Message::Ping(Default::default()))) {
                    dead.push(id);
                }
            }
            for id in dead {
                if conns.remove(&id).is_some() {
                    hub.inner.dropped_slow.fetch_add(1, Ordering::Relaxed);
                }
            }
            for id in gone {
                conns.remove(&id);
            }
        }
        seq = Some(pulse.seq);

        // Re-read what cannot be derived, in pipelined batches.
        let pending: Vec<(u64, Holder)> = watch
            .lock()
            .iter()
            .filter(|(_, c)| c.pending)
            .map(|(&id, c)| {
                let holder = Holder {
                    ticket: c.ticket,
                    session: c.session,
                };
                (id, holder)
            })
            .collect();
        for chunk in pending.chunks(PLACES_BATCH) {
            let holders: Vec<Holder> = chunk.iter().map(|&(_, h)| h).collect();
            match store.places(&event, &holders, heartbeat, now).await {
                Ok((_, places)) => {
                    let mut conns = watch.lock();
                    for (&(id, _), place) in chunk.iter().zip(&places) {
                        let Some(c) = conns.get_mut(&id) else {
                            continue;
                        };
                        // Each place's own sequence, not the call's last: a lazy expiry read
                        // later in the call moved the places read before it, after them.
                        c.base = place.log_seq;
                        if !update(c, place, now, &ts) {
                            conns.remove(&id);
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(event = %event, error = %e, "re-reading positions failed");
                    break;
                }
            }
        }
    }
}
