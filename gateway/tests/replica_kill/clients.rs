//! The WebSocket clients of the killed replica: each follows its place until the socket drops,
//! reconnects to another replica with the same token, and must find its place there minus
//! those admitted in between.

use crate::common::{get_event, Ws};
use futures::StreamExt;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

/// The event's `admitted_total` as the admin API of replica `base` reports it.
pub async fn admitted(base: &str) -> u64 {
    let body = get_event(base, "room").await;
    body["stats"]["admitted_total"]
        .as_u64()
        .unwrap_or_else(|| panic!("no stats: {body}"))
}

/// Opens the position stream of `token` on replica `addr`.
async fn ws_connect(addr: SocketAddr, token: &str) -> Result<Ws, String> {
    let url = format!("ws://{addr}/api/v1/queue/ws?token={token}");
    tokio_tungstenite::connect_async(url)
        .await
        .map(|(ws, _)| ws)
        .map_err(|e| e.to_string())
}

/// The position of the next POSITION_CHANGED frame (None when the socket ends first).
async fn next_position(ws: &mut Ws) -> Option<u64> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                assert_eq!(v["type"], "POSITION_CHANGED", "still waiting: {v}");
                return Some(v["position"].as_u64().unwrap());
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Close(f))) => panic!("the server closed the socket: {f:?}"),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return None,
        }
    }
}

/// What one WebSocket client saw across the kill.
#[derive(Debug)]
pub struct Crossing {
    /// Position read when nobody had been admitted yet: its place in the queue.
    place: u64,
    /// Last position received from the dead replica.
    last_before: u64,
    /// When the socket dropped, after the kill.
    dropped_after_kill: Duration,
    /// From the new connection attempt (right after the drop and one admin read) to the first
    /// frame from the new replica.
    reconnect: Duration,
    /// `admitted_total` just before reconnecting.
    admitted_lo: u64,
    /// `admitted_total` just after the first frame from the new replica.
    admitted_hi: u64,
    /// The first position from the new replica.
    position_after: u64,
}

/// Connects every client (`tokens`, queued in that order behind `ahead` users) to replica
/// `x`, checks its place, and follows it from there ([`follow`]) to one of `others`.
pub async fn follow_all(
    x: SocketAddr, others: [SocketAddr; 2], tokens: &[String], ahead: usize,
    killed_at: &Arc<Mutex<Option<Instant>>>,
) -> Vec<JoinHandle<Crossing>> {
    let mut followers = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        let mut ws = ws_connect(x, token).await.expect("ws to X");
        let place = next_position(&mut ws).await.expect("first frame");
        assert_eq!(place, (ahead + i + 1) as u64, "client {i} queued in order");
        followers.push(tokio::spawn(follow(
            token.clone(),
            ws,
            place,
            others[i % 2],
            killed_at.clone(),
        )));
    }
    followers
}

/// A browser's page behind a load balancer: follows its place on replica `x` until the socket
/// drops, then reconnects with the same token to `other` (what the balancer picks once `x` is
/// gone), reading the admitted count around it to judge the new position.
async fn follow(
    token: String, mut ws: Ws, place: u64, other: SocketAddr,
    killed_at: Arc<Mutex<Option<Instant>>>,
) -> Crossing {
    let mut last = place;
    while let Some(p) = next_position(&mut ws).await {
        last = p;
    }
    let dropped = Instant::now();
    let killed = killed_at
        .lock()
        .unwrap()
        .expect("the socket dropped before the kill");
    let base = format!("http://{other}");
    let admitted_lo = admitted(&base).await;
    let connecting = Instant::now();
    let mut tries = 0;
    let mut ws = loop {
        match ws_connect(other, &token).await {
            Ok(ws) => break ws,
            Err(e) => {
                tries += 1;
                assert!(tries < 20, "cannot reconnect to {other}: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let position_after = next_position(&mut ws)
        .await
        .expect("a first frame from the new replica");
    let reconnect = connecting.elapsed();
    let admitted_hi = admitted(&base).await;
    let _ = ws.close(None).await;
    Crossing {
        place,
        last_before: last,
        dropped_after_kill: dropped.saturating_duration_since(killed),
        reconnect,
        admitted_lo,
        admitted_hi,
        position_after,
    }
}

/// The median (upper for an even count).
fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Every client came back, at its place minus those admitted in between.
pub async fn assert_back_in_place(followers: Vec<JoinHandle<Crossing>>) {
    let clients = followers.len();
    let mut reconnects = Vec::new();
    let mut drops = Vec::new();
    for (i, f) in followers.into_iter().enumerate() {
        let c = f.await.expect("client task");
        assert!(
            c.position_after <= c.last_before,
            "client {i} sent back: {c:?}"
        );
        assert!(
            c.place.saturating_sub(c.admitted_hi) <= c.position_after
                && c.position_after <= c.place.saturating_sub(c.admitted_lo),
            "client {i}: position {} is not its place {} minus {}..{} admitted: {c:?}",
            c.position_after,
            c.place,
            c.admitted_lo,
            c.admitted_hi
        );
        reconnects.push(c.reconnect);
        drops.push(c.dropped_after_kill);
    }
    eprintln!(
        "websocket: {clients}/{clients} clients reconnected at their place; socket dropped {} ms after the kill (median); connect to the first frame from another replica {} ms median, {} ms max (all {clients} at once)",
        median(drops.clone()).as_millis(),
        median(reconnects.clone()).as_millis(),
        reconnects.iter().max().unwrap().as_millis()
    );
}
