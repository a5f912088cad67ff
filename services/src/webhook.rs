//! Outgoing webhooks signed per Standard Webhooks (<https://www.standardwebhooks.com>), delivered
//! with bounded retries, exponential backoff and jitter.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A webhook signing secret, `whsec_<base64 of the key bytes>`.
#[derive(Clone)]
pub struct WebhookSecret(Vec<u8>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(…)")
    }
}

impl WebhookSecret {
    /// Parses `whsec_<base64>` (the prefix is optional); the key must be 16 to 128 bytes.
    pub fn parse(s: &str) -> Result<Self, String> {
        let b = s.strip_prefix("whsec_").unwrap_or(s);
        let key = B64
            .decode(b.trim())
            .map_err(|_| "webhook secret must be whsec_<base64>".to_owned())?;
        if !(16..=128).contains(&key.len()) {
            return Err("webhook secret must decode to 16 to 128 bytes".into());
        }
        Ok(Self(key))
    }

    /// The key bytes.
    pub fn key(&self) -> &[u8] {
        &self.0
    }

    /// The `webhook-signature` value: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        // HMAC takes keys of any length.
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.0) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC accepts any key length"),
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
    }
}

/// Where and how webhooks are delivered.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// The receiver (http only).
    pub url: String,
    /// The signing secret.
    pub secret: WebhookSecret,
    /// Attempts per webhook, the first included.
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles each time.
    pub backoff_base: Duration,
    /// Longest backoff.
    pub backoff_max: Duration,
    /// Timeout of one attempt.
    pub attempt_timeout: Duration,
}

/// The backoff before attempt `attempt + 1` (attempt counts from 1): half of
/// `min(max, base * 2^(attempt-1))` plus a uniformly random part of the other half.
pub fn backoff(base: Duration, max: Duration, attempt: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << (attempt.saturating_sub(1)).min(20));
    let d = exp.min(max);
    let half = d / 2;
    let jitter = rand::thread_rng().gen_range(0..=half.as_millis().max(1) as u64);
    half + Duration::from_millis(jitter)
}

/// Sends signed webhooks.
#[derive(Debug, Clone)]
pub struct WebhookSender {
    config: WebhookConfig,
    http: reqwest::Client,
}

impl WebhookSender {
    /// A sender for `config`.
    pub fn new(config: WebhookConfig) -> Self {
        let http = reqwest::Client::builder()
            .timeout(config.attempt_timeout)
            .build()
            .unwrap_or_default();
        Self { config, http }
    }

    /// Delivers `body` under message id `id`, retrying non-2xx answers and connection errors
    /// until the attempts run out; the number of attempts made when it was accepted.
    pub async fn deliver(&self, id: &str, body: &[u8]) -> Result<u32, String> {
        let mut last = String::new();
        for attempt in 1..=self.config.max_attempts.max(1) {
            let ts = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            let sig = self.config.secret.sign(id, ts, body);
            let res = self
                .http
                .post(&self.config.url)
                .header("content-type", "application/json")
                .header("webhook-id", id)
                .header("webhook-timestamp", ts.to_string())
                .header("webhook-signature", sig)
                .body(body.to_vec())
                .send()
                .await;
            match res {
                Ok(r) if r.status().is_success() => return Ok(attempt),
                Ok(r) => last = format!("HTTP {}", r.status()),
                Err(e) => last = e.to_string(),
            }
            tracing::debug!(webhook_id = id, attempt, error = %last, "webhook attempt failed");
            if attempt < self.config.max_attempts {
                tokio::time::sleep(backoff(
                    self.config.backoff_base,
                    self.config.backoff_max,
                    attempt,
                ))
                .await;
            }
        }
        Err(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_the_standard_webhooks_test_vector() {
        // The example of the Standard Webhooks specification.
        let s = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            s.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        assert!(WebhookSecret::parse("whsec_!!").is_err());
        assert!(WebhookSecret::parse("whsec_c2hvcnQ=").is_err());
    }

    #[test]
    fn backoff_grows_and_stays_bounded() {
        let b = Duration::from_millis(100);
        let m = Duration::from_secs(2);
        for a in 1..30 {
            let d = backoff(b, m, a);
            let cap = (b * 2u32.pow(a.min(10) - 1)).min(m);
            assert!(d >= cap / 2 && d <= cap, "attempt {a}: {d:?} vs {cap:?}");
        }
    }
}
