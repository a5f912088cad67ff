//! The payment simulator's outgoing webhooks: outcomes POSTed to the gateway, signed per
//! Standard Webhooks (<https://www.standardwebhooks.com>) with the `webhooks` crate's signer, so
//! they verify with the very scheme the gateway checks them with, and retried with its
//! [`RetryPolicy`] (exponential backoff, full jitter).

use std::time::{Duration, SystemTime, UNIX_EPOCH};
use webhooks::scheme::SecretError;
use webhooks::{RetryPolicy, StandardWebhooks};

/// A webhook signing secret, `whsec_<base64 of the key bytes>`, under the receiver's rules.
#[derive(Debug, Clone)]
pub struct WebhookSecret(StandardWebhooks);

impl WebhookSecret {
    /// Parses `whsec_<base64>` (the prefix is optional): the rules of the gateway's verifier
    /// ([`StandardWebhooks::new`]: the key must decode to 1 to 1,024 bytes).
    pub fn parse(s: &str) -> Result<Self, SecretError> {
        StandardWebhooks::new(&[s]).map(Self)
    }

    /// The `webhook-signature` value: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        self.0.sign(id, timestamp, body)
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
    /// Cap of the wait before the second attempt; doubles each time.
    pub backoff_base: Duration,
    /// Cap of any wait.
    pub backoff_max: Duration,
    /// Timeout of one attempt.
    pub attempt_timeout: Duration,
}

impl WebhookConfig {
    /// The retry policy of these settings (the one the gateway's webhook consumer uses).
    pub fn retry(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.max_attempts.max(1),
            base_delay: self.backoff_base,
            max_delay: self.backoff_max,
        }
    }
}

/// Sends signed webhooks.
#[derive(Debug, Clone)]
pub struct WebhookSender {
    config: WebhookConfig,
    retry: RetryPolicy,
    http: reqwest::Client,
}

impl WebhookSender {
    /// A sender for `config`.
    pub fn new(config: WebhookConfig) -> Self {
        let http = reqwest::Client::builder()
            .timeout(config.attempt_timeout)
            .build()
            .unwrap_or_default();
        let retry = config.retry();
        Self {
            config,
            retry,
            http,
        }
    }

    /// Delivers `body` under message id `id`, retrying non-2xx answers and connection errors
    /// until the attempts run out; the number of attempts made when it was accepted.
    pub async fn deliver(&self, id: &str, body: &[u8]) -> Result<u32, String> {
        let mut last = String::new();
        for attempt in 1..=self.retry.max_attempts {
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
            if attempt < self.retry.max_attempts {
                tokio::time::sleep(self.retry.delay(attempt)).await;
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
        // The receiver's rules: 1 to 1,024 key bytes.
        assert!(WebhookSecret::parse("whsec_").is_err());
        assert!(WebhookSecret::parse("whsec_c2hvcnQ=").is_ok());
        let long = format!("whsec_{}", "A".repeat(1368));
        assert!(WebhookSecret::parse(&long).is_err());
    }
}
