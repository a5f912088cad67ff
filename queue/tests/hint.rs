//! Property test of status reads with a position hint: random sequences of joins (priority
//! ones included), leaves, admission ticks, sweeps, clock steps and changes of the opening time,
//! on the in-memory store and a real redis-server. At each poll the hinted read
//! (`WaitingRoom::status_hinted`, which derives the position from the followed departure log
//! when it can) must say what the store says at that instant: the same status and position,
//! and, when it was answered from the log (`from_log`), the same expiry; the test also checks
//! that derivation happened.

mod common;

use proptest::prelude::*;
use queue::clock::{Clock, ManualClock};
use queue::error::Result;
use queue::ids::{EventId, SessionKey};
use queue::model::*;
use queue::room::WaitingRoom;
use queue::store::*;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

const T0: u64 = 1_800_000_000_000;
const SESSIONS: u8 = 6;

#[derive(Debug, Clone)]
enum Op {
    Join {
        s: u8,
    },
    JoinCode {
        s: u8,
        code: u8,
    },
    Leave {
        s: u8,
    },
    Admit,
    Sweep,
    Advance {
        ms: u64,
    },
    /// The opening time moves to `at` seconds after the start (None: open).
    Opens {
        at: Option<u64>,
    },
    Poll {
        s: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..SESSIONS).prop_map(|s| Op::Join { s }),
        1 => (0..SESSIONS, 0u8..3).prop_map(|(s, code)| Op::JoinCode { s, code }),
        2 => (0..SESSIONS).prop_map(|s| Op::Leave { s }),
        2 => Just(Op::Admit),
        1 => Just(Op::Sweep),
        2 => prop_oneof![0u64..1_500, 1_000u64..30_000].prop_map(|ms| Op::Advance { ms }),
        1 => prop::option::of(0u64..40).prop_map(|at| Op::Opens { at }),
        8 => (0..SESSIONS).prop_map(|s| Op::Poll { s }),
    ]
}

fn config() -> impl Strategy<Value = EventConfig> {
    (0u32..3, 0u32..3, 10u32..60, prop::bool::ANY).prop_map(|(aps, max, idle, random)| {
        EventConfig {
            admit_per_second: aps,
            max_active: max,
            idle_timeout_seconds: idle,
            queueing_method: if random {
                QueueingMethod::Random
            } else {
                QueueingMethod::Fifo
            },
            ..EventConfig::new(aps, max)
        }
    })
}

static EVENT: AtomicU32 = AtomicU32::new(0);
static DERIVED: AtomicU64 = AtomicU64::new(0);

/// One store's run: its room, event, the sessions' tokens and hints.
struct Run {
    room: WaitingRoom,
    store: Arc<dyn Store>,
    event: EventId,
    codes: Vec<String>,
    held: Vec<Option<(String, Option<String>)>>,
}

impl Run {
    async fn new(store: Arc<dyn Store>, clock: &ManualClock, cfg: &EventConfig) -> Self {
        let room = common::room(store.clone(), clock);
        let event = EventId::parse(&format!("h{}", EVENT.fetch_add(1, Ordering::SeqCst))).unwrap();
        store.configure(&event, cfg, clock.now_ms()).await.unwrap();
        let codes = room.mint_access_codes(event.as_str(), 3).await.unwrap();
        Self {
            room,
            store,
            event,
            codes,
            held: vec![None; SESSIONS as usize],
        }
    }

    fn joined(&mut self, s: u8, r: Result<queue::room::JoinView>) {
        if let Ok(j) = r {
            self.held[s as usize] = Some((j.waiting_token, j.poll_hint));
        }
    }

    async fn apply(&mut self, op: &Op, cfg: &EventConfig, now: u64) -> Result<(), TestCaseError> {
        let ev = self.event.clone();
        match op {
            Op::Join { s } => {
                let r = self.room.join(ev.as_str(), &format!("s{s}"), None).await;
                self.joined(*s, r);
            }
            Op::JoinCode { s, code } => {
                let code = self.codes[*code as usize].clone();
                let r = self
                    .room
                    .join_with_code(ev.as_str(), &format!("s{s}"), None, Some(&code))
                    .await;
                self.joined(*s, r);
            }
            Op::Leave { s } => {
                if let Some((token, _)) = &self.held[*s as usize] {
                    self.room.leave(token).await.unwrap();
                }
            }
            Op::Admit => {
                self.store.admit(&ev, now).await.unwrap();
            }
            Op::Sweep => while !self.store.sweep(&ev, 4, now).await.unwrap().done {},
            Op::Opens { at } => {
                let cfg = EventConfig {
                    opens_at: at.map(|s| {
                        time::OffsetDateTime::from_unix_timestamp((T0 / 1000 + s) as i64).unwrap()
                    }),
                    ..cfg.clone()
                };
                self.store.configure(&ev, &cfg, now).await.unwrap();
            }
            Op::Advance { .. } => {}
            Op::Poll { s } => self.poll(*s, now).await?,
        }
        Ok(())
    }

    /// The hinted read against the store's own answer at the same instant.
    async fn poll(&mut self, s: u8, now: u64) -> Result<(), TestCaseError> {
        let Some((token, hint)) = self.held[s as usize].clone() else {
            return Ok(());
        };
        self.room.follower().refresh(&self.event).await.unwrap();
        let holder = Holder {
            ticket: self.room.ticket_of(&token).unwrap().1,
            session: SessionKey::of(&format!("s{s}")),
        };
        let want = self
            .store
            .status(&self.event, holder, false, now)
            .await
            .unwrap();
        let answer = self
            .room
            .status_hinted(&token, hint.as_deref())
            .await
            .unwrap();
        let (got, derived) = (&answer.place, answer.from_log);
        prop_assert_eq!(got.status, want.status, "derived {}", derived);
        prop_assert_eq!(got.position, want.shown_position(), "derived {}", derived);
        prop_assert_eq!(got.queueing_method, want.method);
        if derived {
            DERIVED.fetch_add(1, Ordering::SeqCst);
            prop_assert!(hint.is_some());
            let expires = got
                .expires_at
                .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as u64);
            prop_assert_eq!(expires, Some(want.expires_at_ms));
        }
        let next = answer.poll_hint;
        prop_assert_eq!(next.is_some(), want.status == Status::Waiting);
        self.held[s as usize] = Some((token, next));
        Ok(())
    }
}

async fn run_case(
    redis: &Arc<RedisStore>, cfg: EventConfig, ops: Vec<Op>,
) -> Result<(), TestCaseError> {
    let clock = ManualClock::new(T0);
    let mut runs = [
        Run::new(Arc::new(MemoryStore::new()), &clock, &cfg).await,
        Run::new(redis.clone(), &clock, &cfg).await,
    ];
    for op in &ops {
        if let Op::Advance { ms } = op {
            clock.advance_ms(*ms);
        }
        for run in runs.iter_mut() {
            run.apply(op, &cfg, clock.now_ms()).await?;
        }
    }
    Ok(())
}

#[test]
fn hinted_status_reads_say_what_the_store_says() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (_server, redis) = rt.block_on(common::redis_store());
    let redis = Arc::new(redis);
    let mut runner = common::runner(128);
    runner
        .run(
            &(config(), prop::collection::vec(op(), 1..60)),
            |(cfg, ops)| rt.block_on(run_case(&redis, cfg, ops)),
        )
        .unwrap();
    assert!(
        DERIVED.load(Ordering::SeqCst) > 0,
        "no hinted read was answered without the store"
    );
}
