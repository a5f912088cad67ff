//! `Redis::ping_primaries` against real servers: one entry per primary, named by address, and
//! a dead primary reported alone while the others answer.

use redis_layer::{Redis, RedisOptions};
use std::time::{Duration, Instant};
use testkit::{RedisCluster, RedisServer};

fn options(url: String) -> RedisOptions {
    let mut o = RedisOptions::new(url);
    o.command_timeout = Duration::from_millis(300);
    o
}

#[tokio::test]
async fn a_single_server_is_one_primary() {
    let mut server = RedisServer::start().unwrap();
    let redis = Redis::connect(&options(server.url())).await.unwrap();
    let pings = redis.ping_primaries().await;
    assert_eq!(pings.len(), 1);
    assert_eq!(pings[0].node, format!("127.0.0.1:{}", server.port()));
    assert!(pings[0].result.is_ok(), "{pings:?}");
    server.stop();
    let pings = redis.ping_primaries().await;
    assert!(pings[0].result.is_err(), "{pings:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_cluster_primary_answers_for_itself() {
    let mut cluster = RedisCluster::start(3, 0).unwrap();
    let redis = Redis::connect(&options(cluster.url())).await.unwrap();
    let mut want: Vec<String> = cluster
        .nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.port()))
        .collect();
    want.sort();
    // The slot map arrives with the first connection; wait for it rather than assume it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut nodes: Vec<String>;
    loop {
        let pings = redis.ping_primaries().await;
        nodes = pings.iter().map(|p| p.node.clone()).collect();
        nodes.sort();
        if nodes == want && pings.iter().all(|p| p.result.is_ok()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never saw every primary: {pings:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dead = format!("127.0.0.1:{}", cluster.nodes[1].port());
    cluster.nodes[1].stop();
    let pings = redis.ping_primaries().await;
    assert_eq!(
        pings.len(),
        3,
        "the dead primary is still listed: {pings:?}"
    );
    for p in &pings {
        assert_eq!(p.result.is_err(), p.node == dead, "{pings:?}");
    }
}
