//! Rotating the waiting-token secret and the admission signing key across two real `gateway`
//! processes on one redis-server, under load, with the runbook's steps (docs/operations.md):
//!
//! 0. both replicas have `[old]`;
//! 1. each replica in turn gets `[old, new]`: the new key verifies (and is published in the
//!    JWKS) before anything is signed with it;
//! 2. each replica in turn gets `[new, old]`: the new key signs, the old still verifies;
//! 3. the tokens issued under the old key are re-issued (clients re-join with their session);
//! 4. each replica in turn gets `[new]`.
//!
//! Throughout, clients join, poll, enter, check their admission on the forwarded API and
//! against the JWKS as an origin does, and leave, round-robin over the replicas that are up
//! (a replica is taken out of the rotation, drained and restarted with the next keys, as a
//! rolling restart behind a balancer does), while holders poll a place kept since step 0.
//! Not one request may fail. After step 2 both old and new tokens verify on both replicas;
//! after step 4 the old ones are refused (`401 INVALID_TOKEN`, `403 FORBIDDEN`) and the JWKS
//! publishes only the new key.

mod common;

use common::backends::Backends;
use common::*;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use queue::token::AdmissionSigner;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use testkit::RedisServer;

const OLD_SECRET: &str = "the old waiting-token secret: 32 b";
const NEW_SECRET: &str = "the new waiting-token secret: 32 b";
/// The new Ed25519 key (the old one is `common::PEM`); given to the gateways as a file path.
const NEW_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIKexMeaW2w4eLd1f5hwrGsyIFqZvTPA3lv3u2+oThQpk\n-----END PRIVATE KEY-----\n";
/// The event the clients go through (admits quickly).
const EVENT: &str = "rot";
/// The event the holders wait in (admits nobody, so their places stay put).
const HOLD: &str = "hold";
const CLIENTS: usize = 5;
const HOLDERS: usize = 3;
/// Completed client cycles to wait for after each step, so that every step is under load.
const CYCLES_PER_STEP: u64 = 4;

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
struct Fleet {
    replicas: [Replica; 2],
    next: AtomicUsize,
    redis_url: String,
    inventory_url: String,
    http: reqwest::Client,
    stop: AtomicBool,
    failures: Mutex<Vec<String>>,
    requests: AtomicU64,
    cycles: AtomicU64,
    /// Bumped once every replica issues under the new keys; each client records the value at
    /// the start of its cycle, so a cycle that began after the bump holds only new tokens.
    generation: AtomicU64,
    client_generation: Vec<AtomicU64>,
    /// Set to make the holders re-join (re-issue their tokens); counts those done.
    reissue: AtomicBool,
    reissued: AtomicUsize,
}

