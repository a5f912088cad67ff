//! Tokens: HMAC-signed waiting tokens that carry a place, and EdDSA JWT admissions that any
//! origin can verify offline against the JWKS.

use crate::error::{QueueError, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::SigningKey;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Longest waiting token accepted for verification (longer input is rejected unread).
pub const MAX_WAITING_TOKEN_LEN: usize = 1024;
/// Shortest accepted `--token-secret`, in bytes.
pub const MIN_SECRET_LEN: usize = 16;
/// The `iss` claim of admission tokens.
pub const ISSUER: &str = "admission-gateway";

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
    /// User id, when the join named one.
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

/// Issues and checks waiting tokens: `base64url(claims JSON) "." base64url(HMAC-SHA256)`.
/// The same claims always give the same token, so a re-join returns the token it had.
#[derive(Clone)]
pub struct WaitingTokens {
    key: Vec<u8>,
}

impl std::fmt::Debug for WaitingTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WaitingTokens(<secret>)")
    }
}

impl WaitingTokens {
    /// Tokens under `secret` (at least 16 bytes): every replica with it accepts the others'.
    pub fn from_secret(secret: &[u8]) -> Result<Self> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(QueueError::Key(format!(
                "token secret must be at least {MIN_SECRET_LEN} bytes"
            )));
        }
        Ok(Self {
            key: secret.to_vec(),
        })
    }

    /// Tokens under a fresh random secret (valid only in this process's lifetime).
    pub fn ephemeral() -> Self {
        Self {
            key: rand::random::<[u8; 32]>().to_vec(),
        }
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes keys of any length; this cannot fail.
        HmacSha256::new_from_slice(&self.key).expect("hmac accepts any key length")
    }

    /// The token for `claims`.
    pub fn issue(&self, claims: &WaitingClaims) -> String {
        let body = serde_json::to_vec(claims).unwrap_or_default();
        let mut mac = self.mac();
        mac.update(&body);
        let sig = mac.finalize().into_bytes();
        format!("{}.{}", B64.encode(&body), B64.encode(sig))
    }

    /// The claims of a genuine token; anything else is `InvalidToken`. The signature is checked
    /// (in constant time) before the claims are parsed.
    pub fn verify(&self, token: &str) -> Result<WaitingClaims> {
        if token.len() > MAX_WAITING_TOKEN_LEN {
            return Err(QueueError::InvalidToken);
        }
        let (body, sig) = token.split_once('.').ok_or(QueueError::InvalidToken)?;
        let body = B64.decode(body).map_err(|_| QueueError::InvalidToken)?;
        let sig = B64.decode(sig).map_err(|_| QueueError::InvalidToken)?;
        let mut mac = self.mac();
        mac.update(&body);
        mac.verify_slice(&sig)
            .map_err(|_| QueueError::InvalidToken)?;
        serde_json::from_slice(&body).map_err(|_| QueueError::InvalidToken)
    }

    /// A deterministic, unguessable id derived from `parts` (used for JWT `jti`).
    pub fn derive_id(&self, parts: &[&str]) -> String {
        let mut mac = self.mac();
        mac.update(b"jti");
        for p in parts {
            mac.update(&(p.len() as u64).to_be_bytes());
            mac.update(p.as_bytes());
        }
        B64.encode(&mac.finalize().into_bytes()[..16])
    }
}

/// The claims of an admission (reservation) token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdmissionClaims {
    /// Issuer, always [`ISSUER`].
    pub iss: String,
    /// The event id the admission is for.
    pub aud: String,
    /// The user id, or the session id when the join named no user.
    pub sub: String,
    /// Expiry, Unix seconds.
    pub exp: u64,
    /// Unique id of the grant (stable across repeated `enter` calls).
    pub jti: String,
}

/// Signs admission tokens with an Ed25519 key (JWT `alg: EdDSA`) and publishes its JWKS.
#[derive(Clone)]
pub struct AdmissionSigner {
    encoding: EncodingKey,
    decoding: DecodingKey,
    kid: String,
    x: String,
}

