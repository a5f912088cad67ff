//! `join_storm`: a flash crowd. Every iteration of every user joins the event with a session id
//! never used before. Admissions are paused for the run (the set-up configures
//! `admit_per_second: 0`), so nobody leaves the queue and the places handed out must be exactly
//! the next N positions, in arrival order.

use super::{fail, join_as, Admin, BoxFuture, Ctx, JoinRecord, LoadTestError};
use crate::invariants::{self, Check, TimedJoin};
use futures::StreamExt;
use goose::goose::GooseUser;
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The event's counters before the run.
#[derive(Debug, Clone, Copy)]
pub struct Before {
    /// `stats.waiting`.
    pub waiting: u64,
    /// `stats.joined_total`.
    pub joined_total: u64,
}

/// Configures the event with admissions paused; reads its counters.
pub async fn setup(ctx: &Ctx, admin: &Admin) -> Result<Before, LoadTestError> {
    admin.set_up(ctx, json!({"admit_per_second": 0})).await?;
    let v = admin.event(&ctx.event).await?;
    Ok(Before {
        waiting: v["stats"]["waiting"].as_u64().unwrap_or(0),
        joined_total: v["stats"]["joined_total"].as_u64().unwrap_or(0),
    })
}

/// One join with a fresh session.
pub fn join(ctx: Arc<Ctx>, user: &mut GooseUser) -> BoxFuture<'_> {
    Box::pin(async move {
        let session = ctx.new_session();
        let sent = ctx.started.elapsed();
        let a = join_as(&ctx, user, &session).await?;
        let received = ctx.started.elapsed();
        match a.status {
            201 => {
                let (Some(token), Some(position)) = (
                    a.body["waiting_token"].as_str(),
                    a.body["position"].as_u64(),
                ) else {
                    return Err(fail(format!(
                        "join answered 201 without a place: {}",
                        a.body
                    )));
                };
                ctx.joins.lock().unwrap().push(JoinRecord {
                    token: token.to_owned(),
                    position,
                    sent,
                    received,
                });
            }
            200 => {
                ctx.joins_existing.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
        Ok(())
    })
}

/// The invariants: positions unique, gap-free and in arrival order; the event's counters
/// moved by exactly the places handed out; a sample of places still at their position.
pub async fn check(ctx: &Ctx, admin: &Admin, before: Before) -> Result<Vec<Check>, LoadTestError> {
    let joins = ctx.joins.lock().unwrap().clone();
    let positions: Vec<u64> = joins.iter().map(|j| j.position).collect();
    let timed: Vec<TimedJoin> = joins
        .iter()
        .map(|j| TimedJoin {
            sent: j.sent,
            received: j.received,
            position: j.position,
        })
        .collect();
    let after = admin.event(&ctx.event).await?;
    let n = joins.len() as u64;
    let mut checks = vec![
        invariants::positions_unique_gap_free(&positions, before.waiting),
        invariants::positions_in_join_order(&timed),
        invariants::equal(
            "joined_total_matches_joins",
            n,
            after["stats"]["joined_total"]
                .as_u64()
                .unwrap_or(0)
                .saturating_sub(before.joined_total),
        ),
        invariants::equal(
            "fresh_sessions_got_new_places",
            0,
            ctx.joins_existing.load(Ordering::Relaxed),
        ),
    ];
    // Re-read a sample of the places (spread over the run): with admissions paused and nobody
    // leaving, each must still be WAITING at the position its join returned.
    let step = (joins.len() / ctx.settings.verify_sample.max(1)).max(1);
    let sample: Vec<&JoinRecord> = joins.iter().step_by(step).collect();
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/queue/status", ctx.host);
    let moved = futures::stream::iter(sample.iter().map(|j| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let r = http.get(&url).bearer_auth(&j.token).send().await.ok()?;
            let v: serde_json::Value = r.json().await.ok()?;
            Some(v["status"] == "WAITING" && v["position"].as_u64() == Some(j.position))
        }
    }))
    .buffer_unordered(32)
    .collect::<Vec<_>>()
    .await;
    let unread = moved.iter().filter(|m| m.is_none()).count();
    let wrong = moved.iter().filter(|m| **m == Some(false)).count();
    checks.push(Check::new(
        "positions_stable_after_run",
        unread == 0 && wrong == 0,
        json!({"sampled": sample.len(), "moved_or_not_waiting": wrong, "unreadable": unread}),
    ));
    Ok(checks)
}
