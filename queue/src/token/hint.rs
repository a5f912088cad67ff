//! Position hints: a status reply's signed note of where a waiting place stood, at which
//! departure-log sequence, and when its heartbeat was last written. The next status read of
//! the same waiting token presents it, so the gateway can derive the new position from the log
//! it follows ([`crate::follow`]) instead of asking the store.
//!
//! Format: `kid "." base64url(seq ‖ position ‖ beat, 8 bytes each, big-endian) "."
//! base64url(16 bytes of HMAC-SHA256)`. The MAC also covers the waiting token the hint was
//! issued with, so a hint is worth nothing beside any other token: it names no event, ticket
//! or session of its own. The keys are derived from `--token-secret`s and rotate with them.

use super::keys::{HmacSha256, KidKey};
use super::WaitingTokens;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::Mac;
use std::sync::Arc;

/// Longest hint read (longer input is ignored unread); one is 67 characters.
pub const MAX_HINT_LEN: usize = 128;
const TAG_LEN: usize = 16;

/// What a hint says about its token's place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PositionHint {
    /// The departure log's sequence at which `position` was exact.
    pub seq: u64,
    /// The 1-based position then.
    pub position: u64,
    /// When the place's heartbeat was last written (Unix s).
    pub beat_s: u64,
}

/// Signs and checks position hints under keys derived from the waiting tokens' secrets.
#[derive(Clone)]
pub struct PositionHints {
    keys: Arc<[KidKey]>,
}

impl std::fmt::Debug for PositionHints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PositionHints").finish_non_exhaustive()
    }
}

impl PositionHints {
    /// Hints that rotate with `tokens`' secrets (the first signs, every one verifies).
    pub fn for_tokens(tokens: &WaitingTokens) -> Self {
        let keys: Vec<KidKey> = tokens
            .derive_keys(b"position hint key")
            .iter()
            .map(|k| KidKey::new(k, b"position hint key id"))
            .collect();
        Self { keys: keys.into() }
    }

    fn mac(key: &KidKey, body: &str, token: &str) -> HmacSha256 {
        let mut mac = key.sign(body);
        mac.update(b".");
        mac.update(token.as_bytes());
        mac
    }

    /// The hint for `token`'s place.
    pub fn issue(&self, token: &str, hint: &PositionHint) -> String {
        let key = &self.keys[0];
        let mut raw = [0u8; 24];
        raw[..8].copy_from_slice(&hint.seq.to_be_bytes());
        raw[8..16].copy_from_slice(&hint.position.to_be_bytes());
        raw[16..].copy_from_slice(&hint.beat_s.to_be_bytes());
        let body = B64.encode(raw);
        let tag = Self::mac(key, &body, token).finalize().into_bytes();
        format!("{}.{}.{}", key.kid, body, B64.encode(&tag[..TAG_LEN]))
    }

    /// What a genuine hint issued with `token` says; None for anything else (a hint is only
    /// ever an optimisation, so a bad one is ignored, not refused). The tag is compared in
    /// constant time before the body is read.
    pub fn verify(&self, token: &str, hint: &str) -> Option<PositionHint> {
        if hint.len() > MAX_HINT_LEN {
            return None;
        }
        let mut parts = hint.split('.');
        let (kid, body, tag) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let key = self.keys.iter().find(|k| k.kid == kid)?;
        let tag = B64.decode(tag).ok()?;
        // A shorter tag would be easier to guess: exactly TAG_LEN bytes, compared in constant
        // time (`verify_truncated_left` checks them against the MAC's first bytes).
        if tag.len() != TAG_LEN {
            return None;
        }
        Self::mac(key, body, token)
            .verify_truncated_left(&tag)
            .ok()?;
        let raw = B64.decode(body).ok()?;
        let raw: [u8; 24] = raw.try_into().ok()?;
        let word = |i: usize| u64::from_be_bytes(raw[i..i + 8].try_into().unwrap_or_default());
        Some(PositionHint {
            seq: word(0),
            position: word(8),
            beat_s: word(16),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hints(secrets: &[&[u8]]) -> PositionHints {
        PositionHints::for_tokens(&WaitingTokens::from_secrets(secrets.iter()).unwrap())
    }

    const H: PositionHint = PositionHint {
        seq: 7,
        position: 1234,
        beat_s: 1_800_000_000,
    };

    #[test]
    fn a_hint_reads_back_beside_its_token_only() {
        let h = hints(&[b"0123456789abcdef0123"]);
        let s = h.issue("token-a", &H);
        assert!(s.len() <= MAX_HINT_LEN);
        assert_eq!(h.verify("token-a", &s), Some(H));
        assert_eq!(h.verify("token-b", &s), None);
    }

    #[test]
    fn a_tampered_or_foreign_hint_is_ignored() {
        let h = hints(&[b"0123456789abcdef0123"]);
        let s = h.issue("t", &H);
        let (kid, rest) = s.split_once('.').unwrap();
        let (_, tag) = rest.split_once('.').unwrap();
        let other = h.issue("t", &PositionHint { position: 1, ..H });
        let other_body = other.split('.').nth(1).unwrap();
        assert_eq!(h.verify("t", &format!("{kid}.{other_body}.{tag}")), None);
        assert_eq!(h.verify("t", &format!("{s}.x")), None);
        assert_eq!(h.verify("t", "garbage"), None);
        assert_eq!(h.verify("t", &"a.".repeat(100)), None);
        let stranger = hints(&[b"another secret, 16+ bytes"]);
        assert_eq!(stranger.verify("t", &s), None);
    }

    #[test]
    fn hints_survive_a_secret_rotation() {
        let old = hints(&[b"0123456789abcdef0123"]);
        let s = old.issue("t", &H);
        let rotated = hints(&[b"the next secret, 16+ bytes", b"0123456789abcdef0123"]);
        assert_eq!(rotated.verify("t", &s), Some(H));
        assert_ne!(
            rotated.issue("t", &H),
            s,
            "new hints are signed under the new secret"
        );
    }
}
