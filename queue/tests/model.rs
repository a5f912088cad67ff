//! Property test: random sequences of join / leave / heartbeat / enter / admit / expire / admin
//! actions, driven through a real redis-server and the in-memory store with the same clock and
//! the same inputs, must get identical answers at every step.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use queue::ids::{EventId, SessionKey};
use queue::model::{Action, EventConfig};
use queue::store::{MemoryStore, RedisOptions, RedisStore, Store};
use std::sync::atomic::{AtomicU32, Ordering};
use testkit::RedisServer;

const T0: u64 = 1_800_000_000_000;

#[derive(Debug, Clone)]
enum Op {
    Join { s: u8, pre: i64 },
    Status { s: u8, heartbeat: bool },
    Enter { s: u8 },
    Leave { s: u8 },
    Admit,
    Sweep { budget: u32 },
    Advance { ms: u64 },
    Act(Action),
    Pulse { since: u64 },
    Places { heartbeat: bool },
}

fn op() -> impl Strategy<Value = Op> {
    let s = 0u8..6;
    prop_oneof![
        4 => (s.clone(), -3i64..=-1).prop_map(|(s, pre)| Op::Join { s, pre }),
        3 => (s.clone(), any::<bool>()).prop_map(|(s, heartbeat)| Op::Status { s, heartbeat }),
        2 => s.clone().prop_map(|s| Op::Enter { s }),
        1 => s.prop_map(|s| Op::Leave { s }),
        3 => Just(Op::Admit),
        1 => (1u32..3).prop_map(|budget| Op::Sweep { budget }),
        4 => prop_oneof![0u64..1500, 1500u64..12_000].prop_map(|ms| Op::Advance { ms }),
        1 => prop_oneof![Just(Action::StopAdmissions), Just(Action::ResumeAdmissions), Just(Action::SoldOut)]
            .prop_map(Op::Act),
        1 => (0u64..12).prop_map(|since| Op::Pulse { since }),
        1 => any::<bool>().prop_map(|heartbeat| Op::Places { heartbeat }),
    ]
}

fn config() -> impl Strategy<Value = EventConfig> {
    (
        0u32..4,
        0u32..4,
        1u32..8,
        2u32..20,
        1u32..8,
        prop::option::of(0i64..20),
    )
        .prop_map(|(aps, max, attl, idle, rto, opens)| EventConfig {
            admit_per_second: aps,
            max_active: max,
            admission_ttl_seconds: attl,
            idle_timeout_seconds: idle,
            ready_timeout_seconds: rto,
            opens_at: opens.map(|s| {
                time::OffsetDateTime::from_unix_timestamp((T0 / 1000) as i64 + s).unwrap()
            }),
            target_url: (max % 2 == 0).then(|| "https://shop.example/buy?x=1".to_owned()),
        })
}

/// A result with errors reduced to their kind (messages may differ in wording).
fn norm<T: std::fmt::Debug>(r: queue::error::Result<T>) -> String {
    match r {
        Ok(v) => format!("{v:?}"),
        Err(e) => format!("Err({})", format!("{e:?}").split('(').next().unwrap_or("")),
    }
}

static EVENT: AtomicU32 = AtomicU32::new(0);

async fn run_case(redis: &RedisStore, cfg: EventConfig, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mem = MemoryStore::new();
    let ev = EventId::parse(&format!("p{}", EVENT.fetch_add(1, Ordering::SeqCst))).unwrap();
    let mut now = T0;
    prop_assert_eq!(
        norm(mem.configure(&ev, &cfg, now).await),
        norm(redis.configure(&ev, &cfg, now).await)
    );
    let mut tickets = [0u64; 6];
    for (i, op) in ops.iter().enumerate() {
        let sess = |s: u8| SessionKey::of(&format!("session-{s}"));
        let (a, b) = match op {
            Op::Join { s, pre } => {
                let (a, b) = (
                    mem.join(&ev, sess(*s), *pre, now).await,
                    redis.join(&ev, sess(*s), *pre, now).await,
                );
                if let Ok(j) = &a {
                    tickets[*s as usize] = j.place.ticket;
                }
                (norm(a), norm(b))
            }
            Op::Status { s, heartbeat } => {
                let t = tickets[*s as usize];
                (
                    norm(mem.status(&ev, t, *heartbeat, now).await),
                    norm(redis.status(&ev, t, *heartbeat, now).await),
                )
            }
            Op::Enter { s } => {
                let t = tickets[*s as usize];
                (
                    norm(mem.enter(&ev, t, now).await),
                    norm(redis.enter(&ev, t, now).await),
                )
            }
            Op::Leave { s } => {
                let t = tickets[*s as usize];
                (
                    norm(mem.leave(&ev, t, sess(*s), now).await),
                    norm(redis.leave(&ev, t, sess(*s), now).await),
                )
            }
            Op::Admit => (
                norm(mem.admit(&ev, now).await),
                norm(redis.admit(&ev, now).await),
            ),
            Op::Sweep { budget } => {
                // A full pass on each side: the chunking differs, the outcome may not.
                let mut red = 0;
                loop {
                    let r = redis
                        .sweep(&ev, *budget, now)
                        .await
                        .map_err(|e| TestCaseError::fail(e.to_string()))?;
                    red += r.expired;
                    if r.done {
                        break;
                    }
                }
                let m = mem.sweep(&ev, *budget, now).await.map(|r| r.expired);
                (norm(m), norm(Ok(red)))
            }
            Op::Advance { ms } => {
                now += ms;
                continue;
            }
            Op::Act(action) => (
                norm(mem.act(&ev, *action).await),
                norm(redis.act(&ev, *action).await),
            ),
            Op::Pulse { since } => (
                norm(mem.pulse(&ev, *since).await),
                norm(redis.pulse(&ev, *since).await),
            ),
            Op::Places { heartbeat } => (
                norm(mem.places(&ev, &tickets, *heartbeat, now).await),
                norm(redis.places(&ev, &tickets, *heartbeat, now).await),
            ),
        };
        prop_assert_eq!(a, b, "step {} {:?} at +{} ms", i, op, now - T0);
    }
    prop_assert_eq!(
        norm(mem.info(&ev, now).await),
        norm(redis.info(&ev, now).await),
        "final info"
    );
    Ok(())
}

#[test]
fn redis_matches_the_in_memory_model() {
    let server = RedisServer::start().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let redis = rt
        .block_on(RedisStore::connect(&RedisOptions::new(server.url())))
        .unwrap();
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let mut runner = TestRunner::new(Config {
        cases,
        ..Config::default()
    });
    runner
        .run(
            &(config(), prop::collection::vec(op(), 1..80)),
            |(cfg, ops)| rt.block_on(run_case(&redis, cfg, ops)),
        )
        .unwrap();
}
