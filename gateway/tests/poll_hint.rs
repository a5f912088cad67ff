//! Status reads with `?hint=`: a real gateway over a real redis-server. A poller that passes
//! back its last `poll_hint` gets the position Redis would give, moved by what happened ahead
//! of it, while its reads stop costing a Redis script call each.

mod common;

use common::http::*;
use common::*;

async fn hinted(base: &str, token: &str, hint: &str) -> Resp {
    send(
        client()
            .get(format!("{base}/api/v1/queue/status"))
            .query(&[("hint", hint)])
            .bearer_auth(token),
    )
    .await
}

fn hint_of(r: &Resp) -> String {
    r.body["poll_hint"]
        .as_str()
        .unwrap_or_else(|| panic!("no poll_hint in {}", r.body))
        .to_owned()
}

#[tokio::test]
async fn a_hinted_poller_follows_the_queue_without_a_script_call_per_read() {
    // Nobody is admitted: positions move only by who leaves or arrives ahead.
    let (redis, gw, base) = redis_event(&[], "hint", rate(0, 0)).await;
    let mut tokens = Vec::new();
    for s in ["a", "b", "c", "d"] {
        tokens.push(waiting_token(&base, "hint", s).await);
    }
    let joined = join(&base, "hint", "e").await;
    assert_eq!(joined.status, 201, "{}", joined.body);
    assert_eq!(joined.body["position"], 5);
    let token = joined.body["waiting_token"].as_str().unwrap().to_owned();
    let mut hint = hint_of(&joined);

    // The first hinted read may still go to Redis (the replica starts following the event's
    // log at the join); from then on reads are answered from the log.
    let r = hinted(&base, &token, &hint).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["position"], 5, "{}", r.body);
    assert_eq!(r.body["status"], "WAITING");
    hint = hint_of(&r);
    let hinted_calls = script_calls_during(&redis, async || {
        for _ in 0..300 {
            let r = hinted(&base, &token, &hint).await;
            assert_eq!(r.body["position"], 5, "{}", r.body);
            hint = hint_of(&r);
        }
    })
    .await;
    let plain_calls = script_calls_during(&redis, async || {
        for _ in 0..300 {
            assert_eq!(status(&base, &token).await.body["position"], 5);
        }
    })
    .await;
    // The background loops (admission tick, sweep, the log's own pulse) call scripts too, a
    // few a second: the hinted reads must not add one each, the plain ones do.
    assert!(
        plain_calls >= 300,
        "plain reads made {plain_calls} script calls"
    );
    assert!(
        hinted_calls < 100,
        "300 hinted reads made {hinted_calls} script calls (300 plain ones: {plain_calls})"
    );
    // Operators see it too: the reads answered from the log are counted.
    let metrics = send(client().get(gw.metrics_url("/metrics"))).await.body;
    let from_log: u64 = metrics
        .as_str()
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("waiting_room_status_reads_from_log_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no from-log counter in {metrics}"));
    assert!(
        from_log >= 200,
        "{from_log} of 300 hinted reads counted as from the log"
    );

    // Someone ahead leaves: the hinted poller moves up, within a tick or so.
    assert_eq!(leave(&base, &tokens[1]).await.status, 204);
    let mut seen = 5;
    until("the hinted position to move up", async || {
        let r = hinted(&base, &token, &hint).await;
        seen = r.body["position"].as_u64().unwrap();
        hint = hint_of(&r);
        seen == 4
    })
    .await;
    // Joins behind do not move it; a stale hint (from before the leave) still gives the truth.
    waiting_token(&base, "hint", "f").await;
    let stale = hint_of(&joined);
    let r = hinted(&base, &token, &stale).await;
    assert_eq!(r.body["position"], 4, "{}", r.body);

    // A hint that does not verify, or one issued with another token, is ignored, not refused.
    let other = hint_of(&join(&base, "hint", "a").await);
    for bad in ["garbage", "x.y.z", other.as_str()] {
        let r = hinted(&base, &token, bad).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["position"], 4, "{}", r.body);
    }

    // The place leaves: within a tick the hinted read says so, and carries no hint any more.
    assert_eq!(leave(&base, &token).await.status, 204);
    until("the hinted read to see the place gone", async || {
        let r = hinted(&base, &token, &hint).await;
        if r.body["status"] == "WAITING" {
            hint = hint_of(&r);
            return false;
        }
        assert_eq!(r.body["status"], "EXPIRED", "{}", r.body);
        assert!(r.body["poll_hint"].is_null(), "{}", r.body);
        true
    })
    .await;
}
