//! Tokens: HMAC-signed waiting tokens that carry a place, and EdDSA JWT admissions that any
//! origin can verify offline against the JWKS.
//!
//! Both kinds take several keys so that keys rotate without invalidating what is outstanding:
//! the first key signs, every key verifies, and each token names its key by a short id so that
//! verification costs one check, not one per configured key.
//!
//! User assertions ([`UserAssertions`]) go the other way: the origin signs them, the gateway
//! verifies them, and only a verified one names the user of an admission.

mod admission;
mod assertion;
mod hint;
mod keys;
mod waiting;

pub(crate) use keys::KidKey;

pub use admission::{AdmissionClaims, AdmissionSigner};
pub use assertion::{UserAssertions, MAX_ASSERTION_LEN, MIN_ASSERTION_KEY_LEN};
pub use hint::{PositionHint, PositionHints, MAX_HINT_LEN};
pub use waiting::{VerifiedWaiting, WaitingClaims, WaitingTokens};

/// Longest waiting token accepted for verification (longer input is rejected unread).
pub const MAX_WAITING_TOKEN_LEN: usize = 1024;
/// Shortest accepted `--token-secret`, in bytes.
pub const MIN_SECRET_LEN: usize = 16;
/// The `iss` claim of admission tokens.
pub const ISSUER: &str = "admission-gateway";
