//! Live reservation updates: the WebSocket `GET /api/v1/reservations/{reservation_id}/ws` and
//! the gRPC `WebSocketService.StreamReservationUpdates` ([`crate::grpc::streams`]) share this.
//!
//! The backends publish every status change on the event's Redis channel `bk:{event_id}:resv`
//! (see `services::updates`). Each replica holds ONE pattern subscription ([`ResvUpdates`]) and
//! hands each message to the streams watching that reservation through a local registry, so
//! nothing polls per connection and an outcome applied anywhere reaches every replica. A stream
//! registers before it reads the reservation (GetReservation through the forwarded API), sends
//! that state first, then each change; hold-expiry warnings are local timers at
//! `--hold-warning-seconds` before `hold_expires_at`.

use crate::error::ApiError;
use crate::forward::{admitted_token, event_of};
use crate::AppState;
use proto::reservation::v1 as res;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::sync::{broadcast, mpsc};

/// The channel pattern of every event's reservation updates (`services::updates`).
pub const CHANNEL_PATTERN: &str = "bk:{*}:resv";

/// Updates buffered per watched reservation (a stream that lags re-reads nothing: it only
/// loses intermediate states, never the last one it is told about next).
const PER_RESERVATION: usize = 16;

/// One published status change (the JSON of `services::updates::ReservationUpdate`).
#[derive(Debug, Clone, Deserialize)]
pub struct Update {
    /// The reservation.
    pub reservation_id: String,
    /// PENDING, CONFIRMED, CANCELLED or EXPIRED.
    pub status: String,
    /// The order, once CONFIRMED.
    #[serde(default)]
    pub order_id: Option<String>,
    /// The hold's deadline (RFC 3339), when known.
    #[serde(default)]
    pub hold_expires_at: Option<String>,
}

type Registry = Arc<Mutex<HashMap<String, broadcast::Sender<Update>>>>;

/// The replica's one subscription and its registry of watched reservations.
pub struct ResvUpdates {
    registry: Registry,
    /// Seconds before `hold_expires_at` at which a pending hold is warned about, descending.
    warnings: Vec<u64>,
    _subscription: Option<redis_layer::Subscription>,
}

redis_layer::debug_some!(ResvUpdates, |r| warnings = r.warnings);

impl ResvUpdates {
    /// Subscribes to every event's channel when Redis is configured (else streams only get the
    /// state on connect and the warnings); `warnings`: `--hold-warning-seconds` (0s ignored).
    pub async fn connect(
        redis: Option<&redis_layer::RedisOptions>, warnings: &[u64],
    ) -> anyhow::Result<Self> {
        let registry: Registry = Arc::default();
        let subscription = match redis {
            Some(opts) => {
                let sub = redis_layer::Subscription::pattern(opts, CHANNEL_PATTERN, 1024).await?;
                tokio::spawn(dispatch(sub.receiver(), registry.clone()));
                Some(sub)
            }
            None => None,
        };
        let mut warnings: Vec<u64> = warnings.iter().copied().filter(|w| *w > 0).collect();
        warnings.sort_unstable_by(|a, b| b.cmp(a));
        warnings.dedup();
        Ok(Self {
            registry,
            warnings,
            _subscription: subscription,
        })
    }

    /// Starts watching `reservation_id`: every update heard from now on.
    fn watch(&self, reservation_id: &str) -> Watch {
        let mut reg = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        let rx = reg
            .entry(reservation_id.to_owned())
            .or_insert_with(|| broadcast::channel(PER_RESERVATION).0)
            .subscribe();
        Watch {
            rx,
            id: reservation_id.to_owned(),
            registry: self.registry.clone(),
        }
    }

    /// Reservations watched on this replica now.
    pub fn watched(&self) -> usize {
        self.registry.lock().map(|r| r.len()).unwrap_or(0)
    }
}

