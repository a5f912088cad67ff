//! Who an admission names and whether it still stands, on the in-memory store and a real
//! redis-server, with a manual clock: only a verified user assertion names a user, a re-join
//! never re-labels a ticket, and a left or expired admission no longer stands.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use queue::clock::ManualClock;
use queue::ids::EventId;
use queue::model::EventConfig;
use queue::room::WaitingRoom;
use queue::store::{MemoryStore, Store};
use queue::token::{AdmissionSigner, UserAssertions, WaitingTokens};
use queue::QueueError;
use std::sync::Arc;

const T0: u64 = 1_800_000_000_000;
const KEY: &[u8] = b"the origin's assertion key: 32+ bytes";

fn assertion(user: &str, exp_s: u64) -> String {
    let signed = format!(
        "{}.{}",
        B64.encode(r#"{"alg":"HS256"}"#),
        B64.encode(serde_json::json!({"sub": user, "exp": exp_s}).to_string())
    );
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(KEY).unwrap();
    mac.update(signed.as_bytes());
    format!("{signed}.{}", B64.encode(mac.finalize().into_bytes()))
}

fn vouch(user: &str) -> String {
    assertion(user, T0 / 1000 + 600)
}

/// The shared test room, trusting the origin's assertions signed with `KEY`.
fn room(store: Arc<dyn Store>, clock: &ManualClock) -> WaitingRoom {
    common::room(store, clock).with_user_assertions(UserAssertions::from_keys([KEY]).unwrap())
}

/// A second later (the admission bucket refills), admits everyone waiting and enters with
/// `waiting`: the admission's claims.
async fn admitted(
    r: &WaitingRoom, clock: &ManualClock, ev: &str, waiting: &str,
) -> queue::token::AdmissionClaims {
    clock.advance_ms(1000);
    r.admit(&EventId::parse(ev).unwrap()).await.unwrap();
    let g = r.enter(waiting).await.unwrap();
    r.signer().verify(&g.reservation_token, ev).unwrap()
}

async fn with_stores(f: impl AsyncFn(Arc<dyn Store>, &str)) {
    f(Arc::new(MemoryStore::new()), "memory").await;
    let (_server, redis) = common::redis_store().await;
    f(Arc::new(redis), "redis").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejoin_never_changes_the_identity_bound_to_a_ticket() {
    with_stores(async |store, name| {
        let clock = ManualClock::new(T0);
        let r = room(store, &clock);
        r.configure("ev", &EventConfig::new(100, 100))
            .await
            .unwrap();
        let alice = r.join("ev", "s", Some(&vouch("alice"))).await.unwrap();
        assert!(alice.created, "{name}");
        let claims = admitted(&r, &clock, "ev", &alice.waiting_token).await;
        assert_eq!(claims.sub, "alice", "{name}");

        // The same session as bob, and anonymously: places of their own.
        let bob = r.join("ev", "s", Some(&vouch("bob"))).await.unwrap();
        assert!(bob.created, "{name}");
        assert_eq!(
            admitted(&r, &clock, "ev", &bob.waiting_token).await.sub,
            "bob"
        );
        let anon = r.join("ev", "s", None).await.unwrap();
        assert!(anon.created, "{name}");
        assert_eq!(
            admitted(&r, &clock, "ev", &anon.waiting_token).await.sub,
            "s"
        );
        // An empty assertion is none: the anonymous place again.
        assert!(
            !r.join("ev", "s", Some("")).await.unwrap().created,
            "{name}"
        );

        // Alice's ticket is unchanged: her re-join finds it, her grant still names her.
        let again = r.join("ev", "s", Some(&vouch("alice"))).await.unwrap();
        assert!(!again.created, "{name}");
        let again = admitted(&r, &clock, "ev", &again.waiting_token).await;
        assert_eq!((again.sub.as_str(), again.tkt), ("alice", claims.tkt));
        assert_eq!(
            admitted(&r, &clock, "ev", &alice.waiting_token).await,
            claims
        );

        // Bob leaving leaves bob's place only.
        r.leave(&bob.waiting_token).await.unwrap();
        assert!(r.admission_stands(&claims).await.is_ok(), "{name}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assertions_are_verified_against_the_rooms_clock_and_keys() {
    let clock = ManualClock::new(T0);
    let r = room(Arc::new(MemoryStore::new()), &clock);
    r.configure("ev", &EventConfig::new(100, 100))
        .await
        .unwrap();
    let short = assertion("alice", T0 / 1000 + 10);
    assert!(r.join("ev", "s", Some(&short)).await.is_ok());
    clock.advance_ms(10_000);
    assert!(matches!(
        r.join("ev", "s2", Some(&short)).await,
        Err(QueueError::InvalidAssertion("it has expired"))
    ));
    let plain = WaitingRoom::new(
        Arc::new(MemoryStore::new()),
        Arc::new(clock.clone()),
        WaitingTokens::ephemeral(),
        AdmissionSigner::ephemeral(),
    );
    plain
        .configure("ev", &EventConfig::new(100, 100))
        .await
        .unwrap();
    assert!(matches!(
        plain.join("ev", "s", Some(&vouch("alice"))).await,
        Err(QueueError::AssertionsDisabled)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_left_or_expired_admission_no_longer_stands() {
    with_stores(async |store, name| {
        let clock = ManualClock::new(T0);
        let r = room(store, &clock);
        let mut cfg = EventConfig::new(100, 100);
        cfg.admission_ttl_seconds = 60;
        r.configure("ev", &cfg).await.unwrap();
        let a = r.join("ev", "a", None).await.unwrap().waiting_token;
        let b = r.join("ev", "b", None).await.unwrap().waiting_token;
        let ca = admitted(&r, &clock, "ev", &a).await;
        let cb = admitted(&r, &clock, "ev", &b).await;
        assert!(r.admission_stands(&ca).await.is_ok(), "{name}");
        assert!(r.admission_stands(&cb).await.is_ok(), "{name}");

        r.leave(&a).await.unwrap();
        assert!(
            matches!(
                r.admission_stands(&ca).await,
                Err(QueueError::AdmissionEnded)
            ),
            "{name}"
        );
        assert!(r.admission_stands(&cb).await.is_ok(), "{name}");

        clock.advance_ms(60_000);
        assert!(
            matches!(
                r.admission_stands(&cb).await,
                Err(QueueError::AdmissionEnded)
            ),
            "{name}"
        );
        // A token without the ticket claim (an older gateway's) cannot be checked: it passes.
        let old = queue::token::AdmissionClaims {
            tkt: None,
            sk: None,
            ..ca
        };
        assert!(r.admission_stands(&old).await.is_ok(), "{name}");
    })
    .await;
}
