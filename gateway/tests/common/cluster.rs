//! A local Redis Cluster as the failover tests read it: which primary serves a key now, and
//! which node replicates a primary.

use testkit::{ClusterNode, RedisCluster};

/// The primary that serves `key` now (by the slot of its hash tag).
pub fn primary_of(cluster: &RedisCluster, key: &str) -> ClusterNode {
    let slot = cluster.keyslot(key).unwrap();
    cluster
        .topology()
        .unwrap()
        .into_iter()
        .find(|n| n.primary && n.serves(slot))
        .expect("every slot has a primary")
}

/// The index in `cluster.nodes` of the primary that serves `key` now.
pub fn primary_index(cluster: &RedisCluster, key: &str) -> usize {
    cluster.index_of(primary_of(cluster, key).port).unwrap()
}

/// The index in `cluster.nodes` of the replica of the primary on `port`.
pub fn replica_of(cluster: &RedisCluster, port: u16) -> usize {
    let topo = cluster.topology().unwrap();
    let primary = topo
        .iter()
        .find(|n| n.port == port)
        .expect("a node on that port");
    let replica = topo
        .iter()
        .find(|n| n.primary_id.as_deref() == Some(primary.id.as_str()))
        .expect("the primary has a replica");
    cluster.index_of(replica.port).unwrap()
}
