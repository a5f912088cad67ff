//! Heartbeat buckets in Redis (queue/src/store/lua/lib.lua, "Memory layout"): a new event keeps
//! its waiting places' heartbeats in strings of 63 four-byte slots, written at their full length
//! so that each takes one 256-byte allocation; an event created by an earlier version keeps its
//! hash buckets and works as before. Either way a place's heartbeat is what the idle timeout
//! reads, and a bucket goes with its last place.

mod common;

use queue::ids::{EventId, SessionKey};
use queue::model::{Action, EventConfig, Status};
use queue::store::{Holder, JoinRequest, RedisStore, StatusRequest, Store};
use testkit::{raw_command, RedisServer};

const T0: u64 = 1_800_000_000_000;
const IDLE: u32 = 60;
/// Enough places for several buckets of either layout, joined in batches that straddle them.
const USERS: usize = 300;

fn reply(port: u16, cmd: &str) -> String {
    raw_command(port, cmd).unwrap().trim().to_string()
}

fn int(port: u16, cmd: &str) -> i64 {
    reply(port, cmd).trim_start_matches(':').parse().unwrap()
}

fn bucket_keys(port: u16, ev: &str) -> Vec<String> {
    let r = raw_command(port, &format!("KEYS wr:{{{ev}}}:h:*")).unwrap();
    let mut keys: Vec<String> = r
        .lines()
        .filter(|l| l.starts_with("wr:"))
        .map(str::to_string)
        .collect();
    keys.sort();
    keys
}

/// Event `name` admitting `aps` a second; `legacy`: with hash buckets.
async fn event(store: &RedisStore, name: &str, port: u16, legacy: bool, aps: u32) -> EventId {
    let ev = EventId::parse(name).unwrap();
    let mut cfg = EventConfig::new(aps, 1_000);
    cfg.idle_timeout_seconds = IDLE;
    store.configure(&ev, &cfg, T0).await.unwrap();
    if legacy {
        // What an event created before string buckets looks like: no layout field.
        assert_eq!(int(port, &format!("HDEL wr:{{{name}}}:ev hbl")), 1);
    }
    ev
}

/// Joins USERS sessions in batches of 7 (so batches straddle buckets) and returns their places.
async fn fill(store: &RedisStore, ev: &EventId) -> Vec<Holder> {
    let mut held = Vec::new();
    for chunk in (0..USERS).collect::<Vec<_>>().chunks(7) {
        let joins: Vec<JoinRequest> = chunk
            .iter()
            .map(|i| JoinRequest::new(SessionKey::of(&format!("s{i}")), -1))
            .collect();
        for (j, r) in joins
            .iter()
            .zip(store.join_many(ev, &joins, T0).await.unwrap())
        {
            assert!(r.created);
            assert_eq!(r.place.status, Status::Waiting);
            held.push(Holder {
                ticket: r.place.ticket,
                session: j.session,
            });
        }
    }
    held
}

/// Half the places (every other one) read with a heartbeat just before the idle timeout; after
/// it, only those are still waiting, the others read as expired; then everyone leaves or is
/// swept and no bucket is left.
async fn heartbeats_keep_places_and_buckets_go(
    store: &RedisStore, ev: &EventId, port: u16, held: &[Holder],
) {
    let beat_at = T0 + (u64::from(IDLE) - 1) * 1000;
    let reads: Vec<StatusRequest> = held
        .iter()
        .step_by(2)
        .map(|&holder| StatusRequest {
            holder,
            heartbeat: true,
        })
        .collect();
    for p in store.status_many(ev, &reads, beat_at).await.unwrap() {
        assert_eq!(p.status, Status::Waiting);
    }
    let later = T0 + (u64::from(IDLE) + 5) * 1000;
    for (i, &h) in held.iter().enumerate() {
        let p = store.status(ev, h, false, later).await.unwrap();
        let want = if i % 2 == 0 {
            Status::Waiting
        } else {
            Status::Expired
        };
        assert_eq!(p.status, want, "place {i} after the idle timeout");
    }
    // The survivors: the first third leave, the sweep takes the rest once they too are idle.
    let survivors: Vec<Holder> = held.iter().step_by(2).copied().collect();
    for &h in &survivors[..survivors.len() / 3] {
        assert!(store.leave(ev, h, later).await.unwrap());
    }
    let much_later = beat_at + (u64::from(IDLE) + 1) * 1000;
    loop {
        if store.sweep(ev, 1, much_later).await.unwrap().done {
            break;
        }
    }
    let info = store.info(ev, much_later).await.unwrap().unwrap();
    assert_eq!(info.stats.waiting, 0);
    assert_eq!(bucket_keys(port, ev.as_str()), Vec::<String>::new());
}

/// The buckets a fill leaves in one layout: how many, and of which Redis type.
async fn layout(name: &str, legacy: bool) -> (RedisServer, RedisStore, EventId, Vec<Holder>) {
    let (server, store) = common::redis_store().await;
    let ev = event(&store, name, server.port(), legacy, 0).await;
    let held = fill(&store, &ev).await;
    let (per_bucket, kind) = if legacy {
        (64, "+hash")
    } else {
        (63, "+string")
    };
    let keys = bucket_keys(server.port(), name);
    assert_eq!(keys.len(), USERS.div_ceil(per_bucket), "{keys:?}");
    for k in &keys {
        assert_eq!(reply(server.port(), &format!("TYPE {k}")), kind, "{k}");
    }
    (server, store, ev, held)
}

#[tokio::test]
async fn a_new_event_keeps_heartbeats_in_full_length_strings() {
    let (server, store, ev, held) = layout("strings", false).await;
    let port = server.port();
    for k in bucket_keys(port, "strings") {
        // Written whole on creation, so never grown by doubling: one 256-byte allocation.
        assert_eq!(int(port, &format!("STRLEN {k}")), 252, "{k}");
        let bytes = int(port, &format!("MEMORY USAGE {k}"));
        assert!(bytes < 400, "{k} takes {bytes} bytes");
    }
    heartbeats_keep_places_and_buckets_go(&store, &ev, port, &held).await;
}

#[tokio::test]
async fn an_event_created_before_string_buckets_keeps_its_hashes() {
    let (server, store, ev, held) = layout("hashes", true).await;
    heartbeats_keep_places_and_buckets_go(&store, &ev, server.port(), &held).await;
}

/// Admission takes each admitted place's heartbeat with it: once everyone is admitted no bucket
/// is left, in either layout.
#[tokio::test]
async fn admission_empties_the_buckets_in_both_layouts() {
    let (server, store) = common::redis_store().await;
    let port = server.port();
    for (name, legacy) in [("adm-strings", false), ("adm-hashes", true)] {
        let ev = event(&store, name, port, legacy, 1_000).await;
        // Joined before the queue admits (stopped), so that every place waits.
        store.act(&ev, Action::StopAdmissions).await.unwrap();
        let held = fill(&store, &ev).await;
        store.act(&ev, Action::ResumeAdmissions).await.unwrap();
        // The token bucket fills over a second; ticks until the queue is empty.
        let mut admitted = 0;
        let mut now = T0;
        while admitted < held.len() as u64 {
            now += 1_000;
            let r = store.admit(&ev, now).await.unwrap();
            assert!(r.admitted > 0 || r.waiting == 0, "{name}: stuck at {r:?}");
            admitted += r.admitted;
        }
        assert_eq!(admitted, USERS as u64, "{name}");
        assert_eq!(bucket_keys(port, name), Vec::<String>::new(), "{name}");
    }
}