/// Hands each published update to the watchers of its reservation.
async fn dispatch(mut rx: broadcast::Receiver<redis_layer::Published>, registry: Registry) {
    loop {
        match rx.recv().await {
            Ok(m) if m.is_resubscribed() => {
                // Updates may have been lost: every watcher re-reads its reservation.
                let reg = registry.lock().unwrap_or_else(|e| e.into_inner());
                for (id, tx) in reg.iter() {
                    let _ = tx.send(Update {
                        reservation_id: id.clone(),
                        status: String::new(),
                        order_id: None,
                        hold_expires_at: None,
                    });
                }
            }
            Ok(m) => {
                let Ok(u) = serde_json::from_str::<Update>(&m.payload) else {
                    tracing::debug!(channel = %m.channel, "unreadable reservation update");
                    continue;
                };
                let reg = registry.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(tx) = reg.get(&u.reservation_id) {
                    let _ = tx.send(u);
                }
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(lost = n, "reservation updates lagged");
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// A registration in the registry; the last one of a reservation removes its entry.
struct Watch {
    rx: broadcast::Receiver<Update>,
    id: String,
    registry: Registry,
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut reg = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        if reg.get(&self.id).is_some_and(|tx| tx.receiver_count() <= 1) {
            reg.remove(&self.id);
        }
    }
}

/// Where a reservation stands, as a stream tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// The reservation.
    pub reservation_id: String,
    /// PENDING, CONFIRMED, CANCELLED or EXPIRED.
    pub status: String,
    /// The order, once CONFIRMED.
    pub order_id: Option<String>,
    /// The hold's deadline, Unix ms.
    pub hold_expires_ms: Option<i64>,
}

impl State {
    fn is_final(&self) -> bool {
        self.status != "PENDING"
    }
}

/// What a stream sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `RESERVATION_STATUS`: the current state (first on connect, then on each change).
    Status(State),
    /// `HOLD_EXPIRING`: the pending hold runs out in `seconds_left`.
    HoldExpiring {
        /// The reservation.
        reservation_id: String,
        /// Whole seconds left (rounded up).
        seconds_left: u64,
        /// The deadline, Unix ms.
        hold_expires_ms: i64,
    },
    /// `PAYMENT_CONFIRMED`: paid; the order id.
    PaymentConfirmed {
        /// The reservation.
        reservation_id: String,
        /// The order.
        order_id: String,
    },
}

fn rfc3339_ms(ms: Option<i64>) -> serde_json::Value {
    ms.and_then(|ms| OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok())
        .and_then(|t| t.format(&Rfc3339).ok())
        .map_or(serde_json::Value::Null, serde_json::Value::String)
}

fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default()
}

impl Event {
    /// The JSON text frame (the queue stream's style: `type` plus fields and `timestamp`).
    pub fn to_json(&self) -> String {
        let v = match self {
            Event::Status(s) => serde_json::json!({
                "type": "RESERVATION_STATUS",
                "reservation_id": s.reservation_id,
                "status": s.status,
                "hold_expires_at": rfc3339_ms(s.hold_expires_ms),
                "order_id": s.order_id,
                "timestamp": now_rfc3339(),
            }),
            Event::HoldExpiring {
                reservation_id,
                seconds_left,
                hold_expires_ms,
            } => serde_json::json!({
                "type": "HOLD_EXPIRING",
                "reservation_id": reservation_id,
                "seconds_left": seconds_left,
                "hold_expires_at": rfc3339_ms(Some(*hold_expires_ms)),
                "timestamp": now_rfc3339(),
            }),
            Event::PaymentConfirmed {
                reservation_id,
                order_id,
            } => serde_json::json!({
                "type": "PAYMENT_CONFIRMED",
                "reservation_id": reservation_id,
                "order_id": order_id,
                "timestamp": now_rfc3339(),
            }),
        };
        v.to_string()
    }
}

fn ts_ms(t: Option<&proto::prost_types::Timestamp>) -> Option<i64> {
    t.map(|t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000)
}

