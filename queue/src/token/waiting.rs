//! Waiting tokens: HMAC-SHA256 over the place's claims and the issue time, under one of
//! several secrets.

use super::keys::{distinct_keys, KidKey};
use super::{MAX_WAITING_TOKEN_LEN, MIN_SECRET_LEN};
use crate::clock::{Clock, SystemClock};
use crate::error::{QueueError, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::Mac;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Length of a waiting-token key id (base64url of 6 bytes).
const WAITING_KID_LEN: usize = 8;

/// What a waiting token says: whose place it is and where to find it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingClaims {
    /// Event id.
    #[serde(rename = "e")]
    pub event_id: String,
    /// Ticket within the event.
    #[serde(rename = "t")]
    pub ticket: u64,
    /// Session id the place belongs to.
    #[serde(rename = "s")]
    pub session_id: String,
    /// The user of a verified user assertion, when the join carried one. Serialised as `a`:
    /// tokens of gateways before assertions carried an unverified `u`, which is ignored.
    #[serde(rename = "a", default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The event's epoch when the token was issued ([`crate::model::Place::epoch`]): a token of
    /// an earlier incarnation of the event is refused. None in tokens from before epochs.
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
}

/// A genuine waiting token, as verification sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedWaiting {
    /// Whose place it is.
    pub claims: WaitingClaims,
    /// When the token was issued, Unix seconds. None for a token of a gateway from before key
    /// rotation (format `body.sig`), which carried no issue time.
    pub issued_at: Option<u64>,
    /// Id of the secret that verified it (see [`WaitingTokens::key_ids`]).
    pub kid: String,
    /// Whether that secret is the one new tokens are issued under; false for a token under an
    /// older secret, which a re-join (same `session_id`) replaces with a current one.
    pub current: bool,
}

/// The signed body of a token as issued: the claims plus the issue time.
#[derive(Serialize)]
struct BodyOut<'a> {
    e: &'a str,
    t: u64,
    s: &'a str,
    #[serde(rename = "a", skip_serializing_if = "Option::is_none")]
    u: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p: Option<u64>,
    i: u64,
}

/// The signed body of a token as read (tokens without `i` come from before key rotation).
#[derive(Deserialize)]
struct BodyIn {
    e: String,
    t: u64,
    s: String,
    /// The verified user (`a`); an old token's unverified `u` is not read.
    #[serde(default, rename = "a")]
    u: Option<String>,
    #[serde(default)]
    p: Option<u64>,
    #[serde(default)]
    i: Option<u64>,
}

/// Issues and checks waiting tokens: `kid "." base64url(body JSON) "." base64url(HMAC-SHA256)`,
/// where `kid` names the secret (8 characters derived from it) and the body holds the
/// [`WaitingClaims`] and the issue time. The first secret issues, every secret verifies, so a
/// secret rotates without invalidating outstanding tokens. Tokens of the old format
/// (`base64url(body) "." base64url(HMAC)`, no key id, no issue time) still verify under any
/// configured secret (one HMAC per secret, each compared in constant time).
///
/// The same claims in the same second give the same token, so a re-join returns the token it
/// had, or one that differs only in its issue time.
#[derive(Clone)]
pub struct WaitingTokens {
    keys: Arc<[KidKey]>,
    clock: Arc<dyn Clock>,
}

redis_layer::debug_some!(WaitingTokens, |w| kids = w.key_ids());

impl WaitingTokens {
    /// Tokens under `secret` (at least 16 bytes): every replica with it accepts the others'.
    pub fn from_secret(secret: &[u8]) -> Result<Self> {
        Self::from_secrets([secret])
    }

    /// Tokens issued under the first of `secrets` and verified under any of them (each at
    /// least 16 bytes; repeats are ignored). At least one secret is required.
    pub fn from_secrets<I, S>(secrets: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        let keys: Vec<KidKey> = distinct_keys(secrets, MIN_SECRET_LEN, "token secret")?
            .iter()
            .map(|secret| KidKey::new(secret, b"waiting-token key id"))
            .collect();
        Ok(Self {
            keys: keys.into(),
            clock: Arc::new(SystemClock),
        })
    }

    /// Tokens under a fresh random secret (valid only in this process's lifetime).
    pub fn ephemeral() -> Self {
        Self::from_secrets([rand::random::<[u8; 32]>()]).expect("32 random bytes are a secret")
    }

