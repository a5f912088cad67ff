//! Standard Webhooks (<https://www.standardwebhooks.com>): headers `webhook-id`,
//! `webhook-timestamp` and `webhook-signature` (space-separated `<version>,<base64>` entries,
//! so a sender can sign with several keys during a rotation). The signed content is
//! `"id.timestamp.body"`; two versions are checked:
//!
//! - `v1`: base64(HMAC-SHA256(key, content)) with the key the base64 part of `whsec_…`;
//! - `v1a`: base64 of the Ed25519 signature of content, checked against the public keys
//!   `whpk_<base64 of 32 bytes>` (asymmetric: the receiver holds no secret).
//!
//! A delivery is accepted when any `v1` matches any secret or any `v1a` matches any public key.

use super::{hmac_sha256, matches_any, required, signed_time, Headers, Scheme, SecretError};
use super::{Verdict, Verified, VerifyError};
use super::{DEFAULT_TOLERANCE_SECONDS, MAX_ID_LEN};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

/// The Standard Webhooks scheme with one or more HMAC secrets and/or Ed25519 public keys (any
/// one verifies: rotation without downtime).
#[derive(Clone)]
pub struct StandardWebhooks {
    keys: Vec<Vec<u8>>,
    public_keys: Vec<VerifyingKey>,
    tolerance: i64,
}

impl std::fmt::Debug for StandardWebhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        write!(
            f,
            "StandardWebhooks({} secrets, {} public keys)",
            self.keys.len(),
            self.public_keys.len()
        )
    }
}

/// `id.timestamp.` then the body, as signed.
fn content(id: &str, ts: &str, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(id.len() + ts.len() + 2 + body.len());
    m.extend_from_slice(id.as_bytes());
    m.push(b'.');
    m.extend_from_slice(ts.as_bytes());
    m.push(b'.');
    m.extend_from_slice(body);
    m
}

/// A `v1a` signer: an Ed25519 key pair (for tests, benchmarks and senders; a receiver needs
/// only [`public_key`](Self::public_key)).
pub struct Ed25519Signer(SigningKey);

impl std::fmt::Debug for Ed25519Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ed25519Signer({})", self.public_key())
    }
}

impl Ed25519Signer {
    /// The key pair of a 32-byte seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(seed))
    }

    /// A fresh random key pair (the thread's CSPRNG).
    pub fn generate() -> Self {
        Self::from_seed(&rand::random())
    }

    /// The public key as a receiver configures it: `whpk_<base64>`.
    pub fn public_key(&self) -> String {
        format!("whpk_{}", B64.encode(self.0.verifying_key().as_bytes()))
    }

    /// The `webhook-signature` entry `v1a,<base64>` for `id`, `timestamp` and `body`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let sig = self.0.sign(&content(id, &timestamp.to_string(), body));
        format!("v1a,{}", B64.encode(sig.to_bytes()))
    }
}

fn secret_key(s: &str) -> Result<Vec<u8>, SecretError> {
    let s = s.trim();
    let b = s.strip_prefix("whsec_").unwrap_or(s);
    let key = B64
        .decode(b)
        .map_err(|_| SecretError("expected whsec_<base64>"))?;
    if key.is_empty() || key.len() > 1024 {
        return Err(SecretError("the key must be 1 to 1024 bytes"));
    }
    Ok(key)
}

fn public_key(s: &str) -> Result<VerifyingKey, SecretError> {
    const BAD: SecretError = SecretError("expected whpk_<base64 of a 32-byte Ed25519 public key>");
    let s = s.trim();
    let b = s.strip_prefix("whpk_").unwrap_or(s);
    let bytes: [u8; 32] = B64
        .decode(b)
        .ok()
        .and_then(|k| k.try_into().ok())
        .ok_or(BAD)?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| BAD)
}

impl StandardWebhooks {
    /// From secrets `whsec_<base64>` (the prefix is optional); each must decode to 1 to 1,024
    /// bytes, and at least one is required.
    pub fn new<S: AsRef<str>>(secrets: &[S]) -> Result<Self, SecretError> {
        Self::with_keys::<S, &str>(secrets, &[])
    }

