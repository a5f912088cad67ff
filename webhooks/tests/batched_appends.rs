//! Group commit of webhook appends: concurrent deliveries are stored by few script calls, each
//! answered exactly as a single append would be (new, or a duplicate naming the first entry).

mod common;

use common::envelope;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use testkit::RedisServer;
use webhooks::{Appended, Inbox, InboxOptions, Metrics};

fn evalsha_calls(port: u16) -> u64 {
    testkit::script_calls(port).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deliveries_are_stored_once_each_by_few_script_calls() {
    let server = RedisServer::start().unwrap();
    let mut o = InboxOptions::new(server.url());
    o.command_timeout = Duration::from_secs(5);
    let inbox = Inbox::connect(&o, Arc::new(Metrics::new())).await.unwrap();
    let before = evalsha_calls(server.port());
    // 600 deliveries of 400 ids: every third id is delivered twice, some of them at once.
    let mut tasks = Vec::new();
    for n in 0..600 {
        let inbox = inbox.clone();
        let id = if n < 400 {
            format!("msg_{n}")
        } else {
            format!("msg_{}", (n - 400) * 2)
        };
        tasks.push(tokio::spawn(async move {
            let r = inbox.append(&envelope(&id)).await.unwrap();
            (id, r)
        }));
    }
    let mut first: HashMap<String, String> = HashMap::new();
    let mut dups: Vec<(String, String)> = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            (id, Appended::New(entry)) => {
                assert!(
                    first.insert(id.clone(), entry).is_none(),
                    "{id} stored twice"
                );
            }
            (id, Appended::Duplicate(entry)) => dups.push((id, entry)),
        }
    }
    assert_eq!(first.len(), 400, "every id stored once");
    assert_eq!(dups.len(), 200);
    for (id, entry) in dups {
        assert_eq!(
            first[&id], entry,
            "a duplicate names the first delivery's entry"
        );
    }
    assert_eq!(inbox.backlog().await.unwrap(), 400);
    let calls = evalsha_calls(server.port()) - before;
    assert!(
        calls < 600,
        "{calls} script calls for 600 appends: nothing was batched"
    );
}
