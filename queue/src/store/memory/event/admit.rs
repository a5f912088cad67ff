//! The admission tick (the mirror of admit.lua): the event's own step that runs without a
//! request, kept apart from the requests' steps in `event.rs`.

use super::*;

impl Ev {
    /// Mirror of admit.lua.
    pub fn admit(&mut self, now_ms: u64) -> AdmitReport {
        self.epoch += 1;
        let now = now_ms;
        let ready_expired = self.ready.expire(now);
        self.active.expire(now);
        let aps = i64::from(self.cfg.admit_per_second);
        (self.tokens, self.bucket_refilled_ms) = self.bucket(now);
        let dt = self.tick_ts.map_or(0, |t| now.saturating_sub(t));
        let mut n: i64 = 0;
        let method = self.cfg.queueing_method;
        let passthrough = method == QueueingMethod::Passthrough;
        let paused = self.stopped || self.sold || (aps == 0 && !passthrough) || self.pre_queue(now);
        if !paused {
            let room =
                i64::from(self.cfg.max_active) - self.ready.len() as i64 - self.active.len() as i64;
            let want = if passthrough {
                room
            } else {
                (self.tokens / 1000).min(room)
            };
            let deadline = now + u64::from(self.cfg.ready_timeout_seconds) * 1000;
            let now_s = now / 1000;
            let mut gone = 0;
            while want > n {
                let taken = if method == QueueingMethod::Random {
                    // The lottery, as in admit.lua: the priority lane first, then a draw.
                    let size = self.queue.len() as u64;
                    let Some(head) = self.queue.first() else {
                        break;
                    };
                    let idx = if head.score > PRIORITY_DRAW {
                        let (draw, next) = self.random_draw(self.rnd);
                        self.rnd = Some(next);
                        draw % size
                    } else {
                        0
                    };
                    let Some(m) = self.queue.nth(idx) else {
                        break;
                    };
                    let w = self.remove_waiting(m.ticket);
                    self.log_departure(Departure::Rank(idx + 1));
                    (m.ticket, w)
                } else {
                    let Some(first) = self.queue.pop_first() else {
                        break;
                    };
                    gone += 1;
                    let t = first.ticket;
                    let w = self.waiting.remove(&t);
                    if let Some(w) = w {
                        self.by_heartbeat.remove(&(w.last, t));
                    }
                    (t, w)
                };
                let (t, w) = taken;
                if w.is_some_and(|w| !self.idle(w.last, now_s)) {
                    self.ready.insert(t, deadline);
                    n += 1;
                }
            }
            if gone > 0 {
                self.log_departure(Departure::Head(gone));
            }
            if !passthrough {
                self.tokens -= n * 1000;
            }
            self.admitted += n as u64;
        }
        self.tick_ts = Some(now);
        let waiting = self.queue.len() as u64;
        // Mirror of the sliding-window rate in admit.lua (f64 where Lua divides).
        const W: u64 = 30_000;
        if self.window_start_ms == 0 {
            (
                self.window_start_ms,
                self.window_admitted,
                self.prev_window_admitted,
            ) = (now, 0, -1);
        }
        if waiting == 0 && n == 0 {
            self.window_start_ms += dt;
        } else {
            self.window_admitted += n;
        }
        let mut el = now.saturating_sub(self.window_start_ms);
        if el >= W {
            (
                self.prev_window_admitted,
                self.window_admitted,
                self.window_start_ms,
                el,
            ) = (self.window_admitted, 0, now, 0);
        }
        if self.prev_window_admitted >= 0 {
            let x = self.prev_window_admitted as f64 * (W - el) as f64
                + self.window_admitted as f64 * W as f64;
            self.measured_rate_milli = (x / 900.0).floor() as i64;
        } else if el >= 1000 {
            self.measured_rate_milli =
                (self.window_admitted as f64 * 1_000_000.0 / el as f64).floor() as i64;
        }
        AdmitReport {
            admitted: n as u64,
            ready_expired,
            waiting,
            ready: self.ready.len() as u64,
            active: self.active.len() as u64,
        }
    }
}
