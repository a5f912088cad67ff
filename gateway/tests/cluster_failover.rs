//! A Redis Cluster primary killed under load (issue 7): a 3-primary, 3-replica cluster of real
//! `redis-server`s, the backends on it, three real `gateway` processes, twelve events spread
//! over the three primaries and a steady join load through every gateway. One primary gets
//! SIGKILL at the worst moment, its replica 1 s behind (frozen and its link dropped for that
//! long, as a slow replica or a broken link would be); Redis promotes the replica, and the killed node is restarted
//! (as an orchestrator would) once the promotion is seen, so that it rejoins as the new
//! primary's replica.
//!
//! With `--redis-wait-replicas 1` the test asserts what a user can rely on: every answer during
//! the outage is a 2xx or a 503 with `Retry-After` and the JSON error (never a 500, never a
//! hang), the killed primary's events serve again within 10 s on every gateway while the other
//! events keep serving, no acknowledged join is lost and places keep the order in which joins
//! were acknowledged, and the admission rate is back within 5 % of the configuration. Without
//! WAIT the same scenario is run and the lost acknowledged joins are printed, not asserted
//! (asynchronous replication loses what the replica had not received, which varies per run).
//!
//! Webhook intake and the backends share the one Redis layer's per-primary connections too: the
//! killed primary is chosen to own neither the webhook inbox's slot nor the backends' probe
//! event, and signed webhooks posted to every gateway, and the availability forwarded to the
//! backends, must get a 2xx throughout the outage.
//!
//! The figures are printed with `--nocapture`:
//! `cargo test -p gateway --test cluster_failover -- --nocapture --test-threads 1`.

mod common;

use base64::Engine;
use common::backends::WEBHOOK_SECRET;
use common::*;
use serde_json::json;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use testkit::RedisCluster;

/// Two scenarios each start 6 Redis nodes and 3 gateways: run them one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const EVENTS_PER_PRIMARY: usize = 4;
const ADMIT_PER_SECOND: u64 = 10;
const WORKERS_PER_GATEWAY: usize = 3;
/// Pause between two joins of one worker: 9 workers give about 250 joins/s in all, about 20/s
/// per event, so every queue grows faster than the 10/s admitted and never runs dry.
const PACE: Duration = Duration::from_millis(30);
/// The gateways' request timeout; the client waits a second longer before calling it a hang.
const REQUEST_TIMEOUT_MS: u64 = 3000;
const RECOVERY_LIMIT: Duration = Duration::from_secs(10);
const RATE_WINDOW: Duration = Duration::from_secs(8);
/// How far the killed primary's replica is behind at the kill.
const LAG: Duration = Duration::from_secs(1);

/// One join as the client saw it.
#[derive(Debug, Clone)]
struct Record {
    gateway: usize,
    event: usize,
    session: String,
    sent: Instant,
    done: Instant,
    /// HTTP status, or 0 when the client gave up (a hang) or the connection failed.
    status: u16,
    retry_after: bool,
    error_code: String,
    ticket: Option<u64>,
}

/// The ticket inside a waiting token (`kid.base64url(claims).mac`; the claims are the part
/// before the MAC in the older `base64url(claims).mac` too).
fn ticket_of(token: &str) -> Option<u64> {
    let claims = token.rsplit('.').nth(1)?;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(claims)
        .ok()?;
    serde_json::from_slice::<serde_json::Value>(&raw).ok()?["t"].as_u64()
}

