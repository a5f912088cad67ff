//! The HTTP server loop: accepts on an already-bound listener (tests pass port 0), caps
//! connections, bounds request heads, times out connections that never send a request or sit
//! idle, and drains in-flight requests on shutdown.

use crate::config::Limits;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::Response;
use axum::Router;
use futures::FutureExt;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;
use tower::ServiceExt;

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting and gives open
/// connections `limits.drain_grace` to finish their requests. Each connection holds one of
/// `permits` (shared with WebSocket upgrades, which outlive their HTTP connection).
pub async fn serve<A: App>(
    listener: TcpListener, app: A, limits: Limits, permits: Arc<Semaphore>,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(limits.max_header_bytes as u32)
        .keep_alive_interval(limits.http2_keepalive_interval)
        .keep_alive_timeout(limits.http2_keepalive_timeout);
    // Every connection task holds a receiver: `drain_tx.closed()` is "all connections done".
    let (drain_tx, drain_rx) = watch::channel(false);
    let timeouts = ConnTimeouts {
        handshake: limits.handshake_timeout,
        idle: limits.idle_timeout,
    };
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            // Over the connection limit: closing at once is cheaper for everyone than queueing.
            tracing::debug!("connection limit reached; closing new connection");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::new());
        let service = ConnService {
            app: app.clone(),
            activity: activity.clone(),
            peer,
        };
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let drain = drain_rx.clone();
        tokio::spawn(async move {
            drive(conn, &activity, timeouts, drain).await;
            drop(permit);
        });
    }
    drop(listener);
    drop(drain_rx);
    tracing::info!(connections = drain_tx.receiver_count(), "draining");
    let _ = drain_tx.send(true);
    if tokio::time::timeout(limits.drain_grace, drain_tx.closed())
        .await
        .is_err()
    {
        tracing::warn!("drain grace period over; closing remaining connections");
    }
    Ok(())
}

type Conn<A> =
    auto::UpgradeableConnection<'static, TokioIo<TcpStream>, ConnService<A>, TokioExecutor>;

/// How long an idle connection has to close after the server began closing it. HTTP/2 closes
/// in two steps (GOAWAY, a ping, the final GOAWAY once the ping is acknowledged), so a peer
/// that stopped reading would otherwise hold it open.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy)]
struct ConnTimeouts {
    handshake: Duration,
    idle: Duration,
}

