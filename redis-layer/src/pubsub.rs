//! Publish/subscribe through the layer: [`Redis::publish`] on a channel, and
//! [`Subscription::pattern`], one connection of its own subscribed to a channel pattern (what a
//! process shares among all its listeners: one subscription, never one per listener).
//!
//! Classic pub/sub: in a cluster a PUBLISH reaches the subscribers of every node, so one
//! subscription anywhere hears every channel. Delivery is at most once: a message published
//! while the subscriber is reconnecting is lost, so listeners read the current state when they
//! start and treat messages as news of a change.

use crate::connection::Redis;
use crate::error::RedisError;
use crate::options::RedisOptions;
use crate::Result;
use fred::prelude::*;
use fred::types::config::Config;
use fred::types::{Builder, Value};
use std::time::Duration;
use tokio::sync::broadcast;

impl Redis {
    /// PUBLISH `message` on `channel` (sent to the node of the channel's slot); how many
    /// subscribers heard it (on that node).
    pub async fn publish(&self, channel: &str, message: &str) -> Result<u64> {
        let client = self.client(channel)?;
        let n: i64 = client
            .publish(channel, message)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(n.max(0) as u64)
    }
}

/// One message heard by a [`Subscription`], or the mark of a resubscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The channel it was published on; empty for [`Published::is_resubscribed`].
    pub channel: String,
    /// Its payload, as text.
    pub payload: String,
}

impl Published {
    fn resubscribed() -> Self {
        Self {
            channel: String::new(),
            payload: String::new(),
        }
    }

    /// Whether this marks a resubscription after a lost connection: messages published in
    /// between were not heard, so listeners re-read what they follow.
    pub fn is_resubscribed(&self) -> bool {
        self.channel.is_empty()
    }
}

/// A connection subscribed to a channel pattern (PSUBSCRIBE), resubscribing after every
/// reconnection; its messages go to every receiver of [`Subscription::receiver`].
pub struct Subscription {
    client: Client,
    tx: broadcast::Sender<Published>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").finish_non_exhaustive()
    }
}

impl Subscription {
    /// Subscribes to `pattern` on a connection of its own; `capacity` messages are buffered per
    /// receiver (a receiver that lags loses the oldest). If Redis is down, it keeps trying in
    /// the background and subscribes once connected.
    pub async fn pattern(opts: &RedisOptions, pattern: &str, capacity: usize) -> Result<Self> {
        let config = Config::from_url(&opts.url)
            .map_err(|e| RedisError::Config(format!("url: {}", e.details())))?;
        let client = Builder::from_config(config)
            .with_connection_config(|c| {
                c.connection_timeout = opts.command_timeout;
                c.internal_command_timeout = opts.command_timeout;
            })
            .set_policy(ReconnectPolicy::new_exponential(0, 50, 2_000, 2))
            .build()
            .map_err(|e| RedisError::Config(e.details().to_string()))?;
        let (tx, _) = broadcast::channel(capacity.max(1));
        let mut messages = client.message_rx();
        let mut reconnects = client.reconnect_rx();
        client.connect();
        // Subscribed before returning when Redis answers in time (else in the background).
        let subscribed = tokio::time::timeout(opts.command_timeout, async {
            client.wait_for_connect().await.is_ok() && client.psubscribe(pattern).await.is_ok()
        })
        .await
        .unwrap_or(false);
        let task = {
            let client = client.clone();
            let tx = tx.clone();
            let pattern = pattern.to_owned();
            tokio::spawn(async move {
                let subscribe = |client: Client, pattern: String| async move {
                    // Until it takes: the connection may still be coming up.
                    loop {
                        if client.wait_for_connect().await.is_ok()
                            && client.psubscribe(pattern.clone()).await.is_ok()
                        {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                };
                if !subscribed {
                    subscribe(client.clone(), pattern.clone()).await;
                }
                loop {
                    tokio::select! {
                        m = messages.recv() => match m {
                            Ok(m) => {
                                let payload = match &m.value {
                                    Value::String(s) => s.to_string(),
                                    Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
                                    _ => continue,
                                };
                                let _ = tx.send(Published { channel: m.channel.to_string(), payload });
                            }
                            Err(broadcast::error::RecvError::Lagged(n)) => {
                                tracing::warn!(lost = n, "pub/sub reader lagged");
                            }
                            Err(broadcast::error::RecvError::Closed) => return,
                        },
                        r = reconnects.recv() => match r {
                            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                                subscribe(client.clone(), pattern.clone()).await;
                                // Messages published while disconnected are lost: say so.
                                let _ = tx.send(Published::resubscribed());
                            }
                            Err(broadcast::error::RecvError::Closed) => return,
                        },
                    }
                }
            })
        };
        Ok(Self { client, tx, task })
    }

    /// A receiver of every message heard from now on.
    pub fn receiver(&self) -> broadcast::Receiver<Published> {
        self.tx.subscribe()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.task.abort();
        let client = self.client.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = client.quit().await;
            });
        }
    }
}