    /// The clock that stamps the issue time (the system clock unless replaced).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The ids of the secrets, the issuing one first. They are public (every token carries
    /// one) and reveal nothing about the secrets; logs name secrets by them.
    pub fn key_ids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.kid.as_str()).collect()
    }

    /// The token for `claims`, under the first secret, issued now.
    pub fn issue(&self, claims: &WaitingClaims) -> String {
        let key = &self.keys[0];
        let body = BodyOut {
            e: &claims.event_id,
            t: claims.ticket,
            s: &claims.session_id,
            u: claims.user_id.as_deref(),
            p: claims.epoch,
            i: self.clock.now_ms() / 1000,
        };
        let body = B64.encode(serde_json::to_vec(&body).unwrap_or_default());
        let sig = key.sign(&body).finalize().into_bytes();
        format!("{}.{}.{}", key.kid, body, B64.encode(sig))
    }

    /// The claims of a genuine token; anything else is `InvalidToken`.
    pub fn verify(&self, token: &str) -> Result<WaitingClaims> {
        self.verify_detailed(token).map(|v| v.claims)
    }

    /// The claims, issue time and key of a genuine token; anything else is `InvalidToken`.
    /// The signature is checked (in constant time) before the body is parsed; a current token
    /// costs one HMAC, whatever the number of secrets.
    pub fn verify_detailed(&self, token: &str) -> Result<VerifiedWaiting> {
        if token.len() > MAX_WAITING_TOKEN_LEN {
            return Err(QueueError::InvalidToken);
        }
        let parts: Vec<&str> = token.splitn(4, '.').collect();
        let (index, body) = match parts[..] {
            [kid, body, sig] => {
                let sig = B64.decode(sig).map_err(|_| QueueError::InvalidToken)?;
                // The key id is public and only picks the secret; a forged one finds a secret
                // that does not match (or none). `verify_slice` compares in constant time.
                let index = self
                    .keys
                    .iter()
                    .position(|k| {
                        kid.len() == WAITING_KID_LEN
                            && k.kid == kid
                            && k.sign(body).verify_slice(&sig).is_ok()
                    })
                    .ok_or(QueueError::InvalidToken)?;
                (
                    index,
                    B64.decode(body).map_err(|_| QueueError::InvalidToken)?,
                )
            }
            [body, sig] => {
                // Old format: no key id, so each secret is tried.
                let body = B64.decode(body).map_err(|_| QueueError::InvalidToken)?;
                let sig = B64.decode(sig).map_err(|_| QueueError::InvalidToken)?;
                let index = self
                    .keys
                    .iter()
                    .position(|k| {
                        let mut mac = k.mac.clone();
                        mac.update(&body);
                        mac.verify_slice(&sig).is_ok()
                    })
                    .ok_or(QueueError::InvalidToken)?;
                (index, body)
            }
            _ => return Err(QueueError::InvalidToken),
        };
        let b: BodyIn = serde_json::from_slice(&body).map_err(|_| QueueError::InvalidToken)?;
        Ok(VerifiedWaiting {
            claims: WaitingClaims {
                event_id: b.e,
                ticket: b.t,
                session_id: b.s,
                user_id: b.u,
                epoch: b.p,
            },
            issued_at: b.i,
            kid: self.keys[index].kid.clone(),
            current: index == 0,
        })
    }

    /// One key per secret, the issuing one first: HMAC-SHA256(secret, `label`), so that another
    /// signer (join challenges) rotates with `--token-secret` without ever sharing its key.
    pub fn derive_keys(&self, label: &[u8]) -> Vec<[u8; 32]> {
        self.keys
            .iter()
            .map(|k| {
                let mut mac = k.mac.clone();
                mac.update(label);
                mac.finalize().into_bytes().into()
            })
            .collect()
    }

    /// A deterministic, unguessable id derived from `parts` (used for JWT `jti`), under the
    /// issuing secret: replicas that issue under different secrets (during a rotation) derive
    /// different ids for the same parts.
    pub fn derive_id(&self, parts: &[&str]) -> String {
        let mut mac = self.keys[0].mac.clone();
        mac.update(b"jti");
        for p in parts {
            mac.update(&(p.len() as u64).to_be_bytes());
            mac.update(p.as_bytes());
        }
        B64.encode(&mac.finalize().into_bytes()[..16])
    }
}

#[cfg(test)]
mod tests {
    use super::super::keys::HmacSha256;
    use super::*;
    use crate::clock::ManualClock;

    const OLD: &[u8] = b"0123456789abcdef0123";
    const NEW: &[u8] = b"the next secret, 16+ bytes";

    fn claims() -> WaitingClaims {
        WaitingClaims {
            event_id: "demo".into(),
            ticket: 7,
            session_id: "s1".into(),
            user_id: None,
            epoch: Some(1_800_000_000_000),
        }
    }

    fn tokens(secrets: &[&[u8]]) -> WaitingTokens {
        WaitingTokens::from_secrets(secrets).unwrap()
    }

    /// A token as the gateway issued it before key rotation: `body.sig`, HMAC over the body.
    fn old_format(secret: &[u8], claims: &WaitingClaims) -> String {
        let body = serde_json::to_vec(claims).unwrap();
        let mut mac = HmacSha256::new_from_slice(secret).unwrap();
        mac.update(&body);
        format!(
            "{}.{}",
            B64.encode(&body),
            B64.encode(mac.finalize().into_bytes())
        )
    }

