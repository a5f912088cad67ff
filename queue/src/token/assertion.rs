//! User assertions: the origin vouches for a user by signing a short-lived HS256 JWT with a key
//! it shares with the gateway (`--user-assertion-key`). A verified assertion's `sub` becomes the
//! admission's `sub`; nothing else a client sends can.

use super::keys::{distinct_keys, HmacSha256};
use crate::error::{QueueError, Result};
use crate::ids::MAX_CLIENT_ID_BYTES;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::Mac;
use serde::Deserialize;
use std::sync::Arc;

/// Shortest accepted `--user-assertion-key`, in bytes (RFC 7518 §3.2: an HS256 key must be at
/// least as long as the hash, 256 bits).
pub const MIN_ASSERTION_KEY_LEN: usize = 32;
/// Longest user assertion accepted for verification (longer input is refused unread).
pub const MAX_ASSERTION_LEN: usize = 4096;

/// The JOSE header of an assertion (only what is checked).
#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// `aud` is a string or an array of strings (RFC 7519 §4.1.3).
#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// The claims of an assertion that are checked. `exp` and `nbf` are NumericDates: seconds,
/// possibly fractional.
#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
    exp: Option<f64>,
    #[serde(default)]
    nbf: Option<f64>,
    #[serde(default)]
    aud: Option<Audience>,
    #[serde(default)]
    sid: Option<String>,
}

fn invalid(why: &'static str) -> QueueError {
    QueueError::InvalidAssertion(why)
}

/// A base64url JSON part of the JWT, parsed; None when it is not one.
fn json_part<T: serde::de::DeserializeOwned>(part: &str) -> Option<T> {
    serde_json::from_slice(&B64.decode(part).ok()?).ok()
}

/// Verifies user assertions: compact JWS, `alg` HS256, under any of the configured keys
/// (several while the shared key rotates; each MAC is compared in constant time). The claims:
/// `sub` (required, 1 to 128 bytes: the user id), `exp` (required, Unix seconds; past it the
/// assertion is refused, no leeway), `nbf` (optional), `aud` (optional: when present it must
/// name the event) and `sid` (optional: when present it must be the joining `session_id`).
#[derive(Clone)]
pub struct UserAssertions {
    keys: Arc<[HmacSha256]>,
}

redis_layer::debug_some!(UserAssertions, |a| keys = a.keys.len());

impl UserAssertions {
    /// A verifier accepting assertions signed with any of `keys` (each at least
    /// [`MIN_ASSERTION_KEY_LEN`] bytes; repeats are ignored). At least one key is required.
    pub fn from_keys<I, S>(keys: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        let macs: Vec<HmacSha256> =
            distinct_keys(keys, MIN_ASSERTION_KEY_LEN, "user assertion key")?
                .iter()
                .map(|key| HmacSha256::new_from_slice(key).expect("hmac accepts any key length"))
                .collect();
        Ok(Self { keys: macs.into() })
    }

