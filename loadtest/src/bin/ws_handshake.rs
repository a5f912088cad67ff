//! WebSocket handshake benchmark: the gateway's upgrade ([`ws::Upgrade`]: hyper's upgrade,
//! then tokio-tungstenite) against axum's `WebSocketUpgrade`, served side by side by one axum
//! server on one thread, in alternating rounds so that a busy machine slows both alike.
//!
//! Each socket is the trivial one: upgrade, one text frame, close. Reported per server side,
//! as medians of the rounds: handshakes per second (wall clock, `--concurrency` clients at
//! once, the clients on a second thread) and the server thread's CPU per handshake (its
//! `/proc/self/task/<tid>/schedstat`, in nanoseconds). Then the server's CPU per sent text
//! frame on one long socket, including axum's socket fed the hub's tungstenite 0.30 frames
//! (what the queue's socket would pay per frame on axum).
//!
//! ```sh
//! cargo build --release --workspace --bin ws_handshake --features loadtest/axum-ws
//! target/release/ws_handshake            # --help for the knobs
//! ```

use anyhow::{bail, Context, Result};
use axum::extract::ws::{Message as AxMessage, Utf8Bytes as AxText, WebSocketUpgrade};
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use clap::Parser;
use futures::{Sink, SinkExt, Stream, StreamExt};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

#[derive(Parser, Debug)]
struct Args {
    /// Handshakes per round.
    #[arg(long, default_value_t = 1000)]
    handshakes: usize,
    /// Measured rounds per server side (after one unmeasured warm-up round each).
    #[arg(long, default_value_t = 7)]
    rounds: usize,
    /// Clients handshaking at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Text frames per round of the per-frame measurement (0 skips it).
    #[arg(long, default_value_t = 20_000)]
    frames: usize,
    /// Bytes per text frame (a position update is about 100).
    #[arg(long, default_value_t = 100)]
    frame_bytes: usize,
}

/// The server sides of the handshake measurement: route prefix, name in the report.
const HANDSHAKE_SIDES: [(&str, &str); 2] = [
    (
        "ours",
        "ws::Upgrade (hyper upgrade + tokio-tungstenite 0.30)",
    ),
    ("axum", "axum WebSocketUpgrade (tokio-tungstenite 0.29)"),
];

/// The server sides of the per-frame measurement.
const FRAME_SIDES: [(&str, &str); 3] = [
    HANDSHAKE_SIDES[0],
    HANDSHAKE_SIDES[1],
    (
        "axum-hub",
        "axum WebSocket fed the hub's tungstenite 0.30 frames",
    ),
];

/// The text every socket sends, serialised once as the hub's frames are.
#[derive(Clone)]
struct Frame(Utf8Bytes);

fn app(frame_bytes: usize) -> Router {
    Router::new()
        .route("/ours/{frames}", get(ours))
        .route("/axum/{frames}", get(axum_native))
        .route("/axum-hub/{frames}", get(axum_fed_by_hub))
        .with_state(Frame("x".repeat(frame_bytes).into()))
}

async fn ours(State(f): State<Frame>, Path(frames): Path<usize>, mut req: Request) -> Response {
    match ws::Upgrade::check(&mut req) {
        Ok(upgrade) => upgrade.accept((), move |io| async move {
            let socket = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
            play(socket, Message::Text(f.0), frames).await
        }),
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

async fn axum_native(
    State(f): State<Frame>, Path(frames): Path<usize>, upgrade: WebSocketUpgrade,
) -> Response {
    let msg = AxMessage::Text(AxText::from(f.0.as_str()));
    upgrade.on_upgrade(move |socket| play(socket, msg, frames))
}

/// The hub's frames are tungstenite 0.30 messages (shared with the gRPC listeners); on axum's
/// socket each would be converted, which for a text frame is a UTF-8 check of its bytes.
fn from_hub(m: Message) -> Result<AxMessage, axum::Error> {
    match m {
        Message::Text(t) => AxText::try_from(bytes::Bytes::from(t))
            .map(AxMessage::Text)
            .map_err(axum::Error::new),
        other => Err(axum::Error::new(format!("not a text frame: {other:?}"))),
    }
}

async fn axum_fed_by_hub(
    State(f): State<Frame>, Path(frames): Path<usize>, upgrade: WebSocketUpgrade,
) -> Response {
    upgrade.on_upgrade(move |socket| {
        let socket = socket.with(|m| std::future::ready(from_hub(m)));
        play(socket, Message::Text(f.0), frames)
    })
}

/// The server's side of every socket: `frames` copies of `msg`, each written at once as the
/// hub writes them, then the close handshake.
async fn play<S, M, R, E>(mut socket: S, msg: M, frames: usize)
where
    S: Sink<M> + Stream<Item = Result<R, E>> + Unpin,
    M: Clone,
{
    for _ in 0..frames {
        if socket.send(msg.clone()).await.is_err() {
            return;
        }
    }
    if socket.close().await.is_ok() {
        while let Some(Ok(_)) = socket.next().await {}
    }
}

/// One client socket on `path`: the text frames it got before the server closed.
async fn client(addr: SocketAddr, path: &str) -> Result<usize> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let (mut socket, _) = tokio_tungstenite::client_async(format!("ws://{addr}{path}"), tcp)
        .await
        .with_context(|| format!("handshake on {path}"))?;
    let mut texts = 0;
    // Ends with the close handshake; the caller checks the count, so a socket cut short shows.
    while let Some(Ok(m)) = socket.next().await {
        texts += usize::from(m.is_text());
    }
    Ok(texts)
}

/// The server on a thread of its own, so that its CPU time is that thread's; returns its
/// address and the thread's id.
fn spawn_server(frame_bytes: usize) -> Result<(SocketAddr, u32)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || -> Result<()> {
        // "/proc/thread-self" links to "<pid>/task/<tid>".
        let tid = std::fs::read_link("/proc/thread-self")
            .ok()
            .and_then(|p| p.file_name()?.to_str()?.parse::<u32>().ok());
        let _ = tid_tx.send(tid);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            axum::serve(listener, app(frame_bytes)).await
        })?;
        Ok(())
    });
    let tid = tid_rx.recv()?.context("no /proc/thread-self")?;
    Ok((addr, tid))
}