    #[test]
    fn waiting_tokens_round_trip_and_are_stable() {
        let clock = ManualClock::new(1_700_000_000_250);
        let t = tokens(&[OLD]).with_clock(Arc::new(clock.clone()));
        let a = t.issue(&claims());
        clock.advance_ms(700);
        assert_eq!(a, t.issue(&claims()), "same claims, same second");
        let v = t.verify_detailed(&a).unwrap();
        assert_eq!(v.claims, claims());
        assert_eq!(v.issued_at, Some(1_700_000_000));
        assert!(v.current);
        clock.advance_ms(5000);
        let b = t.issue(&claims());
        assert_ne!(a, b, "a later issue time");
        assert_eq!(
            t.verify_detailed(&b).unwrap().issued_at,
            Some(1_700_000_005)
        );
        assert_eq!(t.verify(&a).unwrap(), t.verify(&b).unwrap());
    }

    #[test]
    fn tampered_or_foreign_tokens_fail() {
        let t = tokens(&[OLD]);
        let good = t.issue(&claims());
        let [kid, body, sig]: [&str; 3] = good.split('.').collect::<Vec<_>>().try_into().unwrap();
        let mut forged = claims();
        forged.ticket = 1;
        let forged_body = B64.encode(serde_json::to_vec(&forged).unwrap());
        let other = tokens(&[NEW]);
        let other_kid = other.key_ids()[0].to_owned();
        for bad in [
            format!("{kid}.{forged_body}.{sig}"),
            format!("{other_kid}.{body}.{sig}"),
            format!("{body}.{sig}"),
            format!("{kid}.{body}.{sig}.x"),
            format!("{good}x"),
            "x".into(),
            "a.b".into(),
            "a.b.c".into(),
            String::new(),
        ] {
            assert!(
                matches!(t.verify(&bad), Err(QueueError::InvalidToken)),
                "{bad}"
            );
        }
        assert!(other.verify(&good).is_err());
        assert!(WaitingTokens::from_secret(b"short").is_err());
        assert!(WaitingTokens::from_secrets([OLD, b"short"]).is_err());
        assert!(WaitingTokens::from_secrets(Vec::<&[u8]>::new()).is_err());
    }

    #[test]
    fn a_rotated_secret_keeps_outstanding_tokens_valid_until_removed() {
        let before = tokens(&[OLD]).issue(&claims());
        // Step 1, the new secret verifies but does not issue yet.
        let step1 = tokens(&[OLD, NEW]);
        assert_eq!(
            step1.verify_detailed(&before).unwrap().kid,
            step1.key_ids()[0]
        );
        // Step 2, the new secret issues; both verify, on every replica whatever its step.
        let step2 = tokens(&[NEW, OLD]);
        let after = step2.issue(&claims());
        for t in [&step1, &step2] {
            assert_eq!(t.verify(&before).unwrap(), claims());
            assert_eq!(t.verify(&after).unwrap(), claims());
        }
        let v = step2.verify_detailed(&before).unwrap();
        assert!(!v.current, "under the older secret");
        assert!(step2.verify_detailed(&after).unwrap().current);
        assert_eq!(step1.key_ids(), [step2.key_ids()[1], step2.key_ids()[0]]);
        // Step 3, the old secret is gone.
        let step3 = tokens(&[NEW]);
        assert!(matches!(
            step3.verify(&before),
            Err(QueueError::InvalidToken)
        ));
        assert_eq!(step3.verify(&after).unwrap(), claims());
    }

    #[test]
    fn tokens_of_the_single_secret_version_still_verify() {
        let mut c = claims();
        c.user_id = Some("u9".into());
        let legacy = old_format(OLD, &c);
        let v = tokens(&[NEW, OLD]).verify_detailed(&legacy).unwrap();
        assert_eq!((v.claims, v.issued_at, v.current), (c.clone(), None, false));
        assert_eq!(tokens(&[OLD]).verify(&legacy).unwrap(), c);
        assert!(tokens(&[NEW]).verify(&legacy).is_err());
    }

    #[test]
    fn an_unverified_user_of_an_older_gateway_is_not_read() {
        // Before user assertions, `u` held whatever user_id the client sent.
        let t = tokens(&[OLD]);
        let key = &t.keys[0];
        let body = B64.encode(br#"{"e":"demo","t":7,"s":"s1","u":"mallory","i":1}"#);
        let sig = B64.encode(key.sign(&body).finalize().into_bytes());
        let token = format!("{}.{body}.{sig}", key.kid);
        // (Nor had such tokens an epoch.)
        let want = WaitingClaims {
            epoch: None,
            ..claims()
        };
        assert_eq!(t.verify(&token).unwrap(), want);
        // A verified user travels as `a`.
        let mut c = claims();
        c.user_id = Some("alice".into());
        assert_eq!(t.verify(&t.issue(&c)).unwrap(), c);
    }

    #[test]
    fn repeated_secrets_count_once_and_ids_are_stable() {
        let t = tokens(&[OLD, OLD, NEW]);
        assert_eq!(t.key_ids().len(), 2);
        assert_eq!(t.key_ids()[0], tokens(&[OLD]).key_ids()[0]);
        assert_eq!(t.key_ids()[0].len(), WAITING_KID_LEN);
        let debug = format!("{t:?}");
        assert!(!debug.contains("0123456789abcdef"), "{debug}");
    }
}
