//! Rotating the waiting-token secret and the admission signing key across two real `gateway`
//! processes on one redis-server, under load, with the runbook's steps (docs/operations.md):
//!
//! 0. both replicas have `[old]`;
//! 1. each replica in turn gets `[old, new]`: the new key verifies (and is published in the
//!    JWKS) before anything is signed with it;
//! 2. each replica in turn gets `[new, old]`: the new key signs, the old still verifies;
//! 3. the tokens issued under the old key are re-issued (clients re-join with their session);
//! 4. each replica in turn gets `[new]`.
//!
//! Throughout, clients join, poll, enter, check their admission on the forwarded API and
//! against the JWKS as an origin does, and leave, round-robin over the replicas that are up
//! (a replica is taken out of the rotation, drained and restarted with the next keys, as a
//! rolling restart behind a balancer does), while holders poll a place kept since step 0.
//! Not one request may fail. After step 2 both old and new tokens verify on both replicas;
//! after step 4 the old ones are refused (`401 INVALID_TOKEN`, `403 FORBIDDEN`) and the JWKS
//! publishes only the new key.

mod common;
#[path = "key_rotation/fleet.rs"]
mod fleet;

use common::backends::Backends;
use common::webhook_http::availability;
use common::*;
use fleet::{client_loop, holder_loop, Fleet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use queue::token::AdmissionSigner;
use serde_json::{json, Value};
use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};
use testkit::RedisServer;

const OLD_SECRET: &str = "the old waiting-token secret: 32 b";
const NEW_SECRET: &str = "the new waiting-token secret: 32 b";
/// The new Ed25519 key (the old one is `common::PEM`); given to the gateways as a file path.
const NEW_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIKexMeaW2w4eLd1f5hwrGsyIFqZvTPA3lv3u2+oThQpk\n-----END PRIVATE KEY-----\n";
/// The event the clients go through (admits quickly).
const EVENT: &str = "rot";
/// The event the holders wait in (admits nobody, so their places stay put).
const HOLD: &str = "hold";
const CLIENTS: usize = 5;
const HOLDERS: usize = 3;
/// Completed client cycles to wait for after each step, so that every step is under load.
const CYCLES_PER_STEP: u64 = 4;

