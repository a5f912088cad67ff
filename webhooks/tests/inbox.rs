//! The inbox and consumer against a real `redis-server` (and a local Redis Cluster): dedup
//! under concurrency, takeover of a crashed consumer's entries, retries then dead letters,
//! and the dead-letter operations.

mod common;

use anyhow::Result;
use common::{envelope, now_ms};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::{RedisCluster, RedisServer};
use tokio::sync::watch;
use webhooks::{
    Appended, Consumer, ConsumerConfig, Envelope, ForwardError, ForwardFn, Inbox, InboxError,
    InboxOptions, Metrics, RetryPolicy,
};

async fn inbox(url: &str, ns: &str) -> Result<Inbox> {
    let mut o = InboxOptions::new(url);
    o.namespace = ns.into();
    o.command_timeout = Duration::from_secs(5);
    o.stale_consumer = Duration::from_millis(500);
    Ok(Inbox::connect(&o, Arc::new(Metrics::new())).await?)
}

fn fast(name: &str, max_attempts: u32) -> ConsumerConfig {
    let mut c = ConsumerConfig::new(name);
    c.poll_interval = Duration::from_millis(20);
    c.claim_idle = Duration::from_millis(300);
    c.claim_every = Duration::from_millis(50);
    c.retry = RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
    };
    c
}

