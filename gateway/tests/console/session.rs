//! A console session over HTTP: signing in with the admin token, the session cookie, the CSRF
//! token the page carries, and requests made as the page makes them.

use super::common::{client, send, Resp, ADMIN};
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::Value;
use std::time::Duration;

/// Signs in with `token` (and `extra` headers): the response, redirects not followed.
pub async fn sign_in(base: &str, token: &str, extra: &[(&str, &str)]) -> reqwest::Response {
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut req = no_redirects
        .post(format!("{base}/admin/sign-in"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={}", urlencode(token)));
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The `name=value` part of the Set-Cookie header, and the whole header.
pub fn set_cookie(headers: &HeaderMap) -> (String, String) {
    let h = headers.get("set-cookie").expect("a Set-Cookie");
    let h = h.to_str().unwrap().to_owned();
    (h.split(';').next().unwrap().to_owned(), h)
}

/// The cookie of a fresh sign-in (another session).
pub async fn sign_in_cookie(base: &str) -> String {
    set_cookie(sign_in(base, ADMIN, &[]).await.headers()).0
}

/// The CSRF token the console page carries.
pub async fn csrf_of(base: &str, cookie: &str) -> String {
    let page = client()
        .get(format!("{base}/admin"))
        .header("cookie", cookie);
    let page = page.send().await.unwrap().text().await.unwrap();
    let needle = "name=\"csrf-token\" content=\"";
    let at = page.find(needle).expect("the console page") + needle.len();
    page[at..at + 64].to_owned()
}

/// A console page's session: requests go with its cookie.
#[derive(Clone, Copy)]
pub struct Console<'a> {
    pub base: &'a str,
    pub cookie: &'a str,
}

fn request(
    me: Console<'_>, method: Method, path: &str, csrf: Option<&str>,
) -> reqwest::RequestBuilder {
    let r = client().request(method, format!("{}{path}", me.base));
    let r = r.header("cookie", me.cookie);
    match csrf {
        Some(t) => r.header("x-csrf-token", t),
        None => r,
    }
}

/// `GET path` as the page reads it (no CSRF token: reads need none).
pub async fn console_get(me: Console<'_>, path: &str) -> Resp {
    send(request(me, Method::GET, path, None)).await
}

/// `PUT path` of the JSON `body`, with the CSRF token `csrf` when given.
pub async fn console_put(me: Console<'_>, path: &str, csrf: Option<&str>, body: &Value) -> Resp {
    send(request(me, Method::PUT, path, csrf).json(body)).await
}

/// `POST path` (of the JSON `body`, when given), with the CSRF token `csrf` when given.
pub async fn console_post(
    me: Console<'_>, path: &str, csrf: Option<&str>, body: Option<&Value>,
) -> Resp {
    let req = request(me, Method::POST, path, csrf);
    send(match body {
        Some(b) => req.json(b),
        None => req,
    })
    .await
}
