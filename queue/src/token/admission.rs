//! Admission (reservation) tokens: EdDSA JWTs signed with the first of several Ed25519 keys,
//! all of them published in the JWKS.

use super::ISSUER;
use crate::error::{QueueError, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::SigningKey;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The claims of an admission (reservation) token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdmissionClaims {
    /// Issuer, always [`ISSUER`].
    pub iss: String,
    /// The event id the admission is for.
    pub aud: String,
    /// The user id of a verified user assertion, or the session id when the join had none.
    pub sub: String,
    /// Expiry, Unix seconds.
    pub exp: u64,
    /// Unique id of the grant (stable across repeated `enter` calls).
    pub jti: String,
    /// The ticket the admission was granted to (a private claim: the gateway checks with the
    /// store that the admission still stands before it forwards a hold). Absent in tokens of
    /// gateways from before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tkt: Option<u64>,
    /// The place's session key in hex (a private claim beside `tkt`: the store files a place by
    /// its session, see `SessionKey`). Absent in older tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sk: Option<String>,
}

impl AdmissionClaims {
    /// The admission's id as the backends count holds by it: the event, ticket and end of the
    /// admission, which are the same whichever replica signed the token (the `jti` is derived
    /// under the issuing replica's secret, so two replicas mid-rotation give one admission two
    /// `jti`s). A token without a ticket claim falls back to its `jti`.
    pub fn admission_id(&self) -> String {
        match self.tkt {
            Some(t) => format!("{}/{t}/{}", self.aud, self.exp),
            None => self.jti.clone(),
        }
    }
}

/// What verifying a token gives: its claims, or why it is refused.
pub type Checked = std::result::Result<AdmissionClaims, jsonwebtoken::errors::Error>;

/// One public key of the JWKS.
#[derive(Clone)]
struct PublishedKey {
    kid: String,
    x: String,
    decoding: DecodingKey,
}

/// Signs admission tokens (JWT `alg: EdDSA`) with the first of its Ed25519 keys, verifies them
/// under any, and publishes all of them in its JWKS, each under its `kid` (the RFC 7638
/// thumbprint, also in every token's header), so a signing key rotates without invalidating
/// the admissions outstanding.
#[derive(Clone)]
pub struct AdmissionSigner {
    encoding: EncodingKey,
    keys: Arc<[PublishedKey]>,
}

redis_layer::debug_some!(AdmissionSigner, |a| kids = a.kids());

impl AdmissionSigner {
    /// A signer from a PKCS#8 PEM Ed25519 private key (`openssl genpkey -algorithm ed25519`).
    pub fn from_pem(pem: &str) -> Result<Self> {
        Self::from_pems([pem])
    }

    /// A signer that signs with the first of `pems` (PKCS#8 PEM Ed25519 private keys) and
    /// verifies and publishes all of them (repeats are ignored). At least one is required.
    pub fn from_pems<I, S>(pems: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut keys = Vec::new();
        for (n, pem) in pems.into_iter().enumerate() {
            let key = SigningKey::from_pkcs8_pem(pem.as_ref()).map_err(|e| {
                QueueError::Key(format!(
                    "signing key #{} is not a PKCS#8 PEM Ed25519 key: {e}",
                    n + 1
                ))
            })?;
            keys.push(key);
        }
        Self::from_keys(&keys)
    }

    /// A signer with a fresh random key (tokens die with the process).
    pub fn ephemeral() -> Self {
        let key = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
        Self::from_keys(&[key]).expect("a generated key encodes")
    }

    fn from_keys(keys: &[SigningKey]) -> Result<Self> {
        let first = keys
            .first()
            .ok_or_else(|| QueueError::Key("no signing key given".into()))?;
        let der = first
            .to_pkcs8_der()
            .map_err(|e| QueueError::Key(e.to_string()))?;
        let encoding = EncodingKey::from_ed_der(der.as_bytes());
        let mut published: Vec<PublishedKey> = Vec::new();
        for key in keys {
            let x = B64.encode(key.verifying_key().to_bytes());
            let decoding =
                DecodingKey::from_ed_components(&x).map_err(|e| QueueError::Key(e.to_string()))?;
            // RFC 7638 thumbprint: members in lexicographic order, no whitespace.
            let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
            let kid = B64.encode(Sha256::digest(canonical.as_bytes()));
            if published.iter().all(|p| p.kid != kid) {
                published.push(PublishedKey { kid, x, decoding });
            }
        }
        Ok(Self {
            encoding,
            keys: published.into(),
        })
    }

    /// The key id (RFC 7638 thumbprint) of the signing key, put in every token's header.
    pub fn kid(&self) -> &str {
        &self.keys[0].kid
    }

    /// The ids of every key that verifies, the signing one first.
    pub fn kids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.kid.as_str()).collect()
    }

    /// Signs `claims` (Ed25519 is deterministic: the same claims give the same token).
    pub fn sign(&self, claims: &AdmissionClaims) -> Result<String> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid().to_owned());
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .map_err(|e| QueueError::Key(e.to_string()))
    }

    /// Checks signature (under the key the header's `kid` names, which must be one of ours),
    /// expiry, issuer and that `aud` is `event_id`. A token without a `kid`, or with one of a
    /// key no longer configured, fails as `InvalidSignature`.
    pub fn verify(&self, token: &str, event_id: &str) -> Checked {
        self.check(token, Some(event_id))
    }

    /// As [`Self::verify`], for any event: the claims name the event (`aud`) the token admits
    /// to. For callers that learn the event from the token (gRPC `ValidateToken`).
    pub fn verify_any_event(&self, token: &str) -> Checked {
        self.check(token, None)
    }

    /// [`Self::verify`], with the audience checked only when `event_id` is given.
    fn check(&self, token: &str, event_id: Option<&str>) -> Checked {
        let header = jsonwebtoken::decode_header(token)?;
        let key = header
            .kid
            .and_then(|kid| self.keys.iter().find(|k| k.kid == kid))
            .ok_or(ErrorKind::InvalidSignature)?;
        let mut v = Validation::new(Algorithm::EdDSA);
        match event_id {
            Some(event_id) => v.set_audience(&[event_id]),
            None => v.validate_aud = false,
        }
        v.set_issuer(&[ISSUER]);
        v.leeway = 0;
        jsonwebtoken::decode::<AdmissionClaims>(token, &key.decoding, &v).map(|d| d.claims)
    }

    /// The JSON Web Key Set that origins verify admission tokens with: every configured key,
    /// the signing one first.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<serde_json::Value> = self
            .keys
            .iter()
            .map(|k| {
                serde_json::json!({
                    "kty": "OKP", "crv": "Ed25519", "x": k.x, "kid": k.kid, "alg": "EdDSA", "use": "sig"
                })
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission() -> AdmissionClaims {
        AdmissionClaims {
            iss: ISSUER.into(),
            aud: "demo".into(),
            sub: "s1".into(),
            exp: 4_000_000_000,
            jti: "j".into(),
            tkt: Some(7),
            sk: None,
        }
    }

    fn pem(seed: u8) -> String {
        SigningKey::from_bytes(&[seed; 32])
            .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .unwrap()
            .to_string()
    }

    /// Verifies `token` as an origin does: the key the header's kid names in `jwks`.
    fn origin_verifies(jwks: &serde_json::Value, token: &str) -> bool {
        let kid = jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
        let Some(key) = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid.as_str())
        else {
            return false;
        };
        let key = DecodingKey::from_ed_components(key["x"].as_str().unwrap()).unwrap();
        let mut v = Validation::new(Algorithm::EdDSA);
        v.set_audience(&["demo"]);
        jsonwebtoken::decode::<AdmissionClaims>(token, &key, &v).is_ok()
    }

    #[test]
    fn admissions_verify_offline_with_the_jwks() {
        let s = AdmissionSigner::ephemeral();
        let c = admission();
        let tok = s.sign(&c).unwrap();
        assert_eq!(
            tok,
            s.sign(&c).unwrap(),
            "EdDSA signatures are deterministic"
        );
        let jwks = s.jwks();
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
        assert!(origin_verifies(&jwks, &tok));
        assert_eq!(s.verify(&tok, "demo").unwrap(), c);
        assert!(s.verify(&tok, "other").is_err());
    }

    #[test]
    fn a_rotated_signing_key_keeps_outstanding_admissions_valid_until_removed() {
        let (old, new) = (pem(1), pem(2));
        let before = AdmissionSigner::from_pem(&old).unwrap();
        let before_tok = before.sign(&admission()).unwrap();
        let step1 = AdmissionSigner::from_pems([&old, &new]).unwrap();
        assert_eq!(step1.kid(), before.kid(), "the old key still signs");
        let step2 = AdmissionSigner::from_pems([&new, &old]).unwrap();
        let after_tok = step2.sign(&admission()).unwrap();
        assert_eq!(
            jsonwebtoken::decode_header(&after_tok)
                .unwrap()
                .kid
                .as_deref(),
            Some(step2.kid())
        );
        assert_ne!(step2.kid(), before.kid());
        for s in [&step1, &step2] {
            assert_eq!(s.kids().len(), 2);
            assert_eq!(s.jwks()["keys"].as_array().unwrap().len(), 2);
            for tok in [&before_tok, &after_tok] {
                assert_eq!(s.verify(tok, "demo").unwrap(), admission());
                assert!(origin_verifies(&s.jwks(), tok));
            }
        }
        let step3 = AdmissionSigner::from_pem(&new).unwrap();
        assert_eq!(
            step3.verify(&before_tok, "demo").unwrap_err().kind(),
            &ErrorKind::InvalidSignature
        );
        assert!(!origin_verifies(&step3.jwks(), &before_tok));
        assert!(step3.verify(&after_tok, "demo").is_ok());
    }

    #[test]
    fn admissions_without_a_known_kid_fail() {
        let s = AdmissionSigner::from_pem(&pem(1)).unwrap();
        let raw = EncodingKey::from_ed_pem(pem(1).as_bytes()).unwrap();
        let no_kid =
            jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &admission(), &raw).unwrap();
        assert!(s.verify(&no_kid, "demo").is_err());
        let mut h = Header::new(Algorithm::EdDSA);
        h.kid = Some("someone-else".into());
        let foreign_kid = jsonwebtoken::encode(&h, &admission(), &raw).unwrap();
        assert!(s.verify(&foreign_kid, "demo").is_err());
        assert!(s.verify("not a jwt", "demo").is_err());
    }

    #[test]
    fn the_admission_id_is_the_same_under_any_secret_and_old_tokens_keep_their_jti() {
        let a = admission();
        let mut other_replica = a.clone();
        other_replica.jti = "derived under another secret".into();
        assert_eq!(a.admission_id(), other_replica.admission_id());
        let mut later = a.clone();
        later.exp += 300;
        assert_ne!(a.admission_id(), later.admission_id());
        // A token from before the ticket claim: it verifies, and its jti is its id.
        let s = AdmissionSigner::ephemeral();
        let old = AdmissionClaims { tkt: None, ..a };
        let tok = s.sign(&old).unwrap();
        let back = s.verify(&tok, "demo").unwrap();
        assert_eq!(back.tkt, None);
        assert_eq!(back.admission_id(), "j");
    }

    #[test]
    fn pem_keys_load() {
        let pem = pem(7);
        let a = AdmissionSigner::from_pem(&pem).unwrap();
        let b = AdmissionSigner::from_pem(&pem).unwrap();
        assert_eq!(a.kid(), b.kid());
        assert_eq!(
            AdmissionSigner::from_pems([&pem, &pem])
                .unwrap()
                .kids()
                .len(),
            1
        );
        assert!(AdmissionSigner::from_pem("not a key").is_err());
        assert!(AdmissionSigner::from_pems([pem.as_str(), "not a key"]).is_err());
        assert!(AdmissionSigner::from_pems(Vec::<String>::new()).is_err());
    }
}
