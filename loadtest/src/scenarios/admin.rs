//! The gateway's admin API and `/metrics`, for the set-up and the checks.

use super::{Ctx, LoadTestError};
use crate::invariants::RateSample;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The admin API and `/metrics` of the gateway, for the set-up and the checks.
#[derive(Clone)]
pub struct Admin {
    http: reqwest::Client,
    base: String,
    token: String,
    /// Where `/metrics` is (the gateway's `--metrics-listen`, not its public port).
    metrics_base: String,
}

impl Admin {
    /// The admin API at `base` with `token`.
    pub fn new(base: &str, token: &str) -> Result<Self, LoadTestError> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            metrics_base: "http://127.0.0.1:9464".into(),
        })
    }

    /// The same, reading `/metrics` at `base` (the gateway's `--metrics-listen`).
    pub fn with_metrics(mut self, base: &str) -> Self {
        self.metrics_base = base.trim_end_matches('/').to_owned();
        self
    }

    async fn json(&self, req: reqwest::RequestBuilder) -> Result<Value, LoadTestError> {
        let r = req.bearer_auth(&self.token).send().await?;
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(LoadTestError::Admin(format!("{status}: {body}")));
        }
        Ok(body)
    }

    /// `PUT /admin/v1/events/{event}` with `config`.
    pub async fn put_event(&self, event: &str, config: Value) -> Result<Value, LoadTestError> {
        self.json(
            self.http
                .put(format!("{}/admin/v1/events/{event}", self.base))
                .json(&config),
        )
        .await
    }

    /// Sets the run's event up, unless `LOADTEST_SETUP=0` left that to the caller: the settings'
    /// `admit_per_second` and `max_active`, with the fields of `config` over them.
    pub async fn set_up(&self, ctx: &Ctx, config: Value) -> Result<(), LoadTestError> {
        if !ctx.settings.setup {
            return Ok(());
        }
        let mut event = json!({
            "admit_per_second": ctx.settings.admit_per_second,
            "max_active": ctx.settings.max_active,
        });
        if let (Some(fields), Value::Object(over)) = (event.as_object_mut(), config) {
            fields.extend(over);
        }
        self.put_event(&ctx.event, event).await.map(|_| ())
    }

    /// `GET /admin/v1/events/{event}`.
    pub async fn event(&self, event: &str) -> Result<Value, LoadTestError> {
        self.json(
            self.http
                .get(format!("{}/admin/v1/events/{event}", self.base)),
        )
        .await
    }

    /// `POST /admin/v1/events/{event}/actions`.
    pub async fn action(&self, event: &str, action: &str) -> Result<Value, LoadTestError> {
        self.json(
            self.http
                .post(format!("{}/admin/v1/events/{event}/actions", self.base))
                .json(&json!({ "action": action, "confirm": true })),
        )
        .await
    }

    /// `GET /metrics` as text.
    pub async fn metrics(&self) -> Result<String, LoadTestError> {
        let r = self
            .http
            .get(format!("{}/metrics", self.metrics_base))
            .send()
            .await?;
        Ok(r.error_for_status()?.text().await?)
    }

    /// A sample of the event's counters, timed at the middle of the request (the read happened
    /// somewhere in it; on a busy machine the answer can take a while to come back).
    pub async fn sample(&self, event: &str, since: Instant) -> Result<RateSample, LoadTestError> {
        let sent = since.elapsed().as_secs_f64();
        let v = self.event(event).await?;
        let received = since.elapsed().as_secs_f64();
        Ok(RateSample {
            t: (sent + received) / 2.0,
            admitted_total: v["stats"]["admitted_total"].as_u64().unwrap_or(0),
            waiting: v["stats"]["waiting"].as_u64().unwrap_or(0),
        })
    }
}
