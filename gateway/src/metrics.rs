//! Prometheus metrics of the gateway, served as text on `/metrics` of `--metrics-listen`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Labels of HTTP request metrics (route is the matched pattern, never the raw path). Static
/// strings, so that recording a request allocates nothing ([`method_label`]; the route is the
/// pattern the edge matched, [`crate::edge::RouteInfo`]).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// HTTP method.
    pub method: &'static str,
    /// Route pattern, e.g. `/admin/v1/events/{event_id}`.
    pub route: &'static str,
    /// Response status code.
    pub status: u16,
}

/// The label of a method: the standard ones by name, any other as `OTHER` (a client can send
/// any token as a method; the label set must stay bounded).
pub fn method_label(m: &http::Method) -> &'static str {
    use http::Method as M;
    match *m {
        M::GET => "GET",
        M::POST => "POST",
        M::PUT => "PUT",
        M::DELETE => "DELETE",
        M::HEAD => "HEAD",
        M::OPTIONS => "OPTIONS",
        M::PATCH => "PATCH",
        M::CONNECT => "CONNECT",
        M::TRACE => "TRACE",
        _ => "OTHER",
    }
}

/// Labels of per-event metrics (events exist only once an admin configured them, so the label
/// set is bounded).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    /// Event id.
    pub event: String,
}

/// Labels of upstream call counts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    /// `reservation`, `inventory` or `payment`.
    pub upstream: &'static str,
    /// `ok`, `rejected` (a client-class error status), `failed` (unavailable, internal, …),
    /// `timeout`, `overloaded` (not called: limit reached) or `circuit_open` (not called).
    pub outcome: &'static str,
}

/// Labels of per-upstream metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamName {
    /// `reservation`, `inventory` or `payment`.
    pub upstream: &'static str,
}

type HistogramFamily = Family<HttpLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.25 ms .. about 4 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

