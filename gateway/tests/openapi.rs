//! The OpenAPI document is generated from the code (gateway::openapi); these tests keep the
//! committed docs/openapi.yaml current and the documented operations equal to the routed ones.

mod common;

use axum::body::Body;
use axum::http::{Method, Request};
use clap::Parser;
use std::collections::BTreeSet;
use tower::ServiceExt;

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.yaml");

#[test]
fn the_committed_document_is_current() {
    let generated = gateway::openapi::yaml();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(COMMITTED, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.yaml is not the document the code generates; regenerate it with\n  \
         UPDATE_OPENAPI=1 cargo test -p gateway --test openapi\nor\n  \
         cargo run -p gateway --example openapi > docs/openapi.yaml"
    );
}

/// Every (method, path) the document declares.
fn documented() -> BTreeSet<(String, String)> {
    let doc = serde_json::to_value(gateway::openapi::document()).unwrap();
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if METHODS
                .iter()
                .any(|m| m.as_str().eq_ignore_ascii_case(method))
            {
                ops.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    ops
}

const METHODS: [Method; 5] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
];

/// Every (method, path) `router` routes. axum does not list its routes, but its Debug output
/// names every path pattern; which methods a path takes is asked of the router itself: a
/// method it does not route gets the 405 METHOD_NOT_ALLOWED fallback.
async fn routed(router: axum::Router) -> BTreeSet<(String, String)> {
    let debug = format!("{router:?}");
    // Entries of the path map print as `RouteId(3): "/admin/v1/dlq/{id}"`.
    // Only the path router: the fallback router holds axum's own "/" and catch-all.
    let path_router = debug.split("fallback_router:").next().unwrap();
    let paths: BTreeSet<String> = path_router
        .split("RouteId(")
        .skip(1)
        .filter_map(|s| s.split_once("): \"")?.1.split_once('"'))
        .map(|(path, _)| path.to_owned())
        .collect();
    assert!(
        !paths.is_empty(),
        "no route paths in the router's Debug output: {debug}"
    );
    let mut ops = BTreeSet::new();
    for path in paths {
        // Any value matches a `{param}` segment.
        let uri = path.replace('{', "x").replace('}', "");
        for method in METHODS {
            let req = Request::builder()
                .method(method.clone())
                .uri(&uri)
                .header("authorization", format!("Bearer {}", common::ADMIN))
                .body(Body::empty())
                .unwrap();
            let resp = router.clone().oneshot(req).await.unwrap();
            if resp.status() != 405 {
                ops.insert((method.to_string(), path.clone()));
            }
        }
    }
    ops
}

#[tokio::test]
async fn the_document_declares_exactly_the_routed_operations() {
    let gw = built().await;
    let mut routed_ops = routed(gw.router()).await;
    // /metrics is served on its own listener (the document gives it that server).
    routed_ops.extend(routed(gateway::metrics_router(gw.state.clone())).await);
    let documented = documented();
    let undocumented: Vec<_> = routed_ops.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed_ops).collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "routed but not in the OpenAPI document (add a #[utoipa::path] in \
         gateway/src/openapi/paths.rs): {undocumented:?}\n\
         documented but not routed: {unrouted:?}"
    );
}

#[test]
fn api_md_describes_every_operation() {
    let api_md =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api.md")).unwrap();
    let missing: Vec<_> = documented()
        .into_iter()
        .filter(|(m, p)| !api_md.contains(&format!("{m} {p}")))
        .collect();
    assert!(missing.is_empty(), "missing from docs/api.md: {missing:?}");
}

#[tokio::test]
async fn the_gateway_serves_the_document() {
    let gw = built().await;
    let req = Request::get("/openapi.json").body(Body::empty()).unwrap();
    let resp = gw.router().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    let served: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        served,
        serde_json::to_value(gateway::openapi::document()).unwrap()
    );
    assert_eq!(served["openapi"], "3.1.0");
}

/// A gateway built in memory (the in-memory store), not serving: its router is called directly.
async fn built() -> gateway::Gateway {
    let config = gateway::Config::parse_from([
        "gateway",
        "--admin-token",
        common::ADMIN,
        "--token-secret",
        common::SECRET,
        "--signing-key",
        common::PEM,
        // No metrics listener: tests run in parallel (its router is built from the state).
        "--metrics-listen",
        "",
    ]);
    gateway::Gateway::build_with_clock(&config, std::sync::Arc::new(queue::clock::SystemClock))
        .await
        .unwrap()
}
