//! Join challenges: an optional proof of work per event (`join_challenge` in its
//! configuration), so that every join costs its client some CPU and a bot farm pays per place.
//!
//! A challenge is `kid "." base64url(body JSON) "." base64url(HMAC-SHA256)`, signed under a key
//! derived from each `--token-secret` (the first signs, all verify, so it rotates with them).
//! The body names the event, the difficulty, the expiry and a random id. The client finds a
//! nonce (1 to 64 characters of `[A-Za-z0-9_-]`) such that SHA-256(challenge ":" nonce) starts
//! with `difficulty_bits` zero bits, and the join carries both. Checking costs one HMAC
//! (compared in constant time, before any hashing), one SHA-256 and one store write that claims
//! the id ([`Store::claim_once`]), so a solution joins once, on whichever replica.
//!
//! Whether an event asks for a challenge is read from the process's [`EventConfigs`] (from the
//! store at most once a second per event): a join of an event without one costs a map lookup.

use crate::clock::Clock;
use crate::configs::EventConfigs;
use crate::error::{QueueError, Result};
use crate::ids::EventId;
use crate::store::Store;
use crate::token::KidKey;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::Mac;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Default lifetime of a challenge, in seconds (`--join-challenge-ttl-seconds`).
pub const DEFAULT_TTL_SECONDS: u64 = 120;
/// Longest challenge accepted for verification (a genuine one is about 150 characters).
pub const MAX_CHALLENGE_LEN: usize = 512;
/// Longest nonce accepted.
pub const MAX_NONCE_LEN: usize = 64;
/// What the challenge keys are derived with from the token secrets.
const KEY_LABEL: &[u8] = b"join-challenge key v1";

/// A challenge as the client gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// The string to hash (the signed challenge itself).
    pub challenge: String,
    /// Leading zero bits that SHA-256(challenge ":" nonce) must have.
    pub difficulty_bits: u32,
    /// When the challenge stops being accepted, Unix ms.
    pub expires_at_ms: u64,
}

/// A join's answer to a challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Solution<'a> {
    /// The challenge as issued.
    pub challenge: &'a str,
    /// The nonce found.
    pub nonce: &'a str,
}

#[derive(Serialize, Deserialize)]
struct Body {
    /// Event id.
    e: String,
    /// Difficulty bits.
    b: u32,
    /// Expiry, Unix ms.
    x: u64,
    /// Random id, claimed once.
    n: String,
}

/// Issues and checks join challenges for every event of a store.
pub struct Challenges {
    store: Arc<dyn Store>,
    configs: Arc<EventConfigs>,
    clock: Arc<dyn Clock>,
    keys: Vec<KidKey>,
    ttl_ms: u64,
}

redis_layer::debug_some!(
    Challenges,
    |c| kids = c.keys.iter().map(|k| &k.kid).collect::<Vec<_>>(),
    ttl_ms = c.ttl_ms
);

/// Leading zero bits of `digest`.
pub fn leading_zero_bits(digest: &[u8]) -> u32 {
    let mut n = 0;
    for &b in digest {
        if b != 0 {
            return n + b.leading_zeros();
        }
        n += 8;
    }
    n
}

/// Whether `nonce` solves `challenge` at `bits`: SHA-256(challenge ":" nonce) starts with at
/// least `bits` zero bits.
pub fn solves(challenge: &str, nonce: &str, bits: u32) -> bool {
    let mut h = Sha256::new();
    h.update(challenge.as_bytes());
    h.update(b":");
    h.update(nonce.as_bytes());
    leading_zero_bits(&h.finalize()) >= bits
}

/// Finds the smallest decimal nonce that solves `challenge` at `bits` (what the waiting-room
/// page's worker does; for tests and benchmarks). About 2^bits hashes on average.
pub fn solve(challenge: &str, bits: u32) -> String {
    let mut prefix = Sha256::new();
    prefix.update(challenge.as_bytes());
    prefix.update(b":");
    let mut buf = itoa_buf();
    for nonce in 0u64.. {
        let s = itoa(nonce, &mut buf);
        let mut h = prefix.clone();
        h.update(s.as_bytes());
        if leading_zero_bits(&h.finalize()) >= bits {
            return s.to_owned();
        }
    }
    unreachable!("a 64-bit counter does not run out")
}