/// Verifies an admission as an origin does: the key the header's `kid` names in `jwks`.
fn origin_verifies(jwks: &Value, token: &str, event: &str) -> Result<(), String> {
    let kid = jsonwebtoken::decode_header(token)
        .map_err(|e| e.to_string())?
        .kid
        .ok_or("no kid")?;
    let key = jwks["keys"]
        .as_array()
        .and_then(|ks| ks.iter().find(|k| k["kid"] == kid.as_str()))
        .ok_or_else(|| format!("kid {kid} not in the JWKS {jwks}"))?;
    let dk = DecodingKey::from_ed_components(key["x"].as_str().unwrap_or_default())
        .map_err(|e| e.to_string())?;
    let mut v = Validation::new(Algorithm::EdDSA);
    v.set_audience(&[event]);
    v.set_issuer(&["admission-gateway"]);
    jsonwebtoken::decode::<Value>(token, &dk, &v)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn kid_of(jwt: &str) -> String {
    jsonwebtoken::decode_header(jwt).unwrap().kid.unwrap()
}

async fn jwks_kids(base: &str) -> Vec<String> {
    let r = send(client().get(format!("{base}/.well-known/jwks.json"))).await;
    assert_eq!(r.status, 200);
    r.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// A place on `EVENT` taken straight to its admission on replica `base`: (waiting token, JWT).
async fn admission_on(base: &str, session: &str) -> (String, String) {
    let j = join(base, EVENT, session).await;
    assert_eq!(j.status, 201, "{}", j.body);
    let token = j.body["waiting_token"].as_str().unwrap().to_owned();
    wait_status(base, &token, "READY", Duration::from_secs(30)).await;
    let e = enter(base, &token).await;
    assert_eq!(e.status, 200, "{}", e.body);
    (
        token,
        e.body["reservation_token"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_across_replicas_under_load_without_a_failed_request() {
    let redis = RedisServer::start().unwrap();
    let backends = Backends::start(None, &[(EVENT, 1000)]).await;
    let new_pem_path =
        std::env::temp_dir().join(format!("key-rotation-{}.pem", std::process::id()));
    std::fs::write(&new_pem_path, NEW_PEM).unwrap();
    let new_key = new_pem_path.to_str().unwrap().to_owned();
    let old_key = PEM;
    let old_kid = AdmissionSigner::from_pem(PEM).unwrap().kid().to_owned();
    let new_kid = AdmissionSigner::from_pem(NEW_PEM).unwrap().kid().to_owned();

    let fleet = Fleet::start(redis.url(), backends.url(), &[OLD_SECRET], &[old_key]).await;
    let (a, b) = (fleet.base(0), fleet.base(1));
    let r = put_event(
        &a,
        EVENT,
        json!({"admit_per_second": 200, "max_active": 100000}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = put_event(&a, HOLD, json!({"admit_per_second": 0, "max_active": 10})).await;
    assert_eq!(r.status, 201, "{}", r.body);

    // Step 0: a waiting token and an admission under the old keys, kept for the checks.
    let (old_token, old_jwt) = admission_on(&a, "before-rotation").await;
    assert_eq!(kid_of(&old_jwt), old_kid);
    assert_eq!(jwks_kids(&b).await, vec![old_kid.clone()]);

    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| tokio::spawn(client_loop(fleet.clone(), c)))
        .collect();
    let holders: Vec<_> = (0..HOLDERS)
        .map(|h| tokio::spawn(holder_loop(fleet.clone(), h)))
        .collect();
    fleet.progress(CYCLES_PER_STEP).await;

    // Step 1: the new keys verify everywhere before anything is signed with them.
    fleet
        .restart(0, &[OLD_SECRET, NEW_SECRET], &[old_key, &new_key])
        .await;
    fleet.progress(CYCLES_PER_STEP).await;
    fleet
        .restart(1, &[OLD_SECRET, NEW_SECRET], &[old_key, &new_key])
        .await;
    fleet.progress(CYCLES_PER_STEP).await;
    for i in 0..2 {
        let base = fleet.base(i);
        assert_eq!(jwks_kids(&base).await, [old_kid.clone(), new_kid.clone()]);
        let (_, jwt) = admission_on(&base, &format!("step1-{i}")).await;
        assert_eq!(kid_of(&jwt), old_kid, "the old key still signs");
    }

    // Step 2: the new keys sign, one replica after the other; the old ones still verify.
    fleet
        .restart(0, &[NEW_SECRET, OLD_SECRET], &[&new_key, old_key])
        .await;
    fleet.progress(CYCLES_PER_STEP).await;
    fleet
        .restart(1, &[NEW_SECRET, OLD_SECRET], &[&new_key, old_key])
        .await;
    fleet.progress(CYCLES_PER_STEP).await;
    let (a, b) = (fleet.base(0), fleet.base(1));
    let (new_token, new_jwt) = admission_on(&a, "step2").await;
    assert_eq!(kid_of(&new_jwt), new_kid, "the new key signs");
    for base in [&a, &b] {
        assert_eq!(jwks_kids(base).await, [new_kid.clone(), old_kid.clone()]);
        for jwt in [&old_jwt, &new_jwt] {
            let r = availability(base, EVENT, jwt).await;
            assert_eq!(r.status, 200, "an admission under either key: {}", r.body);
        }
        for token in [&new_token, &old_token] {
            assert_eq!(status(base, token).await.status, 200);
        }
    }

    // Step 3: every token still in use is re-issued under the new keys.
    fleet.generation.fetch_add(1, SeqCst);
    fleet.reissue.store(true, SeqCst);
    let deadline = Instant::now() + Duration::from_secs(120);
    while fleet.reissued.load(SeqCst) < HOLDERS
        || fleet.client_generation.iter().any(|g| g.load(SeqCst) < 1)
    {
        assert!(Instant::now() < deadline, "tokens were not re-issued");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    fleet.progress(CYCLES_PER_STEP).await;

    // Step 4: the old keys go, one replica after the other.
    fleet.restart(0, &[NEW_SECRET], &[&new_key]).await;
    fleet.progress(CYCLES_PER_STEP).await;
    fleet.restart(1, &[NEW_SECRET], &[&new_key]).await;
    fleet.progress(CYCLES_PER_STEP).await;

    fleet.stop.store(true, SeqCst);
    for c in clients {
        c.await.unwrap();
    }
    let mut held = Vec::new();
    for h in holders {
        held.push(h.await.unwrap());
    }
    let failures = fleet.failures.lock().unwrap().clone();
    eprintln!(
        "key rotation: {} requests, {} client cycles, {} failures",
        fleet.requests.load(SeqCst),
        fleet.cycles.load(SeqCst),
        failures.len()
    );
    assert!(failures.is_empty(), "failed requests: {failures:?}");

    // Now the old keys are refused everywhere, the new ones accepted.
    let (a, b) = (fleet.base(0), fleet.base(1));
    for base in [&a, &b] {
        assert_eq!(jwks_kids(base).await, vec![new_kid.clone()]);
        let r = availability(base, EVENT, &old_jwt).await;
        assert_eq!((r.status, r.code()), (403, "FORBIDDEN"), "{}", r.body);
        assert_eq!(availability(base, EVENT, &new_jwt).await.status, 200);
        for (old, new, position) in &held {
            let r = status(base, old).await;
            assert_eq!((r.status, r.code()), (401, "INVALID_TOKEN"), "{}", r.body);
            let r = status(base, new).await;
            assert_eq!((r.status, &r.body["position"]), (200, &json!(position)));
        }
        let r = status(base, &old_token).await;
        assert_eq!((r.status, r.code()), (401, "INVALID_TOKEN"));
        assert_eq!(status(base, &new_token).await.status, 200);
    }
    let _ = std::fs::remove_file(&new_pem_path);
}

#[test]
fn key_flags_repeat_and_split_on_commas() {
    let c = gateway::Config::from_args_no_env([
        "gateway",
        "--token-secret",
        NEW_SECRET,
        "--token-secret",
        "a second secret,a third secret",
        "--signing-key",
        PEM,
        "--signing-key",
        "/etc/gateway/signing/old.pem",
    ])
    .unwrap();
    assert_eq!(
        c.tokens.token_secret,
        [NEW_SECRET, "a second secret", "a third secret"]
    );
    assert_eq!(c.tokens.signing_key, [PEM, "/etc/gateway/signing/old.pem"]);
    let none = gateway::Config::from_args_no_env(["gateway"]).unwrap();
    assert!(none.tokens.token_secret.is_empty() && none.tokens.signing_key.is_empty());
}

#[tokio::test]
async fn a_bad_key_in_the_list_stops_the_start_and_is_named() {
    let build = |args: &[&str]| {
        let mut all = vec!["gateway", "--metrics-listen", ""];
        all.extend_from_slice(args);
        let c = gateway::Config::from_args_no_env(all).unwrap();
        async move {
            gateway::Gateway::build(&c)
                .await
                .err()
                .map(|e| e.to_string())
        }
    };
    let e = build(&[
        "--signing-key",
        PEM,
        "--signing-key",
        "/nonexistent/next.pem",
    ])
    .await
    .expect("a missing key file is an error");
    assert!(
        e.contains("--signing-key #2") && e.contains("/nonexistent/next.pem"),
        "{e}"
    );
    let e = build(&["--token-secret", NEW_SECRET, "--token-secret", "short"])
        .await
        .expect("a short secret is an error");
    assert!(
        e.contains("#2") && e.contains("commas") && !e.contains(NEW_SECRET),
        "{e}"
    );
    assert!(
        build(&["--token-secret", NEW_SECRET, "--token-secret", OLD_SECRET])
            .await
            .is_none()
    );
}