/// Every metric the gateway exports.
pub struct Metrics {
    // Behind a lock only so that parts built after the gateway's metrics (the webhook inbox)
    // can register theirs in this one registry; it is locked to register and to encode.
    registry: std::sync::Mutex<Registry>,
    /// Request latency by method, route and status.
    pub http: HistogramFamily,
    /// New places handed out (`waiting_room_joins_total`).
    pub joins: Family<EventLabels, Counter>,
    /// Users made READY (`waiting_room_admissions_total`).
    pub admissions: Family<EventLabels, Counter>,
    /// Users waiting.
    pub queue_depth: Family<EventLabels, Gauge>,
    /// Users READY.
    pub ready: Family<EventLabels, Gauge>,
    /// Users holding an admission.
    pub active: Family<EventLabels, Gauge>,
    /// 1 while the event's configuration holds admissions on purpose (STOP_ADMISSIONS, sold
    /// out, `admit_per_second` 0, `opens_at` ahead), else 0: what tells a stall from a pause.
    pub admissions_held: Family<EventLabels, Gauge>,
    /// The event's `max_active`.
    pub max_active: Family<EventLabels, Gauge>,
    /// Open WebSocket connections in this process.
    pub websockets: Gauge,
    /// WebSockets dropped for being too slow or unresponsive (a counter kept by the hub).
    pub websockets_dropped: Counter<u64, std::sync::atomic::AtomicU64>,
    /// Upstream calls by upstream and outcome (refused ones included).
    pub upstream_calls: Family<UpstreamLabels, Counter>,
    /// Latency of upstream calls that were made.
    pub upstream_latency: Family<UpstreamName, Histogram, fn() -> Histogram>,
    /// 1 while an upstream's circuit is open (set when `/metrics` is read).
    pub upstream_circuit_open: Family<UpstreamName, Gauge>,
    /// Admin changes not stored in the audit trail (set when `/metrics` is read).
    pub audit_write_failures: Counter<u64, std::sync::atomic::AtomicU64>,
    /// Rate-limit syncs completed (set when `/metrics` is read).
    pub rate_syncs: Counter<u64, std::sync::atomic::AtomicU64>,
    /// Rate-limit syncs that failed (set when `/metrics` is read).
    pub rate_sync_failures: Counter<u64, std::sync::atomic::AtomicU64>,
    /// Status reads answered from the followed departure log (a poll hint), no Redis operation.
    pub status_reads_from_log: Counter<u64, std::sync::atomic::AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every metric registered.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let http: HistogramFamily = Family::new_with_constructor(latency_histogram);
        registry.register(
            "gateway_http_request_duration_seconds",
            "HTTP request latency",
            http.clone(),
        );
        let joins = Family::default();
        registry.register("waiting_room_joins", "New places handed out", joins.clone());
        let admissions = Family::default();
        registry.register(
            "waiting_room_admissions",
            "Users let through the queue (made READY)",
            admissions.clone(),
        );
        let queue_depth = Family::default();
        registry.register(
            "waiting_room_queue_depth",
            "Users waiting in the queue",
            queue_depth.clone(),
        );
        let ready = Family::default();
        registry.register(
            "waiting_room_ready",
            "Users READY and not yet entered",
            ready.clone(),
        );
        let active = Family::default();
        registry.register(
            "waiting_room_active",
            "Users holding an unexpired admission",
            active.clone(),
        );
        let admissions_held = Family::default();
        registry.register(
            "waiting_room_admissions_held",
            "1 while the event's configuration holds admissions (stopped, sold out, rate 0, not yet open)",
            admissions_held.clone(),
        );
        let max_active = Family::default();
        registry.register(
            "waiting_room_max_active",
            "The event's max_active (READY + ADMITTED users at most)",
            max_active.clone(),
        );
        let websockets = Gauge::default();
        registry.register(
            "gateway_websocket_connections",
            "Open WebSocket connections",
            websockets.clone(),
        );
        let websockets_dropped = Counter::default();
        registry.register(
            "gateway_websocket_dropped",
            "WebSockets dropped for being too slow or unresponsive",
            websockets_dropped.clone(),
        );
        let upstream_calls = Family::default();
        registry.register(
            "gateway_upstream_calls",
            "Calls to the backing services by outcome (overloaded and circuit_open were not made)",
            upstream_calls.clone(),
        );
        let upstream_latency: Family<UpstreamName, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "gateway_upstream_call_duration_seconds",
            "Latency of calls to the backing services",
            upstream_latency.clone(),
        );
        let upstream_circuit_open = Family::default();
        registry.register(
            "gateway_upstream_circuit_open",
            "1 while the upstream's circuit breaker is open",
            upstream_circuit_open.clone(),
        );
        let audit_write_failures = Counter::default();
        registry.register(
            "gateway_audit_write_failures",
            "Admin changes that could not be stored in the audit trail (they were logged)",
            audit_write_failures.clone(),
        );
        let rate_syncs = Counter::default();
        registry.register(
            "gateway_rate_limit_syncs",
            "Cross-replica rate-limit syncs completed (--rate-sync-ms)",
            rate_syncs.clone(),
        );
        let rate_sync_failures = Counter::default();
        registry.register(
            "gateway_rate_limit_sync_failures",
            "Cross-replica rate-limit syncs that failed (limits were per replica meanwhile)",
            rate_sync_failures.clone(),
        );
        let status_reads_from_log = Counter::default();
        registry.register(
            "waiting_room_status_reads_from_log",
            "Status reads answered from the followed departure log (a poll hint), without Redis",
            status_reads_from_log.clone(),
        );
        Self {
            status_reads_from_log,
            registry: std::sync::Mutex::new(registry),
            audit_write_failures,
            rate_syncs,
            rate_sync_failures,
            upstream_calls,
            upstream_latency,
            upstream_circuit_open,
            http,
            joins,
            admissions,
            queue_depth,
            ready,
            active,
            admissions_held,
            max_active,
            websockets,
            websockets_dropped,
        }
    }

    /// The labels of one event.
    pub fn event(event: &str) -> EventLabels {
        EventLabels {
            event: event.to_owned(),
        }
    }

    /// Registers more metrics in the one registry (the webhook metrics, once the webhook
    /// inbox is configured), so that `/metrics` is one exposition from one encoder.
    pub fn register_with(&self, f: impl FnOnce(&mut Registry)) {
        f(&mut self.registry.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// The exposition text.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
            out.clear();
        }
        out
    }
}
