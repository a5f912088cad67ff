//! Connection settings, shared by every crate that talks to Redis.

use std::time::Duration;

/// How to reach Redis and how long to wait for it.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// `redis://host:port[/db]`, or `redis-cluster://host:port?node=host:port&...`.
    pub url: String,
    /// How long one command may take, reconnection included, before the caller gets
    /// [`crate::RedisError::Unavailable`].
    pub command_timeout: Duration,
    /// Connections in the pool (commands are pipelined on each); in a cluster, per primary.
    pub pool_size: usize,
    /// Replicas that must confirm a durable write ([`crate::Redis::eval_durable`]) before it is
    /// acknowledged (`WAIT`); 0 acknowledges what the primary alone has (asynchronous
    /// replication: a failover can lose it).
    pub wait_replicas: u32,
    /// How long `WAIT` waits for those replicas; past it the caller gets
    /// [`crate::RedisError::NotReplicated`]. It blocks that connection's later commands meanwhile.
    pub wait_timeout: Duration,
}

impl RedisOptions {
    /// Options with the documented defaults: 1 s command timeout, a pool of 4, no `WAIT` (its
    /// timeout 100 ms when turned on).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            command_timeout: Duration::from_millis(1000),
            pool_size: 4,
            wait_replicas: 0,
            wait_timeout: Duration::from_millis(100),
        }
    }
}