fn itoa_buf() -> [u8; 20] {
    [0; 20]
}

fn itoa(mut n: u64, buf: &mut [u8; 20]) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[i..]).expect("ascii digits")
}

fn valid_nonce(nonce: &str) -> bool {
    crate::ids::is_key_safe(nonce, MAX_NONCE_LEN)
}

impl Challenges {
    /// Challenges over `store` (the events' settings read through `configs`), signed under
    /// keys derived from `secrets` (as [`crate::token::WaitingTokens::derive_keys`] gives them:
    /// the first signs), valid for `ttl_seconds` (at least 1).
    pub fn new(
        store: Arc<dyn Store>, configs: Arc<EventConfigs>, clock: Arc<dyn Clock>,
        waiting: &crate::token::WaitingTokens, ttl_seconds: u64,
    ) -> Self {
        Self {
            store,
            configs,
            clock,
            keys: waiting
                .derive_keys(KEY_LABEL)
                .iter()
                .map(|key| KidKey::new(key, b"join-challenge key id"))
                .collect(),
            ttl_ms: ttl_seconds.max(1).saturating_mul(1000),
        }
    }

    /// The event's difficulty now (as the process's [`EventConfigs`] has it).
    async fn bits(&self, event: &EventId) -> Result<u32> {
        Ok(self.configs.get(event).await?.challenge_bits())
    }

    /// A new challenge for the event, or None when it asks for none.
    pub async fn issue(&self, event_id: &str) -> Result<Option<Issued>> {
        let event = EventId::parse(event_id)?;
        let now = self.clock.now_ms();
        let bits = self.bits(&event).await?;
        if bits == 0 {
            return Ok(None);
        }
        let body = Body {
            e: event.to_string(),
            b: bits,
            x: now.saturating_add(self.ttl_ms),
            n: B64.encode(rand::random::<[u8; 16]>()),
        };
        let body_b64 = B64.encode(serde_json::to_vec(&body).unwrap_or_default());
        let key = &self.keys[0];
        let sig = B64.encode(key.sign(&body_b64).finalize().into_bytes());
        Ok(Some(Issued {
            challenge: format!("{}.{body_b64}.{sig}", key.kid),
            difficulty_bits: bits,
            expires_at_ms: body.x,
        }))
    }

    /// The body of a challenge this gateway (any replica with a common secret) signed.
    fn verify(&self, challenge: &str) -> Result<Body> {
        let forged = QueueError::ChallengeFailed("not a challenge of this gateway");
        if challenge.len() > MAX_CHALLENGE_LEN {
            return Err(forged);
        }
        let [kid, body, sig]: [&str; 3] = challenge
            .split('.')
            .collect::<Vec<_>>()
            .try_into()
            .map_err(|_| forged.clone())?;
        let sig = B64.decode(sig).map_err(|_| forged.clone())?;
        // The key id only picks the key; `verify_slice` compares in constant time.
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or_else(|| forged.clone())?;
        key.sign(body)
            .verify_slice(&sig)
            .map_err(|_| forged.clone())?;
        let body = B64.decode(body).map_err(|_| forged.clone())?;
        serde_json::from_slice(&body).map_err(|_| forged)
    }

