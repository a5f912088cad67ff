//! The rotation's fleet: two replica slots behind the test's balancer (round robin over the
//! replicas that are up; a rolling restart takes one out, drains it and starts it again with
//! the next keys) and the load it carries: clients going through the queue again and again,
//! and holders keeping a place since step 0.

use super::{CLIENTS, EVENT, HOLD};
use crate::common::{client, free_addr, gateway_command, GatewayProcess, ADMIN};
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One replica slot behind the (test's) balancer.
struct Replica {
    process: Mutex<Option<GatewayProcess>>,
    base: Mutex<String>,
    up: AtomicBool,
    /// Requests picked for this replica and not yet answered.
    in_flight: AtomicUsize,
}

/// A request's hold on the replica it was sent to.
struct Lease<'a> {
    replica: &'a Replica,
    base: String,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        self.replica.in_flight.fetch_sub(1, SeqCst);
    }
}

/// The balancer, the keys' paths and what the clients record.
pub struct Fleet {
    replicas: [Replica; 2],
    next: AtomicUsize,
    redis_url: String,
    inventory_url: String,
    http: reqwest::Client,
    pub stop: AtomicBool,
    pub failures: Mutex<Vec<String>>,
    pub requests: AtomicU64,
    pub cycles: AtomicU64,
    /// Bumped once every replica issues under the new keys; each client records the value at
    /// the start of its cycle, so a cycle that began after the bump holds only new tokens.
    pub generation: AtomicU64,
    pub client_generation: Vec<AtomicU64>,
    /// Set to make the holders re-join (re-issue their tokens); counts those done.
    pub reissue: AtomicBool,
    pub reissued: AtomicUsize,
}

/// A real `gateway` process whose keys come from the environment, comma-separated.
fn spawn_gateway(
    redis_url: &str, inventory_url: &str, secrets: &[&str], keys: &[&str],
) -> GatewayProcess {
    let addr = free_addr();
    let mut cmd = gateway_command(addr);
    cmd.args(["--admin-token", ADMIN])
        .args(["--redis-url", redis_url, "--inventory-url", inventory_url])
        .args(["--drain-grace-seconds", "10"])
        .env("GATEWAY_TOKEN_SECRET", secrets.join(","))
        .env("GATEWAY_SIGNING_KEY", keys.join(","));
    GatewayProcess::start(&mut cmd, addr, Duration::from_secs(30))
}

