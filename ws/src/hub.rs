//! The hub: connections by event, one watcher task per event, and each connection's task.

mod watch;

use crate::messages;
use futures::{SinkExt, StreamExt};
use queue::ids::{EventId, SessionKey};
use queue::model::{Place, QueueingMethod, Status};
use queue::room::WaitingRoom;
use queue::store::Holder;
use queue::QueueError;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use time::format_description::well_known::Rfc3339;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;
use watch::watch_loop;

/// Settings of the fan-out, each with its default.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// How often each event's watcher reads the departure log (default 250 ms): the bound on
    /// how late a position change reaches a client, plus network time.
    pub tick: Duration,
    /// Interval of server pings; a peer silent for two intervals is dropped (default 20 s).
    pub ping_interval: Duration,
    /// Longest interval between heartbeats (position re-reads) of open connections (default
    /// 30 s); it is shortened to a third of an event's idle timeout when that is smaller.
    pub max_heartbeat_interval: Duration,
    /// Frames queued per connection before it counts as too slow and is dropped (default 16).
    pub outbox: usize,
    /// Largest client frame or message in bytes; larger ones close the socket (default 4096).
    pub max_client_message: usize,
    /// Read buffer of each socket in bytes (tungstenite's default is 128 KiB; default 4096).
    pub read_buffer: usize,
    /// Longest time one frame may take to be written (default 10 s); a client that does not
    /// read for that long is disconnected, so its task and connection permit are freed.
    pub send_timeout: Duration,
    /// Most sockets open at once for one place (event and ticket) in this process (default 4).
    pub max_per_token: usize,
    /// The close frame (code, reason) of a failure to read the place at connect: the
    /// gateway's error table decides whether retrying can help (default [`default_close`]).
    pub close_for: fn(&QueueError) -> (u16, &'static str),
}

/// The close frame of a connect failure without the gateway's table: 4404 for an event that
/// does not exist (reconnecting cannot help), 1013 (try again later) for anything else.
pub fn default_close(e: &QueueError) -> (u16, &'static str) {
    match e {
        QueueError::EventNotFound(_) => (4404, "event not found"),
        _ => (1013, "queue unavailable, retry"),
    }
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            tick: Duration::from_millis(250),
            ping_interval: Duration::from_secs(20),
            max_heartbeat_interval: Duration::from_secs(30),
            outbox: 16,
            max_client_message: 4096,
            read_buffer: 4096,
            send_timeout: Duration::from_secs(10),
            max_per_token: 4,
            close_for: default_close,
        }
    }
}

/// One local connection as its event's watcher sees it.
struct Conn {
    ticket: u64,
    session: SessionKey,
    /// Departure-log sequence at which `position` is exact.
    base: u64,
    status: Status,
    position: u64,
    /// The event's queue is a lottery (`random`): the client is shown position 0, not
    /// `position`.
    lottery: bool,
    /// Needs its place re-read (new, or left the queue, or positions cannot be derived).
    pending: bool,
    /// Whether this client was last told that admissions are paused.
    paused: bool,
    tx: mpsc::Sender<Message>,
    last_seen: Arc<AtomicU64>,
}

impl Conn {
    /// The position this client was last shown (see `lottery`).
    fn shown_position(&self) -> u64 {
        if self.lottery {
            0
        } else {
            self.position
        }
    }
}

#[derive(Default)]
struct Watch {
    conns: Mutex<HashMap<u64, Conn>>,
}

impl Watch {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Conn>> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }
}

struct Inner {
    room: WaitingRoom,
    cfg: HubConfig,
    events: Mutex<HashMap<EventId, Arc<Watch>>>,
    /// Open sockets per place, for `max_per_token`.
    sockets: Mutex<HashMap<(EventId, u64), usize>>,
    next_id: AtomicU64,
    open: AtomicUsize,
    dropped_slow: AtomicU64,
    started: Instant,
}

/// The WebSocket fan-out of one gateway process.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

/// One socket's share of its place's allowance ([`HubConfig::max_per_token`]); dropping it
/// gives the share back.
pub struct SocketSlot {
    hub: Hub,
    key: (EventId, u64),
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        let mut sockets = self
            .hub
            .inner
            .sockets
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = sockets.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                sockets.remove(&self.key);
            }
        }
    }
}

