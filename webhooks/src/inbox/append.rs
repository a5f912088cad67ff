//! Appends: deliveries are deduplicated and stored by one script call per batch (the group
//! commit), malformed ones as dead letters under their own dedup mark.

use super::*;

impl Inbox {
    /// Dedups and appends a batch in one script call; the answers in order.
    async fn append_many(&self, batch: Vec<Append>) -> Result<Vec<Appended>> {
        let mut keys = Vec::with_capacity(2 * batch.len());
        let mut args = vec![Value::from(self.dedup_ttl_secs)];
        for a in &batch {
            keys.push(a.seen.clone());
            keys.push(a.stream.clone());
            args.push(Value::from(2 * a.fields.len() as i64));
            for (k, v) in &a.fields {
                args.push(Value::from(k.as_str()));
                args.push(Value::from(v.as_str()));
            }
        }
        // With --redis-wait-replicas, answered once the replicas have it (`WAIT` on the node
        // that took the write; a duplicate rewrites its mark so the WAIT covers the first one).
        let reply: Value = self
            .redis
            .eval_durable(&self.scripts.append, keys, args)
            .await?;
        let r = strings(reply, "append")?;
        if r.len() != 2 * batch.len() {
            return Err(proto_err("append"));
        }
        r.chunks_exact(2)
            .map(|p| match p[0].as_str() {
                "new" => Ok(Appended::New(p[1].clone())),
                "duplicate" => Ok(Appended::Duplicate(p[1].clone())),
                _ => Err(proto_err("append")),
            })
            .collect()
    }

    async fn append_to(
        &self, seen: String, stream: &str, env: &Envelope, extra: &[(&str, String)],
    ) -> Result<Appended> {
        let fields = env
            .to_fields()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .chain(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())))
            .collect();
        let one = Append {
            seen,
            stream: stream.to_owned(),
            fields,
        };
        if stream != self.keys.inbox {
            let mut r = self.append_many(vec![one]).await?;
            return r.pop().ok_or_else(|| proto_err("append"));
        }
        // Deliveries to the inbox are group-committed: one script call per burst.
        let inbox = self.clone();
        self.appends
            .submit(
                &(),
                one,
                0,
                move |batch, _| {
                    let inbox = inbox.clone();
                    async move { inbox.append_many(batch).await }
                },
                |_, _| proto_err("append"),
            )
            .await
    }

    /// Stores a verified envelope unless its `event_id` was stored before (atomically), and
    /// wakes this process's consumer. Counts `received` and `duplicates`.
    pub async fn append(&self, env: &Envelope) -> Result<Appended> {
        let r = self
            .append_to(self.keys.seen(&env.event_id), &self.keys.inbox, env, &[])
            .await?;
        self.metrics.received();
        match &r {
            Appended::New(_) => self.appended.notify_one(),
            Appended::Duplicate(_) => self.metrics.duplicate(),
        }
        Ok(r)
    }

    /// Stores a well-signed but malformed webhook straight in the dead-letter stream (deduped
    /// like any other, so a provider's retries make one dead letter). Counts `dead_lettered`.
    pub async fn dead_letter_malformed(&self, env: &Envelope, error: &str) -> Result<Appended> {
        let extra = [
            ("attempts", "0".to_owned()),
            ("last_error", error.to_owned()),
            ("failed_at", rfc3339_ms(now_ms())),
        ];
        let r = self
            .append_to(
                self.keys.seen_malformed(&env.event_id),
                &self.keys.dlq,
                env,
                &extra,
            )
            .await?;
        if matches!(r, Appended::New(_)) {
            self.metrics.dead_lettered();
        }
        Ok(r)
    }

    /// Resolves when an append in this process may have added work (or at once, if one did
    /// since the last call).
    pub async fn appended(&self) {
        self.appended.notified().await
    }
}