/// Waits until `base` answers `/readyz` with a 2xx.
pub async fn wait_ready(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = client().get(format!("{base}/readyz")).send().await {
            if r.status().is_success() {
                return;
            }
        }
        assert!(Instant::now() < deadline, "{base} never became ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Fleet {
    /// Two replicas on the Redis at `redis_url` and the inventory at `inventory_url`, both with
    /// `secrets` and `keys`, ready.
    pub async fn start(
        redis_url: String, inventory_url: String, secrets: &[&str], keys: &[&str],
    ) -> Arc<Self> {
        let start = || {
            let p = spawn_gateway(&redis_url, &inventory_url, secrets, keys);
            Replica {
                base: Mutex::new(p.url("")),
                process: Mutex::new(Some(p)),
                up: AtomicBool::new(true),
                in_flight: AtomicUsize::new(0),
            }
        };
        let fleet = Self {
            replicas: [start(), start()],
            next: AtomicUsize::new(0),
            redis_url,
            inventory_url,
            http: client(),
            stop: AtomicBool::new(false),
            failures: Mutex::new(Vec::new()),
            requests: AtomicU64::new(0),
            cycles: AtomicU64::new(0),
            generation: AtomicU64::new(0),
            client_generation: (0..CLIENTS).map(|_| AtomicU64::new(0)).collect(),
            reissue: AtomicBool::new(false),
            reissued: AtomicUsize::new(0),
        };
        for i in 0..2 {
            wait_ready(&fleet.base(i)).await;
        }
        Arc::new(fleet)
    }

    /// A replica that is up, round-robin (so consecutive requests of a client alternate, and a
    /// token issued by one replica is checked by the other). The in-flight count is raised
    /// before `up` is read and a restart clears `up` before it waits for the count to drop,
    /// so no request is ever sent to a replica being restarted.
    async fn pick(&self) -> Lease<'_> {
        loop {
            let n = self.next.fetch_add(1, SeqCst);
            for i in 0..2 {
                let r = &self.replicas[(n + i) % 2];
                r.in_flight.fetch_add(1, SeqCst);
                if r.up.load(SeqCst) {
                    let base = r.base.lock().unwrap().clone();
                    return Lease { replica: r, base };
                }
                r.in_flight.fetch_sub(1, SeqCst);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Sends `build(base)` to a replica that is up; a transport error or a non-2xx answer is
    /// recorded as a failure (and None returned).
    async fn call(
        &self, what: &str, build: impl FnOnce(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Option<Value> {
        let lease = self.pick().await;
        self.requests.fetch_add(1, SeqCst);
        let res = build(&self.http, &lease.base).send().await;
        let outcome = match res {
            Ok(r) => {
                let status = r.status();
                let bytes = r.bytes().await.unwrap_or_default();
                let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                if status.is_success() {
                    Ok(body)
                } else {
                    Err(format!("{status} {body}"))
                }
            }
            Err(e) => Err(format!("transport: {e}")),
        };
        drop(lease);
        outcome
            .map_err(|e| self.failures.lock().unwrap().push(format!("{what}: {e}")))
            .ok()
    }

    /// [`Fleet::call`] of `method path` with `token` as the bearer.
    async fn authed(&self, what: &str, method: Method, path: &str, token: &str) -> Option<Value> {
        self.call(what, |h, b| {
            h.request(method, format!("{b}{path}")).bearer_auth(token)
        })
        .await
    }

    /// [`Fleet::call`] of a join of `event` by `session`.
    async fn join(&self, what: &str, event: &str, session: &str) -> Option<Value> {
        self.call(what, |h, b| {
            h.post(format!("{b}/api/v1/queue/join"))
                .json(&json!({"event_id": event, "session_id": session}))
        })
        .await
    }

    fn fail(&self, why: String) {
        self.failures.lock().unwrap().push(why);
    }

    /// Takes replica `i` out of the rotation, drains and stops it, starts it again with
    /// `secrets` and `keys`, and puts it back once it is ready.
    pub async fn restart(self: &Arc<Self>, i: usize, secrets: &[&str], keys: &[&str]) {
        let r = &self.replicas[i];
        r.up.store(false, SeqCst);
        while r.in_flight.load(SeqCst) > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut old = r.process.lock().unwrap().take().expect("running");
        old.signal("TERM");
        tokio::task::spawn_blocking(move || {
            let _ = old.child.wait();
        })
        .await
        .unwrap();
        let (redis, inventory) = (self.redis_url.clone(), self.inventory_url.clone());
        let secrets: Vec<String> = secrets.iter().map(|s| s.to_string()).collect();
        let keys: Vec<String> = keys.iter().map(|s| s.to_string()).collect();
        let p = tokio::task::spawn_blocking(move || {
            let s: Vec<&str> = secrets.iter().map(String::as_str).collect();
            let k: Vec<&str> = keys.iter().map(String::as_str).collect();
            spawn_gateway(&redis, &inventory, &s, &k)
        })
        .await
        .unwrap();
        let base = p.url("");
        wait_ready(&base).await;
        *r.base.lock().unwrap() = base;
        *r.process.lock().unwrap() = Some(p);
        r.up.store(true, SeqCst);
    }

    /// Waits until the clients completed `n` more cycles (so the step ran under load).
    pub async fn progress(&self, n: u64) {
        let target = self.cycles.load(SeqCst) + n;
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.cycles.load(SeqCst) < target {
            assert!(Instant::now() < deadline, "the clients made no progress");
            assert!(
                self.failures.lock().unwrap().is_empty(),
                "failed requests: {:?}",
                self.failures.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn base(&self, i: usize) -> String {
        self.replicas[i].base.lock().unwrap().clone()
    }
}

/// One client: join, poll until READY, enter, use the admission (forwarded API and origin
/// check), leave; again and again until stopped.
pub async fn client_loop(fleet: Arc<Fleet>, c: usize) {
    let mut n = 0u64;
    while !fleet.stop.load(SeqCst) {
        fleet.client_generation[c].store(fleet.generation.load(SeqCst), SeqCst);
        n += 1;
        let session = format!("client-{c}-{n}");
        let Some(j) = fleet.join("join", EVENT, &session).await else {
            continue;
        };
        let token = j["waiting_token"].as_str().unwrap_or_default().to_owned();
        let mut ready = j["status"] == "READY";
        while !ready && !fleet.stop.load(SeqCst) {
            let status = fleet.authed("status", Method::GET, "/api/v1/queue/status", &token);
            let Some(s) = status.await else {
                break;
            };
            ready = s["status"] == "READY";
            if s["status"] == "EXPIRED" {
                fleet.fail(format!("{session} expired"));
                break;
            }
            if !ready {
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
        if !ready {
            continue;
        }
        let entered = fleet.authed("enter", Method::POST, "/api/v1/queue/enter", &token);
        let Some(e) = entered.await else {
            continue;
        };
        let jwt = e["reservation_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let availability = format!("/api/v1/events/{EVENT}/availability");
        fleet
            .authed("availability", Method::GET, &availability, &jwt)
            .await;
        if let Some(jwks) = fleet
            .call("jwks", |h, b| h.get(format!("{b}/.well-known/jwks.json")))
            .await
        {
            if let Err(e) = super::origin_verifies(&jwks, &jwt, EVENT) {
                fleet.fail(format!("origin: {e}"));
            }
        }
        fleet
            .authed("leave", Method::DELETE, "/api/v1/queue", &token)
            .await;
        fleet.cycles.fetch_add(1, SeqCst);
    }
}

/// A holder's join (a first one, or a re-join): its waiting token and position.
async fn holder_join(fleet: &Fleet, session: &str) -> (String, u64) {
    let j = fleet
        .join("holder join", HOLD, session)
        .await
        .expect("holder joins");
    (
        j["waiting_token"].as_str().unwrap().to_owned(),
        j["position"].as_u64().unwrap(),
    )
}

/// One holder: a place in the `hold` event since step 0, polled until stopped; re-joins (same
/// session, same place, a token under the current secret) when told to. Returns the first
/// token, the re-issued one and the place's position.
pub async fn holder_loop(fleet: Arc<Fleet>, h: usize) -> (String, String, u64) {
    let session = format!("holder-{h}");
    let (first, position) = holder_join(&fleet, &session).await;
    let mut token = first.clone();
    let mut reissued = false;
    while !fleet.stop.load(SeqCst) {
        if fleet.reissue.load(SeqCst) && !reissued {
            let (t, p) = holder_join(&fleet, &session).await;
            assert_eq!(p, position, "a re-join keeps the place");
            token = t;
            reissued = true;
            fleet.reissued.fetch_add(1, SeqCst);
        }
        let status = fleet.authed("holder status", Method::GET, "/api/v1/queue/status", &token);
        if let Some(s) = status.await {
            if s["position"].as_u64() != Some(position) {
                fleet.fail(format!("{session} moved: {s}"));
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (first, token, position)
}
