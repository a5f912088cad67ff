//! `WAIT` after an append (`InboxOptions::wait_replicas`): a webhook is answered as stored only
//! once a replica has it; with the replica unable to confirm, the append is refused with
//! `NotReplicated` (the gateway's 503, so the provider retries), and the provider's retry is a
//! duplicate of the stored entry, acknowledged once the replica confirms. On a single primary
//! with a replica and on a Redis Cluster.

mod common;

use anyhow::Result;
use common::envelope;
use std::sync::Arc;
use std::time::Duration;
use testkit::{RedisCluster, RedisServer};
use webhooks::{Appended, Inbox, InboxError, InboxOptions, Metrics};

async fn inbox(url: &str, wait_replicas: u32) -> Result<Inbox> {
    let mut o = InboxOptions::new(url);
    o.wait_replicas = wait_replicas;
    // Long enough for a replica on a loaded 2-core machine; refusals take this long.
    o.wait_timeout = Duration::from_millis(500);
    Ok(Inbox::connect(&o, Arc::new(Metrics::new())).await?)
}

/// Appends with the replica stopped (refused), then again with it running (a duplicate of the
/// stored entry, now confirmed).
async fn refused_then_confirmed(ib: &Inbox, replica: &RedisServer, id: &str) -> Result<()> {
    assert!(matches!(ib.append(&envelope(id)).await?, Appended::New(_)));
    replica.signal("STOP")?;
    let stored = ib.append(&envelope(&format!("{id}-b"))).await;
    // A duplicate of a confirmed webhook is refused too while the replica cannot confirm.
    let repeat = ib.append(&envelope(id)).await;
    replica.signal("CONT")?;
    assert!(
        matches!(
            stored,
            Err(InboxError::NotReplicated {
                wanted: 1,
                acked: 0
            })
        ),
        "append with a stopped replica: {stored:?}"
    );
    assert!(
        matches!(repeat, Err(InboxError::NotReplicated { .. })),
        "{repeat:?}"
    );
    let retry = ib.append(&envelope(&format!("{id}-b"))).await?;
    assert!(
        matches!(retry, Appended::Duplicate(_)),
        "the provider's retry stored a second entry: {retry:?}"
    );
    assert_eq!(ib.backlog().await?, 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_waits_for_the_replica() -> Result<()> {
    let primary = RedisServer::start()?;
    let replica = RedisServer::start_replica_of(&primary)?;
    let ib = inbox(&primary.url(), 1).await?;
    refused_then_confirmed(&ib, &replica, "msg_1").await?;
    // Without WAIT the stopped replica goes unnoticed (today's default).
    let plain = inbox(&primary.url(), 0).await?;
    replica.signal("STOP")?;
    let r = plain.append(&envelope("msg_2")).await;
    replica.signal("CONT")?;
    assert!(matches!(r?, Appended::New(_)));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_waits_for_the_replica_of_its_slot_in_a_cluster() -> Result<()> {
    let cluster = RedisCluster::start(3, 1)?;
    cluster.wait_for_replicas()?;
    let slot = cluster.keyslot("{payments}")?;
    let topo = cluster.topology()?;
    let primary = topo.iter().find(|n| n.primary && n.serves(slot)).unwrap();
    let replica = topo
        .iter()
        .find(|n| n.primary_id.as_deref() == Some(primary.id.as_str()))
        .unwrap();
    let replica = &cluster.nodes[cluster.index_of(replica.port).unwrap()];
    let ib = inbox(&cluster.url(), 1).await?;
    refused_then_confirmed(&ib, replica, "msg_c").await
}
