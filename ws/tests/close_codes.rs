//! The close frame of a connect that cannot read its place says whether reconnecting helps:
//! 4404 when the event does not exist (reconnecting never helps), from
//! [`ws::HubConfig::close_for`] (the gateway passes its error table's).

use futures::StreamExt;
use queue::clock::SystemClock;
use queue::model::EventConfig;
use queue::room::WaitingRoom;
use queue::store::{MemoryStore, Store};
use queue::token::{AdmissionSigner, WaitingTokens};
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use ws::{Hub, HubConfig};

const BOUND: Duration = Duration::from_secs(10);

fn room(store: MemoryStore) -> WaitingRoom {
    WaitingRoom::new(
        Arc::new(store),
        Arc::new(SystemClock),
        WaitingTokens::ephemeral(),
        AdmissionSigner::ephemeral(),
    )
}

#[tokio::test]
async fn a_socket_of_an_event_that_is_gone_is_told_not_to_reconnect() {
    // A place in one store...
    let store = MemoryStore::new();
    let event = queue::ids::EventId::parse("gone").unwrap();
    let now = queue::clock::Clock::now_ms(&SystemClock);
    store
        .configure(&event, &EventConfig::new(0, 10), now)
        .await
        .unwrap();
    let first = room(store);
    let joined = first.join("gone", "s", None).await.unwrap();
    let (event, ticket, session) = first.holder_of(&joined.waiting_token).unwrap();
    // ...served by a hub whose store has no such event (it was lost, or removed).
    let hub = Hub::new(room(MemoryStore::new()), HubConfig::default());
    let (client, server) = tokio::io::duplex(4096);
    tokio::spawn({
        let hub = hub.clone();
        async move { hub.serve(server, event, ticket, session).await }
    });
    let mut client = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
    let frame = tokio::time::timeout(BOUND, client.next()).await.unwrap();
    match frame {
        Some(Ok(Message::Close(Some(f)))) => {
            // Not 1013 ("try again later"): retrying cannot bring the event back.
            assert_eq!(u16::from(f.code), 4404);
            assert_eq!(f.reason.as_str(), "event not found");
        }
        other => panic!("expected a close frame, got {other:?}"),
    }
}
