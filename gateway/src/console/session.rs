//! Console sessions: a stateless, HMAC-signed cookie and the CSRF token derived from it.
//!
//! Why stateless: every replica accepts a session any replica issued (no shared session store,
//! no sticky load balancing), and a restart signs nobody out. The signing key is derived from
//! the admin token's SHA-256 (which every replica holds), so rotating `--admin-token` ends every
//! session at once. The price: signing out only clears the browser's cookie; a copied cookie
//! stays valid until its expiry (`--console-session-ttl-seconds`, 8 h by default). The cookie
//! is HttpOnly and SameSite=Strict, so neither page scripts nor other sites can use it.
//!
//! Cookie value: `<sid>.<expires_unix_s>.<mac>`; `sid` is 128 random bits (hex), `mac` is
//! HMAC-SHA256(key, "session." sid "." expires) in hex. CSRF token: HMAC-SHA256(key, "csrf." sid)
//! in hex, bound to the session, so nothing is stored anywhere.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The session cookie's name.
pub const COOKIE: &str = "wr_console";

/// A verified session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The random session id (32 hex digits).
    pub sid: String,
    /// When it ends (Unix seconds).
    pub expires: u64,
}

impl Session {
    /// The audit trail's actor: the console and the first 8 hex digits of the session (enough
    /// to tell sessions apart, too few to be of use to anyone reading the trail).
    pub fn actor(&self) -> String {
        format!("console:{}", &self.sid[..8])
    }
}

/// The keys of the console's sessions.
#[derive(Clone)]
pub struct Keys {
    key: [u8; 32],
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys([redacted])")
    }
}

impl Keys {
    /// Keys derived from the admin token's SHA-256 (a key of its own, so that a session MAC
    /// says nothing of the token).
    pub fn from_admin_hash(admin_hash: &[u8; 32]) -> Self {
        let key = mac(admin_hash, &[b"gateway console session key v1".as_slice()]);
        Self { key }
    }

    /// A new session ending at `expires` (Unix s) and its cookie value.
    pub fn issue(&self, expires: u64) -> (Session, String) {
        let sid = uuid::Uuid::new_v4().simple().to_string();
        let value = format!("{sid}.{expires}.{}", self.session_mac(&sid, expires));
        (Session { sid, expires }, value)
    }

    /// The session of a cookie value, if it is one of ours and not expired at `now` (Unix s).
    pub fn verify(&self, value: &str, now: u64) -> Option<Session> {
        let mut parts = value.split('.');
        let (sid, exp, given) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || sid.len() != 32 || !sid.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return None;
        }
        let expires: u64 = exp.parse().ok()?;
        let want = self.session_mac(sid, expires);
        if !ct_eq(want.as_bytes(), given.as_bytes()) || expires <= now {
            return None;
        }
        Some(Session {
            sid: sid.to_owned(),
            expires,
        })
    }

    /// The session's CSRF token.
    pub fn csrf(&self, s: &Session) -> String {
        hex(&mac(&self.key, &[b"csrf.".as_slice(), s.sid.as_bytes()]))
    }

    /// Whether `given` is the session's CSRF token (constant time).
    pub fn csrf_ok(&self, s: &Session, given: &str) -> bool {
        ct_eq(self.csrf(s).as_bytes(), given.as_bytes())
    }

    fn session_mac(&self, sid: &str, expires: u64) -> String {
        let exp = expires.to_string();
        hex(&mac(
            &self.key,
            &[b"session.".as_slice(), sid.as_bytes(), b".", exp.as_bytes()],
        ))
    }
}

fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_verifies_until_it_expires_and_only_with_its_key() {
        let keys = Keys::from_admin_hash(&[7; 32]);
        let (s, value) = keys.issue(1_000);
        assert_eq!(keys.verify(&value, 999), Some(s.clone()));
        assert_eq!(keys.verify(&value, 1_000), None, "expired");
        let other = Keys::from_admin_hash(&[8; 32]);
        assert_eq!(other.verify(&value, 0), None, "another admin token");
        let longer = value.replacen(".1000.", ".9000.", 1);
        assert_eq!(keys.verify(&longer, 0), None, "a stretched expiry");
        assert!(keys.csrf_ok(&s, &keys.csrf(&s)));
        let (t, _) = keys.issue(1_000);
        assert!(!keys.csrf_ok(&t, &keys.csrf(&s)), "another session's token");
        assert!(!keys.csrf_ok(&s, ""));
    }

    #[test]
    fn cookies_are_found_by_name() {
        assert_eq!(cookie("a=1; wr_console=x.y.z; b=2", COOKIE), Some("x.y.z"));
        assert_eq!(cookie("wr_consolex=1", COOKIE), None);
    }
}
