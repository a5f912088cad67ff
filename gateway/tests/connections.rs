//! Connection-level abuse over real sockets: sockets that never send a request, idle and
//! unresponsive HTTP/2 connections, idle HTTP/1 keep-alive connections, too many WebSockets
//! for one waiting token, and request bodies that stop arriving.

mod common;

use common::http::*;
use common::*;
use futures::StreamExt;
use serde_json::Value;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Generous bound for anything the server should do "in time" (the machine may be loaded).
const BOUND: Duration = Duration::from_secs(15);

/// Reads until the server closes the connection (EOF or reset); panics if it is still open
/// after `within`. Returns what was read.
async fn read_until_closed(s: &mut TcpStream, within: Duration) -> Vec<u8> {
    let mut all = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(within, read)
        .await
        .expect("the server closed the connection in time");
    all
}

#[tokio::test]
async fn a_socket_that_sends_nothing_is_closed_and_frees_its_permit() {
    // Nothing at all, and a prefix of the HTTP/2 preface (the protocol detection waits for
    // 24 bytes): both are closed without a request ever arriving.
    for sent in [&b""[..], b"PRI * HTTP/2.0\r\n"] {
        let gw =
            TestGateway::start(&["--max-connections", "1", "--handshake-timeout-ms", "3000"]).await;
        let mut silent = TcpStream::connect(gw.addr).await.unwrap();
        silent.write_all(sent).await.unwrap();
        // While it is open it holds the only permit: another client is turned away.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut other = TcpStream::connect(gw.addr).await.unwrap();
        let _ = other
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            .await;
        assert!(
            read_until_closed(&mut other, BOUND).await.is_empty(),
            "over the limit: closed without an answer"
        );
        assert!(read_until_closed(&mut silent, BOUND).await.is_empty());
        // Its permit is back: a client is served again (retried while the closing task ends).
        let mut served = false;
        for _ in 0..50 {
            let r = client().get(gw.url("/healthz")).send().await;
            if r.is_ok_and(|r| r.status() == 200) {
                served = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(served, "the silent socket's permit was freed ({sent:?})");
        gw.shutdown().await;
    }
}

#[tokio::test]
async fn an_idle_http1_keep_alive_connection_is_closed() {
    let gw = TestGateway::start(&[
        "--idle-timeout-ms",
        "500",
        "--header-read-timeout-ms",
        "600000",
    ])
    .await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let got = read_until_closed(&mut s, BOUND).await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    gw.shutdown().await;
}

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const SETTINGS: u8 = 4;
const HEADERS: u8 = 1;
const PING: u8 = 6;
const GOAWAY: u8 = 7;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// The next frame's type, flags and stream; None when the connection is closed.
async fn next_frame(s: &mut TcpStream) -> Option<(u8, u8, u32)> {
    let mut head = [0u8; 9];
    s.read_exact(&mut head).await.ok()?;
    let len = (usize::from(head[0]) << 16) | (usize::from(head[1]) << 8) | usize::from(head[2]);
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).await.ok()?;
    let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
    Some((head[3], head[4], stream))
}

/// An HTTP/2 connection spoken by hand (so that it can stay silent, which no client library
/// does): the preface, the settings exchange and one `GET /healthz`, answered.
async fn h2_after_one_request(gw: &TestGateway) -> TcpStream {
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(PREFACE).await.unwrap();
    s.write_all(&frame(SETTINGS, 0, 0, &[])).await.unwrap();
    loop {
        let (kind, flags, _) = next_frame(&mut s).await.expect("server settings");
        if kind == SETTINGS && flags & 1 == 0 {
            break;
        }
    }
    // HPACK: :method GET, :scheme http, :path /healthz, :authority x.
    let mut block = vec![0x82, 0x86, 0x44, 8];
    block.extend_from_slice(b"/healthz");
    block.extend_from_slice(&[0x41, 1, b'x']);
    s.write_all(&frame(SETTINGS, 1, 0, &[])).await.unwrap();
    s.write_all(&frame(HEADERS, 0x4 | 0x1, 1, &block))
        .await
        .unwrap();
    loop {
        let (kind, _, stream) = next_frame(&mut s).await.expect("the response");
        if kind == HEADERS && stream == 1 {
            return s;
        }
    }
}

/// A gateway with the `settings` (flag, value) and an HTTP/2 connection to it that goes silent after one request:
/// whether the server sent a frame of `kind` before it closed the connection (which it must do
/// in time: `closes` says why).
async fn sent_before_closing(settings: &[(&str, &str)], kind: u8, closes: &str) -> bool {
    let flags: Vec<&str> = settings.iter().flat_map(|(f, v)| [*f, *v]).collect();
    let gw = TestGateway::start(&flags).await;
    let mut s = h2_after_one_request(&gw).await;
    let closed = async {
        let mut seen = false;
        while let Some((k, _, _)) = next_frame(&mut s).await {
            seen |= k == kind;
        }
        seen
    };
    let seen = tokio::time::timeout(BOUND, closed).await.expect(closes);
    gw.shutdown().await;
    seen
}

#[tokio::test]
async fn a_silent_http2_connection_is_closed_after_the_idle_timeout() {
    let idle = [
        ("--idle-timeout-ms", "500"),
        ("--http2-keepalive-interval-ms", "0"),
    ];
    let goaway = sent_before_closing(&idle, GOAWAY, "the idle connection is closed").await;
    assert!(goaway, "the server said GOAWAY before closing");
}

#[tokio::test]
async fn an_http2_peer_that_does_not_answer_pings_is_dropped() {
    let pinging = [
        ("--http2-keepalive-interval-ms", "300"),
        ("--http2-keepalive-timeout-ms", "300"),
        ("--idle-timeout-ms", "600000"),
    ];
    let pinged = sent_before_closing(&pinging, PING, "the unresponsive connection is closed").await;
    assert!(pinged, "the server pinged before giving up");
}

async fn ws_connect(
    gw: &TestGateway, token: &str,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let url = format!("ws://{}/api/v1/queue/ws?token={token}", gw.addr);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
    // The first frame: the socket is registered and serving.
    let first = tokio::time::timeout(BOUND, ws.next())
        .await
        .expect("first frame");
    assert!(matches!(first, Some(Ok(_))), "{first:?}");
    Ok(ws)
}

#[tokio::test]
async fn a_waiting_token_gets_at_most_ws_per_token_sockets() {
    let gw = TestGateway::start(&["--ws-per-token", "4"]).await;
    let base = gw.url("");
    put_event(&base, "sockets", rate(0, 10)).await;
    let alice = waiting_token(&base, "sockets", "alice").await;
    let bob = waiting_token(&base, "sockets", "bob").await;
    let mut open = Vec::new();
    for _ in 0..4 {
        open.push(ws_connect(&gw, &alice).await.expect("within the allowance"));
    }
    match ws_connect(&gw, &alice).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 429);
            assert!(resp.headers().contains_key("retry-after"));
            let body: Value =
                serde_json::from_slice(resp.body().as_deref().unwrap_or_default()).unwrap();
            assert_eq!(body["error"]["code"], "TOO_MANY_SOCKETS", "{body}");
        }
        other => panic!("the 5th socket: expected 429, got {:?}", other.map(|_| ())),
    }
    // The allowance is per token: another user is not affected.
    let _bob = ws_connect(&gw, &bob).await.expect("another token");
    // Closing one frees its slot (once the server has seen the close).
    let mut first = open.pop().unwrap();
    first.close(None).await.unwrap();
    while let Ok(Some(Ok(_))) = tokio::time::timeout(BOUND, first.next()).await {}
    let mut again = None;
    for _ in 0..50 {
        match ws_connect(&gw, &alice).await {
            Ok(ws) => {
                again = Some(ws);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert!(again.is_some(), "a closed socket gives its slot back");
    gw.shutdown().await;
}

#[tokio::test]
async fn a_body_that_stops_arriving_gets_408() {
    let gw = TestGateway::start(&["--request-timeout-ms", "500"]).await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(
        b"POST /api/v1/queue/join HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"event_id\":",
    )
    .await
    .unwrap();
    let got = read_until_closed(&mut s, BOUND).await;
    let text = String::from_utf8_lossy(&got).to_lowercase();
    assert!(text.starts_with("http/1.1 408"), "{text}");
    assert!(text.contains("\"request_timeout\""), "{text}");
    assert!(!text.contains("retry-after"), "{text}");
    // The server still serves.
    assert_eq!(send(client().get(gw.url("/healthz"))).await.status, 200);
    gw.shutdown().await;
}
