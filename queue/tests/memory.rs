//! A join flood leaves nothing behind: 1,000,000 joins whose places all expire leave Redis
//! within 5 % of its size before them once the sweep has run (issue 12). The queue's member is
//! the session, so an expired place takes its session entry with it; a heartbeat bucket
//! goes with its last heartbeat.

use queue::ids::{EventId, SessionKey};
use queue::model::EventConfig;
use queue::store::{Holder, JoinRequest, RedisOptions, RedisStore, Store};
use std::sync::Arc;
use testkit::{raw_command, RedisServer};

const T0: u64 = 1_800_000_000_000;
const USERS: usize = 1_000_000;
const BATCH: usize = 1_000;

/// `used_memory` less the clients' buffers (`mem_clients_normal`), which come and go with the
/// size of the last request and reply on each pooled connection, not with what is stored.
fn used_memory(port: u16) -> u64 {
    let info = raw_command(port, "INFO memory").unwrap();
    let field = |name: &str| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in INFO"))
    };
    field("used_memory:") - field("mem_clients_normal:")
}

fn keys(port: u16) -> u64 {
    let r = raw_command(port, "DBSIZE").unwrap();
    r.trim().trim_start_matches(':').parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_expired_joins_leave_redis_as_it_was() {
    let server = RedisServer::start().unwrap();
    let store = Arc::new(
        RedisStore::connect(&RedisOptions::new(server.url()))
            .await
            .unwrap(),
    );
    let ev = EventId::parse("flood").unwrap();
    let idle = 60;
    let mut cfg = EventConfig::new(0, 10);
    cfg.idle_timeout_seconds = idle;
    store.configure(&ev, &cfg, T0).await.unwrap();
    // Every script loaded and the event's own keys written once before the baseline.
    let warm = SessionKey::of("warm-up");
    let j = store.join(&ev, warm, -1, T0).await.unwrap();
    let held = Holder {
        ticket: j.place.ticket,
        session: warm,
    };
    store.leave(&ev, held, T0).await.unwrap();
    store.sweep(&ev, 1, T0).await.unwrap();
    let (mem_before, keys_before) = (used_memory(server.port()), keys(server.port()));

    // The flood: a million distinct sessions, a few batches in flight.
    let mut tasks = Vec::new();
    for lane in 0..4 {
        let (store, ev) = (store.clone(), ev.clone());
        tasks.push(tokio::spawn(async move {
            for b in (lane..USERS / BATCH).step_by(4) {
                let joins: Vec<JoinRequest> = (b * BATCH..(b + 1) * BATCH)
                    .map(|i| JoinRequest::new(SessionKey::of(&format!("bot-{i}")), -1))
                    .collect();
                let r = store.join_many(&ev, &joins, T0).await.unwrap();
                assert!(r.iter().all(|j| j.created));
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let info = store.info(&ev, T0).await.unwrap().unwrap();
    assert_eq!(info.stats.waiting, USERS as u64);
    let mem_full = used_memory(server.port());
    assert!(
        mem_full > mem_before + 50 * USERS as u64,
        "the flood took {} bytes: not a million places",
        mem_full - mem_before
    );

    // Nobody polls: after the idle timeout the sweep removes everyone.
    let later = T0 + (idle as u64 + 1) * 1000;
    let mut expired = 0;
    loop {
        let r = store.sweep(&ev, 256, later).await.unwrap();
        expired += r.expired;
        if r.done {
            break;
        }
    }
    assert_eq!(expired, USERS as u64);
    assert_eq!(
        store.info(&ev, later).await.unwrap().unwrap().stats.waiting,
        0
    );
    let keys_after = keys(server.port());
    assert_eq!(
        keys_after, keys_before,
        "keys left behind by expired places"
    );
    // Redis shrinks its keyspace's hash table (grown for the heartbeat buckets) in its
    // background cron, a few times a second: give it a moment, then judge.
    let mut mem_after = used_memory(server.port());
    for _ in 0..50 {
        if mem_after <= mem_before + mem_before / 20 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        mem_after = used_memory(server.port());
    }
    println!(
        "used_memory less client buffers: {mem_before} before, {mem_full} full, {mem_after} after"
    );
    assert!(
        mem_after <= mem_before + mem_before / 20,
        "used_memory {mem_before} before the flood, {mem_full} during, {mem_after} after the \
         sweep: more than 5 % left behind"
    );
}
