//! Property test: random sequences of join / leave / heartbeat / enter / admit / expire / admin
//! actions, batched joins and batched status reads, driven through a real redis-server and the
//! in-memory store with the same clock and the same inputs, must get identical answers at every
//! step. A third run on Redis makes every batch as single calls, one by one: a batch (one script
//! call for N requests) must answer exactly as those N calls do. The ops include live switches
//! of the queueing method and joins with access codes (minted, spent, revoked).

mod common;

use proptest::prelude::*;
use queue::ids::{EventId, SessionKey};
use queue::model::{Action, EventConfig, JoinChallenge, QueueingMethod};
use queue::page::PageSettings;
use queue::store::{
    CodeHash, Holder, JoinRequest, MemoryStore, RedisOptions, RedisStore, StatusRequest, Store,
    MAX_EPOCH,
};
use std::sync::atomic::{AtomicU32, Ordering};
use testkit::{raw_command, RedisServer};

const T0: u64 = 1_800_000_000_000;

#[derive(Debug, Clone)]
enum Op {
    Join {
        s: u8,
        pre: i64,
    },
    JoinMany {
        joins: Vec<(u8, i64)>,
    },
    Status {
        s: u8,
        heartbeat: bool,
    },
    StatusMany {
        reads: Vec<(u8, bool)>,
    },
    Enter {
        s: u8,
    },
    Leave {
        s: u8,
    },
    Admit,
    Sweep {
        budget: u32,
    },
    Advance {
        ms: u64,
    },
    Act(Action),
    Pulse {
        since: u64,
    },
    Places {
        heartbeat: bool,
    },
    /// The queue stood still for the last `ms` (the end of MAINTENANCE_MODE).
    Resume {
        ms: u64,
    },
    /// The event switches to another queueing method (a configure call).
    Method(QueueingMethod),
    /// Access codes `from..to` are minted.
    Mint {
        from: u8,
        to: u8,
    },
    /// Code `code` is revoked.
    Revoke {
        code: u8,
    },
    /// A join carrying access code `code`.
    JoinCode {
        s: u8,
        code: u8,
        pre: i64,
    },
}

fn method() -> impl Strategy<Value = QueueingMethod> {
    prop_oneof![
        3 => Just(QueueingMethod::Fifo),
        3 => Just(QueueingMethod::Random),
        2 => Just(QueueingMethod::Passthrough),
        1 => Just(QueueingMethod::Reject),
    ]
}

fn code(i: u8) -> CodeHash {
    let mut h = [7u8; 32];
    h[0] = i;
    h
}

fn op() -> impl Strategy<Value = Op> {
    let s = 0u8..6;
    prop_oneof![
        4 => (s.clone(), -3i64..=-1).prop_map(|(s, pre)| Op::Join { s, pre }),
        2 => prop::collection::vec((s.clone(), -3i64..=-1), 1..8).prop_map(|joins| Op::JoinMany { joins }),
        3 => (s.clone(), any::<bool>()).prop_map(|(s, heartbeat)| Op::Status { s, heartbeat }),
        2 => prop::collection::vec((s.clone(), any::<bool>()), 1..8).prop_map(|reads| Op::StatusMany { reads }),
        2 => s.clone().prop_map(|s| Op::Enter { s }),
        1 => s.clone().prop_map(|s| Op::Leave { s }),
        3 => Just(Op::Admit),
        1 => (1u32..3).prop_map(|budget| Op::Sweep { budget }),
        4 => prop_oneof![0u64..1500, 1500u64..12_000].prop_map(|ms| Op::Advance { ms }),
        1 => prop_oneof![Just(Action::StopAdmissions), Just(Action::ResumeAdmissions), Just(Action::SoldOut)]
            .prop_map(Op::Act),
        1 => (0u64..12).prop_map(|since| Op::Pulse { since }),
        1 => any::<bool>().prop_map(|heartbeat| Op::Places { heartbeat }),
        1 => (0u64..20_000).prop_map(|ms| Op::Resume { ms }),
        1 => method().prop_map(Op::Method),
        1 => (0u8..4, 1u8..4).prop_map(|(from, n)| Op::Mint { from, to: from + n }),
        1 => (0u8..6).prop_map(|code| Op::Revoke { code }),
        3 => (s.clone(), 0u8..6, -3i64..=-1).prop_map(|(s, code, pre)| Op::JoinCode { s, code, pre }),
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
        method(),
    )
        .prop_map(|(aps, max, attl, idle, rto, opens, method)| EventConfig {
            admit_per_second: aps,
            max_active: max,
            admission_ttl_seconds: attl,
            idle_timeout_seconds: idle,
            ready_timeout_seconds: rto,
            opens_at: opens.map(|s| {
                time::OffsetDateTime::from_unix_timestamp((T0 / 1000) as i64 + s).unwrap()
            }),
            target_url: (max % 2 == 0).then(|| "https://shop.example/buy?x=1".to_owned()),
            // 0 bits included: both stores must report it as no challenge.
            join_challenge: (aps != 1).then_some(JoinChallenge {
                difficulty_bits: idle % 3,
            }),
            queueing_method: method,
            // Stored as JSON in Redis, as is in memory: both must read back the same settings.
            page: match rto % 3 {
                0 => None,
                1 => Some(PageSettings::default()),
                _ => Some(PageSettings {
                    title: Some("Sommer <sale> \"ü\"".to_owned()),
                    accent_color: Some("#1f5fd1".to_owned()),
                    template: Some("<main>{{title}}{{queue}}</main>".to_owned()),
                    ..PageSettings::default()
                }),
            },
        })
}

