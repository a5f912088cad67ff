//! The consumer side: reading new and due entries, claiming those of silent consumers,
//! acknowledging, and recording failed attempts (retry or dead letter).

use super::*;

impl Inbox {
    fn is_nogroup(e: &InboxError) -> bool {
        matches!(e, InboxError::Protocol(m) if m.contains("NOGROUP"))
    }

    /// The keys of the consumer scripts: inbox stream, retry schedule, attempts.
    fn consumer_keys(&self) -> Vec<String> {
        let k = &self.keys;
        vec![k.inbox.clone(), k.retry.clone(), k.attempts.clone()]
    }

    /// Up to `count` entries for `consumer`: due retries first, then new entries.
    pub async fn read(&self, consumer: &str, now_ms: i64, count: usize) -> Result<Vec<Entry>> {
        let keys = self.consumer_keys();
        let args = vec![
            Value::from(&*self.group),
            Value::from(consumer),
            Value::from(now_ms),
            Value::from(count.max(1) as i64),
        ];
        let v = match self
            .eval(&self.scripts.read, keys.clone(), args.clone())
            .await
        {
            // The stream vanished (Redis restarted without persistence, or was flushed).
            Err(e) if Self::is_nogroup(&e) => {
                self.ensure_group().await?;
                self.eval(&self.scripts.read, keys, args).await?
            }
            r => r?,
        };
        v.into_array()
            .into_iter()
            .map(|row| entry_of(strings(row, "read")?, "read"))
            .collect()
    }

    /// Claims for `consumer` up to `count` entries that other consumers left pending for more
    /// than `min_idle` (XAUTOCLAIM from `cursor`; pass "0-0" to start). Returns the next cursor
    /// ("0-0" once the scan wrapped) and the entries to forward. When a scan wraps, consumers
    /// silent for [`InboxOptions::stale_consumer`] with nothing pending are removed from the group.
    pub async fn claim(
        &self, consumer: &str, min_idle: Duration, cursor: &str, count: usize,
    ) -> Result<(String, Vec<Entry>)> {
        let keys = self.consumer_keys();
        let args = vec![
            Value::from(&*self.group),
            Value::from(consumer),
            Value::from(min_idle.as_millis() as i64),
            Value::from(cursor),
            Value::from(count.max(1) as i64),
            Value::from(self.stale_consumer_ms),
        ];
        let mut rows = self
            .eval(&self.scripts.claim, keys, args)
            .await?
            .into_array()
            .into_iter();
        let next = rows
            .next()
            .and_then(|v| v.into_string())
            .ok_or_else(|| proto_err("claim"))?;
        let entries = rows
            .map(|row| entry_of(strings(row, "claim")?, "claim"))
            .collect::<Result<_>>()?;
        Ok((next, entries))
    }

    /// Acknowledges a forwarded entry (and deletes it). False if it was already acknowledged.
    pub async fn ack(&self, id: &str) -> Result<bool> {
        Ok(self.ack_many(&[id]).await? == 1)
    }

    /// Acknowledges (and deletes) forwarded entries, [`ACK_CHUNK`] per script call; how many
    /// were acknowledged now (entries another consumer had already acknowledged are not
    /// counted). Not atomic across chunks: on an error, the chunks before it stay acknowledged
    /// and the rest stay pending (to be forwarded again, which the receiver tolerates).
    pub async fn ack_many<S: AsRef<str>>(&self, ids: &[S]) -> Result<u64> {
        let mut acked = 0;
        for chunk in ids.chunks(ACK_CHUNK) {
            let mut args = Vec::with_capacity(chunk.len() + 1);
            args.push(Value::from(&*self.group));
            args.extend(chunk.iter().map(|id| Value::from(id.as_ref())));
            let v = self
                .eval(&self.scripts.ack, self.consumer_keys(), args)
                .await?;
            acked += v.as_i64().unwrap_or(0).max(0) as u64;
        }
        Ok(acked)
    }

    /// Records a failed attempt: schedules the next one `delay` from `now_ms`, or, when this
    /// was attempt `max_attempts` or `permanent`, moves the entry to the dead-letter stream.
    pub async fn fail(
        &self, id: &str, now_ms: i64, max_attempts: u32, delay: Duration, error: &str,
        permanent: bool,
    ) -> Result<Failed> {
        let mut keys = self.consumer_keys();
        keys.push(self.keys.dlq.clone());
        let args = vec![
            Value::from(&*self.group),
            Value::from(id),
            Value::from(now_ms),
            Value::from(max_attempts.max(1) as i64),
            Value::from(delay.as_millis() as i64),
            Value::from(error),
            Value::from(if permanent { "1" } else { "0" }),
            Value::from(rfc3339_ms(now_ms)),
        ];
        let r = strings(self.eval(&self.scripts.fail, keys, args).await?, "fail")?;
        match (r.first().map(String::as_str), r.get(1)) {
            (Some("retry"), Some(n)) => Ok(Failed::Retry(n.parse().unwrap_or(0))),
            (Some("dead"), Some(id)) => Ok(Failed::Dead(id.clone())),
            (Some("gone"), _) => Ok(Failed::Gone),
            _ => Err(proto_err("fail")),
        }
    }
}
