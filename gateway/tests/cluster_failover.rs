//! A Redis Cluster primary killed under load (issue 7): a 3-primary, 3-replica cluster of real
//! `redis-server`s, the backends on it, three real `gateway` processes, twelve events spread
//! over the three primaries and a steady join load through every gateway. One primary gets
//! SIGKILL at the worst moment, its replica 1 s behind (frozen and its link dropped for that
//! long, as a slow replica or a broken link would be); Redis promotes the replica, and the
//! killed node is restarted (as an orchestrator would) once the promotion is seen, so that it
//! rejoins as the new primary's replica.
//!
//! With `--redis-wait-replicas 1` the test asserts what a user can rely on: every answer during
//! the outage is a 2xx or a 503 with `Retry-After` and the JSON error (never a 500, never a
//! hang), the killed primary's events serve again within 10 s on every gateway while the other
//! events keep serving, no acknowledged join is lost and places keep the order in which joins
//! were acknowledged, and after recovery every event admits again, never faster than its
//! configured rate allows (the shared token bucket survives the failover: no second bucket, no
//! refill beyond its one-second burst). The rate itself is printed, not asserted: on a loaded
//! machine the ticks slow down and a wall-clock tolerance fails for reasons no user would see.
//! Without WAIT the same scenario is run and the lost acknowledged joins are printed, not
//! asserted (asynchronous replication loses what the replica had not received, which varies
//! per run).
//!
//! Webhook intake and the backends share the one Redis layer's per-primary connections too: the
//! killed primary is chosen to own neither the webhook inbox's slot nor the backends' probe
//! event, and signed webhooks posted to every gateway, and the availability forwarded to the
//! backends, must get a 2xx throughout the outage.
//!
//! The figures are printed with `--nocapture`:
//! `cargo test --workspace --test cluster_failover -- --nocapture --test-threads 1`.

mod common;
#[path = "cluster_failover/load.rs"]
mod load;
#[path = "cluster_failover/verdict.rs"]
mod verdict;

use common::backends::WEBHOOK_SECRET;
use common::cluster::{primary_of, replica_of};
use common::*;
use load::{Load, Record};
use serde_json::json;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::RedisCluster;
use verdict::Report;

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
/// How long every event may take to admit a second's worth after recovery (a stall, not a
/// slow machine, runs past it).
const ADMISSIONS_LIMIT: Duration = Duration::from_secs(30);
/// How far the killed primary's replica is behind at the kill.
const LAG: Duration = Duration::from_secs(1);

/// Twelve event ids, four on each primary (by the slot of their hash tag): the ids and the port
/// of each one's primary.
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
    per_primary
        .into_iter()
        .flat_map(|(port, list)| list.into_iter().map(move |id| (id, port)))
        .unzip()
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

/// Three gateway processes on the cluster at `url`, WAITing for `wait` replicas, forwarding to
/// the backends at `backends` and taking signed webhooks.
fn gateways(url: &str, wait: u32, backends: &str) -> Vec<GatewayProcess> {
    let wait = wait.to_string();
    let timeout = REQUEST_TIMEOUT_MS.to_string();
    (0..3)
        .map(|_| {
            GatewayProcess::spawn(&[
                "--redis-url",
                url,
                "--redis-wait-replicas",
                &wait,
                "--redis-wait-timeout-ms",
                "250",
                "--request-timeout-ms",
                &timeout,
                "--reservation-url",
                backends,
                "--inventory-url",
                backends,
                "--payment-url",
                backends,
                "--webhook-secret",
                WEBHOOK_SECRET,
            ])
        })
        .collect()
}

/// The events, and a user of the `probe` event admitted to poll the availability forwarded to
/// the backends: the admission.
async fn open_events(base: &str, events: &[String]) -> String {
    let config = json!({
        "admit_per_second": ADMIT_PER_SECOND,
        "max_active": 1_000_000,
        "ready_timeout_seconds": 3600,
        "idle_timeout_seconds": 3600,
    });
    for ev in events {
        let r = put_event(base, ev, config.clone()).await;
        assert_eq!(r.status, 201, "{ev}: {}", r.body);
    }
    put_event(
        base,
        "probe",
        json!({"admit_per_second": 100, "max_active": 1000}),
    )
    .await;
    let j = join(base, "probe", "prober").await;
    let token = j.body["waiting_token"].as_str().unwrap().to_owned();
    wait_status(base, &token, "READY", Duration::from_secs(10)).await;
    let grant = enter(base, &token).await;
    grant.body["reservation_token"].as_str().unwrap().to_owned()
}

/// The primary killed: its events (indexes), when, and how long Redis took to promote its
/// replica.
struct Kill {
    victim_events: HashSet<usize>,
    at: Instant,
    promoted_after: Duration,
}