fn parse_ms(s: &str) -> Option<i64> {
    OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// An opened stream: the state read after registering, and the registration.
pub struct Opened {
    state: State,
    watch: Watch,
    warnings: Vec<u64>,
    now_ms: u64,
    /// Reads the state again (after a resubscription); None in unit tests.
    reread: Option<Reread>,
}

type Reread = Box<
    dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<State>> + Send>>
        + Send
        + Sync,
>;

/// The reservation as GetReservation answers it, for `user`.
async fn read_state(
    st: &AppState, reservation_id: &str, user: &str, request_id: &str,
) -> Result<State, ApiError> {
    let reservations = st.upstreams.reservation.as_ref().ok_or(ApiError::Upstream(
        crate::upstream::UpstreamError::NotConfigured("reservation"),
    ))?;
    let req = res::GetReservationRequest {
        reservation_id: reservation_id.to_owned(),
        user_id: user.to_owned(),
    };
    let answer = reservations
        .call(req, request_id, |ch, r| async move {
            proto::ReservationClient::new(ch).get_reservation(r).await
        })
        .await?;
    let r = answer.reservation.unwrap_or_default();
    let status = res::ReservationStatus::try_from(r.status).unwrap_or_default();
    Ok(State {
        reservation_id: reservation_id.to_owned(),
        status: status
            .as_str_name()
            .trim_start_matches("RESERVATION_STATUS_")
            .to_owned(),
        order_id: (!r.order_id.is_empty()).then_some(r.order_id),
        hold_expires_ms: ts_ms(r.hold_expires_at.as_ref()),
    })
}

/// Checks `token` as an admission to the reservation's event, registers for its updates, then
/// reads its current state (GetReservation, for the token's user: another user's is 404).
pub async fn open(
    st: &AppState, reservation_id: &str, token: Option<&str>, request_id: &str,
) -> Result<Opened, ApiError> {
    if token.is_none_or(str::is_empty) {
        return Err(ApiError::Unauthenticated);
    }
    let event = event_of(reservation_id, "r_").ok_or(ApiError::NotFound)?;
    let claims = admitted_token(st, token, event)?;
    if st.upstreams.reservation.is_none() {
        return Err(ApiError::Upstream(
            crate::upstream::UpstreamError::NotConfigured("reservation"),
        ));
    }
    // Registered first: a change published while the state is read is not lost.
    let watch = st.resv.watch(reservation_id);
    let state = read_state(st, reservation_id, &claims.sub, request_id).await?;
    let reread: Reread = {
        let (st, id, user) = (st.clone(), reservation_id.to_owned(), claims.sub);
        Box::new(move || {
            let (st, id, user) = (st.clone(), id.clone(), user.clone());
            Box::pin(async move { read_state(&st, &id, &user, "").await.ok() })
        })
    };
    Ok(Opened {
        state,
        watch,
        warnings: st.resv.warnings.clone(),
        now_ms: st.room.now_ms(),
        reread: Some(reread),
    })
}

/// Runs an opened stream into `tx` until the reservation reaches a final status or the
/// receiver goes away: the state first, then changes and warnings.
pub async fn run(opened: Opened, tx: mpsc::Sender<Event>) {
    let Opened {
        mut state,
        mut watch,
        warnings,
        now_ms,
        reread,
    } = opened;
    if tx.send(Event::Status(state.clone())).await.is_err() || state.is_final() {
        return;
    }
    // The warning points still ahead: deadlines on tokio's clock (so a paused clock drives
    // them), from the remaining time measured once on the injected clock.
    let start = tokio::time::Instant::now();
    let mut points: Vec<(tokio::time::Instant, u64)> = Vec::new();
    if let Some(exp) = state.hold_expires_ms {
        let left_ms = exp - now_ms as i64;
        if left_ms > 0 {
            let left = left_ms as u64;
            // Connected after a point: told at once how long is left.
            if warnings.iter().any(|w| w * 1000 >= left) {
                let seconds_left = left.div_ceil(1000);
                let ev = Event::HoldExpiring {
                    reservation_id: state.reservation_id.clone(),
                    seconds_left,
                    hold_expires_ms: exp,
                };
                if tx.send(ev).await.is_err() {
                    return;
                }
            }
            for w in warnings.iter().filter(|w| *w * 1000 < left) {
                points.push((start + Duration::from_millis(left - w * 1000), *w));
            }
        }
    }
    let mut points = points.into_iter().peekable();
    loop {
        let next = points.peek().map(|(at, _)| *at);
        tokio::select! {
            () = tx.closed() => return,
            u = watch.rx.recv() => match u {
                Ok(mut u) => {
                    if u.status.is_empty() {
                        // A resubscription: what changed meanwhile is read, not heard.
                        let Some(now) = (match &reread {
                            Some(r) => r().await,
                            None => None,
                        }) else {
                            continue;
                        };
                        u.status = now.status;
                        u.order_id = now.order_id;
                    }
                    if u.status == state.status {
                        continue;
                    }
                    state.status = u.status;
                    if u.order_id.is_some() {
                        state.order_id = u.order_id;
                    }
                    if let Some(ms) = u.hold_expires_at.as_deref().and_then(parse_ms) {
                        state.hold_expires_ms = Some(ms);
                    }
                    if tx.send(Event::Status(state.clone())).await.is_err() {
                        return;
                    }
                    if let (true, Some(order_id)) =
                        (state.status == "CONFIRMED", state.order_id.clone())
                    {
                        let ev = Event::PaymentConfirmed {
                            reservation_id: state.reservation_id.clone(),
                            order_id,
                        };
                        if tx.send(ev).await.is_err() {
                            return;
                        }
                    }
                    if state.is_final() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            },
            () = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {
                if let Some((_, w)) = points.next() {
                    let ev = Event::HoldExpiring {
                        reservation_id: state.reservation_id.clone(),
                        seconds_left: w,
                        hold_expires_ms: state.hold_expires_ms.unwrap_or_default(),
                    };
                    if tx.send(ev).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// Spawns [`run`]; the receiver of its events (it stops when the receiver is dropped).
pub fn spawn(opened: Opened) -> mpsc::Receiver<Event> {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(run(opened, tx));
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The end of a confirmed stream: CONFIRMED with `order`, PAYMENT_CONFIRMED, closed.
    async fn ends_confirmed(rx: &mut mpsc::Receiver<Event>, order: &str) {
        assert!(
            matches!(rx.recv().await, Some(Event::Status(s)) if s.status == "CONFIRMED" && s.order_id.as_deref() == Some(order))
        );
        assert!(matches!(
            rx.recv().await,
            Some(Event::PaymentConfirmed { order_id, .. }) if order_id == order
        ));
        assert_eq!(rx.recv().await, None);
    }

    fn opened(warnings: &[u64], hold_left_ms: i64, resv: &ResvUpdates) -> Opened {
        let now_ms = 1_000_000u64;
        Opened {
            state: State {
                reservation_id: "r_x".into(),
                status: "PENDING".into(),
                order_id: None,
                hold_expires_ms: Some(now_ms as i64 + hold_left_ms),
            },
            watch: resv.watch("r_x"),
            warnings: warnings.to_vec(),
            now_ms,
            reread: None,
        }
    }

    // Short holds on the real clock: the points come in order; no duration is asserted.
    #[tokio::test]
    async fn warnings_fire_at_each_point_then_updates_end_the_stream() {
        let resv = ResvUpdates::connect(None, &[1, 2, 0]).await.unwrap();
        assert_eq!(resv.warnings, vec![2, 1], "descending, 0 ignored");
        let mut rx = spawn(opened(&resv.warnings, 2_300, &resv));
        assert!(matches!(rx.recv().await, Some(Event::Status(s)) if s.status == "PENDING"));
        for want in [2, 1] {
            match rx.recv().await {
                Some(Event::HoldExpiring { seconds_left, .. }) => assert_eq!(seconds_left, want),
                other => panic!("expected a warning, got {other:?}"),
            }
        }
        // A published confirmation: status, then the payment confirmation, then the end.
        let tx = resv
            .registry
            .lock()
            .unwrap()
            .get("r_x")
            .cloned()
            .expect("watched");
        tx.send(Update {
            reservation_id: "r_x".into(),
            status: "CONFIRMED".into(),
            order_id: Some("ord_1".into()),
            hold_expires_at: None,
        })
        .unwrap();
        ends_confirmed(&mut rx, "ord_1").await;
        assert_eq!(resv.watched(), 0, "the registry forgets it");
    }

    #[tokio::test]
    async fn a_resubscription_rereads_what_was_missed() {
        let resv = ResvUpdates::connect(None, &[]).await.unwrap();
        let mut o = opened(&[], 60_000, &resv);
        // What GetReservation answers after the outage: confirmed meanwhile.
        o.reread = Some(Box::new(|| {
            Box::pin(async {
                Some(State {
                    reservation_id: "r_x".into(),
                    status: "CONFIRMED".into(),
                    order_id: Some("ord_9".into()),
                    hold_expires_ms: None,
                })
            })
        }));
        let mut rx = spawn(o);
        assert!(matches!(rx.recv().await, Some(Event::Status(s)) if s.status == "PENDING"));
        // The dispatcher's mark of a resubscription, as it hands it to every watcher.
        let tx = resv.registry.lock().unwrap().get("r_x").cloned().unwrap();
        tx.send(Update {
            reservation_id: "r_x".into(),
            status: String::new(),
            order_id: None,
            hold_expires_at: None,
        })
        .unwrap();
        ends_confirmed(&mut rx, "ord_9").await;
    }

    #[tokio::test]
    async fn a_late_connection_is_told_the_time_left_at_once() {
        let resv = ResvUpdates::connect(None, &[30, 1]).await.unwrap();
        let mut rx = spawn(opened(&resv.warnings, 1_400, &resv));
        assert!(matches!(rx.recv().await, Some(Event::Status(_))));
        match rx.recv().await {
            Some(Event::HoldExpiring { seconds_left, .. }) => assert_eq!(seconds_left, 2),
            other => panic!("{other:?}"),
        }
        match rx.recv().await {
            Some(Event::HoldExpiring { seconds_left, .. }) => assert_eq!(seconds_left, 1),
            other => panic!("{other:?}"),
        }
    }
}