    /// From HMAC secrets (as [`new`](Self::new)) and Ed25519 public keys `whpk_<base64>` (the
    /// prefix is optional; 32 bytes, a valid curve point); at least one of either.
    pub fn with_keys<S: AsRef<str>, P: AsRef<str>>(
        secrets: &[S], public_keys: &[P],
    ) -> Result<Self, SecretError> {
        if secrets.is_empty() && public_keys.is_empty() {
            return Err(SecretError("at least one secret or public key is required"));
        }
        Ok(Self {
            keys: secrets
                .iter()
                .map(|s| secret_key(s.as_ref()))
                .collect::<Result<_, _>>()?,
            public_keys: public_keys
                .iter()
                .map(|p| public_key(p.as_ref()))
                .collect::<Result<_, _>>()?,
            tolerance: DEFAULT_TOLERANCE_SECONDS,
        })
    }

    /// The same scheme with another timestamp tolerance, in seconds.
    pub fn with_tolerance(mut self, seconds: i64) -> Self {
        self.tolerance = seconds;
        self
    }

    /// The `webhook-signature` value for `id`, `timestamp` and `body` under the first secret
    /// (for tests, benchmarks and senders); empty when there is no secret.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let Some(key) = self.keys.first() else {
            return String::new();
        };
        let ts = timestamp.to_string();
        let mac = hmac_sha256(key, &[id.as_bytes(), b".", ts.as_bytes(), b".", body]);
        format!("v1,{}", B64.encode(mac))
    }
}