/// Runs one connection to its end under the connection timeouts, which hyper does not have:
/// hyper-util's protocol detection, the HTTP/2 handshake and an HTTP/2 connection without
/// streams wait for the peer forever. Dropping the connection future closes the socket.
async fn drive<A: App>(
    conn: Conn<A>, activity: &Activity, t: ConnTimeouts, mut drain: watch::Receiver<bool>,
) {
    tokio::pin!(conn);
    let handshake_deadline = activity.base + t.handshake;
    // Checked at the earlier of the two: a first request may have come and gone by then.
    let mut deadline = handshake_deadline.min(activity.base + t.idle);
    // Whether graceful_shutdown was called (by the drain or the idle timeout); once is enough.
    let mut shutting = false;
    // Set when the idle timeout began the shutdown: a peer that does not let the connection
    // close (one that does not read) is cut off at this deadline.
    let mut idle_closing = false;
    let mut draining = false;
    loop {
        tokio::select! {
            res = conn.as_mut() => {
                if let Err(e) = res {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = drain.wait_for(|d| *d), if !draining => {
                draining = true;
                if !shutting {
                    shutting = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
            () = tokio::time::sleep_until(deadline) => {
                let now = Instant::now();
                if idle_closing {
                    tracing::debug!("idle connection did not close in time; dropping it");
                    return;
                }
                match activity.state() {
                    State::Fresh if now < handshake_deadline => deadline = handshake_deadline,
                    State::Fresh => {
                        tracing::debug!("no request within the handshake timeout; closing");
                        return;
                    }
                    State::Busy => deadline = now + t.idle,
                    State::IdleSince(at) if at + t.idle > now => deadline = at + t.idle,
                    State::IdleSince(_) => {
                        tracing::debug!("connection idle; closing");
                        if !shutting {
                            shutting = true;
                            conn.as_mut().graceful_shutdown();
                        }
                        idle_closing = true;
                        deadline = now + CLOSE_GRACE;
                    }
                }
            }
        }
    }
}

/// Requests of one connection, as its idle timer sees them.
struct Activity {
    base: Instant,
    started: AtomicU64,
    in_flight: AtomicUsize,
    /// When the last request finished, in milliseconds since `base`.
    last_done_ms: AtomicU64,
}

enum State {
    /// No request has started yet.
    Fresh,
    /// A request is in flight.
    Busy,
    /// No request in flight since then.
    IdleSince(Instant),
}

impl Activity {
    fn new() -> Self {
        Self {
            base: Instant::now(),
            started: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            last_done_ms: AtomicU64::new(0),
        }
    }

    fn state(&self) -> State {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            State::Busy
        } else if self.started.load(Ordering::Acquire) == 0 {
            State::Fresh
        } else {
            let ms = self.last_done_ms.load(Ordering::Acquire);
            State::IdleSince(self.base + Duration::from_millis(ms))
        }
    }
}

/// Marks one request in flight until dropped (the handler finished or was cancelled).
struct InFlight(Arc<Activity>);

impl InFlight {
    fn begin(activity: &Arc<Activity>) -> Self {
        activity.started.fetch_add(1, Ordering::AcqRel);
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        Self(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let a = &self.0;
        let ms = a.base.elapsed().as_millis() as u64;
        a.last_done_ms.fetch_max(ms, Ordering::AcqRel);
        a.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What a listener serves: the public [`crate::edge::Edge`], or a bare router (the metrics
/// listener).
pub trait App: Clone + Send + Sync + 'static {
    /// Answers one request from `peer`; `wait` tells whether its handler is waiting for body
    /// bytes.
    fn handle(
        &self, req: Request<Body>, wait: BodyWait, peer: SocketAddr,
    ) -> impl Future<Output = Response> + Send + 'static;
}

impl App for Router {
    /// A bare router's handlers find the peer as axum's `ConnectInfo`.
    fn handle(
        &self, mut req: Request<Body>, _: BodyWait, peer: SocketAddr,
    ) -> impl Future<Output = Response> + Send + 'static {
        req.extensions_mut().insert(ConnectInfo(peer));
        let routed = self.clone().oneshot(req);
        async move {
            match routed.await {
                Ok(r) => r,
                Err(never) => match never {},
            }
        }
    }
}

/// The app as one connection's hyper service: counts requests in flight for the idle
/// timer and marks each request body so that the request timeout can tell a client that
/// stopped sending ([`BodyWait`]) from a slow gateway.
#[derive(Clone)]
struct ConnService<A> {
    app: A,
    activity: Arc<Activity>,
    /// The socket peer, given to the app with every request (the rate limits key on it).
    peer: SocketAddr,
}

impl<A: App> hyper::service::Service<Request<Incoming>> for ConnService<A> {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let in_flight = InFlight::begin(&self.activity);
        let (parts, body) = req.into_parts();
        let wait = BodyWait::default();
        let watched = WatchedBody {
            inner: body,
            wait: wait.clone(),
        };
        let answer = self.app.handle(
            Request::from_parts(parts, Body::new(watched)),
            wait,
            self.peer,
        );
        // A combinator, not an async block: one future less to lay out and move.
        Box::pin(answer.map(move |resp| {
            drop(in_flight);
            Ok(resp)
        }))
    }
}

/// Whether the handler of a request is waiting for body bytes that the client has not sent.
#[derive(Debug, Clone, Default)]
pub struct BodyWait(Arc<AtomicBool>);

impl BodyWait {
    /// True while the last read of the request body found nothing to read.
    pub fn waiting(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

struct WatchedBody {
    inner: Incoming,
    wait: BodyWait,
}

impl hyper::body::Body for WatchedBody {
    type Data = bytes::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>, cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        self.wait.0.store(polled.is_pending(), Ordering::Relaxed);
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