fn timestamp(ms: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// Hands `msg` to a connection's outbox; false when the connection is gone or too slow (the
/// caller then drops it, which closes the socket).
fn offer(c: &Conn, msg: Message) -> bool {
    c.tx.try_send(msg).is_ok()
}

/// A close frame with `code` and `reason`.
fn close_frame(code: CloseCode, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

/// Offers a connection its place's last message, then a normal close with `reason`; false:
/// the connection is finished.
fn finish(c: &Conn, last: Message, reason: &str) -> bool {
    offer(c, last);
    let _ = c.tx.try_send(close_frame(CloseCode::Normal, reason));
    false
}

/// Applies a re-read place to a connection and queues what the client must hear; false when
/// the connection is finished (its place is gone, or it cannot keep up).
fn update(c: &mut Conn, p: &Place, now_ms: u64, ts: &str) -> bool {
    let before = (c.status, c.shown_position());
    c.status = p.status;
    c.position = p.position;
    c.lottery = p.method == QueueingMethod::Random;
    c.pending = false;
    match p.status {
        Status::Waiting | Status::PreQueue if before != (p.status, p.shown_position()) => offer(
            c,
            messages::position_changed(p.status, p.shown_position(), p.eta_seconds(now_ms), ts),
        ),
        Status::Ready | Status::Admitted
            if !matches!(before.0, Status::Ready | Status::Admitted) =>
        {
            offer(c, messages::admission_ready(ts))
        }
        Status::Expired => finish(c, messages::token_expired(), "token expired"),
        Status::SoldOut => finish(c, messages::sold_out(), "sold out"),
        _ => true,
    }
}

impl Hub {
    /// A hub over `room`.
    pub fn new(room: WaitingRoom, cfg: HubConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                room,
                cfg,
                events: Mutex::new(HashMap::new()),
                sockets: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(1),
                open: AtomicUsize::new(0),
                dropped_slow: AtomicU64::new(0),
                started: Instant::now(),
            }),
        }
    }

    /// The close frame of a failure to read the place at connect ([`HubConfig::close_for`]).
    fn error_close(&self, e: &QueueError) -> Message {
        let (code, reason) = (self.inner.cfg.close_for)(e);
        close_frame(CloseCode::from(code), reason)
    }

    /// Open WebSocket connections in this process.
    pub fn connections(&self) -> usize {
        self.inner.open.load(Ordering::Relaxed)
    }

    /// Connections dropped because they could not keep up or stopped answering pings.
    pub fn dropped_slow(&self) -> u64 {
        self.inner.dropped_slow.load(Ordering::Relaxed)
    }

    /// Claims one of the `max_per_token` socket slots of the place (`event`, `ticket`); None
    /// when they are all taken. Hold the slot for as long as the socket is open.
    pub fn claim(&self, event: &EventId, ticket: u64) -> Option<SocketSlot> {
        let key = (event.clone(), ticket);
        let mut sockets = self.inner.sockets.lock().unwrap_or_else(|p| p.into_inner());
        let n = sockets.entry(key.clone()).or_insert(0);
        if *n >= self.inner.cfg.max_per_token {
            return None;
        }
        *n += 1;
        Some(SocketSlot {
            hub: self.clone(),
            key,
        })
    }

    /// Closes every connection with 1001 (going away), as a draining replica does so that
    /// clients reconnect to another one and keep their places.
    pub fn close_all(&self) {
        let events = self.inner.events.lock().unwrap_or_else(|p| p.into_inner());
        for watch in events.values() {
            for c in watch.lock().drain().map(|(_, c)| c) {
                let _ =
                    c.tx.try_send(close_frame(CloseCode::Away, "server shutting down"));
            }
        }
    }

    /// Offers `msg` to every connection of this process (a system-wide announcement such as
    /// MAINTENANCE); a connection whose outbox is full misses it.
    pub fn broadcast(&self, msg: Message) {
        let events = self.inner.events.lock().unwrap_or_else(|p| p.into_inner());
        for watch in events.values() {
            for c in watch.lock().values() {
                offer(c, msg.clone());
            }
        }
    }

    fn elapsed_ms(&self) -> u64 {
        self.inner.started.elapsed().as_millis() as u64
    }

    /// The socket settings: small buffers on purpose (tungstenite defaults to 128 KiB per
    /// connection for reading and as much for writing), and the client message limit.
    fn socket_config(&self) -> WebSocketConfig {
        let cfg = &self.inner.cfg;
        WebSocketConfig::default()
            .read_buffer_size(cfg.read_buffer)
            .write_buffer_size(0)
            .max_write_buffer_size(64 * 1024)
            .max_message_size(Some(cfg.max_client_message))
            .max_frame_size(Some(cfg.max_client_message))
    }

    /// Serves one upgraded connection for the place (`event`, `ticket`) until it closes. The
    /// first frame goes out at once; then the event's watcher feeds the outbox.
    pub async fn serve<S>(&self, io: S, event: EventId, ticket: u64, session: SessionKey)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let mut ws =
            WebSocketStream::from_raw_socket(io, Role::Server, Some(self.socket_config())).await;
        self.inner.open.fetch_add(1, Ordering::Relaxed);
        let registered = self.first_frame(&mut ws, &event, ticket, session).await;
        if let Some((id, mut rx, last_seen)) = registered {
            loop {
                tokio::select! {
                    out = rx.recv() => match out {
                        Some(msg) => {
                            let closing = matches!(msg, Message::Close(_));
                            match self.send(&mut ws, msg).await {
                                Sent::Ok if !closing => {}
                                Sent::Ok | Sent::Failed => break,
                                Sent::TimedOut => {
                                    // Still registered: the watcher has not counted it yet.
                                    if self.unregister(&event, id) {
                                        self.inner.dropped_slow.fetch_add(1, Ordering::Relaxed);
                                    }
                                    break;
                                }
                            }
                        }
                        None => {
                            // The watcher let go of us: too slow, or silent too long.
                            let frame = CloseFrame { code: CloseCode::Policy, reason: "too slow or unresponsive".into() };
                            self.send(&mut ws, Message::Close(Some(frame))).await;
                            break;
                        }
                    },
                    inbound = ws.next() => match inbound {
                        Some(Ok(Message::Close(_))) | None => break,
                        Some(Ok(_)) => last_seen.store(self.elapsed_ms(), Ordering::Relaxed),
                        Some(Err(WsError::Capacity(_))) => {
                            let frame = CloseFrame { code: CloseCode::Size, reason: "client message too large".into() };
                            self.send(&mut ws, Message::Close(Some(frame))).await;
                            break;
                        }
                        Some(Err(_)) => break,
                    },
                }
            }
            let _ = self.unregister(&event, id);
        }
        self.inner.open.fetch_sub(1, Ordering::Relaxed);
    }

    /// Sends the place as it stands (reading it is also a heartbeat) and registers the
    /// connection with its event's watcher; None when the socket is already finished.
    async fn first_frame<S>(
        &self, ws: &mut WebSocketStream<S>, event: &EventId, ticket: u64, session: SessionKey,
    ) -> Option<(u64, mpsc::Receiver<Message>, Arc<AtomicU64>)>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let (tx, mut rx) = mpsc::channel(self.inner.cfg.outbox.max(4));
        let last_seen = Arc::new(AtomicU64::new(self.elapsed_ms()));
        let opened = self
            .open(event, ticket, session, tx, last_seen.clone())
            .await;
        // Flush what `open` queued (the first frame, or the close frame of a place that could
        // not be read) before anything the watcher adds.
        while let Ok(msg) = rx.try_recv() {
            let closing = matches!(msg, Message::Close(_));
            if self.send(ws, msg).await != Sent::Ok || closing {
                return None;
            }
        }
        match opened? {
            (conn, true) => Some((self.register(event, conn), rx, last_seen)),
            (_, false) => None,
        }
    }

    /// Registers a listener that is not a WebSocket (a gRPC stream) for the place (`event`,
    /// `ticket`) with the same watcher: the frames a socket would get (pings included, which
    /// the listener skips) go to the returned receiver, the place as it stands first. A
    /// listener is never dropped for silence, only when its receiver is gone or full; after a
    /// final frame (TOKEN_EXPIRED, EVENT_SOLD_OUT, or a Close when the place cannot be read)
    /// the sender is dropped, ending the stream.
    pub async fn listen(
        &self, event: EventId, ticket: u64, session: SessionKey,
    ) -> mpsc::Receiver<Message> {
        let (tx, rx) = mpsc::channel(self.inner.cfg.outbox.max(4));
        // Never silent: a stream has no pings to answer (HTTP/2 keeps it alive).
        let never_silent = Arc::new(AtomicU64::new(u64::MAX));
        if let Some((conn, true)) = self.open(&event, ticket, session, tx, never_silent).await {
            self.register(&event, conn);
        }
        rx
    }

    /// Reads the place (`event`, `ticket`) as it stands and makes it a connection feeding `tx`,
    /// with what the client must hear first already queued; true when it stays open after that.
    /// None when the place is gone, or could not be read (then its close frame is queued).
    async fn open(
        &self, event: &EventId, ticket: u64, session: SessionKey, tx: mpsc::Sender<Message>,
        last_seen: Arc<AtomicU64>,
    ) -> Option<(Conn, bool)> {
        let now = self.inner.room.now_ms();
        let read = self
            .inner
            .room
            .store()
            .places(event, &[Holder { ticket, session }], true, now)
            .await;
        let (seq, place) = match read {
            Ok((seq, places)) => (seq, places.into_iter().next()?),
            Err(e) => {
                let _ = tx.try_send(self.error_close(&e));
                return None;
            }
        };
        let mut conn = Conn {
            ticket,
            session,
            base: seq,
            status: Status::Expired,
            position: u64::MAX,
            lottery: false,
            pending: false,
            paused: false,
            tx,
            last_seen,
        };
        let alive = update(&mut conn, &place, now, &timestamp(now));
        if alive && place.stopped && matches!(place.status, Status::Waiting | Status::PreQueue) {
            conn.paused = true;
            offer(&conn, messages::paused());
        }
        Some((conn, alive))
    }

    fn register(&self, event: &EventId, conn: Conn) -> u64 {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let mut events = self.inner.events.lock().unwrap_or_else(|p| p.into_inner());
        let watch = events
            .entry(event.clone())
            .or_insert_with(|| {
                let w = Arc::new(Watch::default());
                tokio::spawn(watch_loop(self.clone(), event.clone(), w.clone()));
                w
            })
            .clone();
        watch.lock().insert(id, conn);
        id
    }

    /// Removes the connection from its event's watcher; true when it was still there.
    fn unregister(&self, event: &EventId, id: u64) -> bool {
        let events = self.inner.events.lock().unwrap_or_else(|p| p.into_inner());
        events
            .get(event)
            .is_some_and(|w| w.lock().remove(&id).is_some())
    }

    /// Writes one frame within the send timeout. A client that stops reading fills the socket
    /// buffers, and then a write (a close frame included) would wait forever; the caller drops
    /// the socket instead, which frees its task and connection permit.
    async fn send<S>(&self, ws: &mut WebSocketStream<S>, msg: Message) -> Sent
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        match tokio::time::timeout(self.inner.cfg.send_timeout, ws.send(msg)).await {
            Ok(Ok(())) => Sent::Ok,
            Ok(Err(_)) => Sent::Failed,
            Err(_) => Sent::TimedOut,
        }
    }

    /// Removes `watch` from the registry if it has no connections; true when removed. Both
    /// locks are taken in the same order as `register`, so no connection is left unwatched.
    fn retire(&self, event: &EventId, watch: &Arc<Watch>) -> bool {
        let mut events = self.inner.events.lock().unwrap_or_else(|p| p.into_inner());
        if watch.lock().is_empty() {
            events.remove(event);
            true
        } else {
            false
        }
    }
}

/// How a write went.
#[derive(Debug, PartialEq, Eq)]
enum Sent {
    Ok,
    Failed,
    TimedOut,
}
