//! A client that stops reading must not hold its connection task forever: every write has the
//! send timeout. The socket is an in-memory pipe with a 16-byte buffer, so "the client's
//! buffers are full" is exact rather than up to the kernel's autotuning of TCP buffers.

use futures::{SinkExt, StreamExt};
use queue::clock::SystemClock;
use queue::model::EventConfig;
use queue::room::WaitingRoom;
use queue::store::{MemoryStore, Store};
use queue::token::{AdmissionSigner, WaitingTokens};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::DuplexStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use ws::{Hub, HubConfig};

/// Generous: the send timeout below is 300 ms.
const BOUND: Duration = Duration::from_secs(10);

/// A hub serving one place over a 16-byte pipe: the hub, the client's end of the pipe and the
/// connection's task.
async fn serving_a_place() -> (Hub, DuplexStream, JoinHandle<()>) {
    let store = MemoryStore::new();
    let event = queue::ids::EventId::parse("slow").unwrap();
    let clock = Arc::new(SystemClock);
    store
        .configure(
            &event,
            &EventConfig::new(0, 10),
            queue::clock::Clock::now_ms(&*clock),
        )
        .await
        .unwrap();
    let room = WaitingRoom::new(
        Arc::new(store),
        clock,
        WaitingTokens::ephemeral(),
        AdmissionSigner::ephemeral(),
    );
    let joined = room.join("slow", "reader", None).await.unwrap();
    let (event, ticket, session) = room.holder_of(&joined.waiting_token).unwrap();
    let hub = Hub::new(
        room,
        HubConfig {
            tick: Duration::from_millis(20),
            ping_interval: Duration::from_millis(100),
            send_timeout: Duration::from_millis(300),
            ..HubConfig::default()
        },
    );
    let (client, server) = tokio::io::duplex(16);
    let serving = tokio::spawn({
        let hub = hub.clone();
        async move { hub.serve(server, event, ticket, session).await }
    });
    (hub, client, serving)
}

/// Waits (at most [`BOUND`]) for the connection's task to end.
async fn ended(serving: JoinHandle<()>) {
    tokio::time::timeout(BOUND, serving)
        .await
        .expect("the connection task ends")
        .unwrap();
}

#[tokio::test]
async fn a_client_that_never_reads_is_let_go_after_the_send_timeout() {
    // The first frame (~130 bytes) cannot be written: nobody reads the 16-byte pipe.
    let (hub, _client, serving) = serving_a_place().await;
    ended(serving).await;
    assert_eq!(hub.connections(), 0);
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_after_the_send_timeout() {
    let (hub, client, serving) = serving_a_place().await;
    let mut client = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
    let first = tokio::time::timeout(BOUND, client.next()).await.unwrap();
    assert!(
        matches!(&first, Some(Ok(Message::Text(t))) if t.contains("POSITION_CHANGED")),
        "{first:?}"
    );
    assert_eq!(hub.connections(), 1);
    // From now on the client only talks (so it is not silent) and never reads: the server's
    // pings fill the pipe, and then one of its writes cannot finish.
    let talking = tokio::spawn(async move {
        loop {
            if client.send(Message::text("still here")).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    ended(serving).await;
    assert_eq!(hub.connections(), 0);
    assert_eq!(hub.dropped_slow(), 1, "counted once as too slow");
    tokio::time::timeout(BOUND, talking)
        .await
        .expect("the client sees the socket closed")
        .unwrap();
}