    /// How many distinct keys verify.
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// The user id (`sub`) of a genuine, unexpired assertion for `event_id` and `session_id`
    /// at `now_ms`; anything else is [`QueueError::InvalidAssertion`]. The signature is checked
    /// before any claim is read.
    pub fn verify(
        &self, assertion: &str, event_id: &str, session_id: &str, now_ms: u64,
    ) -> Result<String> {
        if assertion.len() > MAX_ASSERTION_LEN {
            return Err(invalid("it is too long"));
        }
        let mut parts = assertion.split('.');
        let (Some(h64), Some(b64), Some(s64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid("it is not a compact JWT"));
        };
        let header: Header = json_part(h64).ok_or_else(|| invalid("its header does not parse"))?;
        if header.alg != "HS256" {
            return Err(invalid("its alg is not HS256"));
        }
        if header.crit.is_some() {
            return Err(invalid("it has critical header parameters"));
        }
        let sig = B64
            .decode(s64)
            .map_err(|_| invalid("its signature does not parse"))?;
        // The JWS signing input: `header "." claims`, as sent.
        let signed = &assertion[..h64.len() + 1 + b64.len()];
        let genuine = self.keys.iter().any(|k| {
            let mut mac = k.clone();
            mac.update(signed.as_bytes());
            mac.verify_slice(&sig).is_ok()
        });
        if !genuine {
            return Err(invalid("its signature does not verify"));
        }
        let claims: Claims = json_part(b64).ok_or_else(|| invalid("its claims do not parse"))?;
        let now_s = now_ms as f64 / 1000.0;
        match claims.exp {
            None => return Err(invalid("it has no exp")),
            Some(exp) if now_s >= exp => return Err(invalid("it has expired")),
            Some(_) => {}
        }
        if claims.nbf.is_some_and(|nbf| now_s < nbf) {
            return Err(invalid("it is not valid yet (nbf)"));
        }
        let aud_ok = match &claims.aud {
            None => true,
            Some(Audience::One(a)) => a == event_id,
            Some(Audience::Many(list)) => list.iter().any(|a| a == event_id),
        };
        if !aud_ok {
            return Err(invalid("its aud does not name this event"));
        }
        if claims.sid.as_deref().is_some_and(|s| s != session_id) {
            return Err(invalid("its sid is not this session_id"));
        }
        match claims.sub {
            Some(sub) if !sub.is_empty() && sub.len() <= MAX_CLIENT_ID_BYTES => Ok(sub),
            _ => Err(invalid("its sub is missing or not 1 to 128 bytes")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"an origin's assertion key, 32+ bytes long";
    const OTHER: &[u8] = b"another origin's key, also 32+ bytes long";
    const NOW_MS: u64 = 1_800_000_000_000;

    fn sign(key: &[u8], header: &str, claims: &serde_json::Value) -> String {
        let signed = format!(
            "{}.{}",
            B64.encode(header),
            B64.encode(serde_json::to_vec(claims).unwrap())
        );
        let mut mac = HmacSha256::new_from_slice(key).unwrap();
        mac.update(signed.as_bytes());
        format!("{signed}.{}", B64.encode(mac.finalize().into_bytes()))
    }

    fn hs256(key: &[u8], claims: serde_json::Value) -> String {
        sign(key, r#"{"alg":"HS256","typ":"JWT"}"#, &claims)
    }

    fn verify(v: &UserAssertions, a: &str) -> Result<String> {
        v.verify(a, "show", "sess-1", NOW_MS)
    }

    fn why(r: Result<String>) -> &'static str {
        match r {
            Err(QueueError::InvalidAssertion(w)) => w,
            other => panic!("expected an invalid assertion, got {other:?}"),
        }
    }

    #[test]
    fn a_genuine_assertion_names_its_user() {
        let v = UserAssertions::from_keys([KEY]).unwrap();
        let exp = NOW_MS / 1000 + 60;
        let a = hs256(KEY, serde_json::json!({"sub": "user-42", "exp": exp}));
        assert_eq!(verify(&v, &a).unwrap(), "user-42");
        let a = hs256(
            KEY,
            serde_json::json!({"sub": "u", "exp": exp, "aud": "show", "sid": "sess-1", "nbf": exp - 120}),
        );
        assert_eq!(verify(&v, &a).unwrap(), "u");
        let a = hs256(
            KEY,
            serde_json::json!({"sub": "u", "exp": exp as f64 + 0.5, "aud": ["other", "show"]}),
        );
        assert_eq!(verify(&v, &a).unwrap(), "u");
    }

    #[test]
    fn every_configured_key_verifies_while_rotating() {
        let v = UserAssertions::from_keys([OTHER, KEY]).unwrap();
        let exp = NOW_MS / 1000 + 60;
        for key in [KEY, OTHER] {
            let a = hs256(key, serde_json::json!({"sub": "u", "exp": exp}));
            assert_eq!(verify(&v, &a).unwrap(), "u");
        }
        let only_new = UserAssertions::from_keys([OTHER]).unwrap();
        let old = hs256(KEY, serde_json::json!({"sub": "u", "exp": exp}));
        assert_eq!(
            why(verify(&only_new, &old)),
            "its signature does not verify"
        );
    }

    #[test]
    fn bad_assertions_are_refused_with_a_reason() {
        let v = UserAssertions::from_keys([KEY]).unwrap();
        let exp = NOW_MS / 1000 + 60;
        let ok = serde_json::json!({"sub": "u", "exp": exp});
        let cases = [
            (hs256(OTHER, ok.clone()), "its signature does not verify"),
            (
                hs256(KEY, serde_json::json!({"sub": "u", "exp": NOW_MS / 1000})),
                "it has expired",
            ),
            (hs256(KEY, serde_json::json!({"sub": "u"})), "it has no exp"),
            (
                hs256(KEY, serde_json::json!({"sub": "u", "exp": exp, "nbf": exp})),
                "it is not valid yet (nbf)",
            ),
            (
                hs256(
                    KEY,
                    serde_json::json!({"sub": "u", "exp": exp, "aud": "other"}),
                ),
                "its aud does not name this event",
            ),
            (
                hs256(
                    KEY,
                    serde_json::json!({"sub": "u", "exp": exp, "sid": "sess-2"}),
                ),
                "its sid is not this session_id",
            ),
            (
                hs256(KEY, serde_json::json!({"exp": exp})),
                "its sub is missing or not 1 to 128 bytes",
            ),
            (
                hs256(KEY, serde_json::json!({"sub": "", "exp": exp})),
                "its sub is missing or not 1 to 128 bytes",
            ),
            (
                hs256(KEY, serde_json::json!({"sub": "x".repeat(129), "exp": exp})),
                "its sub is missing or not 1 to 128 bytes",
            ),
            (sign(KEY, r#"{"alg":"none"}"#, &ok), "its alg is not HS256"),
            (
                sign(KEY, r#"{"alg":"HS256","crit":["exp"]}"#, &ok),
                "it has critical header parameters",
            ),
            ("a.b".to_owned(), "it is not a compact JWT"),
            ("a.b.c.d".to_owned(), "it is not a compact JWT"),
            ("x".repeat(MAX_ASSERTION_LEN + 1), "it is too long"),
        ];
        for (a, want) in cases {
            assert_eq!(why(verify(&v, &a)), want, "{a}");
        }
        // A tampered claim set breaks the signature.
        let a = hs256(KEY, ok);
        let mut parts: Vec<&str> = a.split('.').collect();
        let forged = B64.encode(r#"{"sub":"admin","exp":9999999999}"#);
        parts[1] = &forged;
        assert_eq!(
            why(verify(&v, &parts.join("."))),
            "its signature does not verify"
        );
    }

    #[test]
    fn keys_are_checked() {
        assert!(UserAssertions::from_keys([b"short".as_slice()]).is_err());
        assert!(UserAssertions::from_keys(Vec::<&[u8]>::new()).is_err());
        assert_eq!(
            UserAssertions::from_keys([KEY, KEY]).unwrap().key_count(),
            1
        );
        let dbg = format!("{:?}", UserAssertions::from_keys([KEY]).unwrap());
        assert!(!dbg.contains("origin"), "{dbg}");
    }
}