async fn eventually<F, Fut>(what: &str, mut f: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if f().await? {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    anyhow::bail!("timed out waiting for {what}")
}

/// A forwarder that records the event ids it applied (once each, like the real receiver) and
/// fails while `down` is set.
#[derive(Clone, Default)]
struct Receiver {
    calls: Arc<AtomicUsize>,
    applied: Arc<std::sync::Mutex<Vec<String>>>,
    down: Arc<AtomicBool>,
}

impl Receiver {
    fn forwarder(&self) -> Arc<dyn webhooks::Forward> {
        let me = self.clone();
        Arc::new(ForwardFn(move |e: Envelope| {
            let me = me.clone();
            async move {
                me.calls.fetch_add(1, Ordering::SeqCst);
                if me.down.load(Ordering::SeqCst) {
                    return Err(ForwardError::Retryable("receiver down".into()));
                }
                let mut a = me.applied.lock().unwrap();
                if !a.contains(&e.event_id) {
                    a.push(e.event_id);
                }
                Ok(())
            }
        }))
    }

    fn applied(&self) -> Vec<String> {
        self.applied.lock().unwrap().clone()
    }
}

fn spawn(consumer: Consumer) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = watch::channel(false);
    (tx, tokio::spawn(consumer.run(rx)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_deliveries_over_two_connections_store_one_entry() -> Result<()> {
    let redis = RedisServer::start()?;
    let a = inbox(&redis.url(), "dedup").await?;
    let b = inbox(&redis.url(), "dedup").await?;
    let env = envelope("msg_same");
    let mut tasks = Vec::new();
    for i in 0..1000 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        let env = env.clone();
        tasks.push(tokio::spawn(async move { store.append(&env).await }));
    }
    let mut new = Vec::new();
    let mut dup = Vec::new();
    for t in tasks {
        match t.await?? {
            Appended::New(id) => new.push(id),
            Appended::Duplicate(id) => dup.push(id),
        }
    }
    assert_eq!(new.len(), 1);
    assert_eq!(dup.len(), 999);
    // Every duplicate names the one stored entry.
    assert!(dup.iter().all(|d| *d == new[0]));
    assert_eq!(a.backlog().await?, 1);
    let (sa, sb) = (a.metrics().snapshot(), b.metrics().snapshot());
    assert_eq!(sa.received + sb.received, 1000);
    assert_eq!(sa.duplicates + sb.duplicates, 999);
    // Another id is new.
    assert!(matches!(
        a.append(&envelope("msg_other")).await?,
        Appended::New(_)
    ));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_consumers_pending_entry_is_claimed_by_another() -> Result<()> {
    let redis = RedisServer::start()?;
    let ib = inbox(&redis.url(), "claim").await?;
    ib.append(&envelope("msg_orphan")).await?;
    // "crashed" reads the entry and dies before forwarding or acknowledging it.
    let started = Instant::now();
    let taken = ib.read("crashed", now_ms(), 10).await?;
    assert_eq!(taken.len(), 1);
    assert!(ib.read("crashed", now_ms(), 10).await?.is_empty());

    let rx = Receiver::default();
    let (stop, task) = spawn(Consumer::new(
        ib.clone(),
        rx.forwarder(),
        fast("survivor", 5),
    ));
    eventually("the orphan to be forwarded", || async {
        Ok(rx.applied() == vec!["msg_orphan".to_owned()])
    })
    .await?;
    // Not before it had idled past the threshold.
    assert!(
        started.elapsed() >= Duration::from_millis(290),
        "{:?}",
        started.elapsed()
    );
    eventually("the inbox to drain", || async {
        Ok(ib.backlog().await? == 0)
    })
    .await?;
    assert_eq!(rx.calls.load(Ordering::SeqCst), 1);
    // The dead consumer, now with nothing pending and silent, is dropped from the group.
    eventually("the crashed consumer to be forgotten", || async {
        Ok(ib.consumers().await? == vec!["survivor".to_owned()])
    })
    .await?;
    stop.send(true)?;
    task.await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_forwarder_retries_then_dead_letters_and_an_admin_retry_applies_it_once(
) -> Result<()> {
    let redis = RedisServer::start()?;
    let ib = inbox(&redis.url(), "retry").await?;
    let rx = Receiver::default();
    rx.down.store(true, Ordering::SeqCst);
    let (stop, task) = spawn(Consumer::new(ib.clone(), rx.forwarder(), fast("c1", 3)));
    ib.append(&envelope("msg_doomed")).await?;
    eventually("a dead letter", || async {
        Ok(ib.dead_letters().await? == 1)
    })
    .await?;
    assert_eq!(rx.calls.load(Ordering::SeqCst), 3);
    assert_eq!(ib.backlog().await?, 0);
    let m = ib.metrics().snapshot();
    assert_eq!((m.retried, m.dead_lettered, m.forwarded), (2, 1, 0));

    let list = ib.dlq_list(10).await?;
    assert_eq!(list.len(), 1);
    let dl = &list[0];
    assert_eq!(dl.status, "active");
    assert_eq!(dl.attempts, 3);
    assert_eq!(dl.last_error, "receiver down");
    assert_eq!(dl.envelope.event_id, "msg_doomed");
    assert_eq!(ib.dlq_get(&dl.id).await?, *dl);

    // The receiver comes back; the operator retries (twice: the second is a no-op).
    rx.down.store(false, Ordering::SeqCst);
    let r1 = ib.dlq_retry(&dl.id).await?;
    let r2 = ib.dlq_retry(&dl.id).await?;
    assert!(r1.enqueued && !r2.enqueued);
    assert_eq!(r1.stream_id, r2.stream_id);
    eventually("the retry to be applied", || async {
        Ok(rx.applied() == vec!["msg_doomed".to_owned()] && ib.backlog().await? == 0)
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        rx.calls.load(Ordering::SeqCst),
        4,
        "applied exactly once more"
    );
    let after = ib.dlq_get(&dl.id).await?;
    assert_eq!(after.status, "retried");
    assert_eq!(
        after.retry_stream_id.as_deref(),
        Some(r1.stream_id.as_str())
    );
    stop.send(true)?;
    task.await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_is_one_shot_and_ids_are_checked() -> Result<()> {
    let redis = RedisServer::start()?;
    let ib = inbox(&redis.url(), "resolve").await?;
    let env = webhooks::envelope_of(
        &webhooks::Verified {
            id: "msg_bad".into(),
            timestamp: 0,
        },
        "standard-webhooks",
        None,
        b"{not json",
        now_ms(),
    );
    let Appended::New(id) = ib.dead_letter_malformed(&env, "malformed payload").await? else {
        panic!("expected a new dead letter")
    };
    // A provider's retry of the same malformed webhook makes no second dead letter.
    assert!(matches!(
        ib.dead_letter_malformed(&env, "malformed payload").await?,
        Appended::Duplicate(_)
    ));
    // …and does not make a well-formed delivery under the same id a duplicate.
    assert!(matches!(
        ib.append(&envelope("msg_bad")).await?,
        Appended::New(_)
    ));
    let dl = ib.dlq_get(&id).await?;
    assert_eq!(
        (dl.attempts, dl.envelope.event_type.as_str()),
        (0, "invalid")
    );
    assert_eq!(dl.envelope.payload, "{not json");

    let r = ib
        .dlq_resolve(&id, "ops@example.com", Some("provider bug"))
        .await?;
    assert_eq!(r.status, "resolved");
    assert_eq!(r.resolved_by.as_deref(), Some("ops@example.com"));
    assert_eq!(r.note.as_deref(), Some("provider bug"));
    assert!(r.resolved_at.is_some());
    assert!(matches!(
        ib.dlq_resolve(&id, "someone", None).await,
        Err(InboxError::AlreadyResolved)
    ));
    assert!(matches!(
        ib.dlq_retry(&id).await,
        Err(InboxError::AlreadyResolved)
    ));
    assert!(matches!(ib.dlq_get("1-0").await, Err(InboxError::NotFound)));
    assert!(matches!(
        ib.dlq_resolve("1-0", "x", None).await,
        Err(InboxError::NotFound)
    ));
    assert!(matches!(
        ib.dlq_retry("1-0").await,
        Err(InboxError::NotFound)
    ));
    assert!(matches!(ib.dlq_get("+").await, Err(InboxError::InvalidId)));
    assert_eq!(ib.dlq_list(5).await?.len(), 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_failure_dead_letters_at_once() -> Result<()> {
    let redis = RedisServer::start()?;
    let ib = inbox(&redis.url(), "perm").await?;
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let fwd = Arc::new(ForwardFn(move |_e: Envelope| {
        let c = c.clone();
        async move {
            c.fetch_add(1, Ordering::SeqCst);
            Err(ForwardError::Permanent("refused".into()))
        }
    }));
    let (stop, task) = spawn(Consumer::new(ib.clone(), fwd, fast("c", 8)));
    ib.append(&envelope("msg_refused")).await?;
    eventually("a dead letter", || async {
        Ok(ib.dead_letters().await? == 1)
    })
    .await?;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(ib.dlq_list(1).await?[0].attempts, 1);
    stop.send(true)?;
    task.await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_on_a_redis_cluster() -> Result<()> {
    let cluster = RedisCluster::start(3, 0)?;
    let ib = inbox(&cluster.url(), "payments").await?;
    let rx = Receiver::default();
    let (stop, task) = spawn(Consumer::new(ib.clone(), rx.forwarder(), fast("c", 3)));
    for i in 0..20 {
        let env = envelope(&format!("msg_{i}"));
        ib.append(&env).await?;
        assert!(matches!(ib.append(&env).await?, Appended::Duplicate(_)));
    }
    eventually("all forwarded", || async { Ok(rx.applied().len() == 20) }).await?;
    eventually("the inbox to drain", || async {
        Ok(ib.backlog().await? == 0)
    })
    .await?;
    stop.send(true)?;
    task.await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consumer_recovers_when_redis_comes_back_empty() -> Result<()> {
    let mut redis = RedisServer::start()?;
    let ib = inbox(&redis.url(), "restart").await?;
    let rx = Receiver::default();
    let (stop, task) = spawn(Consumer::new(ib.clone(), rx.forwarder(), fast("c", 3)));
    ib.append(&envelope("msg_before")).await?;
    eventually("the first forward", || async {
        Ok(rx.applied().len() == 1)
    })
    .await?;
    // A Redis without persistence restarts empty: stream and consumer group are gone. The
    // consumer recreates the group (NOGROUP) and carries on.
    redis.restart()?;
    eventually("an append after the restart", || async {
        Ok(ib.append(&envelope("msg_after")).await.is_ok())
    })
    .await?;
    eventually("the forward after the restart", || async {
        Ok(rx.applied() == vec!["msg_before".to_owned(), "msg_after".to_owned()])
    })
    .await?;
    stop.send(true)?;
    task.await?;
    Ok(())
}

/// `INFO commandstats`: how many times `cmd` (lower case) ran, inside scripts included.
fn calls_of(port: u16, cmd: &str) -> u64 {
    let info = testkit::raw_command(port, "INFO commandstats").unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{cmd}:calls=")))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

fn int_reply(port: u16, cmd: &str) -> i64 {
    let r = testkit::raw_command(port, cmd).unwrap();
    r.trim().trim_start_matches(':').parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_ack_call_acknowledges_many_entries_and_forgets_their_retries() -> Result<()> {
    let redis = RedisServer::start()?;
    let ib = inbox(&redis.url(), "acks").await?;
    for i in 0..5 {
        ib.append(&envelope(&format!("msg_{i}"))).await?;
    }
    let entries = ib.read("c", now_ms(), 10).await?;
    assert_eq!(entries.len(), 5);
    // One of them failed once: it waits in the retry schedule with an attempt counted.
    ib.fail(
        &entries[0].id,
        now_ms(),
        8,
        Duration::from_secs(60),
        "x",
        false,
    )
    .await?;
    assert_eq!(int_reply(redis.port(), "ZCARD wh:{acks}:retry"), 1);
    let before = calls_of(redis.port(), "xack");
    let mut ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
    ids.push("1-0"); // never existed: not counted
    assert_eq!(ib.ack_many(&ids).await?, 5);
    assert_eq!(
        calls_of(redis.port(), "xack") - before,
        1,
        "one XACK for all"
    );
    assert_eq!(ib.backlog().await?, 0);
    assert_eq!(int_reply(redis.port(), "ZCARD wh:{acks}:retry"), 0);
    assert_eq!(int_reply(redis.port(), "HLEN wh:{acks}:attempts"), 0);
    let pending = testkit::raw_command(redis.port(), "XPENDING wh:{acks}:inbox forwarders")?;
    assert!(pending.starts_with("*4\r\n:0\r\n"), "{pending}");
    // Acknowledging again changes nothing.
    assert_eq!(ib.ack_many(&ids).await?, 0);
    assert!(ib.ack(&entries[1].id).await.map(|n| !n)?);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_that_finish_together_are_acknowledged_together() -> Result<()> {
    const N: usize = 64;
    let redis = RedisServer::start()?;
    let ib = inbox(&redis.url(), "burst").await?;
    for i in 0..N {
        ib.append(&envelope(&format!("msg_{i}"))).await?;
    }
    // Every forward waits until all N are in flight (so the window holds them all at once),
    // then they all finish together.
    let arrived = Arc::new(AtomicUsize::new(0));
    let (all_in, _) = watch::channel(false);
    let all_in = Arc::new(all_in);
    let (a, w) = (arrived.clone(), all_in.clone());
    let fwd = Arc::new(ForwardFn(move |_e: Envelope| {
        let (a, w) = (a.clone(), w.clone());
        async move {
            let mut rx = w.subscribe();
            if a.fetch_add(1, Ordering::SeqCst) + 1 == N {
                w.send_replace(true);
            }
            let _ = rx.wait_for(|v| *v).await;
            Ok(())
        }
    }));
    let mut cfg = fast("c", 3);
    cfg.window = N;
    let before = calls_of(redis.port(), "xack");
    let (stop, task) = spawn(Consumer::new(ib.clone(), fwd, cfg));
    eventually("the inbox to drain", || async {
        Ok(ib.backlog().await? == 0)
    })
    .await?;
    assert_eq!(arrived.load(Ordering::SeqCst), N);
    assert_eq!(ib.metrics().snapshot().forwarded, N as u64);
    // Per-entry acknowledgements would take N calls; batched, a few (how few depends on how
    // the forwards' tasks are spread over the threads, so the bound leaves room).
    let acks = calls_of(redis.port(), "xack") - before;
    assert!(acks <= (N / 4) as u64, "{acks} XACK calls for {N} entries");
    stop.send(true)?;
    task.await?;
    Ok(())
}
