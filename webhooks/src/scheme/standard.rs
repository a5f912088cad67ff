//! Standard Webhooks (<https://www.standardwebhooks.com>): headers `webhook-id`,
//! `webhook-timestamp` and `webhook-signature` (space-separated `v1,<base64>` entries, so a
//! sender can sign with several keys during a rotation); the signature is
//! base64(HMAC-SHA256(key, "id.timestamp.body")) with the key the base64 part of `whsec_…`.

use super::{
    check_window, ct_eq, hmac_sha256, Headers, Scheme, SecretError, Verified, VerifyError,
};
use super::{DEFAULT_TOLERANCE_SECONDS, MAX_ID_LEN};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

/// The Standard Webhooks scheme with one or more secrets (any one verifies: rotation without
/// downtime).
#[derive(Clone)]
pub struct StandardWebhooks {
    keys: Vec<Vec<u8>>,
    tolerance: i64,
}

impl std::fmt::Debug for StandardWebhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        write!(f, "StandardWebhooks({} secrets)", self.keys.len())
    }
}

impl StandardWebhooks {
    /// From secrets `whsec_<base64>` (the prefix is optional); each must decode to 1 to 1,024
    /// bytes, and at least one is required.
    pub fn new<S: AsRef<str>>(secrets: &[S]) -> Result<Self, SecretError> {
        if secrets.is_empty() {
            return Err(SecretError("at least one secret is required"));
        }
        let keys = secrets
            .iter()
            .map(|s| {
                let s = s.as_ref().trim();
                let b = s.strip_prefix("whsec_").unwrap_or(s);
                let key = B64
                    .decode(b)
                    .map_err(|_| SecretError("expected whsec_<base64>"))?;
                if key.is_empty() || key.len() > 1024 {
                    return Err(SecretError("the key must be 1 to 1024 bytes"));
                }
                Ok(key)
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            keys,
            tolerance: DEFAULT_TOLERANCE_SECONDS,
        })
    }

    /// The same scheme with another timestamp tolerance, in seconds.
    pub fn with_tolerance(mut self, seconds: i64) -> Self {
        self.tolerance = seconds;
        self
    }

    /// The `webhook-signature` value for `id`, `timestamp` and `body` under the first secret
    /// (for tests, benchmarks and senders).
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let ts = timestamp.to_string();
        let mac = hmac_sha256(
            &self.keys[0],
            &[id.as_bytes(), b".", ts.as_bytes(), b".", body],
        );
        format!("v1,{}", B64.encode(mac))
    }
}

