//! The server side of the WebSocket opening handshake (RFC 6455 §4.2) on hyper's upgrade: the
//! one upgrade of every socket the gateway serves (the queue's, the reservations', the
//! console's), each then served by tokio-tungstenite on the upgraded connection.
//!
//! Why not axum's `WebSocketUpgrade` (docs/benchmarks.md, "WebSocket handshake: ours vs axum's
//! WebSocketUpgrade"; `loadtest/src/bin/ws_handshake.rs`): measured in two runs, its handshake
//! costs the same server CPU (435.8 and 450.6 µs against our 440.3 and 432.2, unoptimized build,
//! within the rounds' spread), and fed the hub's tungstenite 0.30 frames its socket costs more
//! per frame (3,290 and 3,177 ns against 2,334 and 2,791). So speed does not favour it, and
//! these weigh against it: axum's `ws` brings a third tokio-tungstenite (0.29), its `WebSocket`
//! only comes from an HTTP upgrade (the hub's tests serve an in-memory pipe), and it hides
//! tungstenite's error type, which the hub reads to close oversized frames with 1009.

use http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use std::future::Future;

/// The connection a socket is served on once hyper hands it over.
pub type Io = TokioIo<Upgraded>;

/// Why a request is not a WebSocket upgrade; the gateway answers it with a 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotAnUpgrade {
    /// `Upgrade: websocket`, `Connection: upgrade` or `Sec-WebSocket-Version: 13` is missing.
    Headers,
    /// No `Sec-WebSocket-Key`.
    MissingKey,
}

impl std::fmt::Display for NotAnUpgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Headers => "expected a WebSocket upgrade (version 13)",
            Self::MissingKey => "missing Sec-WebSocket-Key",
        })
    }
}

impl std::error::Error for NotAnUpgrade {}

/// A request checked to be a WebSocket upgrade, not yet answered. Dropping it refuses the
/// upgrade (the handler answers with an error instead).
pub struct Upgrade {
    accept: HeaderValue,
    on_upgrade: OnUpgrade,
}

impl std::fmt::Debug for Upgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upgrade").finish_non_exhaustive()
    }
}

/// Whether one of the comma-separated values of the header `name` is `want` (any case):
/// browsers send `Connection: keep-alive, Upgrade`.
fn lists(h: &HeaderMap, name: header::HeaderName, want: &str) -> bool {
    h.get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case(want)))
}

impl Upgrade {
    /// Checks that `req` asks for a version-13 WebSocket and takes hyper's handle on its
    /// connection.
    pub fn check<B>(req: &mut Request<B>) -> Result<Self, NotAnUpgrade> {
        let h = req.headers();
        if !lists(h, header::UPGRADE, "websocket")
            || !lists(h, header::CONNECTION, "upgrade")
            || !lists(h, header::SEC_WEBSOCKET_VERSION, "13")
        {
            return Err(NotAnUpgrade::Headers);
        }
        let key = h
            .get(header::SEC_WEBSOCKET_KEY)
            .ok_or(NotAnUpgrade::MissingKey)?;
        let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
        Ok(Self {
            accept: HeaderValue::try_from(accept).expect("base64 is a valid header value"),
            on_upgrade: hyper::upgrade::on(req),
        })
    }

    /// The 101 answer. Once hyper hands the connection over, `serve` runs on it in a task of its
    /// own, and `guards` (connection permits, socket slots) are held until it returns: the
    /// socket outlives the request that opened it.
    pub fn accept<B, G, F, Fut>(self, guards: G, serve: F) -> Response<B>
    where
        B: Default,
        G: Send + 'static,
        F: FnOnce(Io) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => serve(TokioIo::new(upgraded)).await,
                Err(e) => tracing::debug!(error = %e, "websocket upgrade failed"),
            }
            drop(guards);
        });
        let mut r = Response::new(B::default());
        *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let h = r.headers_mut();
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        h.insert(header::SEC_WEBSOCKET_ACCEPT, self.accept);
        r
    }
}
