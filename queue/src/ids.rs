//! Validated identifiers: nothing a client sends reaches a Redis key unchecked.

use crate::error::QueueError;
use sha2::{Digest, Sha256};
use std::fmt;

/// Whether `s` is 1 to `max_len` characters of `[A-Za-z0-9_-]` (URL-safe, and safe in a key).
pub(crate) fn is_key_safe(s: &str, max_len: usize) -> bool {
    !s.is_empty()
        && s.len() <= max_len
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// An event id: `[A-Za-z0-9_-]{1,64}`, safe to embed in a key's `{hash tag}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(String);

impl EventId {
    /// Validates `s` as an event id.
    pub fn parse(s: &str) -> Result<Self, QueueError> {
        if is_key_safe(s, 64) {
            Ok(Self(s.to_owned()))
        } else {
            Err(QueueError::InvalidArgument(
                "event_id must match [A-Za-z0-9_-]{1,64}".into(),
            ))
        }
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Longest accepted session or user id, in bytes.
pub const MAX_CLIENT_ID_BYTES: usize = 128;

/// Validates a session id (required, 1..=128 bytes).
pub fn check_session_id(s: &str) -> Result<(), QueueError> {
    if s.is_empty() || s.len() > MAX_CLIENT_ID_BYTES {
        return Err(QueueError::InvalidArgument(format!(
            "session_id must be 1 to {MAX_CLIENT_ID_BYTES} bytes"
        )));
    }
    Ok(())
}

/// Validates an optional user id (at most 128 bytes when present, not empty).
pub fn check_user_id(s: Option<&str>) -> Result<(), QueueError> {
    match s {
        Some(u) if u.is_empty() || u.len() > MAX_CLIENT_ID_BYTES => {
            Err(QueueError::InvalidArgument(format!(
                "user_id must be 1 to {MAX_CLIENT_ID_BYTES} bytes"
            )))
        }
        _ => Ok(()),
    }
}

/// A session within one event: the first 8 bytes of SHA-256 of the session id, so the id itself
/// never shapes a key or a member, and 10,000,000 sessions collide with odds of about 1 in
/// 370,000. In Redis it is the waiting queue's member (see lib.lua's layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionKey([u8; 8]);

impl SessionKey {
    /// The session key of `session_id` within one event.
    pub fn of(session_id: &str) -> Self {
        Self::of_digest(&Sha256::digest(session_id.as_bytes()))
    }

    /// Where the place of `session_id` is filed: [`SessionKey::of`] the session alone, or, for
    /// a join vouched for by a verified user assertion, of the pair (session, user). So a
    /// re-join of a session under another identity is another place and never re-labels the
    /// ticket that stands. The pair's encoding starts with a byte that no UTF-8 string does
    /// and length-prefixes the session, so it never equals a lone session id nor another pair.
    pub fn of_place(session_id: &str, user: Option<&str>) -> Self {
        let Some(user) = user else {
            return Self::of(session_id);
        };
        let mut h = Sha256::new();
        h.update([0xff]);
        h.update((session_id.len() as u64).to_be_bytes());
        h.update(session_id.as_bytes());
        h.update(user.as_bytes());
        Self::of_digest(&h.finalize())
    }

    fn of_digest(d: &[u8]) -> Self {
        let mut k = [0u8; 8];
        k.copy_from_slice(&d[..8]);
        Self(k)
    }

    /// The key's 8 bytes.
    pub fn bytes(&self) -> [u8; 8] {
        self.0
    }

    /// The key as 16 lowercase hex digits (as a token carries it).
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses [`SessionKey::to_hex`]'s form.
    pub fn from_hex(s: &str) -> Option<Self> {
        if s.len() != 16 || !s.is_ascii() {
            return None;
        }
        let mut k = [0u8; 8];
        for (i, b) in k.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Self(k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_checked() {
        assert!(EventId::parse("demo-2026_A").is_ok());
        assert!(EventId::parse(&"a".repeat(64)).is_ok());
        for bad in ["", "a b", "{x}", "a:b", "é", &"a".repeat(65)] {
            assert!(EventId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn client_ids_are_bounded() {
        assert!(check_session_id(&"s".repeat(128)).is_ok());
        assert!(check_session_id(&"s".repeat(129)).is_err());
        assert!(check_session_id("").is_err());
        assert!(check_user_id(None).is_ok());
        assert!(check_user_id(Some("")).is_err());
    }

    #[test]
    fn session_keys_differ_per_session() {
        assert_ne!(SessionKey::of("a"), SessionKey::of("b"));
        assert_eq!(SessionKey::of("a"), SessionKey::of("a"));
    }

    #[test]
    fn a_vouched_place_is_filed_apart_from_the_session_and_from_other_users() {
        assert_eq!(SessionKey::of_place("s", None), SessionKey::of("s"));
        let alice = SessionKey::of_place("s", Some("alice"));
        assert_eq!(alice, SessionKey::of_place("s", Some("alice")));
        assert_ne!(alice, SessionKey::of("s"));
        assert_ne!(alice, SessionKey::of_place("s", Some("bob")));
        // The boundary between session and user is part of the key.
        assert_ne!(
            SessionKey::of_place("ab", Some("c")),
            SessionKey::of_place("a", Some("bc"))
        );
    }
}