impl Scheme for StandardWebhooks {
    fn name(&self) -> &'static str {
        "standard-webhooks"
    }

    fn verify(
        &self,
        headers: &dyn Headers,
        body: &[u8],
        now: i64,
    ) -> Result<Verified, VerifyError> {
        let id = headers
            .get("webhook-id")
            .ok_or(VerifyError::MissingHeader)?;
        let ts_raw = headers
            .get("webhook-timestamp")
            .ok_or(VerifyError::MissingHeader)?;
        let sigs = headers
            .get("webhook-signature")
            .ok_or(VerifyError::MissingHeader)?;
        if id.is_empty() || id.len() > MAX_ID_LEN {
            return Err(VerifyError::MissingHeader);
        }
        let ts: i64 = ts_raw
            .trim()
            .parse()
            .map_err(|_| VerifyError::BadTimestamp)?;
        check_window(ts, now, self.tolerance)?;
        // The timestamp is signed as it was sent (the header text), as the reference libraries do.
        let expected: Vec<[u8; 32]> = self
            .keys
            .iter()
            .map(|k| {
                hmac_sha256(
                    k,
                    &[id.as_bytes(), b".", ts_raw.trim().as_bytes(), b".", body],
                )
            })
            .collect();
        // Every candidate is compared against every key without an early exit on the key loop,
        // so timing does not reveal which secret (if any) nearly matched.
        let mut ok = false;
        for entry in sigs.split(' ').filter(|s| !s.is_empty()) {
            let Some(("v1", b64)) = entry.split_once(',') else {
                continue; // other versions (v1a = ed25519) are not configured here
            };
            let Ok(given) = B64.decode(b64) else { continue };
            for e in &expected {
                ok |= ct_eq(&given, e);
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

    // Signatures of the reference library's multiple-signature tests that match nothing.
    const DECOYS: [&str; 3] = [
        "v1,tFtCZ5RDCPxzWQRWXWPgrCgE2frDBe9gjpbWQxnVfsQ=",
        "v1,Mm7xgUVICxZfQ3bgf0h0Dof65L/IFx+PnZvnDWPCX6Q=",
        "v1,9DfC1c3eeOrXB6w/5dIDydLNQaEyww5KalE5jLBZucE=",
    ];

    #[test]
    fn signs_the_published_vectors() {
        let s = StandardWebhooks::new(&[SPEC_SECRET]).unwrap();
        assert_eq!(s.sign(SPEC_ID, SPEC_TS, SPEC_BODY), SPEC_SIG);
        let s = StandardWebhooks::new(&[LIB_SECRET]).unwrap();
        assert_eq!(s.sign(LIB_ID, LIB_TS, LIB_BODY), LIB_SIG);
    }

    #[test]
    fn verifies_the_published_vectors() {
        let s = StandardWebhooks::new(&[SPEC_SECRET]).unwrap();
        let ts = SPEC_TS.to_string();
        let v = s
            .verify(&headers(SPEC_ID, &ts, SPEC_SIG), SPEC_BODY, SPEC_TS + 10)
            .unwrap();
        assert_eq!(v.id, SPEC_ID);
        assert_eq!(v.timestamp, SPEC_TS);
        let s = StandardWebhooks::new(&[LIB_SECRET]).unwrap();
        let ts = LIB_TS.to_string();
        assert!(s
            .verify(&headers(LIB_ID, &ts, LIB_SIG), LIB_BODY, LIB_TS)
            .is_ok());
    }

    #[test]
    fn one_good_signature_among_several_is_enough_and_decoys_alone_are_not() {
        let s = StandardWebhooks::new(&[LIB_SECRET]).unwrap();
        let ts = LIB_TS.to_string();
        let multi = format!("{} {} {} {}", DECOYS[0], DECOYS[1], LIB_SIG, DECOYS[2]);
        assert!(s
            .verify(&headers(LIB_ID, &ts, &multi), LIB_BODY, LIB_TS)
            .is_ok());
        let decoys = DECOYS.join(" ");
        assert_eq!(
            s.verify(&headers(LIB_ID, &ts, &decoys), LIB_BODY, LIB_TS),
            Err(VerifyError::BadSignature)
        );
        // The reference library's "no verify" signature.
        let bad = "v1,R3PTzyfHASBKHH98a7yexTwaJ4yNIcGhFQc1yuN+BPU=";
        assert_eq!(
            s.verify(&headers(LIB_ID, &ts, bad), LIB_BODY, LIB_TS),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn tampering_the_body_id_or_timestamp_breaks_it() {
        let s = StandardWebhooks::new(&[SPEC_SECRET]).unwrap();
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
        // Versions other than v1 and garbage entries are ignored, not errors.
        let h = headers(SPEC_ID, &ts, "v2,abc v1a,xyz nonsense v1,!!!");
        assert_eq!(s.verify(&h, SPEC_BODY, now), Err(VerifyError::BadSignature));
    }

    #[test]
    fn the_window_is_five_minutes_both_ways() {
        let s = StandardWebhooks::new(&[SPEC_SECRET]).unwrap();
        let ts = SPEC_TS.to_string();
        let h = headers(SPEC_ID, &ts, SPEC_SIG);
        assert!(s.verify(&h, SPEC_BODY, SPEC_TS + 300).is_ok());
        assert!(s.verify(&h, SPEC_BODY, SPEC_TS - 300).is_ok());
        assert_eq!(
            s.verify(&h, SPEC_BODY, SPEC_TS + 301),
            Err(VerifyError::Stale)
        );
        assert_eq!(
            s.verify(&h, SPEC_BODY, SPEC_TS - 301),
            Err(VerifyError::Future)
        );
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
        let ts = SPEC_TS.to_string();
        assert!(both
            .verify(&headers(SPEC_ID, &ts, SPEC_SIG), SPEC_BODY, SPEC_TS)
            .is_ok());
        let only_new = StandardWebhooks::new(&[other]).unwrap();
        assert_eq!(
            only_new.verify(&headers(SPEC_ID, &ts, SPEC_SIG), SPEC_BODY, SPEC_TS),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn missing_headers_and_bad_secrets_are_refused() {
        let s = StandardWebhooks::new(&[SPEC_SECRET]).unwrap();
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
}
