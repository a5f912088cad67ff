//! What the HMAC signers share: the checked list of configured keys, and a key that names
//! itself by a short public id.

use crate::error::{QueueError, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// The distinct `keys` in order (a repeat is dropped), each at least `min_len` bytes; `what`
/// names a key in the errors ("token secret"). At least one key is required.
pub(crate) fn distinct_keys<I, S>(keys: I, min_len: usize, what: &str) -> Result<Vec<Vec<u8>>>
where
    I: IntoIterator<Item = S>,
    S: AsRef<[u8]>,
{
    let mut seen: Vec<Vec<u8>> = Vec::new();
    for (n, key) in keys.into_iter().enumerate() {
        let key = key.as_ref();
        if key.len() < min_len {
            return Err(QueueError::Key(format!(
                "{what} #{} must be at least {min_len} bytes",
                n + 1
            )));
        }
        if !seen.iter().any(|k| k == key) {
            seen.push(key.to_vec());
        }
    }
    if seen.is_empty() {
        return Err(QueueError::Key(format!("no {what} given")));
    }
    Ok(seen)
}

/// An HMAC-SHA256 key and its public id (base64url of 6 bytes of HMAC(key, `label`)); the HMAC
/// state is cloned per use, which saves re-hashing the key for every signature.
#[derive(Clone)]
pub(crate) struct KidKey {
    pub(crate) kid: String,
    pub(crate) mac: HmacSha256,
}

impl KidKey {
    pub(crate) fn new(key: &[u8], label: &[u8]) -> Self {
        // HMAC takes keys of any length; this cannot fail.
        let mac = HmacSha256::new_from_slice(key).expect("hmac accepts any key length");
        let mut id = mac.clone();
        id.update(label);
        let kid = B64.encode(&id.finalize().into_bytes()[..6]);
        Self { kid, mac }
    }

    /// The MAC over `kid "." body_b64`, so it can never be confused with a MAC over a raw body.
    pub(crate) fn sign(&self, body_b64: &str) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(self.kid.as_bytes());
        mac.update(b".");
        mac.update(body_b64.as_bytes());
        mac
    }
}