/// An event's epoch (random in production, `queue::store::new_epoch`), the same for both
/// stores: the ends of its range included, where a double in Lua would first lose exactness.
fn epoch() -> impl Strategy<Value = u64> {
    prop_oneof![1 => Just(1u64), 1 => Just(MAX_EPOCH), 6 => 1..=MAX_EPOCH]
}

/// A result with errors reduced to their kind (messages may differ in wording).
fn norm<T: std::fmt::Debug>(r: queue::error::Result<T>) -> String {
    match r {
        Ok(v) => format!("{v:?}"),
        Err(e) => format!("Err({})", format!("{e:?}").split('(').next().unwrap_or("")),
    }
}

static EVENT: AtomicU32 = AtomicU32::new(0);

fn sess(s: u8) -> SessionKey {
    SessionKey::of(&format!("session-{s}"))
}

/// Session `s`'s place: the ticket its last join recorded in `tickets`.
fn holder(tickets: &[u64; 6], s: u8) -> Holder {
    Holder {
        ticket: tickets[s as usize],
        session: sess(s),
    }
}

/// Applies `op` to `store` and returns its answer, normalised; `batched` false makes each batch
/// as single calls, one by one. Joins record their tickets in `tickets`.
async fn apply(
    store: &dyn Store, ev: &EventId, op: &Op, tickets: &mut [u64; 6], now: u64, batched: bool,
) -> String {
    match op {
        Op::Join { s, pre } => {
            let r = store.join(ev, sess(*s), *pre, now).await;
            if let Ok(j) = &r {
                tickets[*s as usize] = j.place.ticket;
            }
            norm(r)
        }
        Op::JoinMany { joins } => {
            let reqs: Vec<JoinRequest> = joins
                .iter()
                .map(|(s, pre)| JoinRequest::new(sess(*s), *pre))
                .collect();
            let r = if batched {
                store.join_many(ev, &reqs, now).await
            } else {
                let mut out = Vec::new();
                for q in &reqs {
                    out.push(store.join(ev, q.session, q.pre_score, now).await);
                }
                out.into_iter().collect()
            };
            if let Ok(js) = &r {
                for ((s, _), j) in joins.iter().zip(js) {
                    tickets[*s as usize] = j.place.ticket;
                }
            }
            norm(r)
        }
        Op::Status { s, heartbeat } => {
            norm(store.status(ev, holder(tickets, *s), *heartbeat, now).await)
        }
        Op::StatusMany { reads } => {
            let reqs: Vec<StatusRequest> = reads
                .iter()
                .map(|(s, heartbeat)| StatusRequest {
                    holder: holder(tickets, *s),
                    heartbeat: *heartbeat,
                })
                .collect();
            if batched {
                norm(store.status_many(ev, &reqs, now).await)
            } else {
                let mut out = Vec::new();
                for q in &reqs {
                    out.push(store.status(ev, q.holder, q.heartbeat, now).await);
                }
                norm(out.into_iter().collect::<queue::error::Result<Vec<_>>>())
            }
        }
        Op::Enter { s } => norm(store.enter(ev, holder(tickets, *s), now).await),
        Op::Leave { s } => norm(store.leave(ev, holder(tickets, *s), now).await),
        Op::Admit => norm(store.admit(ev, now).await),
        Op::Sweep { budget } => {
            // A full pass: the chunking differs between stores, the outcome may not.
            let mut expired = 0;
            loop {
                match store.sweep(ev, *budget, now).await {
                    Ok(r) => {
                        expired += r.expired;
                        if r.done {
                            break norm(Ok(expired));
                        }
                    }
                    Err(e) => break norm::<u64>(Err(e)),
                }
            }
        }
        Op::Advance { .. } | Op::Method(_) => String::new(),
        Op::Mint { from, to } => {
            let codes: Vec<CodeHash> = (*from..*to).map(code).collect();
            norm(store.add_access_codes(ev, &codes).await)
        }
        Op::Revoke { code: c } => norm(store.revoke_access_codes(ev, &[code(*c)]).await),
        Op::JoinCode { s, code: c, pre } => {
            let req = JoinRequest {
                session: sess(*s),
                pre_score: *pre,
                access_code: Some(code(*c)),
            };
            let r = store.join_many(ev, &[req], now).await;
            if let Ok(js) = &r {
                tickets[*s as usize] = js[0].place.ticket;
            }
            norm(r)
        }
        Op::Act(action) => norm(store.act(ev, *action).await),
        Op::Pulse { since } => norm(store.pulse(ev, *since).await),
        Op::Resume { ms } => norm(store.resume(ev, now.saturating_sub(*ms), now).await),
        Op::Places { heartbeat } => {
            let held: Vec<Holder> = (0..tickets.len() as u8)
                .map(|s| holder(tickets, s))
                .collect();
            norm(store.places(ev, &held, *heartbeat, now).await)
        }
    }
}