/// CPU time the thread `tid` of this process has run, in nanoseconds.
fn cpu_ns(tid: u32) -> Result<u64> {
    let path = format!("/proc/self/task/{tid}/schedstat");
    let s = std::fs::read_to_string(&path).with_context(|| path.clone())?;
    s.split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("{path}: {s}"))
}

/// One round's wall time and server CPU.
#[derive(Debug, Clone, Copy)]
struct Sample {
    wall: Duration,
    cpu_ns: u64,
}

/// One round: `n` sockets on `path`, `concurrency` at a time, each expecting `texts` frames.
async fn round(
    addr: SocketAddr, tid: u32, path: &str, n: usize, concurrency: usize, texts: usize,
) -> Result<Sample> {
    let cpu0 = cpu_ns(tid)?;
    let t0 = Instant::now();
    let got: Vec<Result<usize>> = futures::stream::iter(0..n)
        .map(|_| client(addr, path))
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let wall = t0.elapsed();
    // Lets the server finish its last close handshakes, so that they count in this round.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let cpu_ns = cpu_ns(tid)? - cpu0;
    for g in got {
        let g = g?;
        if g != texts {
            bail!("{path}: a client got {g} text frames, not {texts}");
        }
    }
    Ok(Sample { wall, cpu_ns })
}

/// `rounds` measured rounds of every side after one warm-up round each, alternating sides and
/// reversing their order every round; the samples by side.
async fn alternate(
    sides: &[(&str, &str)], rounds: usize, mut run: impl AsyncFnMut(&str) -> Result<Sample>,
) -> Result<Vec<Vec<Sample>>> {
    let mut samples = vec![Vec::with_capacity(rounds); sides.len()];
    for r in 0..=rounds {
        let mut order: Vec<usize> = (0..sides.len()).collect();
        if r % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let s = run(sides[i].0).await?;
            if r > 0 {
                samples[i].push(s);
            }
        }
    }
    Ok(samples)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A table row: the side, then each figure's median with every round's value beside it.
fn row(name: &str, figures: &[Vec<f64>], digits: usize) -> String {
    let cells: Vec<String> = figures
        .iter()
        .map(|f| {
            let all: Vec<String> = f.iter().map(|x| format!("{x:.digits$}")).collect();
            format!("**{:.digits$}** ({})", median(f.clone()), all.join(", "))
        })
        .collect();
    format!("| {name} | {} |", cells.join(" | "))
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.rounds == 0 || args.handshakes == 0 {
        bail!("--rounds and --handshakes must be at least 1");
    }
    let (addr, tid) = spawn_server(args.frame_bytes)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(report(&args, addr, tid))
}

/// A column of a table: its header and its value for one round.
type Column<'a> = (&'a str, &'a dyn Fn(&Sample) -> f64);

/// A measurement's table: `heading`, then a row a side with each column's median and every
/// round's value ([`row`]).
fn table(
    heading: &str, sides: &[(&str, &str)], samples: Vec<Vec<Sample>>, columns: &[Column<'_>],
    digits: usize,
) {
    println!("{heading}\n");
    let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    let rule = "---|".repeat(columns.len());
    println!("| server side | {} |\n|---|{rule}", names.join(" | "));
    for ((_, name), s) in sides.iter().zip(samples) {
        let figures: Vec<Vec<f64>> = columns
            .iter()
            .map(|(_, value)| s.iter().map(value).collect())
            .collect();
        println!("{}", row(name, &figures, digits));
    }
}

async fn report(args: &Args, addr: SocketAddr, tid: u32) -> Result<()> {
    let n = args.handshakes;
    let hs = alternate(&HANDSHAKE_SIDES, args.rounds, async |side: &str| {
        round(addr, tid, &format!("/{side}/1"), n, args.concurrency, 1).await
    })
    .await?;
    let heading = format!(
        "WebSocket handshakes: {} rounds of {n} per side, {} clients at once, medians (each round)",
        args.rounds, args.concurrency
    );
    let rate = |s: &Sample| n as f64 / s.wall.as_secs_f64();
    let cpu = |s: &Sample| s.cpu_ns as f64 / n as f64 / 1e3;
    let columns: [Column<'_>; 2] = [
        ("handshakes/s", &rate),
        ("server CPU per handshake (µs)", &cpu),
    ];
    table(&heading, &HANDSHAKE_SIDES, hs, &columns, 1);
    if args.frames == 0 {
        return Ok(());
    }
    let f = args.frames;
    let fr = alternate(&FRAME_SIDES, args.rounds, async |side: &str| {
        round(addr, tid, &format!("/{side}/{f}"), 1, 1, f).await
    })
    .await?;
    let heading = format!(
        "\nText frames of {} bytes: {} rounds of one socket sending {f} per side, medians (each round)",
        args.frame_bytes, args.rounds
    );
    let cpu = |s: &Sample| s.cpu_ns as f64 / f as f64;
    let rate = |s: &Sample| f as f64 / s.wall.as_secs_f64();
    let columns: [Column<'_>; 2] = [("server CPU per frame (ns)", &cpu), ("frames/s", &rate)];
    table(&heading, &FRAME_SIDES, fr, &columns, 0);
    Ok(())
}
