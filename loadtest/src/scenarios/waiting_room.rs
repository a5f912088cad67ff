//! `waiting_room`: users as browsers behave. Each visit joins with a new session, holds the
//! WebSocket (its connect time and the wait for `ADMISSION_READY` are recorded as custom goose
//! requests, method `WS`), polls its status now and then (a tab regaining focus), and enters
//! once admitted; a share of visits leave the queue early and a share close the tab without
//! leaving (they go idle and expire later). The positions pushed to each socket must never go
//! up, and the admission rate over the run must match the configured one.

use super::{join_as, place, record, Admin, BoxFuture, Ctx, LoadTestError, Place};
use crate::invariants::{self, Check, RateSample};
use futures::StreamExt;
use goose::goose::GooseUser;
use rand::Rng;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// Configures the event: the admission rate under test, a `max_active` that does not limit it.
pub async fn setup(ctx: &Ctx, admin: &Admin) -> Result<(), LoadTestError> {
    // Idle visitors give their place up within a minute.
    let timeouts = json!({"idle_timeout_seconds": 60, "ready_timeout_seconds": 60});
    admin.set_up(ctx, timeouts).await
}

/// What a visit does besides waiting.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Plan {
    Wait,
    Leave(Duration),
    Idle(Duration),
}

/// One visit: join, follow over the WebSocket until admitted, enter.
pub fn visit(ctx: Arc<Ctx>, user: &mut GooseUser) -> BoxFuture<'_> {
    Box::pin(async move {
        if ctx.stopping() {
            // The run time is over and goose is about to stop this user: start nothing new.
            tokio::time::sleep(Duration::from_millis(100)).await;
            return Ok(());
        }
        let plan = {
            let mut rng = rand::thread_rng();
            let x: f64 = rng.gen();
            let after = Duration::from_millis(rng.gen_range(200..3000));
            if x < ctx.settings.leave_share {
                Plan::Leave(after)
            } else if x < ctx.settings.leave_share + ctx.settings.idle_share {
                Plan::Idle(after)
            } else {
                Plan::Wait
            }
        };
        let a = join_as(&ctx, user, &ctx.new_session()).await?;
        let (Some(token), Some(joined_at)) = (
            a.body["waiting_token"].as_str().map(str::to_owned),
            a.body["position"].as_u64(),
        ) else {
            return Ok(());
        };
        let mut ws_url = user.base_url.clone();
        let _ = ws_url.set_scheme(if ws_url.scheme() == "https" {
            "wss"
        } else {
            "ws"
        });
        ws_url.set_path("/api/v1/queue/ws");
        ws_url.query_pairs_mut().append_pair("token", &token);

        let connect_started = Instant::now();
        let connected = tokio::time::timeout(
            Duration::from_secs(10),
            tokio_tungstenite::connect_async(ws_url.as_str()),
        )
        .await
        .map_err(|_| "timeout".to_owned())
        .and_then(|c| c.map_err(|e| e.to_string()));
        let mut socket = match connected {
            Ok((s, _)) => s,
            Err(err) => {
                record(user, "WS", "connect", connect_started.elapsed(), Some(&err)).await?;
                return Ok(());
            }
        };

        let waiting_since = Instant::now();
        let deadline = waiting_since + ctx.settings.wait_timeout;
        let mut first_frame = true;
        let mut positions: Vec<u64> = vec![joined_at];
        let mut went_up = false;
        let mut next_poll = Instant::now() + Duration::from_secs(1);
        let outcome = loop {
            let now = Instant::now();
            if let Plan::Leave(after) | Plan::Idle(after) = plan {
                if now >= waiting_since + after {
                    break if matches!(plan, Plan::Leave(_)) {
                        "leave"
                    } else {
                        "idle"
                    };
                }
            }
            if now >= deadline || ctx.stopping() {
                break "gave_up";
            }
            // A tab regaining focus: an extra status call now and then.
            if now >= next_poll {
                next_poll = now + Duration::from_secs(1);
                if rand::thread_rng().gen_bool(ctx.settings.status_share) {
                    place(user, &token, Place::Status).await?;
                }
            }
            let frame = tokio::time::timeout(Duration::from_millis(200), socket.next()).await;
            let text = match frame {
                Err(_) => continue,
                Ok(Some(Ok(Message::Text(t)))) => t.to_string(),
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(_))) | Ok(None) => break "closed",
            };
            let msg: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if first_frame {
                first_frame = false;
                record(user, "WS", "connect", connect_started.elapsed(), None).await?;
                ctx.ws.lock().unwrap().connected += 1;
            }
            match msg["type"].as_str() {
                Some("POSITION_CHANGED") => {
                    if let Some(p) = msg["position"].as_u64().filter(|p| *p > 0) {
                        positions.push(p);
                        ctx.ws.lock().unwrap().position_frames += 1;
                        if !invariants::non_increasing(&positions) {
                            went_up = true;
                        }
                    }
                }
                Some("ADMISSION_READY") => break "ready",
                Some("TOKEN_EXPIRED") | Some("EVENT_SOLD_OUT") => break "closed",
                _ => {}
            }
        };
        if went_up {
            ctx.ws.lock().unwrap().position_went_up += 1;
        }
        let waited = waiting_since.elapsed();
        match outcome {
            "ready" => {
                record(user, "WS", "admission_wait", waited, None).await?;
                ctx.ws.lock().unwrap().admitted += 1;
                let a = place(user, &token, Place::Enter).await?;
                if a.status == 200 {
                    ctx.ws.lock().unwrap().entered += 1;
                }
            }
            "leave" => {
                place(user, &token, Place::Leave).await?;
                ctx.ws.lock().unwrap().left += 1;
            }
            "idle" => ctx.ws.lock().unwrap().idle += 1,
            "closed" => {
                record(
                    user,
                    "WS",
                    "admission_wait",
                    waited,
                    Some("closed before admission"),
                )
                .await?;
            }
            _ => ctx.ws.lock().unwrap().gave_up += 1,
        }
        let _ = socket.close(None).await;
        Ok(())
    })
}

/// The invariants: positions never went up on any socket, and the admission rate over the
/// backlog window is within the tolerance of the configured one.
pub fn check(ctx: &Ctx, samples: &[RateSample]) -> Vec<Check> {
    let ws = ctx.ws.lock().unwrap().clone();
    vec![
        Check::new(
            "positions_never_go_up",
            ws.position_went_up == 0 && ws.connected > 0,
            serde_json::to_value(&ws).unwrap_or(Value::Null),
        ),
        invariants::admission_rate(
            samples,
            f64::from(ctx.settings.admit_per_second),
            ctx.settings.rate_tolerance,
            1.0,
            2.0,
        ),
    ]
}
