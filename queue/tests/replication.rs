//! `WAIT` after the writes that must survive a failover (`RedisOptions::wait_replicas`): on a
//! primary with one replica and on a Redis Cluster, a join is acknowledged only when a replica
//! has it, is refused with `NotReplicated` when the replica does not confirm in time, and the
//! refused client's retry gets the same place once the replica is back.

use queue::ids::{EventId, SessionKey};
use queue::model::EventConfig;
use queue::store::{Holder, RedisOptions, RedisStore, Store};
use queue::QueueError;
use std::time::Duration;
use testkit::{raw_command, RedisCluster, RedisServer};

const NOW: u64 = 1_700_000_000_000;

fn session(name: &str) -> SessionKey {
    SessionKey::of(name)
}

async fn store(url: &str, wait_replicas: u32) -> RedisStore {
    let mut opts = RedisOptions::new(url);
    opts.wait_replicas = wait_replicas;
    // Long enough for a replica on a loaded 2-core machine; the refusals below take this long.
    opts.wait_timeout = Duration::from_millis(500);
    RedisStore::connect(&opts).await.unwrap()
}

fn config() -> EventConfig {
    EventConfig::new(0, 1000)
}

#[tokio::test]
async fn wait_on_a_primary_with_one_replica() {
    let primary = RedisServer::start().unwrap();
    let replica = RedisServer::start_replica_of(&primary).unwrap();
    let durable = store(&primary.url(), 1).await;
    let ev = EventId::parse("w1").unwrap();
    assert!(durable.configure(&ev, &config(), NOW).await.unwrap());
    let a = durable.join(&ev, session("a"), -1, NOW).await.unwrap();
    assert!(a.created);
    // Acknowledged means the replica has it: its data set already holds the event's keys.
    let keys = raw_command(replica.port(), "DBSIZE").unwrap();
    assert_ne!(
        keys.trim(),
        ":0",
        "replica has nothing after an acknowledged join"
    );

    // A replica that cannot confirm: the join is applied on the primary but not acknowledged.
    replica.signal("STOP").unwrap();
    let t0 = std::time::Instant::now();
    match durable.join(&ev, session("b"), -1, NOW).await {
        Err(QueueError::NotReplicated {
            wanted: 1,
            acked: 0,
        }) => {}
        other => panic!("join with a stopped replica: {other:?}"),
    }
    assert!(
        t0.elapsed() < Duration::from_millis(1500),
        "refused after {:?}, not within the wait timeout",
        t0.elapsed()
    );
    // A re-join of a standing place is refused too: its answer must not claim a place that the
    // replica may not have (the script rewrites the session so that WAIT covers the first join).
    assert!(matches!(
        durable.join(&ev, session("a"), -1, NOW).await,
        Err(QueueError::NotReplicated { .. })
    ));
    // Without WAIT the same primary acknowledges at once: today's default behaviour.
    let plain = store(&primary.url(), 0).await;
    let c = plain.join(&ev, session("c"), -1, NOW).await.unwrap();
    assert!(c.created);
    // Two replicas asked of a primary that has one: never confirmed.
    replica.signal("CONT").unwrap();
    let two = store(&primary.url(), 2).await;
    assert!(matches!(
        two.join(&ev, session("d"), -1, NOW).await,
        Err(QueueError::NotReplicated {
            wanted: 2,
            acked: 1
        })
    ));

    // The refused client retries once the replica is back: the same place, now acknowledged.
    let b = durable.join(&ev, session("b"), -1, NOW).await.unwrap();
    assert!(!b.created, "the retry took a second place");
    assert_eq!(b.place.ticket, a.place.ticket + 1);
    let a2 = durable.join(&ev, session("a"), -1, NOW).await.unwrap();
    assert_eq!((a2.created, a2.place.ticket), (false, a.place.ticket));

    // Enter is waited for as well, including its idempotent repeat.
    let admitting = EventConfig::new(10, 1000);
    durable.configure(&ev, &admitting, NOW).await.unwrap();
    durable.admit(&ev, NOW + 1000).await.unwrap();
    let a_held = Holder {
        ticket: a.place.ticket,
        session: session("a"),
    };
    assert!(durable.enter(&ev, a_held, NOW + 1000).await.is_ok());
    replica.signal("STOP").unwrap();
    assert!(matches!(
        durable.enter(&ev, a_held, NOW + 1000).await,
        Err(QueueError::NotReplicated { .. })
    ));
    // Reads are not waited for.
    durable
        .status(&ev, a_held, false, NOW + 1000)
        .await
        .unwrap();
    replica.signal("CONT").unwrap();
}

/// Finds the node that serves `slot` and one replica of it.
fn primary_and_replica(cluster: &RedisCluster, slot: u16) -> (u16, u16) {
    let topo = cluster.topology().unwrap();
    let primary = topo
        .iter()
        .find(|n| n.primary && n.serves(slot))
        .expect("a primary serves the slot");
    let replica = topo
        .iter()
        .find(|n| n.primary_id.as_deref() == Some(&primary.id))
        .expect("the primary has a replica");
    (primary.port, replica.port)
}

#[tokio::test]
async fn wait_in_a_cluster_is_sent_to_the_events_primary() {
    let cluster = RedisCluster::start(3, 1).unwrap();
    cluster.wait_for_replicas().unwrap();
    let durable = store(&cluster.url(), 1).await;
    let events: Vec<EventId> = (0..12)
        .map(|i| EventId::parse(&format!("c{i}")).unwrap())
        .collect();
    let mut owner = Vec::new();
    for ev in &events {
        durable.configure(ev, &config(), NOW).await.unwrap();
        let slot = cluster.keyslot(&format!("{{{}}}", ev.as_str())).unwrap();
        owner.push(primary_and_replica(&cluster, slot));
        assert!(
            durable
                .join(ev, session("x"), -1, NOW)
                .await
                .unwrap()
                .created
        );
    }
    let primaries: std::collections::HashSet<u16> = owner.iter().map(|o| o.0).collect();
    assert_eq!(primaries.len(), 3, "the events do not cover every primary");

    // Stop the replica of the first event's primary: exactly the events on that primary are
    // refused; WAIT sent anywhere else would have confirmed them.
    let (stopped_primary, stopped_replica) = owner[0];
    let idx = cluster.index_of(stopped_replica).unwrap();
    cluster.nodes[idx].signal("STOP").unwrap();
    for (ev, (p, _)) in events.iter().zip(&owner) {
        let r = durable.join(ev, session("y"), -1, NOW).await;
        if *p == stopped_primary {
            assert!(
                matches!(r, Err(QueueError::NotReplicated { .. })),
                "{ev}: {r:?}"
            );
        } else {
            assert!(r.unwrap().created, "{ev}");
        }
    }
    cluster.nodes[idx].signal("CONT").unwrap();
    for ev in &events {
        let r = durable.join(ev, session("y"), -1, NOW).await.unwrap();
        assert_eq!(r.place.ticket, 2, "{ev}: the retry got another place");
    }
}
