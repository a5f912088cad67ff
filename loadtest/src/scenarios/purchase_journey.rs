//! `purchase_journey`: the whole sale. Join, poll the status until admitted, enter, look at the
//! availability, reserve one seat, create a payment intent (`APPROVE`, or `FAIL` for a share),
//! then poll the reservation until the simulator's webhook has made it `CONFIRMED` (or
//! `CANCELLED`), and leave the queue. Afterwards every payment must have settled and no seat
//! may be sold twice or beyond what was free.

use super::http::Answer;
use super::{
    call, fail, join_as, place, record, Admin, BoxFuture, Ctx, LoadTestError, Place, Purchase,
};
use crate::invariants::{self, Check, Order};
use goose::goose::{GooseMethod, GooseUser, TransactionError};
use proto::reservation::v1 as res;
use rand::Rng;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A gRPC channel to the backends.
pub(crate) fn channel(ctx: &Ctx) -> Result<proto::tonic::transport::Channel, LoadTestError> {
    proto::lazy_channel(&ctx.settings.backends_url, Duration::from_secs(5))
        .map_err(|e| LoadTestError::Backends(e.to_string()))
}

/// Free seats of the event, from the inventory service.
pub(crate) async fn free_seats(ctx: &Ctx) -> Result<u64, LoadTestError> {
    let mut inv = proto::InventoryClient::new(channel(ctx)?);
    let r = inv
        .check_availability(res::CheckAvailabilityRequest {
            event_id: ctx.event.clone(),
            ..Default::default()
        })
        .await
        .map_err(|s| LoadTestError::Backends(format!("CheckAvailability: {}", s.message())))?;
    Ok(r.into_inner().remaining_in_section.max(0) as u64)
}

/// Configures the event; answers the seats free before the run.
pub async fn setup(ctx: &Ctx, admin: &Admin) -> Result<u64, LoadTestError> {
    admin.set_up(ctx, json!({})).await?;
    free_seats(ctx).await
}

/// One call of the sale's API with the reservation grant: a GET, or with `post` a POST of that
/// JSON under a fresh idempotency key.
async fn with_grant(
    user: &mut GooseUser, grant: &str, path: &str, name: &str, post: Option<&Value>, ok: &[u16],
) -> Result<Answer, Box<TransactionError>> {
    let method = match post {
        Some(_) => GooseMethod::Post,
        None => GooseMethod::Get,
    };
    let build = |rb: goose_reqwest::RequestBuilder| match post {
        Some(body) => {
            let key = format!("{:032x}", rand::thread_rng().gen::<u128>());
            rb.bearer_auth(grant)
                .header("idempotency-key", key)
                .json(body)
        }
        None => rb.bearer_auth(grant),
    };
    call(user, method, path, name, build, ok).await
}

/// One purchase, from joining the queue to a settled payment.
pub fn purchase(ctx: Arc<Ctx>, user: &mut GooseUser) -> BoxFuture<'_> {
    Box::pin(async move {
        if ctx.stopping() {
            // The run time is over and goose is about to stop this user: start nothing new.
            tokio::time::sleep(Duration::from_millis(100)).await;
            return Ok(());
        }
        let session = ctx.new_session();
        let a = join_as(&ctx, user, &session).await?;
        let Some(token) = a.body["waiting_token"].as_str().map(str::to_owned) else {
            return Ok(());
        };
        // Wait for the turn, polling as a page without WebSockets does.
        let deadline = Instant::now() + ctx.settings.wait_timeout;
        loop {
            let s = place(user, &token, Place::Status).await?;
            match s.body["status"].as_str() {
                Some("READY") | Some("ADMITTED") => break,
                Some("WAITING") | Some("PRE_QUEUE") | None => {}
                Some(other) => return Err(fail(format!("place became {other} while waiting"))),
            }
            if Instant::now() >= deadline || ctx.stopping() {
                // Give the place up rather than leave it to expire.
                place(user, &token, Place::Leave).await?;
                return Ok(());
            }
            tokio::time::sleep(ctx.settings.poll_interval).await;
        }
        let e = place(user, &token, Place::Enter).await?;
        let Some(grant) = e.body["reservation_token"].as_str().map(str::to_owned) else {
            return Err(fail(format!("enter answered {}", e.status)));
        };
        let avail_path = format!("/api/v1/events/{}/availability?quantity=1", ctx.event);
        let av = with_grant(user, &grant, &avail_path, "availability", None, &[200]).await?;
        if av.status == 200 && av.body["remaining_in_section"].as_u64() == Some(0) {
            // Sold out: the shopper sees it and goes.
            ctx.sold_out.fetch_add(1, Ordering::Relaxed);
            place(user, &token, Place::Leave).await?;
            return Ok(());
        }
        let reserve = json!({"event_id": ctx.event, "quantity": 1});
        // Sold out (409) is an answer the sale expects, not a failure.
        let r = with_grant(
            user,
            &grant,
            "/api/v1/reservations",
            "reserve",
            Some(&reserve),
            &[201, 409],
        )
        .await?;
        if r.status == 409 && r.code() == "INVENTORY_CONFLICT" {
            ctx.sold_out.fetch_add(1, Ordering::Relaxed);
            place(user, &token, Place::Leave).await?;
            return Ok(());
        }
        let Some(reservation_id) = r.body["reservation_id"].as_str().map(str::to_owned) else {
            place(user, &token, Place::Leave).await?;
            return Err(fail(format!(
                "reservation answered {}: {}",
                r.status, r.body
            )));
        };
        let scenario = if rand::thread_rng().gen_bool(ctx.settings.fail_share) {
            "FAIL"
        } else {
            "APPROVE"
        };
        let pay = json!({"reservation_id": reservation_id, "scenario": scenario});
        let p = with_grant(
            user,
            &grant,
            "/api/v1/payments/intents",
            "pay",
            Some(&pay),
            &[201],
        )
        .await?;
        if p.status != 201 {
            place(user, &token, Place::Leave).await?;
            return Ok(());
        }
        let settle_started = Instant::now();
        let settle_deadline = settle_started + ctx.settings.settle_timeout;
        let path = format!("/api/v1/reservations/{reservation_id}");
        let mut seen = String::from("PENDING");
        while Instant::now() < settle_deadline && !ctx.stopping() {
            tokio::time::sleep(ctx.settings.poll_interval).await;
            let g = with_grant(user, &grant, &path, "reservation", None, &[200]).await?;
            seen = g.body["status"].as_str().unwrap_or("").to_owned();
            if seen != "PENDING" {
                break;
            }
        }
        let settled = seen == "CONFIRMED" || seen == "CANCELLED";
        if settled {
            // The payment's time from intent to the reservation's final state, as a user waits.
            let name = if seen == "CONFIRMED" {
                "confirmed"
            } else {
                "cancelled"
            };
            record(user, "PAY", name, settle_started.elapsed(), None).await?;
        }
        ctx.purchases.lock().unwrap().push(Purchase {
            reservation_id,
            seen_status: seen,
        });
        place(user, &token, Place::Leave).await?;
        Ok(())
    })
}