async fn join_once(
    http: &reqwest::Client,
    base: &str,
    event: &str,
    session: &str,
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
    let body: serde_json::Value = r.json().await.unwrap_or(serde_json::Value::Null);
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

/// Twelve event ids, four on each primary (by the slot of their hash tag).
fn events_on_every_primary(cluster: &RedisCluster) -> (Vec<String>, Vec<u16>) {
    let topo = cluster.topology().unwrap();
    let mut per_primary: BTreeMap<u16, Vec<String>> = BTreeMap::new();
    for i in 0.. {
        let id = format!("fo-{i}");
        let slot = cluster.keyslot(&format!("{{{id}}}")).unwrap();
        let owner = topo.iter().find(|n| n.primary && n.serves(slot)).unwrap();
        let list = per_primary.entry(owner.port).or_default();
        if list.len() < EVENTS_PER_PRIMARY {
            list.push(id);
        }
        if per_primary.len() == 3 && per_primary.values().all(|l| l.len() == EVENTS_PER_PRIMARY) {
            break;
        }
    }
    let mut ids = Vec::new();
    let mut owners = Vec::new();
    for (port, list) in per_primary {
        for id in list {
            ids.push(id);
            owners.push(port);
        }
    }
    (ids, owners)
}

async fn admitted_totals(
    http: &reqwest::Client,
    base: &str,
    events: &[String],
) -> Vec<(u64, Instant)> {
    let mut out = Vec::new();
    for ev in events {
        let t0 = Instant::now();
        let r = http
            .get(format!("{base}/admin/v1/events/{ev}"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .expect("admin info");
        let body: serde_json::Value = r.json().await.unwrap();
        let n = body["stats"]["admitted_total"].as_u64().expect("stats");
        // The count is as of some instant during the request: take its middle.
        out.push((n, t0 + t0.elapsed() / 2));
    }
    out
}

/// The backends' gRPC services on the cluster (their store is the Redis one), on a free port.
async fn backends_on(url: &str, event: &str) -> (String, tokio::sync::oneshot::Sender<()>) {
    let store = services::RedisStore::connect(&services::RedisOptions::new(url))
        .await
        .unwrap();
    let backends = services::Backends::new(
        Arc::new(store),
        Arc::new(services::SystemClock),
        services::Settings::default(),
        None,
    );
    backends.seed(event, 100, 2500, "USD").await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(services::serve(
        backends,
        listener,
        Duration::from_secs(1),
        async {
            let _ = rx.await;
        },
    ));
    (format!("http://{addr}"), tx)
}

/// What one run measured.
struct Report {
    records: Vec<Record>,
    victim_events: HashSet<usize>,
    kill_at: Instant,
    promoted_after: Duration,
    recovery: Vec<Option<Duration>>,
    lost: Vec<Record>,
    order_violations: usize,
    rates: Vec<f64>,
    probe_statuses: Vec<u16>,
    /// The HTTP status of every webhook posted during the run (0: no answer).
    webhook_statuses: Vec<u16>,
}

async fn scenario(wait_replicas: u32) -> Report {
    let cluster = RedisCluster::start(3, 1).unwrap();
    cluster.wait_for_replicas().unwrap();
    for n in &cluster.nodes {
        // As in deploy/: the slots of live primaries keep serving while one primary is down
        // (with the default, `yes`, the whole cluster answers CLUSTERDOWN until the promotion).
        testkit::raw_command(n.port(), "CONFIG SET cluster-require-full-coverage no").unwrap();
        // A restarted node resyncs at once instead of after the 5 s default delay.
        testkit::raw_command(n.port(), "CONFIG SET repl-diskless-sync-delay 0").unwrap();
    }
    let url = cluster.url();
    let (events, owners) = events_on_every_primary(&cluster);
    let (backends_url, _stop_backends) = backends_on(&url, "probe").await;
    let wait = wait_replicas.to_string();
    let timeout = REQUEST_TIMEOUT_MS.to_string();
    let gws: Vec<GatewayProcess> = (0..3)
        .map(|_| {
            GatewayProcess::spawn(&[
                "--redis-url",
                &url,
                "--redis-wait-replicas",
                &wait,
                "--redis-wait-timeout-ms",
                "250",
                "--request-timeout-ms",
                &timeout,
                "--reservation-url",
                &backends_url,
                "--inventory-url",
                &backends_url,
                "--payment-url",
                &backends_url,
                "--webhook-secret",
                WEBHOOK_SECRET,
            ])
        })
        .collect();
    let bases: Vec<String> = gws.iter().map(|g| g.url("")).collect();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(REQUEST_TIMEOUT_MS + 1000))
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let config = json!({
        "admit_per_second": ADMIT_PER_SECOND,
        "max_active": 1_000_000,
        "ready_timeout_seconds": 3600,
        "idle_timeout_seconds": 3600,
    });
    for ev in &events {
        let r = put_event(&bases[0], ev, config.clone()).await;
        assert_eq!(r.status, 201, "{ev}: {}", r.body);
    }
    // An admitted user of the `probe` event polls the availability forwarded to the backends.
    put_event(
        &bases[0],
        "probe",
        json!({"admit_per_second": 100, "max_active": 1000}),
    )
    .await;
    let j = join(&bases[0], "probe", "prober").await;
    let token = j.body["waiting_token"].as_str().unwrap().to_owned();
    wait_status(&bases[0], &token, "READY", Duration::from_secs(10)).await;
    let grant = enter(&bases[0], &token).await;
    let admission = grant.body["reservation_token"].as_str().unwrap().to_owned();

    let stop = Arc::new(AtomicBool::new(false));
    let records = Arc::new(Mutex::new(Vec::<Record>::new()));
    let mut tasks = Vec::new();
    for (g, gateway) in bases.iter().enumerate() {
        for w in 0..WORKERS_PER_GATEWAY {
            let (http, base, events) = (http.clone(), gateway.clone(), events.clone());
            let (stop, records) = (stop.clone(), records.clone());
            tasks.push(tokio::spawn(async move {
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let event = (n * WORKERS_PER_GATEWAY * 3 + g * WORKERS_PER_GATEWAY + w) % 12;
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
    let probe_statuses = Arc::new(Mutex::new(Vec::new()));
    tasks.push(tokio::spawn({
        let (http, base, stop) = (http.clone(), bases[1].clone(), stop.clone());
        let statuses = probe_statuses.clone();
        async move {
            while !stop.load(Ordering::Relaxed) {
                let s = http
                    .get(format!("{base}/api/v1/events/probe/availability"))
                    .bearer_auth(&admission)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                statuses.lock().unwrap().push(s);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }));

    // Signed payment webhooks to every gateway, all through the run.
    let webhook_statuses = Arc::new(Mutex::new(Vec::new()));
    for (g, base) in bases.iter().enumerate() {
        let (http, base, stop) = (http.clone(), base.clone(), stop.clone());
        let statuses = webhook_statuses.clone();
        tasks.push(tokio::spawn(async move {
            let signer = webhooks::StandardWebhooks::new(&[WEBHOOK_SECRET]).unwrap();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let id = format!("msg_fo_{g}_{n}");
                n += 1;
                let body = json!({
                    "type": "payment.approved",
                    "timestamp": "2026-11-24T08:00:00Z",
                    "data": {"payment_intent_id": format!("pi_{id}"), "reservation_id": format!("res_{id}"), "amount_cents": 100, "currency": "USD"}
                })
                .to_string();
                let ts = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs() as i64;
                let s = http
                    .post(format!("{base}/webhooks/payments"))
                    .header("content-type", "application/json")
                    .header("webhook-id", &id)
                    .header("webhook-timestamp", ts.to_string())
                    .header("webhook-signature", signer.sign(&id, ts, body.as_bytes()))
                    .body(body)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                statuses.lock().unwrap().push(s);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }));
    }

    tokio::time::sleep(Duration::from_secs(3)).await;
    // Kill a primary that owns events but neither the webhook inbox nor the probe event's
    // backend keys, with every worker mid-flight.
    let topo = cluster.topology().unwrap();
    let owner_of = |key: &str| {
        let slot = cluster.keyslot(key).unwrap();
        topo.iter()
            .find(|n| n.primary && n.serves(slot))
            .unwrap()
            .port
    };
    let spared = [owner_of("wh:{payments}:inbox"), owner_of("bk:{probe}:ev")];
    let first = (0..events.len())
        .find(|&i| !spared.contains(&owners[i]))
        .expect("a primary without the inbox and the probe");
    let victim_port = owners[first];
    let victim = cluster.index_of(victim_port).unwrap();
    let victim_id = cluster
        .topology()
        .unwrap()
        .into_iter()
        .find(|n| n.port == victim_port)
        .unwrap()
        .id;
    let victim_events: HashSet<usize> = (0..events.len())
        .filter(|&i| owners[i] == victim_port)
        .collect();
    let mut cluster = cluster;
    // The worst moment to lose a primary: its replica has fallen behind (a slow replica, a
    // broken link). Freezing the replica and dropping its link for LAG makes it miss that much
    // of the writes.
    let replica = cluster
        .topology()
        .unwrap()
        .into_iter()
        .find(|n| n.primary_id.as_deref() == Some(victim_id.as_str()))
        .map(|n| cluster.index_of(n.port).unwrap())
        .expect("the victim has a replica");
    cluster.nodes[replica].signal("STOP").unwrap();
    // The primary drops the link, so what it writes from now on stays in its own memory (a
    // frozen replica alone would still get it from its socket buffer once it runs again).
    let killed = testkit::raw_command(victim_port, "CLIENT KILL TYPE replica").unwrap();
    assert_eq!(killed.trim(), ":1", "replica link not dropped: {killed}");
    tokio::time::sleep(LAG).await;
    let kill_at = Instant::now();
    cluster.nodes[victim].stop();
    cluster.nodes[replica].signal("CONT").unwrap();
    // Wait for a surviving node to report the victim's replica as the slots' primary.
    let survivor = cluster.nodes[(victim + 1) % 3].port();
    let promoted_after = loop {
        if let Ok(topo) = cluster.topology_from(survivor) {
            let replica_promoted = topo.iter().any(|n| {
                n.port != victim_port
                    && n.primary
                    && n.serves(cluster.keyslot(&format!("{{{}}}", events[first])).unwrap())
            });
            if replica_promoted {
                break kill_at.elapsed();
            }
        }
        assert!(kill_at.elapsed() < Duration::from_secs(30), "no failover");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // The orchestrator restarts the dead node: it rejoins as the new primary's replica.
    let restarted = tokio::task::spawn_blocking(move || {
        cluster.nodes[victim].restart().unwrap();
        cluster
    });
    let cluster = restarted.await.unwrap();

    // Recovery per gateway: the first 2xx on a killed primary's event after the kill.
    let recovered = |records: &[Record]| -> Vec<Option<Duration>> {
        (0..3)
            .map(|g| {
                records
                    .iter()
                    .filter(|r| {
                        r.gateway == g
                            && victim_events.contains(&r.event)
                            && r.sent > kill_at
                            && (200..300).contains(&r.status)
                    })
                    .map(|r| r.done - kill_at)
                    .min()
            })
            .collect()
    };
    let recovery = loop {
        let rec = recovered(&records.lock().unwrap());
        if rec.iter().all(Option::is_some)
            || kill_at.elapsed() > RECOVERY_LIMIT + Duration::from_secs(5)
        {
            break rec;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // The admission rate over a window after recovery (past the bucket's one-second burst).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = admitted_totals(&http, &bases[0], &events).await;
    tokio::time::sleep(RATE_WINDOW).await;
    let after = admitted_totals(&http, &bases[2], &events).await;
    let rates: Vec<f64> = before
        .iter()
        .zip(&after)
        .map(|((n0, t0), (n1, t1))| (n1 - n0) as f64 / (*t1 - *t0).as_secs_f64())
        .collect();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let records = records.lock().unwrap().clone();

    // Every acknowledged join: the same session joining again must get the same ticket back.
    let acked: Vec<Record> = records
        .iter()
        .filter(|r| (200..300).contains(&r.status))
        .cloned()
        .collect();
    let mut lost = Vec::new();
    for chunk in acked.chunks(64) {
        let mut checks = Vec::new();
        for r in chunk {
            let (http, base, event, r) = (
                http.clone(),
                bases[r.gateway].clone(),
                events[r.event].clone(),
                r.clone(),
            );
            checks.push(tokio::spawn(async move {
                for _ in 0..20 {
                    let (status, _, _, ticket) = join_once(&http, &base, &event, &r.session).await;
                    if status == 200 && ticket == r.ticket {
                        return None;
                    }
                    if status != 503 {
                        return Some(r);
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                panic!("re-join of {} kept failing", r.session);
            }));
        }
        for c in checks {
            if let Some(r) = c.await.unwrap() {
                lost.push(r);
            }
        }
    }
    // Order: a join acknowledged before another was sent has the lower ticket (per event).
    let mut order_violations = 0;
    let mut by_event: HashMap<usize, Vec<&Record>> = HashMap::new();
    for r in &acked {
        by_event.entry(r.event).or_default().push(r);
    }
    for list in by_event.values_mut() {
        list.sort_by_key(|r| r.done);
        let mut prefix_max = Vec::with_capacity(list.len());
        let mut m = 0u64;
        for r in list.iter() {
            m = m.max(r.ticket.unwrap_or(0));
            prefix_max.push(m);
        }
        for b in list.iter() {
            let earlier = list.partition_point(|a| a.done < b.sent);
            if earlier > 0 && prefix_max[earlier - 1] >= b.ticket.unwrap_or(0) {
                order_violations += 1;
            }
        }
    }
    drop(gws);
    drop(cluster);
    let probe_statuses = probe_statuses.lock().unwrap().clone();
    let webhook_statuses = webhook_statuses.lock().unwrap().clone();
    Report {
        records,
        victim_events,
        kill_at,
        promoted_after,
        recovery,
        lost,
        order_violations,
        rates,
        probe_statuses,
        webhook_statuses,
    }
}

/// Prints the figures of a run.
fn print(label: &str, r: &Report) {
    let outage: Vec<&Record> = r.records.iter().filter(|x| x.sent > r.kill_at).collect();
    let during = |victim: bool| {
        let last = r
            .recovery
            .iter()
            .flatten()
            .max()
            .copied()
            .unwrap_or_default();
        let list: Vec<&&Record> = outage
            .iter()
            .filter(|x| r.victim_events.contains(&x.event) == victim && x.sent - r.kill_at <= last)
            .collect();
        let ok = list
            .iter()
            .filter(|x| (200..300).contains(&x.status))
            .count();
        (ok, list.len())
    };
    let (v_ok, v_all) = during(true);
    let (o_ok, o_all) = during(false);
    let mut codes: BTreeMap<String, usize> = BTreeMap::new();
    for x in r
        .records
        .iter()
        .filter(|x| x.status >= 300 || x.status == 0)
    {
        *codes
            .entry(format!("{} {}", x.status, x.error_code))
            .or_default() += 1;
    }
    let slowest = r
        .records
        .iter()
        .map(|x| x.done - x.sent)
        .max()
        .unwrap_or_default();
    // Per gateway, the longest time without a 2xx on the other primaries' events after the kill
    // (an upper bound: a worker waiting on a killed primary's event sends nothing else).
    let stalls: Vec<String> = (0..3)
        .map(|g| {
            let mut t = vec![r.kill_at];
            t.extend(
                r.records
                    .iter()
                    .filter(|x| {
                        x.gateway == g
                            && !r.victim_events.contains(&x.event)
                            && x.done > r.kill_at
                            && (200..300).contains(&x.status)
                    })
                    .map(|x| x.done),
            );
            t.sort();
            let gap = t.windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default();
            format!("{:.2} s", gap.as_secs_f64())
        })
        .collect();
    eprintln!(
        "[{label}] joins sent {}, acknowledged {}; replica promoted {:.2} s after the kill; \
         killed primary's events serving again per gateway: {:?}",
        r.records.len(),
        r.records
            .iter()
            .filter(|x| (200..300).contains(&x.status))
            .count(),
        r.promoted_after.as_secs_f64(),
        r.recovery
            .iter()
            .map(|d| d.map(|d| format!("{:.2} s", d.as_secs_f64())))
            .collect::<Vec<_>>()
    );
    eprintln!(
        "[{label}] until recovery: killed primary's events {v_ok}/{v_all} 2xx, other events \
         {o_ok}/{o_all} 2xx (longest stall of the other events per gateway {stalls:?}); \
         non-2xx answers {codes:?}; slowest answer {:.2} s",
        slowest.as_secs_f64()
    );
    eprintln!(
        "[{label}] lost acknowledged joins: {} of {}; order violations {}; admissions/s per \
         event after recovery (configured {ADMIT_PER_SECOND}): {:?}; availability probe \
         statuses {:?}; webhook statuses {:?}",
        r.lost.len(),
        r.records
            .iter()
            .filter(|x| (200..300).contains(&x.status))
            .count(),
        r.order_violations,
        r.rates
            .iter()
            .map(|v| format!("{v:.2}"))
            .collect::<Vec<_>>(),
        r.probe_statuses
            .iter()
            .fold(BTreeMap::<u16, usize>::new(), |mut m, s| {
                *m.entry(*s).or_default() += 1;
                m
            }),
        r.webhook_statuses
            .iter()
            .fold(BTreeMap::<u16, usize>::new(), |mut m, s| {
                *m.entry(*s).or_default() += 1;
                m
            })
    );
}

/// What must hold in both modes: only 2xx or 503 with Retry-After and the JSON error, no hang,
/// recovery within the limit, the rate back.
fn assert_served_properly(r: &Report) {
    for x in &r.records {
        assert!(
            (200..300).contains(&x.status)
                || (x.status == 503 && x.retry_after && !x.error_code.starts_with("NO_JSON")),
            "an answer other than 2xx or a proper 503: {x:?}"
        );
        assert!(
            x.done - x.sent < Duration::from_millis(REQUEST_TIMEOUT_MS + 500),
            "a join hung past the request timeout: {x:?}"
        );
    }
    // The backends' store and the webhook inbox live on surviving primaries: with one Redis
    // layer (a pool per primary) a dead primary elsewhere must not stall them.
    for s in &r.probe_statuses {
        assert!(
            (200..300).contains(s),
            "availability (backends on a surviving primary) answered {s} during the failover"
        );
    }
    assert!(r.webhook_statuses.len() > 50, "too few webhooks posted");
    for s in &r.webhook_statuses {
        assert!(
            (200..300).contains(s),
            "a webhook (inbox on a surviving primary) answered {s} during the failover"
        );
    }
    for (g, d) in r.recovery.iter().enumerate() {
        let d = d.unwrap_or_else(|| panic!("gateway {g} never served the killed primary's events"));
        assert!(d <= RECOVERY_LIMIT, "gateway {g} served again after {d:?}");
    }
    // The other primaries' events kept serving: most of their joins during the outage
    // succeeded (each primary has its own connections, so a dead one stalls only its events).
    let last = r.recovery.iter().flatten().max().copied().unwrap();
    let others: Vec<&Record> = r
        .records
        .iter()
        .filter(|x| {
            !r.victim_events.contains(&x.event) && x.sent > r.kill_at && x.sent - r.kill_at <= last
        })
        .collect();
    let ok = others
        .iter()
        .filter(|x| (200..300).contains(&x.status))
        .count();
    assert!(
        ok * 10 >= others.len() * 9,
        "the other primaries' events were disrupted: {ok} of {} joins succeeded",
        others.len()
    );
    for (i, rate) in r.rates.iter().enumerate() {
        let want = ADMIT_PER_SECOND as f64;
        assert!(
            (rate - want).abs() <= want * 0.05,
            "event {i} admitted {rate:.2}/s after recovery; configured {want}/s"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_killed_with_wait_loses_no_acknowledged_join() {
    let _one = ONE_AT_A_TIME.lock().await;
    let r = scenario(1).await;
    print("WAIT 1", &r);
    assert_served_properly(&r);
    assert!(
        r.lost.is_empty(),
        "acknowledged joins lost with WAIT: {:?}",
        r.lost
    );
    assert_eq!(r.order_violations, 0, "places out of acknowledgement order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_killed_without_wait_measures_the_loss() {
    let _one = ONE_AT_A_TIME.lock().await;
    let r = scenario(0).await;
    print("no WAIT", &r);
    // Availability is the same without WAIT; what it loses is printed above, not asserted.
    assert_served_properly(&r);
}
