//! Property-based fuzzing of the HTTP API against its OpenAPI document (GET /openapi.json):
//! schemathesis generates requests from the document, valid and invalid, sends them to a live
//! gateway (Redis, webhooks configured, the reference backends behind it, every operation
//! authenticated) and checks every answer: no server error, a documented status, content type
//! and body schema, invalid data refused and valid data accepted.
//!
//! schemathesis comes from PyPI: scripts/test.sh installs it into target/api-fuzz-tools
//! (`python3 -m venv target/api-fuzz-tools && target/api-fuzz-tools/bin/pip install
//! schemathesis==4.32.5`); `SCHEMATHESIS=/path/to/schemathesis` points elsewhere.

mod common;

use common::backends::{Backends, WEBHOOK_SECRET};
use common::ADMIN;
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;
use testkit::RedisServer;

/// Examples per operation and phase: enough to find every mismatch known so far, bounded so the
/// run takes a few minutes on two cores.
const MAX_EXAMPLES: &str = "20";

fn schemathesis() -> PathBuf {
    if let Some(p) = std::env::var_os("SCHEMATHESIS") {
        return p.into();
    }
    let p = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/api-fuzz-tools/bin/schemathesis"
    ));
    assert!(
        p.exists(),
        "schemathesis is not installed: run\n  python3 -m venv target/api-fuzz-tools && \
         target/api-fuzz-tools/bin/pip install schemathesis==4.32.5\n(scripts/test.sh does)"
    );
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_as_its_document_says() {
    let tool = schemathesis();
    let redis = RedisServer::start().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let backends =
        Backends::start(Some(format!("{base}/webhooks/payments")), &[("demo", 50)]).await;
    let mut flags = vec![
        "--redis-url".to_owned(),
        redis.url(),
        "--webhook-secret".to_owned(),
        WEBHOOK_SECRET.to_owned(),
        "--stripe-webhook-secret".to_owned(),
        "whsec_api_fuzz_stripe_secret".to_owned(),
        // Joins with a user_assertion are then checked (403 when forged), not refused whole.
        "--user-assertion-key".to_owned(),
        "the api fuzz user assertion key: 32+ bytes".to_owned(),
        "--admission-tick-ms".to_owned(),
        "20".to_owned(),
    ];
    flags.extend(backends.flags());
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let gw = common::TestGateway::start_on(listener, &flags).await;

    // An event that admits at once, a waiting place and an admission for the tokens.
    let r = common::put_event(
        &base,
        "demo",
        json!({"admit_per_second": 1000, "max_active": 100000}),
    )
    .await;
    assert!(r.status == 201 || r.status == 200, "{}", r.body);
    let waiting = common::join(&base, "demo", "fuzz-admitted").await;
    let waiting = waiting.body["waiting_token"].as_str().unwrap().to_owned();
    common::wait_status(&base, &waiting, "READY", Duration::from_secs(10)).await;
    let entered = common::enter(&base, &waiting).await;
    let admission = entered.body["reservation_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // A second place for the waiting-token operations (leave removes it).
    let place = common::join(&base, "demo", "fuzz-waiting").await;
    let place = place.body["waiting_token"].as_str().unwrap().to_owned();

    let dir = std::env::temp_dir().join(format!("api-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("schemathesis.toml");
    // Each security scheme of the document gets its own credential. Valid data may also meet
    // 410 (the place left, the event sold out: states earlier calls of the run caused, not the
    // data) and never a 5xx. The WebSocket routes refuse a plain GET (400: no upgrade), which
    // OpenAPI cannot describe: only their answers are checked there (their `token` query
    // parameter gets the right token). Observations of URLs in
    // response bodies (location-headers inference) are off: schemathesis 4.32 stops on a
    // target_url with `[` (an IPv6 literal host) in a body. Valid and invalid data may also
    // meet 413: a string or array at (or past) its maxLength or maxItems can be past
    // --max-body-bytes (a page.template of 32 KiB, 10,000 access codes): a deployment's limit
    // on the whole body, not the schema's.
    std::fs::write(
        &config,
        format!(
            "[auth.openapi.adminToken]\nbearer = \"{ADMIN}\"\n\
             [auth.openapi.waitingToken]\nbearer = \"{place}\"\n\
             [auth.openapi.admissionToken]\nbearer = \"{admission}\"\n\
             [phases.stateful.inference]\nalgorithms = [\"dependency-analysis\"]\n\
             [parameters]\n\"path.event_id\" = \"demo\"\n\
             [checks]\nenabled = false\n\
             not_a_server_error.enabled = true\n\
             status_code_conformance.enabled = true\n\
             content_type_conformance.enabled = true\n\
             response_schema_conformance.enabled = true\n\
             [checks.negative_data_rejection]\nenabled = true\n\
             expected-statuses = [\"400\", \"401\", \"403\", \"404\", \"405\", \"406\", \"409\", \"413\", \"415\", \"422\", \"428\", \"429\", \"5xx\"]\n\
             [checks.positive_data_acceptance]\nenabled = true\n\
             expected-statuses = [\"2xx\", \"3xx\", \"401\", \"403\", \"404\", \"409\", \"410\", \"413\", \"429\"]\n\
             [[operations]]\ninclude-path-regex = \"/ws$\"\n\
             checks.positive_data_acceptance.enabled = false\n\
             [[operations]]\ninclude-operation-id = \"queueWebSocket\"\n\
             parameters = {{ \"query.token\" = \"{place}\" }}\n\
             [[operations]]\ninclude-operation-id = \"reservationWebSocket\"\n\
             parameters = {{ \"query.token\" = \"{admission}\" }}\n"
        ),
    )
    .unwrap();
    // System actions go last and alone: MAINTENANCE_MODE (which they may switch on) answers
    // every queue call with 503 MAINTENANCE on purpose.
    let mut report: Vec<String> = Vec::new();
    report.extend(
        fuzz(
            &tool,
            &config,
            &base,
            &["--exclude-operation-id", "systemAction"],
        )
        .await,
    );
    report.extend(
        fuzz(
            &tool,
            &config,
            &base,
            &["--include-operation-id", "systemAction"],
        )
        .await,
    );
    gw.shutdown().await;
    drop(backends);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        report.is_empty(),
        "schemathesis found mismatches:\n{}",
        report.join("\n")
    );
}

/// One schemathesis run over the operations `select` picks; its report if it failed.
async fn fuzz(tool: &PathBuf, config: &PathBuf, base: &str, select: &[&str]) -> Option<String> {
    let out = tokio::process::Command::new(tool)
        .arg("--config-file")
        .arg(config)
        .args(["run", &format!("{base}/openapi.json"), "--url", base])
        .args([
            "--max-examples",
            MAX_EXAMPLES,
            // One worker: CPython before 3.11.8 counts the AST parser's recursion depth across
            // threads (gh-106905), which hypothesis' parsing trips over with several.
            "--workers",
            "1",
            "--generation-deterministic",
            "--no-shrink",
            // Served on the metrics listener only (the document gives it that server).
            "--exclude-path",
            "/metrics",
            "--request-timeout",
            "10",
        ])
        .args(select)
        .current_dir(config.parent().unwrap())
        .output()
        .await
        .unwrap();
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Shown with --nocapture: what was tested, even when all passed.
    println!("{report}");
    // schemathesis exits 0 after an internal error that cut the run short.
    let complete = report.contains("SUMMARY") && !report.contains("Test Execution Error");
    (!out.status.success() || !complete).then_some(report)
}
