//! `hello`: a bare hyper server answering every request with `{"ok":true}`, the limit of one
//! HTTP answer on this machine, measured by `bench-queue.sh` with the same wrk settings as the
//! gateway. HTTP/1.1 keep-alive, TCP_NODELAY like the gateway, tokio's multi-thread runtime.
//!
//! ```text
//! hello [ADDR]    # default 127.0.0.1:0; prints "HELLO_ADDR 127.0.0.1:PORT" once listening
//! ```

use bytes::Bytes;
use http_body_util::Full;
use hyper::{header, server::conn::http1, service::service_fn, Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use tokio::net::TcpListener;

async fn answer(_: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut res = Response::new(Full::new(Bytes::from_static(br#"{"ok":true}"#)));
    let json = header::HeaderValue::from_static("application/json");
    res.headers_mut().insert(header::CONTENT_TYPE, json);
    Ok(res)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let listener = TcpListener::bind(&addr).await?;
    println!("HELLO_ADDR {}", listener.local_addr()?);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(
            http1::Builder::new().serve_connection(TokioIo::new(stream), service_fn(answer)),
        );
    }
}
