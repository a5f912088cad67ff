#!/usr/bin/env python3
"""Writes gateway-dashboard.json (run from anywhere: python3 deploy/grafana/gen_dashboard.py).

The dashboard is generated so that its JSON stays consistent (ids, grid positions); edit the
panel list below, not the JSON. Metric names: docs/api.md, "GET /metrics" and webhook metrics.
Counters are per process (summed); the waiting_room_* gauges are global, the same on every
replica (max, not sum).
"""
import json
import os

DS = {"type": "prometheus", "uid": "${datasource}"}
EV = 'event=~"$event"'

panels = []
state = {"id": 1, "y": 0}


def row(title):
    panels.append({"type": "row", "title": title, "id": state["id"], "collapsed": False,
                   "gridPos": {"h": 1, "w": 24, "x": 0, "y": state["y"]}, "panels": []})
    state["id"] += 1
    state["y"] += 1
    state["x"] = 0


def ts(title, targets, unit="short", w=8, desc=""):
    if state["x"] + w > 24:
        state["x"] = 0
        state["y"] += 8
    panels.append({
        "type": "timeseries", "title": title, "id": state["id"], "datasource": DS,
        "description": desc,
        "gridPos": {"h": 8, "w": w, "x": state["x"], "y": state["y"]},
        "fieldConfig": {"defaults": {"unit": unit, "custom": {"lineWidth": 1, "fillOpacity": 10}},
                        "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                    "tooltip": {"mode": "multi", "sort": "desc"}},
        "targets": [{"refId": chr(65 + i), "datasource": DS, "expr": e, "legendFormat": l}
                    for i, (e, l) in enumerate(targets)],
    })
    state["id"] += 1
    state["x"] += w
    if state["x"] >= 24:
        state["x"] = 0
        state["y"] += 8


def end_row():
    if state["x"] > 0:
        state["x"] = 0
        state["y"] += 8


row("Queue")
ts("Joins / s", [(f"sum by (event) (rate(waiting_room_joins_total{{{EV}}}[1m]))", "{{event}}")],
   "reqps", desc="waiting_room_joins_total: new places handed out, all replicas")
ts("Admissions / s", [(f"sum by (event) (rate(waiting_room_admissions_total{{{EV}}}[1m]))", "{{event}}")],
   "reqps", desc="waiting_room_admissions_total: users made READY, all replicas (should match admit_per_second while a backlog exists)")
ts("Queue depth (waiting, pre-queue included)",
   [(f"max by (event) (waiting_room_queue_depth{{{EV}}})", "{{event}}")],
   desc="waiting_room_queue_depth: global figure, the same on every replica")
ts("READY and active", [(f"max by (event) (waiting_room_ready{{{EV}}})", "{{event}} ready"),
                        (f"max by (event) (waiting_room_active{{{EV}}})", "{{event}} active")],
   desc="READY + active never exceed the event's max_active")
ts("Time to drain the queue at the current rate",
   [(f"max by (event) (waiting_room_queue_depth{{{EV}}}) / sum by (event) (rate(waiting_room_admissions_total{{{EV}}}[5m]))",
     "{{event}}")], "s")
ts("Replicas up / ready", [('sum(up{job="gateway"})', "up"),
                           ('count(sum by (instance) (increase(gateway_http_request_duration_seconds_count{route="/readyz",status="503"}[2m])) > 0)',
                            "failing /readyz (Redis unreachable)")])
end_row()

row("HTTP")
ts("Requests / s by route", [("sum by (route) (rate(gateway_http_request_duration_seconds_count[1m]))", "{{route}}")],
   "reqps", w=12)
ts("Responses / s by status", [("sum by (status) (rate(gateway_http_request_duration_seconds_count[1m]))", "{{status}}")],
   "reqps", w=12)
ts("Latency p50 by route",
   [("histogram_quantile(0.5, sum by (le, route) (rate(gateway_http_request_duration_seconds_bucket[5m])))", "{{route}}")],
   "s", w=12)
ts("Latency p99 by route",
   [("histogram_quantile(0.99, sum by (le, route) (rate(gateway_http_request_duration_seconds_bucket[5m])))", "{{route}}")],
   "s", w=12)
ts("5xx ratio", [('sum(rate(gateway_http_request_duration_seconds_count{status=~"5..",route!="/readyz"}[5m])) / sum(rate(gateway_http_request_duration_seconds_count{route!="/readyz"}[5m]))', "5xx")],
   "percentunit", w=12)
end_row()

row("WebSockets")
ts("Open WebSockets", [("sum(gateway_websocket_connections)", "total"),
                       ("sum by (instance) (gateway_websocket_connections)", "{{instance}}")], w=12)
ts("WebSockets dropped / s (1008)", [("sum by (instance) (rate(gateway_websocket_dropped_total[1m]))", "{{instance}}")],
   "reqps", w=12)
end_row()

row("Upstreams (forwarded API)")
ts("Calls / s by outcome", [("sum by (upstream, outcome) (rate(gateway_upstream_calls_total[1m]))", "{{upstream}} {{outcome}}")],
   "reqps")
ts("Call latency p50 / p99", [
    ("histogram_quantile(0.5, sum by (le, upstream) (rate(gateway_upstream_call_duration_seconds_bucket[5m])))", "{{upstream}} p50"),
    ("histogram_quantile(0.99, sum by (le, upstream) (rate(gateway_upstream_call_duration_seconds_bucket[5m])))", "{{upstream}} p99")],
   "s")
ts("Circuit open (replicas)", [("sum by (upstream) (gateway_upstream_circuit_open)", "{{upstream}}")])
end_row()

row("Payment webhooks")
ts("Inbox / s", [("sum(rate(webhooks_received_total[1m]))", "received"),
                 ("sum(rate(webhooks_duplicates_total[1m]))", "duplicates"),
                 ("sum(rate(webhooks_forwarded_total[1m]))", "forwarded"),
                 ("sum(rate(webhooks_retried_total[1m]))", "retried")], "reqps")
ts("Rejected / s by reason", [("sum by (reason) (rate(webhooks_rejected_total[1m]))", "{{reason}}")], "reqps")
ts("Dead-lettered (increase over 1h)", [("sum(increase(webhooks_dead_lettered_total[1h]))", "dead letters")])
ts("Acceptance to forward, p50 / p99", [
    ("histogram_quantile(0.5, sum by (le) (rate(webhooks_end_to_end_latency_seconds_bucket[5m])))", "p50"),
    ("histogram_quantile(0.99, sum by (le) (rate(webhooks_end_to_end_latency_seconds_bucket[5m])))", "p99")],
   "s", w=12)
end_row()

dashboard = {
    "__inputs": [],
    "title": "Admission gateway",
    "uid": "admission-gateway",
    "description": "Waiting room, HTTP, WebSockets, upstreams and payment webhooks of the admission gateway (deploy/grafana)",
    "tags": ["admission-gateway"],
    "timezone": "utc",
    "editable": True,
    "graphTooltip": 1,
    "schemaVersion": 39,
    "version": 1,
    "refresh": "10s",
    "time": {"from": "now-1h", "to": "now"},
    "timepicker": {},
    "annotations": {"list": []},
    "links": [],
    "templating": {"list": [
        {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Data source",
         "current": {}, "hide": 0, "refresh": 1, "options": []},
        {"name": "event", "type": "query", "label": "Event", "datasource": DS,
         "query": {"query": "label_values(waiting_room_queue_depth, event)", "refId": "event"},
         "definition": "label_values(waiting_room_queue_depth, event)",
         "refresh": 2, "includeAll": True, "multi": True, "allValue": ".*",
         "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
         "hide": 0, "options": [], "sort": 1},
    ]},
    "panels": panels,
}

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gateway-dashboard.json")
with open(out, "w") as f:
    json.dump(dashboard, f, indent=2)
    f.write("\n")
print(f"wrote {out}: {len(panels)} panels")