impl Scheme for StandardWebhooks {
    fn name(&self) -> &'static str {
        "standard-webhooks"
    }

    fn verify(&self, headers: &dyn Headers, body: &[u8], now: i64) -> Verdict {
        let id = required(headers, "webhook-id")?;
        let ts_raw = required(headers, "webhook-timestamp")?;
        let sigs = required(headers, "webhook-signature")?;
        if id.is_empty() || id.len() > MAX_ID_LEN {
            return Err(VerifyError::MissingHeader);
        }
        // The timestamp is signed as it was sent (the header text), as the reference libraries do.
        let ts_raw = ts_raw.trim();
        let ts = signed_time(ts_raw, now, self.tolerance)?;
        let expected: Vec<[u8; 32]> = self
            .keys
            .iter()
            .map(|k| hmac_sha256(k, &[id.as_bytes(), b".", ts_raw.as_bytes(), b".", body]))
            .collect();
        // Built once, and only when a v1a entry meets a configured public key.
        let mut signed: Option<Vec<u8>> = None;
        // Every v1 candidate is compared against every secret (`matches_any`). Ed25519 needs no
        // such care: the public keys and the signature are public, and verify_strict is not a
        // secret compare.
        let mut ok = false;
        for entry in sigs.split(' ').filter(|s| !s.is_empty()) {
            match entry.split_once(',') {
                Some(("v1", b64)) => {
                    let Ok(given) = B64.decode(b64) else { continue };
                    ok |= matches_any(&given, expected.iter().map(|e| &e[..]));
                }
                Some(("v1a", b64)) if !self.public_keys.is_empty() => {
                    let Some(sig) = B64
                        .decode(b64)
                        .ok()
                        .and_then(|b| Signature::from_slice(&b).ok())
                    else {
                        continue;
                    };
                    let m = signed.get_or_insert_with(|| content(id, ts_raw, body));
                    // verify_strict: no malleable signatures, no small-order keys.
                    ok |= self
                        .public_keys
                        .iter()
                        .any(|k| k.verify_strict(m, &sig).is_ok());
                }
                _ => {} // other versions, v1a without keys, and garbage are ignored
            }
        }
        if ok {
            Ok(Verified {
                id: id.to_owned(),
                timestamp: ts,
            })
        } else {
            Err(VerifyError::BadSignature)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers<'a>(id: &'a str, ts: &'a str, sig: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![
            ("webhook-id", id),
            ("webhook-timestamp", ts),
            ("webhook-signature", sig),
        ]
    }

    // The example of the Standard Webhooks specification (spec/standard-webhooks.md).
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TS: i64 = 1614265330;
    const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SPEC_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    // The vector of the reference Rust library (standard-webhooks, libraries/rust, test_sign).
    const LIB_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const LIB_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const LIB_TS: i64 = 1649367553;
    const LIB_BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const LIB_SIG: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    /// A published example: a secret and one message signed with it.
    struct Vector {
        secret: &'static str,
        id: &'static str,
        ts: i64,
        body: &'static [u8],
    }

    const SPEC: Vector = Vector {
        secret: SPEC_SECRET,
        id: SPEC_ID,
        ts: SPEC_TS,
        body: SPEC_BODY,
    };

    const LIB: Vector = Vector {
        secret: LIB_SECRET,
        id: LIB_ID,
        ts: LIB_TS,
        body: LIB_BODY,
    };

    impl Vector {
        /// A scheme with the example's secret.
        fn scheme(&self) -> StandardWebhooks {
            StandardWebhooks::new(&[self.secret]).unwrap()
        }

        /// What `s` answers at `now` for the example's message signed `sigs`.
        fn verify(&self, s: &StandardWebhooks, sigs: &str, now: i64) -> Verdict {
            s.verify(
                &headers(self.id, &self.ts.to_string(), sigs),
                self.body,
                now,
            )
        }
    }

    // Signatures of the reference library's multiple-signature tests that match nothing.
    const DECOYS: [&str; 3] = [
        "v1,tFtCZ5RDCPxzWQRWXWPgrCgE2frDBe9gjpbWQxnVfsQ=",
        "v1,Mm7xgUVICxZfQ3bgf0h0Dof65L/IFx+PnZvnDWPCX6Q=",
        "v1,9DfC1c3eeOrXB6w/5dIDydLNQaEyww5KalE5jLBZucE=",
    ];

    #[test]
    fn signs_the_published_vectors() {
        assert_eq!(SPEC.scheme().sign(SPEC_ID, SPEC_TS, SPEC_BODY), SPEC_SIG);
        assert_eq!(LIB.scheme().sign(LIB_ID, LIB_TS, LIB_BODY), LIB_SIG);
    }

    #[test]
    fn verifies_the_published_vectors() {
        let v = SPEC.verify(&SPEC.scheme(), SPEC_SIG, SPEC_TS + 10).unwrap();
        assert_eq!(v.id, SPEC_ID);
        assert_eq!(v.timestamp, SPEC_TS);
        assert!(LIB.verify(&LIB.scheme(), LIB_SIG, LIB_TS).is_ok());
    }

    #[test]
    fn one_good_signature_among_several_is_enough_and_decoys_alone_are_not() {
        let s = LIB.scheme();
        let multi = format!("{} {} {} {}", DECOYS[0], DECOYS[1], LIB_SIG, DECOYS[2]);
        assert!(LIB.verify(&s, &multi, LIB_TS).is_ok());
        let decoys = DECOYS.join(" ");
        assert_eq!(
            LIB.verify(&s, &decoys, LIB_TS),
            Err(VerifyError::BadSignature)
        );
        // The reference library's "no verify" signature.
        let bad = "v1,R3PTzyfHASBKHH98a7yexTwaJ4yNIcGhFQc1yuN+BPU=";
        assert_eq!(LIB.verify(&s, bad, LIB_TS), Err(VerifyError::BadSignature));
    }

    #[test]
    fn tampering_the_body_id_or_timestamp_breaks_it() {
        let s = SPEC.scheme();
        let ts = SPEC_TS.to_string();
        let now = SPEC_TS;
        let h = headers(SPEC_ID, &ts, SPEC_SIG);
        assert_eq!(
            s.verify(&h, br#"{"test": 2432232315}"#, now),
            Err(VerifyError::BadSignature)
        );
        let h = headers("msg_other", &ts, SPEC_SIG);
        assert_eq!(s.verify(&h, SPEC_BODY, now), Err(VerifyError::BadSignature));
        let ts2 = (SPEC_TS + 1).to_string();
        let h = headers(SPEC_ID, &ts2, SPEC_SIG);
        assert_eq!(s.verify(&h, SPEC_BODY, now), Err(VerifyError::BadSignature));
        // Versions other than v1, v1a without public keys and garbage entries are ignored, not
        // errors.
        let h = headers(SPEC_ID, &ts, "v2,abc v1a,xyz nonsense v1,!!!");
        assert_eq!(s.verify(&h, SPEC_BODY, now), Err(VerifyError::BadSignature));
    }

    #[test]
    fn the_window_is_five_minutes_both_ways() {
        let s = SPEC.scheme();
        let ts = SPEC_TS.to_string();
        let h = headers(SPEC_ID, &ts, SPEC_SIG);
        assert!(s.verify(&h, SPEC_BODY, SPEC_TS + 300).is_ok());
        assert!(s.verify(&h, SPEC_BODY, SPEC_TS - 300).is_ok());
        crate::scheme::assert_window_closes(SPEC_TS, |now| s.verify(&h, SPEC_BODY, now));
        let h = headers(SPEC_ID, "yesterday", SPEC_SIG);
        assert_eq!(
            s.verify(&h, SPEC_BODY, SPEC_TS),
            Err(VerifyError::BadTimestamp)
        );
    }

    #[test]
    fn any_configured_secret_verifies_for_rotation() {
        let other = "whsec_dGhpcyBpcyBhIG5ldyBzZWNyZXQga2V5IQ==";
        let both = StandardWebhooks::new(&[other, SPEC_SECRET]).unwrap();
        assert!(SPEC.verify(&both, SPEC_SIG, SPEC_TS).is_ok());
        let only_new = StandardWebhooks::new(&[other]).unwrap();
        assert_eq!(
            SPEC.verify(&only_new, SPEC_SIG, SPEC_TS),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn missing_headers_and_bad_secrets_are_refused() {
        let s = SPEC.scheme();
        let ts = SPEC_TS.to_string();
        let full = headers(SPEC_ID, &ts, SPEC_SIG);
        for skip in 0..3 {
            let h: Vec<_> = full
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, h)| *h)
                .collect();
            assert_eq!(
                s.verify(&h, SPEC_BODY, SPEC_TS),
                Err(VerifyError::MissingHeader)
            );
        }
        assert!(StandardWebhooks::new(&["whsec_!!"]).is_err());
        assert!(StandardWebhooks::new::<&str>(&[]).is_err());
        assert!(!format!("{s:?}").contains("MfKQ"));
    }

    fn v1a_headers(id: &str, ts: i64, sig: &str) -> (String, String, String) {
        (id.to_owned(), ts.to_string(), sig.to_owned())
    }

    fn hv(h: &(String, String, String)) -> Vec<(&str, &str)> {
        headers(&h.0, &h.1, &h.2)
    }

    #[test]
    fn an_ed25519_v1a_signature_verifies_against_a_configured_public_key() {
        let signer = Ed25519Signer::generate();
        let pk = signer.public_key();
        assert!(pk.starts_with("whpk_"));
        let s = StandardWebhooks::with_keys::<&str, _>(&[], &[pk.as_str()]).unwrap();
        let sig = signer.sign(SPEC_ID, SPEC_TS, SPEC_BODY);
        assert!(sig.starts_with("v1a,"));
        let v = s
            .verify(
                &hv(&v1a_headers(SPEC_ID, SPEC_TS, &sig)),
                SPEC_BODY,
                SPEC_TS + 10,
            )
            .unwrap();
        assert_eq!((v.id.as_str(), v.timestamp), (SPEC_ID, SPEC_TS));
        // The prefix is optional, like whsec_'s.
        let bare = StandardWebhooks::with_keys::<&str, _>(&[], &[&pk[5..]]).unwrap();
        assert!(bare
            .verify(
                &hv(&v1a_headers(SPEC_ID, SPEC_TS, &sig)),
                SPEC_BODY,
                SPEC_TS
            )
            .is_ok());
        // The same window as v1.
        let h = v1a_headers(SPEC_ID, SPEC_TS, &sig);
        crate::scheme::assert_window_closes(SPEC_TS, |now| s.verify(&hv(&h), SPEC_BODY, now));
    }

    #[test]
    fn v1a_refuses_a_wrong_key_a_tampered_body_id_or_timestamp_and_garbage() {
        let signer = Ed25519Signer::from_seed(&[7; 32]);
        let other = Ed25519Signer::from_seed(&[8; 32]);
        let s = StandardWebhooks::with_keys::<&str, _>(&[], &[other.public_key()]).unwrap();
        let sig = signer.sign(SPEC_ID, SPEC_TS, SPEC_BODY);
        let h = v1a_headers(SPEC_ID, SPEC_TS, &sig);
        assert_eq!(
            s.verify(&hv(&h), SPEC_BODY, SPEC_TS),
            Err(VerifyError::BadSignature),
            "signed by a key that is not configured"
        );
        let s = StandardWebhooks::with_keys::<&str, _>(&[], &[signer.public_key()]).unwrap();
        assert!(s.verify(&hv(&h), SPEC_BODY, SPEC_TS).is_ok());
        assert_eq!(
            s.verify(&hv(&h), br#"{"test": 2432232315}"#, SPEC_TS),
            Err(VerifyError::BadSignature)
        );
        let moved = v1a_headers("msg_other", SPEC_TS, &sig);
        assert_eq!(
            s.verify(&hv(&moved), SPEC_BODY, SPEC_TS),
            Err(VerifyError::BadSignature)
        );
        let later = v1a_headers(SPEC_ID, SPEC_TS + 1, &sig);
        assert_eq!(
            s.verify(&hv(&later), SPEC_BODY, SPEC_TS),
            Err(VerifyError::BadSignature)
        );
        // A v1a signature is not accepted as a v1 one, nor garbage as v1a.
        let as_v1 = sig.replacen("v1a,", "v1,", 1);
        for bad in [as_v1.as_str(), "v1a,!!!", "v1a,AAAA", "v1a,"] {
            let h = v1a_headers(SPEC_ID, SPEC_TS, bad);
            assert_eq!(
                s.verify(&hv(&h), SPEC_BODY, SPEC_TS),
                Err(VerifyError::BadSignature),
                "{bad}"
            );
        }
    }

    #[test]
    fn v1a_without_public_keys_configured_verifies_nothing() {
        let signer = Ed25519Signer::from_seed(&[9; 32]);
        let s = StandardWebhooks::new(&[SPEC_SECRET]).unwrap();
        let sig = signer.sign(SPEC_ID, SPEC_TS, SPEC_BODY);
        let h = v1a_headers(SPEC_ID, SPEC_TS, &sig);
        assert_eq!(
            s.verify(&hv(&h), SPEC_BODY, SPEC_TS),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn a_mixed_list_is_accepted_when_any_v1_or_v1a_entry_matches() {
        let signer = Ed25519Signer::from_seed(&[1; 32]);
        let stranger = Ed25519Signer::from_seed(&[2; 32]);
        let s = StandardWebhooks::with_keys(&[SPEC_SECRET], &[signer.public_key()]).unwrap();
        let good_v1a = signer.sign(SPEC_ID, SPEC_TS, SPEC_BODY);
        let bad_v1a = stranger.sign(SPEC_ID, SPEC_TS, SPEC_BODY);
        let cases = [
            (format!("{} {good_v1a}", DECOYS[0]), true),
            (format!("{bad_v1a} {SPEC_SIG} v2,xyz"), true),
            (format!("{bad_v1a} {good_v1a} {SPEC_SIG}"), true),
            (format!("{} {bad_v1a} {}", DECOYS[0], DECOYS[1]), false),
        ];
        for (sigs, accepted) in cases {
            let h = v1a_headers(SPEC_ID, SPEC_TS, &sigs);
            assert_eq!(
                s.verify(&hv(&h), SPEC_BODY, SPEC_TS).is_ok(),
                accepted,
                "{sigs}"
            );
        }
        // A sender keeping only the secret or only the public key configured still verifies.
        let only_key = StandardWebhooks::with_keys::<&str, _>(&[], &[signer.public_key()]).unwrap();
        let h = v1a_headers(SPEC_ID, SPEC_TS, &format!("{SPEC_SIG} {good_v1a}"));
        assert!(only_key.verify(&hv(&h), SPEC_BODY, SPEC_TS).is_ok());
        assert!(StandardWebhooks::new(&[SPEC_SECRET])
            .unwrap()
            .verify(&hv(&h), SPEC_BODY, SPEC_TS)
            .is_ok());
    }

    #[test]
    fn bad_public_keys_are_refused_and_never_printed() {
        let signer = Ed25519Signer::from_seed(&[3; 32]);
        for bad in [
            "whpk_!!",
            "whpk_AAAA",
            "whpk_",
            &format!("whpk_{}", B64.encode([0u8; 33])),
        ] {
            assert!(
                StandardWebhooks::with_keys::<&str, _>(&[], &[bad]).is_err(),
                "{bad}"
            );
        }
        assert!(StandardWebhooks::with_keys::<&str, &str>(&[], &[]).is_err());
        let s = StandardWebhooks::with_keys(&[SPEC_SECRET], &[signer.public_key()]).unwrap();
        let dbg = format!("{s:?}");
        assert!(
            !dbg.contains("MfKQ") && !dbg.contains(&signer.public_key()[5..]),
            "{dbg}"
        );
        assert_eq!(
            StandardWebhooks::with_keys::<&str, _>(&[], &[signer.public_key()])
                .unwrap()
                .sign(SPEC_ID, SPEC_TS, SPEC_BODY),
            ""
        );
    }
}