/// A real `gateway` process whose keys come from the environment, comma-separated.
fn spawn_gateway(
    redis_url: &str,
    inventory_url: &str,
    secrets: &[&str],
    keys: &[&str],
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

impl Fleet {
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
        &self,
        what: &str,
        build: impl FnOnce(&reqwest::Client, &str) -> reqwest::RequestBuilder,
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

    /// Takes replica `i` out of the rotation, drains and stops it, starts it again with
    /// `secrets` and `keys`, and puts it back once it is ready.
    async fn restart(self: &Arc<Self>, i: usize, secrets: &[&str], keys: &[&str]) {
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
    async fn progress(&self, n: u64) {
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

    fn base(&self, i: usize) -> String {
        self.replicas[i].base.lock().unwrap().clone()
    }
}

async fn wait_ready(base: &str) {
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

/// Verifies an admission as an origin does: the key the header's `kid` names in `jwks`.
fn origin_verifies(jwks: &Value, token: &str, event: &str) -> Result<(), String> {
    let kid = jsonwebtoken::decode_header(token)
        .map_err(|e| e.to_string())?
        .kid
        .ok_or("no kid")?;
    let key = jwks["keys"]
        .as_array()
        .and_then(|ks| ks.iter().find(|k| k["kid"] == kid.as_str()))
        .ok_or_else(|| format!("kid {kid} not in the JWKS {jwks}"))?;
    let dk = DecodingKey::from_ed_components(key["x"].as_str().unwrap_or_default())
        .map_err(|e| e.to_string())?;
    let mut v = Validation::new(Algorithm::EdDSA);
    v.set_audience(&[event]);
    v.set_issuer(&["admission-gateway"]);
    jsonwebtoken::decode::<Value>(token, &dk, &v)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn kid_of(jwt: &str) -> String {
    jsonwebtoken::decode_header(jwt).unwrap().kid.unwrap()
}

async fn jwks_kids(base: &str) -> Vec<String> {
    let r = send(client().get(format!("{base}/.well-known/jwks.json"))).await;
    assert_eq!(r.status, 200);
    r.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

async fn availability(base: &str, jwt: &str) -> Resp {
    send(
        client()
            .get(format!("{base}/api/v1/events/{EVENT}/availability"))
            .bearer_auth(jwt),
    )
    .await
}

/// One client: join, poll until READY, enter, use the admission (forwarded API and origin
/// check), leave; again and again until stopped.
async fn client_loop(fleet: Arc<Fleet>, c: usize) {
    let mut n = 0u64;
    while !fleet.stop.load(SeqCst) {
        fleet.client_generation[c].store(fleet.generation.load(SeqCst), SeqCst);
        n += 1;
        let session = format!("client-{c}-{n}");
        let Some(j) = fleet
            .call("join", |h, b| {
                h.post(format!("{b}/api/v1/queue/join"))
                    .json(&json!({"event_id": EVENT, "session_id": session}))
            })
            .await
        else {
            continue;
        };
        let token = j["waiting_token"].as_str().unwrap_or_default().to_owned();
        let mut ready = j["status"] == "READY";
        while !ready && !fleet.stop.load(SeqCst) {
            let Some(s) = fleet
                .call("status", |h, b| {
                    h.get(format!("{b}/api/v1/queue/status"))
                        .bearer_auth(&token)
                })
                .await
            else {
                break;
            };
            ready = s["status"] == "READY";
            if s["status"] == "EXPIRED" {
                fleet
                    .failures
                    .lock()
                    .unwrap()
                    .push(format!("{session} expired"));
                break;
            }
            if !ready {
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
        if !ready {
            continue;
        }
        let Some(e) = fleet
            .call("enter", |h, b| {
                h.post(format!("{b}/api/v1/queue/enter"))
                    .bearer_auth(&token)
            })
            .await
        else {
            continue;
        };
        let jwt = e["reservation_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        fleet
            .call("availability", |h, b| {
                h.get(format!("{b}/api/v1/events/{EVENT}/availability"))
                    .bearer_auth(&jwt)
            })
            .await;
        if let Some(jwks) = fleet
            .call("jwks", |h, b| h.get(format!("{b}/.well-known/jwks.json")))
            .await
        {
            if let Err(e) = origin_verifies(&jwks, &jwt, EVENT) {
                fleet.failures.lock().unwrap().push(format!("origin: {e}"));
            }
        }
        fleet
            .call("leave", |h, b| {
                h.delete(format!("{b}/api/v1/queue")).bearer_auth(&token)
            })
            .await;
        fleet.cycles.fetch_add(1, SeqCst);
    }
}

/// One holder: a place in the `hold` event since step 0, polled until stopped; re-joins (same
/// session, same place, a token under the current secret) when told to. Returns the first
/// token, the re-issued one and the place's position.
async fn holder_loop(fleet: Arc<Fleet>, h: usize) -> (String, String, u64) {
    let session = format!("holder-{h}");
    let join = |fleet: Arc<Fleet>, session: String| async move {
        let j = fleet
            .call("holder join", |c, b| {
                c.post(format!("{b}/api/v1/queue/join"))
                    .json(&json!({"event_id": HOLD, "session_id": session}))
            })
            .await
            .expect("holder joins");
        (
            j["waiting_token"].as_str().unwrap().to_owned(),
            j["position"].as_u64().unwrap(),
        )
    };
    let (first, position) = join(fleet.clone(), session.clone()).await;
    let mut token = first.clone();
    let mut reissued = false;
    while !fleet.stop.load(SeqCst) {
        if fleet.reissue.load(SeqCst) && !reissued {
            let (t, p) = join(fleet.clone(), session.clone()).await;
            assert_eq!(p, position, "a re-join keeps the place");
            token = t;
            reissued = true;
            fleet.reissued.fetch_add(1, SeqCst);
        }
        if let Some(s) = fleet
            .call("holder status", |c, b| {
                c.get(format!("{b}/api/v1/queue/status"))
                    .bearer_auth(&token)
            })
            .await
        {
            if s["position"].as_u64() != Some(position) {
                fleet
                    .failures
                    .lock()
                    .unwrap()
                    .push(format!("{session} moved: {s}"));
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (first, token, position)
}

/// A place on `EVENT` taken straight to its admission on replica `base`: (waiting token, JWT).
async fn admission_on(base: &str, session: &str) -> (String, String) {
    let j = join(base, EVENT, session).await;
    assert_eq!(j.status, 201, "{}", j.body);
    let token = j.body["waiting_token"].as_str().unwrap().to_owned();
    wait_status(base, &token, "READY", Duration::from_secs(30)).await;
    let e = enter(base, &token).await;
    assert_eq!(e.status, 200, "{}", e.body);
    (
        token,
        e.body["reservation_token"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_across_replicas_under_load_without_a_failed_request() {
    let redis = RedisServer::start().unwrap();
    let backends = Backends::start(None, &[(EVENT, 1000)]).await;
    let new_pem_path =
        std::env::temp_dir().join(format!("key-rotation-{}.pem", std::process::id()));
    std::fs::write(&new_pem_path, NEW_PEM).unwrap();
    let new_key = new_pem_path.to_str().unwrap().to_owned();
    let old_key = PEM;
    let old_kid = AdmissionSigner::from_pem(PEM).unwrap().kid().to_owned();
    let new_kid = AdmissionSigner::from_pem(NEW_PEM).unwrap().kid().to_owned();

    let start = |secrets: &[&str], keys: &[&str]| {
        let p = spawn_gateway(&redis.url(), &backends.url(), secrets, keys);
        Replica {
            base: Mutex::new(p.url("")),
            process: Mutex::new(Some(p)),
            up: AtomicBool::new(true),
            in_flight: AtomicUsize::new(0),
        }
    };
    let fleet = Arc::new(Fleet {
        replicas: [
            start(&[OLD_SECRET], &[old_key]),
            start(&[OLD_SECRET], &[old_key]),
        ],
        next: AtomicUsize::new(0),
        redis_url: redis.url(),
        inventory_url: backends.url(),
        http: client(),
        stop: AtomicBool::new(false),
        failures: Mutex::new(Vec::new()),
        requests: AtomicU64::new(0),
        cycles: AtomicU64::new(0),
        generation: AtomicU64::new(0),
        client_generation: (0..CLIENTS).map(|_| AtomicU64::new(0)).collect(),
        reissue: AtomicBool::new(false),
        reissued: AtomicUsize::new(0),
    });
    let (a, b) = (fleet.base(0), fleet.base(1));
    wait_ready(&a).await;
    wait_ready(&b).await;
    let r = put_event(
        &a,
        EVENT,
        json!({"admit_per_second": 200, "max_active": 100000}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = put_event(&a, HOLD, json!({"admit_per_second": 0, "max_active": 10})).await;
    assert_eq!(r.status, 201, "{}", r.body);

    // Step 0: a waiting token and an admission under the old keys, kept for the checks.
    let (old_token, old_jwt) = admission_on(&a, "before-rotation").await;
    assert_eq!(kid_of(&old_jwt), old_kid);
    assert_eq!(jwks_kids(&b).await, vec![old_kid.clone()]);

    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| tokio::spawn(client_loop(fleet.clone(), c)))
        .collect();
    let holders: Vec<_> = (0..HOLDERS)
        .map(|h| tokio::spawn(holder_loop(fleet.clone(), h)))
        .collect();
    fleet.progress(CYCLES_PER_STEP).await;

    // Step 1: the new keys verify everywhere before anything is signed with them.
    fleet
        .restart(0, &[OLD_SECRET, NEW_SECRET], &[old_key, &new_key])
        .await;
    fleet.progress(CYCLES_PER_STEP).await;
    fleet
        .restart(1, &[OLD_SECRET, NEW_SECRET], &[old_key, &new_key])
        .await;
    fleet.progress(CYCLES_PER_STEP).await;
    for i in 0..2 {
        let base = fleet.base(i);
        assert_eq!(jwks_kids(&base).await, [old_kid.clone(), new_kid.clone()]);
        let (_, jwt) = admission_on(&base, &format!("step1-{i}")).await;
        assert_eq!(kid_of(&jwt), old_kid, "the old key still signs");
    }

    // Step 2: the new keys sign, one replica after the other; the old ones still verify.
    fleet
        .restart(0, &[NEW_SECRET, OLD_SECRET], &[&new_key, old_key])
        .await;
    fleet.progress(CYCLES_PER_STEP).await;
    fleet
        .restart(1, &[NEW_SECRET, OLD_SECRET], &[&new_key, old_key])
        .await;
    fleet.progress(CYCLES_PER_STEP).await;
    let (a, b) = (fleet.base(0), fleet.base(1));
    let (new_token, new_jwt) = admission_on(&a, "step2").await;
    assert_eq!(kid_of(&new_jwt), new_kid, "the new key signs");
    for base in [&a, &b] {
        assert_eq!(jwks_kids(base).await, [new_kid.clone(), old_kid.clone()]);
        for jwt in [&old_jwt, &new_jwt] {
            let r = availability(base, jwt).await;
            assert_eq!(r.status, 200, "an admission under either key: {}", r.body);
        }
        for token in [&new_token, &old_token] {
            assert_eq!(status(base, token).await.status, 200);
        }
    }

    // Step 3: every token still in use is re-issued under the new keys.
    fleet.generation.fetch_add(1, SeqCst);
    fleet.reissue.store(true, SeqCst);
    let deadline = Instant::now() + Duration::from_secs(120);
    while fleet.reissued.load(SeqCst) < HOLDERS
        || fleet.client_generation.iter().any(|g| g.load(SeqCst) < 1)
    {
        assert!(Instant::now() < deadline, "tokens were not re-issued");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    fleet.progress(CYCLES_PER_STEP).await;

    // Step 4: the old keys go, one replica after the other.
    fleet.restart(0, &[NEW_SECRET], &[&new_key]).await;
    fleet.progress(CYCLES_PER_STEP).await;
    fleet.restart(1, &[NEW_SECRET], &[&new_key]).await;
    fleet.progress(CYCLES_PER_STEP).await;

    fleet.stop.store(true, SeqCst);
    for c in clients {
        c.await.unwrap();
    }
    let mut held = Vec::new();
    for h in holders {
        held.push(h.await.unwrap());
    }
    let failures = fleet.failures.lock().unwrap().clone();
    eprintln!(
        "key rotation: {} requests, {} client cycles, {} failures",
        fleet.requests.load(SeqCst),
        fleet.cycles.load(SeqCst),
        failures.len()
    );
    assert!(failures.is_empty(), "failed requests: {failures:?}");

    // Now the old keys are refused everywhere, the new ones accepted.
    let (a, b) = (fleet.base(0), fleet.base(1));
    for base in [&a, &b] {
        assert_eq!(jwks_kids(base).await, vec![new_kid.clone()]);
        let r = availability(base, &old_jwt).await;
        assert_eq!((r.status, r.code()), (403, "FORBIDDEN"), "{}", r.body);
        assert_eq!(availability(base, &new_jwt).await.status, 200);
        for (old, new, position) in &held {
            let r = status(base, old).await;
            assert_eq!((r.status, r.code()), (401, "INVALID_TOKEN"), "{}", r.body);
            let r = status(base, new).await;
            assert_eq!((r.status, &r.body["position"]), (200, &json!(position)));
        }
        let r = status(base, &old_token).await;
        assert_eq!((r.status, r.code()), (401, "INVALID_TOKEN"));
        assert_eq!(status(base, &new_token).await.status, 200);
    }
    let _ = std::fs::remove_file(&new_pem_path);
}

#[test]
fn key_flags_repeat_and_split_on_commas() {
    let c = gateway::Config::from_args_no_env([
        "gateway",
        "--token-secret",
        NEW_SECRET,
        "--token-secret",
        "a second secret,a third secret",
        "--signing-key",
        PEM,
        "--signing-key",
        "/etc/gateway/signing/old.pem",
    ])
    .unwrap();
    assert_eq!(
        c.tokens.token_secret,
        [NEW_SECRET, "a second secret", "a third secret"]
    );
    assert_eq!(c.tokens.signing_key, [PEM, "/etc/gateway/signing/old.pem"]);
    let none = gateway::Config::from_args_no_env(["gateway"]).unwrap();
    assert!(none.tokens.token_secret.is_empty() && none.tokens.signing_key.is_empty());
}

#[tokio::test]
async fn a_bad_key_in_the_list_stops_the_start_and_is_named() {
    let build = |args: &[&str]| {
        let mut all = vec!["gateway", "--metrics-listen", ""];
        all.extend_from_slice(args);
        let c = gateway::Config::from_args_no_env(all).unwrap();
        async move {
            gateway::Gateway::build(&c)
                .await
                .err()
                .map(|e| e.to_string())
        }
    };
    let e = build(&[
        "--signing-key",
        PEM,
        "--signing-key",
        "/nonexistent/next.pem",
    ])
    .await
    .expect("a missing key file is an error");
    assert!(
        e.contains("--signing-key #2") && e.contains("/nonexistent/next.pem"),
        "{e}"
    );
    let e = build(&["--token-secret", NEW_SECRET, "--token-secret", "short"])
        .await
        .expect("a short secret is an error");
    assert!(
        e.contains("#2") && e.contains("commas") && !e.contains(NEW_SECRET),
        "{e}"
    );
    assert!(
        build(&["--token-secret", NEW_SECRET, "--token-secret", OLD_SECRET])
            .await
            .is_none()
    );
}
