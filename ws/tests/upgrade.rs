//! The handshake check of every WebSocket route: a browser only accepts the socket when
//! `Sec-WebSocket-Accept` is derived right, and a request that is not an upgrade says why.

use http::{header, Request, Response, StatusCode};
use ws::{NotAnUpgrade, Upgrade};

fn request(headers: &[(&str, &str)]) -> Request<()> {
    let mut r = Request::builder().uri("/ws");
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.body(()).unwrap()
}

#[tokio::test]
async fn the_accept_key_is_the_rfc_example_and_bad_upgrades_say_why() {
    let good = [
        ("upgrade", "WebSocket"),
        ("connection", "keep-alive, Upgrade"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    let r: Response<()> = Upgrade::check(&mut request(&good))
        .unwrap()
        .accept((), |_| async {});
    assert_eq!(r.status(), StatusCode::SWITCHING_PROTOCOLS);
    // RFC 6455 §1.3's worked example.
    assert_eq!(
        r.headers()[header::SEC_WEBSOCKET_ACCEPT],
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
    let no_key = &good[..3];
    assert_eq!(
        Upgrade::check(&mut request(no_key)).unwrap_err(),
        NotAnUpgrade::MissingKey
    );
    let old = [good[0], good[1], ("sec-websocket-version", "8"), good[3]];
    assert_eq!(
        Upgrade::check(&mut request(&old)).unwrap_err(),
        NotAnUpgrade::Headers
    );
}
