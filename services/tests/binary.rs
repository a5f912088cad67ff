//! The `backends` binary as an operator runs it: flags, seeding, Redis, and a clean exit on
//! SIGTERM.

mod common;

use anyhow::{ensure, Context, Result};
use common::{availability, intent, reserve};
use proto::reservation::v1::inventory_client::InventoryClient;
use proto::reservation::v1::reservation_service_client::ReservationServiceClient;
use proto::reservation::v1::{CheckAvailabilityRequest, CheckAvailabilityResponse};
use std::process::{Command, Stdio};
use std::time::Duration;
use tonic::transport::Channel;

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn connect(port: u16) -> Result<InventoryClient<Channel>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        match InventoryClient::connect(format!("http://127.0.0.1:{port}")).await {
            Ok(c) => return Ok(c),
            Err(e) => {
                ensure!(
                    tokio::time::Instant::now() < deadline,
                    "backends did not listen: {e}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// `backends --listen <listen> --redis-url <redis> <more>`.
fn start_on(listen: &str, redis: &testkit::RedisServer, more: &[&str]) -> Result<Child> {
    start(&[&["--listen", listen, "--redis-url", &redis.url()], more].concat())
}

/// Available seats of `event` in `section` (empty: any), offering up to `quantity` of them.
async fn seats_in(
    inv: &mut InventoryClient<Channel>, event: &str, section: &str, quantity: i32,
) -> Result<CheckAvailabilityResponse> {
    let req = CheckAvailabilityRequest {
        section: section.into(),
        quantity,
        ..availability(event, &[])
    };
    Ok(inv.check_availability(req).await?.into_inner())
}

/// The price of the first seat offered.
fn first_price(a: &CheckAvailabilityResponse) -> Option<i64> {
    a.available_seats[0].price.as_ref().map(|m| m.amount_cents)
}

fn start(args: &[&str]) -> Result<Child> {
    Ok(Child(
        Command::new(env!("CARGO_BIN_EXE_backends"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("spawning backends")?,
    ))
}

#[tokio::test]
async fn seeds_events_from_flags_and_exits_cleanly_on_sigterm() -> Result<()> {
    let redis = testkit::RedisServer::start()?;
    let port = testkit::free_port()?;
    let listen = format!("127.0.0.1:{port}");
    let gala_event = ["--event", "gala:45:1999"];
    let more = ["--event", "small:3", "--drain-grace-seconds", "1"];
    let mut child = start_on(&listen, &redis, &[&gala_event[..], &more].concat())?;
    let mut inv = connect(port).await?;
    let gala = seats_in(&mut inv, "gala", "C", 100).await?;
    // 45 seats in rows of 20: A-1…A-20, B-1…B-20, C-1…C-5.
    assert_eq!(gala.remaining_in_section, 5);
    assert_eq!(
        gala.available_seats.last().map(|s| s.seat_id.as_str()),
        Some("C-5")
    );
    assert_eq!(first_price(&gala), Some(1999));
    let small = seats_in(&mut inv, "small", "", 1).await?;
    assert_eq!(small.remaining_in_section, 3);
    assert_eq!(first_price(&small), Some(5000), "the default price");

    // Two seats held before a restart stay held after it.
    let mut res = ReservationServiceClient::connect(format!("http://127.0.0.1:{port}")).await?;
    let held = res
        .create_reservation(reserve("gala", 2, "u", "k"))
        .await?
        .into_inner();
    assert_eq!(held.reserved_seats.len(), 2);

    // The client keeps its connection open, as the gateway's pooled channels do.
    let pid = child.0.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status()?;
    ensure!(killed.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.0.try_wait()? {
            break s;
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "no exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status:?}");

    // Restarting on the same Redis keeps the inventory (no reseeding of held or sold seats).
    let _again = start_on(&listen, &redis, &gala_event)?;
    let mut inv = connect(port).await?;
    let all = seats_in(&mut inv, "gala", "", 0).await?;
    assert_eq!(all.remaining_in_section, 43, "reseeding freed held seats");
    Ok(())
}

#[test]
fn refuses_a_webhook_url_without_a_secret_and_bad_events() -> Result<()> {
    for args in [
        vec!["--webhook-url", "http://127.0.0.1:1/x"],
        vec!["--event", "gala"],
        vec!["--hold-seconds", "0"],
        vec!["--event", "bad id:10"],
        vec![
            "--webhook-url",
            "https://example.com/x",
            "--webhook-secret",
            common::SECRET,
        ],
        vec![
            "--webhook-url",
            "http://127.0.0.1:1/x",
            "--webhook-secret",
            "whsec_short",
        ],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_backends"))
            .args(["--listen", "127.0.0.1:0"])
            .args(&args)
            .output()?;
        assert!(!out.status.success(), "{args:?} started");
    }
    Ok(())
}

/// Signed webhooks a receiver got: (webhook-id, body).
type Received = std::sync::Arc<std::sync::Mutex<Vec<(String, serde_json::Value)>>>;

/// A webhook receiver on a free port that answers 200 and records every delivery.
async fn receiver() -> Result<(String, Received)> {
    use axum::http::HeaderMap;
    let got: Received = Default::default();
    let seen = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let seen = seen.clone();
            async move {
                let id = headers
                    .get("webhook-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let body = serde_json::from_slice(&body).unwrap_or_default();
                seen.lock().unwrap().push((id, body));
                "ok"
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", l.local_addr()?);
    tokio::spawn(async move { axum::serve(l, app).await });
    Ok((url, got))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_outcome_not_yet_reported_is_reported_after_a_restart() -> Result<()> {
    use proto::payment::v1::payment_service_client::PaymentServiceClient;
    use proto::payment::v1::{CreatePaymentIntentRequest, PaymentScenario};
    let redis = testkit::RedisServer::start()?;
    let (hook, got) = receiver().await?;
    let port = testkit::free_port()?;
    let listen = format!("127.0.0.1:{port}");
    let args = [
        "--event",
        "gala:10",
        "--webhook-url",
        &hook,
        "--webhook-secret",
        common::SECRET,
        // APPROVE reports after 2 to 5 s: the process is killed well before.
        "--sim-time-scale",
        "1.0",
    ];
    let first = start_on(&listen, &redis, &args)?;
    connect(port).await?;
    let url = format!("http://127.0.0.1:{port}");
    let r = ReservationServiceClient::connect(url.clone())
        .await?
        .create_reservation(reserve("gala", 1, "u", "k"))
        .await?
        .into_inner();
    let intent = PaymentServiceClient::connect(url.clone())
        .await?
        .create_payment_intent(CreatePaymentIntentRequest {
            user_id: "u".into(),
            ..intent(&r.reservation_id, PaymentScenario::Approve, "pay")
        })
        .await?
        .into_inner()
        .payment_intent_id;
    // SIGKILL before the outcome is due: it lived only in that process's memory before.
    drop(first);
    assert!(got.lock().unwrap().is_empty());

    let _second = start_on(&listen, &redis, &args)?;
    connect(port).await?;
    let kept = |cmd: &str| -> Result<String> { testkit::raw_command(redis.port(), cmd) };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !got
        .lock()
        .unwrap()
        .iter()
        .any(|(_, b)| b["data"]["payment_intent_id"] == intent.as_str())
        || kept("ZCARD bk:{gala}:outcomes")?.trim() != ":0"
    {
        ensure!(
            std::time::Instant::now() < deadline,
            "no webhook after the restart: {:?}",
            got.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].1["type"], "payment.approved");
    assert_eq!(
        got[0].1["data"]["reservation_id"],
        r.reservation_id.as_str()
    );
    assert!(got[0].0.starts_with("msg_"), "{got:?}");
    assert_eq!(kept("HLEN bk:{gala}:outcome")?.trim(), ":0");
    Ok(())
}
