//! The dead-letter stream: listing, reading, re-enqueueing and resolving dead letters.

use super::*;

#[derive(Debug, Default, serde::Deserialize)]
struct DlqState {
    retried_at: Option<String>,
    retry_stream_id: Option<String>,
    resolved_at: Option<String>,
    resolved_by: Option<String>,
    note: Option<String>,
}

impl Inbox {
    async fn dlq_read(
        &self, rev: bool, from: &str, to: &str, count: usize,
    ) -> Result<Vec<DeadLetter>> {
        let v = self
            .eval(
                &self.scripts.dlq_read,
                vec![self.keys.dlq.clone(), self.keys.dlq_state.clone()],
                vec![
                    Value::from(if rev { "1" } else { "0" }),
                    Value::from(from),
                    Value::from(to),
                    Value::from(count.max(1) as i64),
                ],
            )
            .await?;
        v.into_array()
            .into_iter()
            .map(|row| {
                let row = strings(row, "dlq")?;
                if row.len() < 2 {
                    return Err(proto_err("dlq"));
                }
                let fields = pairs(&row[2..]);
                let get = |k: &str| fields.iter().find(|(f, _)| f == k).map(|(_, v)| v.clone());
                let envelope = Envelope::from_fields(&fields).ok_or_else(|| proto_err("dlq"))?;
                let st: DlqState = if row[1].is_empty() {
                    DlqState::default()
                } else {
                    serde_json::from_str(&row[1]).map_err(|_| proto_err("dlq state"))?
                };
                let status = if st.resolved_at.is_some() {
                    "resolved"
                } else if st.retry_stream_id.is_some() {
                    "retried"
                } else {
                    "active"
                };
                Ok(DeadLetter {
                    id: row[0].clone(),
                    status,
                    envelope,
                    attempts: get("attempts").and_then(|a| a.parse().ok()).unwrap_or(0),
                    last_error: get("last_error").unwrap_or_default(),
                    failed_at: get("failed_at").unwrap_or_default(),
                    retry_of: get("retry_of"),
                    retried_at: st.retried_at,
                    retry_stream_id: st.retry_stream_id,
                    resolved_at: st.resolved_at,
                    resolved_by: st.resolved_by,
                    note: st.note,
                })
            })
            .collect()
    }

    /// The newest `limit` dead letters (1 to 1,000), newest first.
    pub async fn dlq_list(&self, limit: usize) -> Result<Vec<DeadLetter>> {
        self.dlq_read(true, "+", "-", limit.clamp(1, 1000)).await
    }

    /// One dead letter.
    pub async fn dlq_get(&self, id: &str) -> Result<DeadLetter> {
        if !is_stream_id(id) {
            return Err(InboxError::InvalidId);
        }
        self.dlq_read(false, id, id, 1)
            .await?
            .into_iter()
            .next()
            .ok_or(InboxError::NotFound)
    }

    /// Re-enqueues a dead letter's envelope into the inbox, once: a second call answers the
    /// first one's entry with `enqueued: false`. A resolved letter is `AlreadyResolved`.
    pub async fn dlq_retry(&self, id: &str) -> Result<Retried> {
        if !is_stream_id(id) {
            return Err(InboxError::InvalidId);
        }
        let r = strings(
            self.eval(
                &self.scripts.dlq_retry,
                vec![
                    self.keys.dlq.clone(),
                    self.keys.dlq_state.clone(),
                    self.keys.inbox.clone(),
                ],
                vec![Value::from(id), Value::from(rfc3339_ms(now_ms()))],
            )
            .await?,
            "dlq retry",
        )?;
        match (r.first().map(String::as_str), r.get(1)) {
            (Some("retried"), Some(sid)) => {
                self.appended.notify_one();
                Ok(Retried {
                    stream_id: sid.clone(),
                    enqueued: true,
                })
            }
            (Some("already"), Some(sid)) => Ok(Retried {
                stream_id: sid.clone(),
                enqueued: false,
            }),
            (Some("resolved"), _) => Err(InboxError::AlreadyResolved),
            (Some("missing"), _) => Err(InboxError::NotFound),
            _ => Err(proto_err("dlq retry")),
        }
    }

    /// Marks a dead letter resolved by `resolved_by` (1 to 200 characters) with an optional
    /// note (at most 2,000); one-shot: a second resolve is `AlreadyResolved`.
    pub async fn dlq_resolve(
        &self, id: &str, resolved_by: &str, note: Option<&str>,
    ) -> Result<DeadLetter> {
        if !is_stream_id(id) {
            return Err(InboxError::InvalidId);
        }
        let v = self
            .eval(
                &self.scripts.dlq_resolve,
                vec![self.keys.dlq.clone(), self.keys.dlq_state.clone()],
                vec![
                    Value::from(id),
                    Value::from(resolved_by),
                    Value::from(note.unwrap_or("")),
                    Value::from(rfc3339_ms(now_ms())),
                ],
            )
            .await?;
        match v.as_str().as_deref() {
            Some("resolved") => self.dlq_get(id).await,
            Some("already") => Err(InboxError::AlreadyResolved),
            Some("missing") => Err(InboxError::NotFound),
            _ => Err(proto_err("dlq resolve")),
        }
    }
}