/// Kills a primary that owns events but neither the webhook inbox nor the probe event's
/// backend keys, its replica LAG behind; returns once a surviving node reports the replica
/// promoted and the dead node is restarted (it rejoins as the new primary's replica).
async fn kill_a_primary(
    mut cluster: RedisCluster, events: &[String], owners: &[u16],
) -> (RedisCluster, Kill) {
    let spared = [
        primary_of(&cluster, "wh:{payments}:inbox").port,
        primary_of(&cluster, "bk:{probe}:ev").port,
    ];
    let first = (0..events.len())
        .find(|&i| !spared.contains(&owners[i]))
        .expect("a primary without the inbox and the probe");
    let victim_port = owners[first];
    let victim = cluster.index_of(victim_port).unwrap();
    let victim_events: HashSet<usize> = (0..events.len())
        .filter(|&i| owners[i] == victim_port)
        .collect();
    // The worst moment to lose a primary: its replica has fallen behind (a slow replica, a
    // broken link). Freezing the replica and dropping its link for LAG makes it miss that much
    // of the writes.
    let replica = replica_of(&cluster, victim_port);
    cluster.nodes[replica].signal("STOP").unwrap();
    // The primary drops the link, so what it writes from now on stays in its own memory (a
    // frozen replica alone would still get it from its socket buffer once it runs again).
    let killed = testkit::raw_command(victim_port, "CLIENT KILL TYPE replica").unwrap();
    assert_eq!(killed.trim(), ":1", "replica link not dropped: {killed}");
    tokio::time::sleep(LAG).await;
    let at = Instant::now();
    cluster.nodes[victim].stop();
    cluster.nodes[replica].signal("CONT").unwrap();
    // Wait for a surviving node to report the victim's replica as the slots' primary.
    let survivor = cluster.nodes[(victim + 1) % 3].port();
    let slot = cluster.keyslot(&format!("{{{}}}", events[first])).unwrap();
    let promoted_after = loop {
        if let Ok(topo) = cluster.topology_from(survivor) {
            if topo
                .iter()
                .any(|n| n.port != victim_port && n.primary && n.serves(slot))
            {
                break at.elapsed();
            }
        }
        assert!(at.elapsed() < Duration::from_secs(30), "no failover");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // The orchestrator restarts the dead node: it rejoins as the new primary's replica.
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.nodes[victim].restart().unwrap();
        cluster
    })
    .await
    .unwrap();
    let kill = Kill {
        victim_events,
        at,
        promoted_after,
    };
    (cluster, kill)
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
    let gws = gateways(&url, wait_replicas, &backends_url);
    let bases: Vec<String> = gws.iter().map(|g| g.url("")).collect();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(REQUEST_TIMEOUT_MS + 1000))
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let admission = open_events(&bases[0], &events).await;
    let load = Load::start(&http, &bases, &events, admission);

    tokio::time::sleep(Duration::from_secs(3)).await;
    let (cluster, kill) = kill_a_primary(cluster, &events, &owners).await;

    let recovery = loop {
        let rec = verdict::recovered(&load.records(), &kill.victim_events, kill.at);
        if rec.iter().all(Option::is_some)
            || kill.at.elapsed() > RECOVERY_LIMIT + Duration::from_secs(5)
        {
            break rec;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // Admissions after recovery (past the bucket's one-second burst), under the same load.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let admissions = verdict::admissions(&http, &bases, &events, ADMISSIONS_LIMIT).await;
    let seen = load.stop().await;

    // Every acknowledged join: the same session joining again must get the same ticket back.
    let acked: Vec<Record> = seen.records.iter().filter(|r| r.ok()).cloned().collect();
    let lost = verdict::lost_joins(&http, &bases, &events, &acked).await;
    let order_violations = verdict::order_violations(&acked);
    drop(gws);
    drop(cluster);
    Report {
        records: seen.records,
        victim_events: kill.victim_events,
        kill_at: kill.at,
        promoted_after: kill.promoted_after,
        recovery,
        lost,
        order_violations,
        admissions,
        probe_statuses: seen.probe_statuses,
        webhook_statuses: seen.webhook_statuses,
    }
}

/// What must hold in both modes: only 2xx or 503 with Retry-After and the JSON error, no hang,
/// recovery within the limit, admissions flowing again at no more than the configured rate.
fn assert_served_properly(r: &Report) {
    for x in &r.records {
        assert!(
            x.ok() || (x.status == 503 && x.retry_after && !x.error_code.starts_with("NO_JSON")),
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
    let ok = others.iter().filter(|x| x.ok()).count();
    assert!(
        ok * 10 >= others.len() * 9,
        "the other primaries' events were disrupted: {ok} of {} joins succeeded",
        others.len()
    );
    // Every event admits again after the failover, the killed primary's included, and never
    // beyond what its one bucket allows: the rate over the time taken plus the one-second
    // burst. A slow machine only lowers the count, so this bound holds under any load.
    for (i, a) in r.admissions.iter().enumerate() {
        assert!(
            a.count >= ADMIT_PER_SECOND,
            "event {i} admitted {} in {:?} after recovery: its admissions stalled",
            a.count,
            a.within
        );
        let allowed = ADMIT_PER_SECOND as f64 * (a.within.as_secs_f64() + 1.0);
        assert!(
            a.count as f64 <= allowed,
            "event {i} admitted {} in {:?} after recovery: more than {ADMIT_PER_SECOND}/s \
             and its one-second burst allow",
            a.count,
            a.within
        );
    }
}

/// One run, one at a time, its figures printed and what must hold in both modes checked.
async fn run(wait_replicas: u32, label: &str) -> Report {
    let _one = ONE_AT_A_TIME.lock().await;
    let r = scenario(wait_replicas).await;
    verdict::print(label, &r);
    assert_served_properly(&r);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_killed_with_wait_loses_no_acknowledged_join() {
    let r = run(1, "WAIT 1").await;
    assert!(
        r.lost.is_empty(),
        "acknowledged joins lost with WAIT: {:?}",
        r.lost
    );
    assert_eq!(r.order_violations, 0, "places out of acknowledgement order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_killed_without_wait_measures_the_loss() {
    // Availability is the same without WAIT (checked in `run`); what it loses is printed, not
    // asserted.
    run(0, "no WAIT").await;
}