/// The name of a reservation status.
fn status_name(s: i32) -> &'static str {
    match res::ReservationStatus::try_from(s) {
        Ok(res::ReservationStatus::Pending) => "PENDING",
        Ok(res::ReservationStatus::Confirmed) => "CONFIRMED",
        Ok(res::ReservationStatus::Cancelled) => "CANCELLED",
        Ok(res::ReservationStatus::Expired) => "EXPIRED",
        _ => "UNSPECIFIED",
    }
}

/// Every reservation's state at the backends, waiting (up to the settle timeout) for the
/// pending ones.
pub(crate) async fn orders(ctx: &Ctx, ids: &[String]) -> Result<Vec<Order>, LoadTestError> {
    let mut client = proto::ReservationClient::new(channel(ctx)?);
    let deadline = Instant::now() + ctx.settings.settle_timeout;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        loop {
            let r = client
                .get_reservation(res::GetReservationRequest {
                    reservation_id: id.clone(),
                    user_id: String::new(),
                })
                .await
                .map_err(|s| {
                    LoadTestError::Backends(format!("GetReservation {id}: {}", s.message()))
                })?
                .into_inner()
                .reservation
                .unwrap_or_default();
            let status = status_name(r.status);
            if status == "PENDING" && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            out.push(Order {
                reservation_id: id.clone(),
                status: status.to_owned(),
                seats: r
                    .seats
                    .iter()
                    .map(|s| {
                        let st = match proto::common::v1::SeatStatus::try_from(s.status) {
                            Ok(proto::common::v1::SeatStatus::Sold) => "SOLD",
                            Ok(proto::common::v1::SeatStatus::Held) => "HELD",
                            Ok(proto::common::v1::SeatStatus::Available) => "AVAILABLE",
                            _ => "UNSPECIFIED",
                        };
                        (s.seat_id.clone(), st.to_owned())
                    })
                    .collect(),
            });
            break;
        }
    }
    Ok(out)
}

/// The invariants: every payment settled (CONFIRMED or CANCELLED, as the backends record it),
/// no seat sold twice nor more sold than were free, and what users saw agrees with the
/// backends' record.
pub async fn check(ctx: &Ctx, free_at_start: u64) -> Result<Vec<Check>, LoadTestError> {
    let purchases = ctx.purchases.lock().unwrap().clone();
    let ids: Vec<String> = purchases.iter().map(|p| p.reservation_id.clone()).collect();
    let orders = orders(ctx, &ids).await?;
    let disagree = purchases
        .iter()
        .zip(&orders)
        .filter(|(p, o)| p.seen_status != "PENDING" && p.seen_status != o.status)
        .count();
    let free_after = free_seats(ctx).await?;
    let sold = orders
        .iter()
        .filter(|o| o.status == "CONFIRMED")
        .map(|o| o.seats.len() as u64)
        .sum::<u64>();
    let mut oversell = invariants::no_oversell(&orders, free_at_start);
    oversell.detail["free_after"] = json!(free_after);
    oversell.detail["sold_here"] = json!(sold);
    Ok(vec![
        invariants::payments_settled(&orders),
        oversell,
        Check::new(
            "users_saw_the_recorded_outcome",
            disagree == 0 && !orders.is_empty(),
            json!({
                "payments": orders.len(),
                "seen_differently": disagree,
                "sold_out_answers": ctx.sold_out.load(Ordering::Relaxed),
            }),
        ),
    ])
}