async fn run_case(
    redis: &RedisStore, port: u16, cfg: EventConfig, epoch: u64, ops: Vec<Op>,
) -> Result<(), TestCaseError> {
    let mem = MemoryStore::new();
    let ev = EventId::parse(&format!("p{}", EVENT.fetch_add(1, Ordering::SeqCst))).unwrap();
    // The same steps on another event of the same Redis, every batch made as single calls.
    let one = EventId::parse(&format!("p{}", EVENT.fetch_add(1, Ordering::SeqCst))).unwrap();
    let mut now = T0;
    let created = norm(redis.configure_with_epoch(&ev, &cfg, epoch, now).await);
    prop_assert_eq!(
        norm(mem.configure_with_epoch(&ev, &cfg, epoch, now).await),
        created.clone()
    );
    prop_assert_eq!(
        norm(redis.configure_with_epoch(&one, &cfg, epoch, now).await),
        created
    );
    // `one` keeps its heartbeats in hash buckets, as an event created before string buckets
    // does (lib.lua, "Memory layout"), so the model holds both layouts to the same answers.
    raw_command(port, &format!("HDEL wr:{{{}}}:ev hbl", one.as_str())).unwrap();
    let (mut t_mem, mut t_red, mut t_one) = ([0u64; 6], [0u64; 6], [0u64; 6]);
    for (i, op) in ops.iter().enumerate() {
        if let Op::Advance { ms } = op {
            now += ms;
            continue;
        }
        if let Op::Method(m) = op {
            let cfg = EventConfig {
                queueing_method: *m,
                ..cfg.clone()
            };
            // Each call draws another epoch for an event it would create: an update keeps the
            // one the event has, or the places' epochs would differ below.
            let a = norm(mem.configure(&ev, &cfg, now).await);
            prop_assert_eq!(&a, &norm(redis.configure(&ev, &cfg, now).await));
            prop_assert_eq!(&a, &norm(redis.configure(&one, &cfg, now).await));
            continue;
        }
        let a = apply(&mem, &ev, op, &mut t_mem, now, true).await;
        let b = apply(redis, &ev, op, &mut t_red, now, true).await;
        let c = apply(redis, &one, op, &mut t_one, now, false).await;
        prop_assert_eq!(&a, &b, "step {} {:?} at +{} ms", i, op, now - T0);
        prop_assert_eq!(&b, &c, "step {} {:?} one by one at +{} ms", i, op, now - T0);
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
    let mut runner = common::runner(256);
    runner
        .run(
            &(config(), epoch(), prop::collection::vec(op(), 1..80)),
            |(cfg, epoch, ops)| rt.block_on(run_case(&redis, server.port(), cfg, epoch, ops)),
        )
        .unwrap();
}
