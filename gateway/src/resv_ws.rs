//! `GET /api/v1/reservations/{reservation_id}/ws`: a reservation's live updates as a WebSocket
//! of JSON text frames ([`crate::resv`]). The reservation (admission) token comes as a bearer
//! or as `?token=` (browsers cannot set headers on a WebSocket). Failures before the upgrade
//! are ordinary JSON errors (401, 403, 404, 503...).

use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::extract::{bearer, request_id};
use crate::resv;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use std::time::Duration;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// How long one frame may take to be sent before the client is dropped.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Query of the reservation WebSocket.
#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

/// Checks the token, reads the reservation, then upgrades and streams its updates.
pub async fn websocket(
    State(st): State<AppState>, Path(reservation_id): Path<String>,
    ApiQuery(q): ApiQuery<TokenQuery>, mut req: axum::extract::Request,
) -> Result<Response, ApiError> {
    let token = bearer(req.headers().get(header::AUTHORIZATION))
        .or(q.token)
        .filter(|t| !t.is_empty());
    let upgrade = crate::handlers::websocket_upgrade(&mut req)?;
    let request_id = request_id(req.headers());
    let permit = crate::handlers::socket_permit(&st)?;
    let opened = resv::open(&st, &reservation_id, token.as_deref(), &request_id).await?;
    Ok(upgrade.accept(permit, move |io| serve(io, opened)))
}

/// Sends the stream's events as text frames until it ends (a final status: a normal close) or
/// the client leaves.
async fn serve(io: ws::Io, opened: resv::Opened) {
    let socket = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
    let (mut sink, mut stream) = socket.split();
    let mut events = resv::spawn(opened);
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Some(ev) => {
                    let sent = tokio::time::timeout(
                        SEND_TIMEOUT,
                        sink.send(Message::text(ev.to_json())),
                    )
                    .await;
                    if !matches!(sent, Ok(Ok(()))) {
                        return;
                    }
                }
                None => {
                    let close = Message::Close(Some(CloseFrame {
                        code: 1000.into(),
                        reason: "final status".into(),
                    }));
                    let _ = tokio::time::timeout(SEND_TIMEOUT, sink.send(close)).await;
                    return;
                }
            },
            m = stream.next() => match m {
                // Pings are answered by the protocol layer; anything else is ignored.
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}
