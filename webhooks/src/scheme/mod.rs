//! Signature schemes: how a provider signs a webhook, checked over the raw bytes before any
//! parsing. Each provider is one file implementing [`Scheme`]; the HTTP edge only hands over
//! the headers (lower-case names), the body and the current time.

mod standard;
mod stripe;

pub use standard::{Ed25519Signer, StandardWebhooks};
pub use stripe::Stripe;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far a signed timestamp may be from now, either way: 5 minutes, as both Standard
/// Webhooks and Stripe recommend (replays of an old capture are refused; clock skew is not).
pub const DEFAULT_TOLERANCE_SECONDS: i64 = 5 * 60;

/// Longest webhook id accepted: it becomes part of a Redis key.
pub const MAX_ID_LEN: usize = 256;

/// What a successful verification vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The provider's message id, the same for every retry of one webhook (the dedup key).
    pub id: String,
    /// The signed timestamp, Unix seconds.
    pub timestamp: i64,
}

/// What [`Scheme::verify`] answers.
pub type Verdict = Result<Verified, VerifyError>;

/// Why a webhook was refused. The HTTP edge answers all of them with one generic 401, so a
/// forger learns nothing; the reason goes to metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A required header is absent or not visible ASCII.
    #[error("missing or unreadable signature header")]
    MissingHeader,
    /// The timestamp is not an integer.
    #[error("malformed timestamp")]
    BadTimestamp,
    /// The timestamp is older than the tolerance.
    #[error("timestamp too old")]
    Stale,
    /// The timestamp is further in the future than the tolerance.
    #[error("timestamp in the future")]
    Future,
    /// No signature matches any configured secret or public key.
    #[error("no valid signature")]
    BadSignature,
}

impl VerifyError {
    /// A short stable label, for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingHeader => "missing_header",
            Self::BadTimestamp => "bad_timestamp",
            Self::Stale => "stale",
            Self::Future => "future",
            Self::BadSignature => "bad_signature",
        }
    }
}

/// A secret that cannot be used (bad encoding or length).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid webhook secret: {0}")]
pub struct SecretError(pub &'static str);

/// Request headers as the scheme sees them: lookup by lower-case name.
pub trait Headers {
    /// The value of header `name` (lower case), if present and valid UTF-8.
    fn get(&self, name: &str) -> Option<&str>;
}

impl Headers for Vec<(&str, &str)> {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// A provider's signature scheme.
pub trait Scheme: Send + Sync {
    /// A short name (`standard-webhooks`, `stripe`), used as the envelope's `source`.
    fn name(&self) -> &'static str;

    /// Checks the signature of `body` under `headers` at `now` (Unix seconds), in constant time
    /// per candidate signature, and returns the message id and timestamp it vouches for.
    fn verify(&self, headers: &dyn Headers, body: &[u8], now: i64) -> Verdict;
}

/// The value of a header a scheme cannot do without (`name` in lower case).
pub(crate) fn required<'h>(headers: &'h dyn Headers, name: &str) -> Result<&'h str, VerifyError> {
    headers.get(name).ok_or(VerifyError::MissingHeader)
}

/// The signed timestamp `raw` (Unix seconds, as sent); one outside `now ± tolerance` is refused.
pub(crate) fn signed_time(raw: &str, now: i64, tolerance: i64) -> Result<i64, VerifyError> {
    let ts: i64 = raw.parse().map_err(|_| VerifyError::BadTimestamp)?;
    if now.saturating_sub(ts) > tolerance {
        Err(VerifyError::Stale)
    } else if ts.saturating_sub(now) > tolerance {
        Err(VerifyError::Future)
    } else {
        Ok(ts)
    }
}

/// HMAC-SHA256 of the concatenated `parts` under `key`.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail; the fallback keeps it panic-free.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return [0; 32];
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// Whether `given` equals any of `expected`. Every one is compared, in constant time and
/// without an early exit, so timing does not reveal which secret (if any) nearly matched.
pub(crate) fn matches_any<'e>(given: &[u8], expected: impl IntoIterator<Item = &'e [u8]>) -> bool {
    let mut ok = false;
    for e in expected {
        ok |= ct_eq(given, e);
    }
    ok
}

/// Constant-time equality of two byte strings (the length is not secret).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Asserts that a message signed at `signed` is refused one second past the tolerance either
/// way (`verify_at` verifies it at a given now): as stale after, as from the future before.
#[cfg(test)]
#[track_caller]
fn assert_window_closes(signed: i64, verify_at: impl Fn(i64) -> Verdict) {
    assert_eq!(verify_at(signed + 301), Err(VerifyError::Stale));
    assert_eq!(verify_at(signed - 301), Err(VerifyError::Future));
}
