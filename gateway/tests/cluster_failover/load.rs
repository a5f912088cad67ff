//! The load of the failover scenario: joins paced per worker through every gateway, each
//! recorded as the client saw it; an admitted user polling the availability the backends
//! answer; signed payment webhooks to every gateway.

use super::{PACE, WORKERS_PER_GATEWAY};
use crate::common::backends::WEBHOOK_SECRET;
use crate::common::webhook_http::{approved_body, sign, webhook_now, webhook_post};
use base64::Engine;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// One join as the client saw it.
#[derive(Debug, Clone)]
pub struct Record {
    pub gateway: usize,
    pub event: usize,
    pub session: String,
    pub sent: Instant,
    pub done: Instant,
    /// HTTP status, or 0 when the client gave up (a hang) or the connection failed.
    pub status: u16,
    pub retry_after: bool,
    pub error_code: String,
    pub ticket: Option<u64>,
}

impl Record {
    /// The join was acknowledged.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// The ticket inside a waiting token (`kid.base64url(claims).mac`; the claims are the part
/// before the MAC in the older `base64url(claims).mac` too).
fn ticket_of(token: &str) -> Option<u64> {
    let claims = token.rsplit('.').nth(1)?;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(claims)
        .ok()?;
    serde_json::from_slice::<Value>(&raw).ok()?["t"].as_u64()
}

/// One join: (status, Retry-After present, error code, ticket). A 4xx/5xx without the JSON
/// error's message is marked `NO_JSON_ERROR`.
pub async fn join_once(
    http: &reqwest::Client, base: &str, event: &str, session: &str,
) -> (u16, bool, String, Option<u64>) {
    let r = http
        .post(format!("{base}/api/v1/queue/join"))
        .json(&json!({"event_id": event, "session_id": session}))
        .send()
        .await;
    let Ok(r) = r else {
        return (0, false, "CLIENT_GAVE_UP".into(), None);
    };
    let status = r.status().as_u16();
    let retry_after = r.headers().contains_key("retry-after");
    let body: Value = r.json().await.unwrap_or(Value::Null);
    let code = body["error"]["code"].as_str().unwrap_or("").to_owned();
    let has_message = body["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty());
    let code = if status >= 400 && !has_message {
        format!("NO_JSON_ERROR:{code}")
    } else {
        code
    };
    let ticket = body["waiting_token"].as_str().and_then(ticket_of);
    (status, retry_after, code, ticket)
}

/// The running load; [`Load::stop`] ends it and hands over what it saw.
pub struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
    records: Arc<Mutex<Vec<Record>>>,
    probes: Arc<Mutex<Vec<u16>>>,
    webhooks: Arc<Mutex<Vec<u16>>>,
}

/// What the load saw: every join, the availability probe's statuses and the webhooks'.
pub struct Seen {
    pub records: Vec<Record>,
    pub probe_statuses: Vec<u16>,
    /// The HTTP status of every webhook posted during the run (0: no answer).
    pub webhook_statuses: Vec<u16>,
}

impl Load {
    /// Starts the joins on `events` through every gateway of `bases`, the probe of the `probe`
    /// event's availability with `admission` through gateway 1, and the webhooks.
    pub fn start(
        http: &reqwest::Client, bases: &[String], events: &[String], admission: String,
    ) -> Self {
        let mut load = Self {
            stop: Arc::new(AtomicBool::new(false)),
            tasks: Vec::new(),
            records: Arc::default(),
            probes: Arc::default(),
            webhooks: Arc::default(),
        };
        for (g, base) in bases.iter().enumerate() {
            for w in 0..WORKERS_PER_GATEWAY {
                let (http, base, events) = (http.clone(), base.clone(), events.to_vec());
                let (stop, records) = (load.stop.clone(), load.records.clone());
                load.tasks.push(tokio::spawn(async move {
                    let mut n = 0usize;
                    while !stop.load(Ordering::Relaxed) {
                        let event = (n * WORKERS_PER_GATEWAY * 3 + g * WORKERS_PER_GATEWAY + w)
                            % events.len();
                        let session = format!("g{g}w{w}n{n}");
                        let sent = Instant::now();
                        let (status, retry_after, error_code, ticket) =
                            join_once(&http, &base, &events[event], &session).await;
                        records.lock().unwrap().push(Record {
                            gateway: g,
                            event,
                            session,
                            sent,
                            done: Instant::now(),
                            status,
                            retry_after,
                            error_code,
                            ticket,
                        });
                        n += 1;
                        tokio::time::sleep(PACE).await;
                    }
                }));
            }
        }
        let (h, base) = (http.clone(), bases[1].clone());
        let probes = load.probes.clone();
        load.poll(probes, move |_| {
            h.get(format!("{base}/api/v1/events/probe/availability"))
                .bearer_auth(&admission)
        });
        // Signed payment webhooks to every gateway, all through the run.
        for (g, base) in bases.iter().enumerate() {
            let (h, base) = (http.clone(), base.clone());
            let webhooks = load.webhooks.clone();
            load.poll(webhooks, move |n| {
                let id = format!("msg_fo_{g}_{n}");
                let body = approved_body(&format!("pi_{id}"), &format!("res_{id}"), 100);
                let ts = webhook_now();
                let signature = sign(WEBHOOK_SECRET, &id, ts, &body);
                webhook_post(&h, &base, &id, ts, &body, &signature)
            });
        }
        load
    }

    /// Sends `request(n)` every 50 ms until stopped, recording each answer's status in
    /// `statuses` (0: none).
    fn poll(
        &mut self, statuses: Arc<Mutex<Vec<u16>>>,
        mut request: impl FnMut(usize) -> reqwest::RequestBuilder + Send + 'static,
    ) {
        let stop = self.stop.clone();
        self.tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let s = request(n)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                statuses.lock().unwrap().push(s);
                n += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }));
    }

    /// The joins recorded so far.
    pub fn records(&self) -> Vec<Record> {
        self.records.lock().unwrap().clone()
    }

    /// Stops every task and waits for it.
    pub async fn stop(self) -> Seen {
        let Self {
            stop,
            tasks,
            records,
            probes,
            webhooks,
        } = self;
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.unwrap();
        }
        let records = records.lock().unwrap().clone();
        let take = |v: Arc<Mutex<Vec<u16>>>| v.lock().unwrap().clone();
        Seen {
            records,
            probe_statuses: take(probes),
            webhook_statuses: take(webhooks),
        }
    }
}