impl std::fmt::Debug for AdmissionSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdmissionSigner")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl AdmissionSigner {
    /// A signer from a PKCS#8 PEM Ed25519 private key (`openssl genpkey -algorithm ed25519`).
    pub fn from_pem(pem: &str) -> Result<Self> {
        let key = SigningKey::from_pkcs8_pem(pem).map_err(|e| {
            QueueError::Key(format!("signing key is not a PKCS#8 PEM Ed25519 key: {e}"))
        })?;
        Self::from_key(&key)
    }

    /// A signer with a fresh random key (tokens die with the process).
    pub fn ephemeral() -> Self {
        let key = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
        Self::from_key(&key).expect("a generated key encodes")
    }

    fn from_key(key: &SigningKey) -> Result<Self> {
        let der = key
            .to_pkcs8_der()
            .map_err(|e| QueueError::Key(e.to_string()))?;
        let encoding = EncodingKey::from_ed_der(der.as_bytes());
        let x = B64.encode(key.verifying_key().to_bytes());
        let decoding =
            DecodingKey::from_ed_components(&x).map_err(|e| QueueError::Key(e.to_string()))?;
        // RFC 7638 thumbprint: members in lexicographic order, no whitespace.
        let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
        let kid = B64.encode(Sha256::digest(canonical.as_bytes()));
        Ok(Self {
            encoding,
            decoding,
            kid,
            x,
        })
    }

    /// The key id (RFC 7638 thumbprint) put in every token's header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Signs `claims` (Ed25519 is deterministic: the same claims give the same token).
    pub fn sign(&self, claims: &AdmissionClaims) -> Result<String> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .map_err(|e| QueueError::Key(e.to_string()))
    }

    /// Checks signature, expiry and that `aud` is `event_id`.
    pub fn verify(
        &self,
        token: &str,
        event_id: &str,
    ) -> std::result::Result<AdmissionClaims, jsonwebtoken::errors::Error> {
        let mut v = Validation::new(Algorithm::EdDSA);
        v.set_audience(&[event_id]);
        v.set_issuer(&[ISSUER]);
        v.leeway = 0;
        jsonwebtoken::decode::<AdmissionClaims>(token, &self.decoding, &v).map(|d| d.claims)
    }

    /// The JSON Web Key Set that origins verify admission tokens with.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({"keys": [{
            "kty": "OKP", "crv": "Ed25519", "x": self.x, "kid": self.kid, "alg": "EdDSA", "use": "sig"
        }]})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> WaitingClaims {
        WaitingClaims {
            event_id: "demo".into(),
            ticket: 7,
            session_id: "s1".into(),
            user_id: None,
        }
    }

    #[test]
    fn waiting_tokens_round_trip_and_are_stable() {
        let t = WaitingTokens::from_secret(b"0123456789abcdef0123").unwrap();
        let a = t.issue(&claims());
        assert_eq!(a, t.issue(&claims()));
        assert_eq!(t.verify(&a).unwrap(), claims());
    }

    #[test]
    fn tampered_or_foreign_tokens_fail() {
        let t = WaitingTokens::from_secret(b"0123456789abcdef0123").unwrap();
        let good = t.issue(&claims());
        let mut forged = claims();
        forged.ticket = 1;
        let forged_body = B64.encode(serde_json::to_vec(&forged).unwrap());
        let sig = good.split_once('.').unwrap().1;
        for bad in [
            format!("{forged_body}.{sig}"),
            "x".into(),
            format!("{good}x"),
            "a.b".into(),
        ] {
            assert!(
                matches!(t.verify(&bad), Err(QueueError::InvalidToken)),
                "{bad}"
            );
        }
        let other = WaitingTokens::from_secret(b"another secret of 16+").unwrap();
        assert!(other.verify(&good).is_err());
        assert!(WaitingTokens::from_secret(b"short").is_err());
    }

    #[test]
    fn admissions_verify_offline_with_the_jwks() {
        let s = AdmissionSigner::ephemeral();
        let c = AdmissionClaims {
            iss: ISSUER.into(),
            aud: "demo".into(),
            sub: "s1".into(),
            exp: 4_000_000_000,
            jti: "j".into(),
        };
        let tok = s.sign(&c).unwrap();
        assert_eq!(
            tok,
            s.sign(&c).unwrap(),
            "EdDSA signatures are deterministic"
        );
        let jwks = s.jwks();
        let x = jwks["keys"][0]["x"].as_str().unwrap();
        let key = DecodingKey::from_ed_components(x).unwrap();
        let mut v = Validation::new(Algorithm::EdDSA);
        v.set_audience(&["demo"]);
        assert_eq!(
            jsonwebtoken::decode::<AdmissionClaims>(&tok, &key, &v)
                .unwrap()
                .claims,
            c
        );
        assert!(s.verify(&tok, "other").is_err());
    }

    #[test]
    fn pem_keys_load() {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let pem = key
            .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .unwrap();
        let a = AdmissionSigner::from_pem(&pem).unwrap();
        let b = AdmissionSigner::from_pem(&pem).unwrap();
        assert_eq!(a.kid(), b.kid());
        assert!(AdmissionSigner::from_pem("not a key").is_err());
    }
}