    /// Lets a join of `event_id` through: Ok when the event asks for no challenge or
    /// `solution` answers a live, unused challenge of this event at its current difficulty
    /// (which uses it up); otherwise `ChallengeRequired` (none given) or `ChallengeFailed`.
    pub async fn check(&self, event_id: &str, solution: Option<Solution<'_>>) -> Result<()> {
        let event = EventId::parse(event_id)?;
        let now = self.clock.now_ms();
        let bits = self.bits(&event).await?;
        if bits == 0 {
            return Ok(());
        }
        let s = solution.ok_or(QueueError::ChallengeRequired)?;
        let body = self.verify(s.challenge)?;
        let fail = |why| Err(QueueError::ChallengeFailed(why));
        if body.e != event.as_str() {
            return fail("issued for another event");
        }
        if now >= body.x {
            return fail("expired");
        }
        if body.b < bits {
            return fail("issued at a lower difficulty than the event now asks");
        }
        if !valid_nonce(s.nonce) {
            return fail("the nonce must be 1 to 64 characters of [A-Za-z0-9_-]");
        }
        if !solves(s.challenge, s.nonce, body.b) {
            return fail("the nonce does not give enough leading zero bits");
        }
        if !self.store.claim_once(&event, &body.n, body.x, now).await? {
            return fail("already used");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::configs::CONFIG_CACHE_MS;
    use crate::model::{EventConfig, JoinChallenge};
    use crate::store::MemoryStore;
    use crate::token::WaitingTokens;

    const T0: u64 = 1_800_000_000_000;

    /// Challenges over `store` with a configuration cache of their own, valid for 120 s.
    fn challenges(
        store: &Arc<dyn Store>, clock: &ManualClock, tokens: &WaitingTokens,
    ) -> Challenges {
        let clock: Arc<dyn Clock> = Arc::new(clock.clone());
        let configs = Arc::new(EventConfigs::new(store.clone(), clock.clone()));
        Challenges::new(store.clone(), configs, clock, tokens, 120)
    }

    async fn setup(bits: u32, secrets: &[&[u8]]) -> (Challenges, Arc<dyn Store>, ManualClock) {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let clock = ManualClock::new(T0);
        let mut cfg = EventConfig::new(1, 10);
        cfg.join_challenge = Some(JoinChallenge {
            difficulty_bits: bits,
        });
        for e in ["pow", "other"] {
            store
                .configure(&EventId::parse(e).unwrap(), &cfg, T0)
                .await
                .unwrap();
        }
        let tokens = WaitingTokens::from_secrets(secrets).unwrap();
        let c = challenges(&store, &clock, &tokens);
        (c, store, clock)
    }

    const A: &[u8] = b"first secret, 16+ bytes";
    const B: &[u8] = b"second secret, 16+ bytes";

    fn sol<'a>(i: &'a Issued, nonce: &'a str) -> Option<Solution<'a>> {
        Some(Solution {
            challenge: &i.challenge,
            nonce,
        })
    }

    fn failed(r: Result<()>) -> &'static str {
        match r {
            Err(QueueError::ChallengeFailed(why)) => why,
            other => panic!("expected ChallengeFailed, got {other:?}"),
        }
    }

    #[test]
    fn zero_bits_are_counted_from_the_front() {
        assert_eq!(leading_zero_bits(&[0xff]), 0);
        assert_eq!(leading_zero_bits(&[0x00, 0x10]), 11);
        assert_eq!(leading_zero_bits(&[0, 0, 0, 1]), 31);
        assert_eq!(leading_zero_bits(&[0, 0]), 16);
        let n = solve("abc", 12);
        assert!(solves("abc", &n, 12));
        let d = Sha256::digest(format!("abc:{n}").as_bytes());
        assert!(leading_zero_bits(&d) >= 12);
    }

    #[tokio::test]
    async fn a_solution_joins_once_and_nothing_else_passes() {
        let (c, _, clock) = setup(8, &[A]).await;
        assert!(matches!(
            c.check("pow", None).await,
            Err(QueueError::ChallengeRequired)
        ));
        let i = c.issue("pow").await.unwrap().unwrap();
        assert_eq!(i.difficulty_bits, 8);
        assert_eq!(i.expires_at_ms, T0 + 120_000);
        let nonce = solve(&i.challenge, 8);
        let wrong = (0..)
            .map(|n: u32| n.to_string())
            .find(|n| !solves(&i.challenge, n, 8))
            .unwrap();
        assert_eq!(
            failed(c.check("pow", sol(&i, &wrong)).await),
            "the nonce does not give enough leading zero bits"
        );
        assert_eq!(
            failed(c.check("other", sol(&i, &nonce)).await),
            "issued for another event"
        );
        assert_eq!(
            failed(c.check("pow", sol(&i, "bad nonce")).await),
            "the nonce must be 1 to 64 characters of [A-Za-z0-9_-]"
        );
        // Tampering with any part breaks the signature.
        let mut parts: Vec<String> = i.challenge.split('.').map(str::to_owned).collect();
        let body: serde_json::Value =
            serde_json::from_slice(&B64.decode(&parts[1]).unwrap()).unwrap();
        let mut easier = body.clone();
        easier["b"] = 0.into();
        parts[1] = B64.encode(easier.to_string());
        let forged = parts.join(".");
        assert_eq!(
            failed(
                c.check(
                    "pow",
                    Some(Solution {
                        challenge: &forged,
                        nonce: "0"
                    })
                )
                .await
            ),
            "not a challenge of this gateway"
        );
        c.check("pow", sol(&i, &nonce)).await.unwrap();
        assert_eq!(
            failed(c.check("pow", sol(&i, &nonce)).await),
            "already used"
        );
        // Expiry, on the injected clock.
        let j = c.issue("pow").await.unwrap().unwrap();
        let n = solve(&j.challenge, 8);
        clock.advance_ms(120_000);
        assert_eq!(failed(c.check("pow", sol(&j, &n)).await), "expired");
    }

    #[tokio::test]
    async fn the_events_setting_decides_and_a_raise_voids_easier_challenges() {
        let (c, store, clock) = setup(4, &[A]).await;
        let ev = EventId::parse("pow").unwrap();
        let easy = c.issue("pow").await.unwrap().unwrap();
        let n = solve(&easy.challenge, 4);
        let mut cfg = EventConfig::new(1, 10);
        cfg.join_challenge = Some(JoinChallenge { difficulty_bits: 6 });
        store.configure(&ev, &cfg, T0).await.unwrap();
        c.configs.forget("pow");
        assert_eq!(
            failed(c.check("pow", sol(&easy, &n)).await),
            "issued at a lower difficulty than the event now asks"
        );
        // Off: joins need nothing, and the endpoint issues nothing (seen by another process
        // within CONFIG_CACHE_MS; here after that long).
        cfg.join_challenge = None;
        store.configure(&ev, &cfg, T0).await.unwrap();
        clock.advance_ms(CONFIG_CACHE_MS);
        c.check("pow", None).await.unwrap();
        assert_eq!(c.issue("pow").await.unwrap(), None);
        assert!(matches!(
            c.issue("nope").await,
            Err(QueueError::EventNotFound(_))
        ));
        assert!(matches!(
            c.check("no such", None).await,
            Err(QueueError::InvalidArgument(_))
        ));
    }

    #[tokio::test]
    async fn challenges_rotate_with_the_token_secrets() {
        let (old, store, clock) = setup(4, &[A]).await;
        let issued = old.issue("pow").await.unwrap().unwrap();
        let n = solve(&issued.challenge, 4);
        let rotated = challenges(
            &store,
            &clock,
            &WaitingTokens::from_secrets([B, A]).unwrap(),
        );
        rotated.check("pow", sol(&issued, &n)).await.unwrap();
        let newer = rotated.issue("pow").await.unwrap().unwrap();
        assert_ne!(
            newer.challenge.split('.').next(),
            issued.challenge.split('.').next(),
            "signed under the new key"
        );
        let gone = challenges(&store, &clock, &WaitingTokens::from_secrets([B]).unwrap());
        let again = old.issue("pow").await.unwrap().unwrap();
        let m = solve(&again.challenge, 4);
        assert_eq!(
            failed(gone.check("pow", sol(&again, &m)).await),
            "not a challenge of this gateway"
        );
    }
}
