#!/usr/bin/env bash
# The compose topology without Docker, on loopback: redis-server (AOF everysec), `backends`, two
# gateways with the secrets of compose.env, and nginx with deploy/nginx/nginx.conf (addresses
# rewritten to loopback ports). Checks: event PUT through the load balancer, join, status on
# both gateways, /metrics hidden by nginx and on the gateways' own metrics listener only, a WebSocket upgrade through nginx, a purchase whose
# payment webhook comes back through nginx and confirms the reservation, then SIGTERM to one
# gateway: its WebSockets close with 1001, a reconnect through nginx resumes, joins keep working.
#
#   deploy/smoke-local.sh      (needs release binaries in target/release: it does not build)
#
# Needs redis-server, curl, python3, openssl and nginx (on PATH, or $NGINX_BIN; Debian:
# `apt-get download nginx && dpkg-deb -x nginx_*.deb x` gives x/usr/sbin/nginx).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NGINX_BIN="${NGINX_BIN:-$(command -v nginx || true)}"
[ -n "$NGINX_BIN" ] || { echo "nginx not found (set NGINX_BIN=/path/to/nginx)"; exit 2; }
for b in gateway backends; do [ -x "$root/target/release/$b" ] || { echo "no target/release/$b"; exit 2; }; done
w="$(mktemp -d)"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
R=$(port); B=$(port); G1=$(port); G2=$(port); LB=$(port); M1=$(port); M2=$(port)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$w/ngx/nginx.pid" ] && kill "$(cat "$w/ngx/nginx.pid")" 2>/dev/null || true
  sleep 0.5; rm -rf "$w"
}
trap cleanup EXIT
cp "$root/target/release/gateway" "$root/target/release/backends" "$w/"
openssl genpkey -algorithm ed25519 -out "$w/signing.pem" 2>/dev/null

redis-server --port "$R" --bind 127.0.0.1 --dir "$w" --appendonly yes --appendfsync everysec --save "" >"$w/redis.log" 2>&1 &
pids+=($!)
set -a; . "$root/deploy/compose.env"; set +a
export GATEWAY_REDIS_URL="redis://127.0.0.1:$R" GATEWAY_SIGNING_KEY="$w/signing.pem" RUST_LOG=warn \
  GATEWAY_RESERVATION_URL="http://127.0.0.1:$B" GATEWAY_INVENTORY_URL="http://127.0.0.1:$B" GATEWAY_PAYMENT_URL="http://127.0.0.1:$B"
sleep 0.5
BACKENDS_LISTEN="127.0.0.1:$B" BACKENDS_REDIS_URL="redis://127.0.0.1:$R" BACKENDS_EVENT=demo:1000 BACKENDS_SIM_TIME_SCALE=0.01 \
  BACKENDS_WEBHOOK_URL="http://127.0.0.1:$LB/webhooks/payments" "$w/backends" >"$w/backends.log" 2>&1 &
pids+=($!)
GATEWAY_LISTEN="127.0.0.1:$G1" GATEWAY_METRICS_LISTEN="127.0.0.1:$M1" GATEWAY_WEBHOOK_CONSUMER_NAME=gateway-1 "$w/gateway" >"$w/g1.log" 2>&1 &
g1=$!; pids+=($g1)
GATEWAY_LISTEN="127.0.0.1:$G2" GATEWAY_METRICS_LISTEN="127.0.0.1:$M2" GATEWAY_WEBHOOK_CONSUMER_NAME=gateway-2 "$w/gateway" >"$w/g2.log" 2>&1 &
pids+=($!)
mkdir -p "$w/ngx/logs" "$w/ngx/conf" "$w/ngx/tmp"
sed -e "s/gateway-1:8080/127.0.0.1:$G1/; s/gateway-2:8080/127.0.0.1:$G2/; s/listen 8080/listen 127.0.0.1:$LB/" \
    -e "s/worker_rlimit_nofile 200000/worker_rlimit_nofile 4096/; s/worker_connections 65536/worker_connections 1024/" \
    -e "s|access_log /dev/stdout;|access_log $w/ngx/logs/access.log; client_body_temp_path $w/ngx/tmp/b; proxy_temp_path $w/ngx/tmp/p; fastcgi_temp_path $w/ngx/tmp/f; uwsgi_temp_path $w/ngx/tmp/u; scgi_temp_path $w/ngx/tmp/s;|" \
    -e "s|error_log /dev/stderr warn;|error_log $w/ngx/logs/error.log warn;|" \
    "$root/deploy/nginx/nginx.conf" >"$w/ngx/conf/nginx.conf"
env -u NGINX "$NGINX_BIN" -p "$w/ngx" -c conf/nginx.conf -g "pid $w/ngx/nginx.pid; error_log $w/ngx/logs/error.log;"
for _ in $(seq 50); do
  curl -sf "127.0.0.1:$G1/readyz" >/dev/null && curl -sf "127.0.0.1:$G2/readyz" >/dev/null && break; sleep 0.2
done

python3 - "$LB" "$G1" "$G2" "$g1" "$GATEWAY_ADMIN_TOKEN" "$M1" <<'PY'
import base64, json, os, signal, socket, struct, sys, time, urllib.parse, urllib.request
lb, g1p, g2p, g1pid, admin, m1p = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6]
LB = f"http://127.0.0.1:{lb}"
def call(method, url, body=None, token=None, headers=None):
    h = {"content-type": "application/json", **(headers or {})}
    if token: h["authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, method=method, headers=h,
                                 data=json.dumps(body).encode() if body is not None else None)
    try:
        with urllib.request.urlopen(req, timeout=10) as r: return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e: return e.code, None
def check(cond, what):
    print(("ok:   " if cond else "FAIL: ") + what)
    if not cond: sys.exit(1)
def ws(token):
    s = socket.create_connection(("127.0.0.1", int(lb))); s.settimeout(5)
    t = urllib.parse.quote(token, safe="")
    s.sendall((f"GET /api/v1/queue/ws?token={t} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
               f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n\r\n").encode())
    d = b""
    while b"\r\n\r\n" not in d: d += s.recv(4096)
    head, rest = d.split(b"\r\n\r\n", 1)
    return s, head.split(b"\r\n")[0].decode(), rest
def frame(s, buf, timeout):
    s.settimeout(timeout)
    while True:
        if len(buf) >= 2 and len(buf) >= 2 + (buf[1] & 0x7f) and (buf[1] & 0x7f) < 126:
            n = buf[1] & 0x7f; return buf[0] & 0x0f, buf[2:2 + n], buf[2 + n:]
        try: d = s.recv(4096)
        except socket.timeout: return None, b"", buf
        if not d: return "eof", b"", b""
        buf += d

st, _ = call("PUT", f"{LB}/admin/v1/events/demo", {"admit_per_second": 20, "max_active": 100}, admin)
check(st in (200, 201), f"PUT event through nginx: {st}")
st, j = call("POST", f"{LB}/api/v1/queue/join", {"event_id": "demo", "session_id": "s1", "user_id": "u1"})
check(st == 201, f"join through nginx: {st}")
tok = j["waiting_token"]
for p in (g1p, g2p):
    st, _ = call("GET", f"http://127.0.0.1:{p}/api/v1/queue/status", token=tok)
    check(st == 200, f"the token is valid on the gateway at :{p} (shared secrets)")
st, _ = call("GET", f"{LB}/metrics")
check(st == 404, "/metrics is not served through nginx")
st, _ = call("GET", f"http://127.0.0.1:{g1p}/metrics")
check(st == 404, "/metrics is not served on the gateway's public port")
m = urllib.request.urlopen(f"http://127.0.0.1:{m1p}/metrics", timeout=5).read().decode()
check("# TYPE waiting_room_joins counter" in m, "/metrics is served on --metrics-listen")
s, line, rest = ws(tok)
op, payload, _ = frame(s, rest, 5)
check("101" in line and op == 1, f"WebSocket upgrade through nginx: {line}, first frame {payload[:60]!r}")
s.close()
time.sleep(1.5)
st, e = call("POST", f"{LB}/api/v1/queue/enter", token=tok)
check(st == 200, f"enter: {st}")
rt = e["reservation_token"]
st, r = call("POST", f"{LB}/api/v1/reservations", {"event_id": "demo", "quantity": 2}, rt, {"Idempotency-Key": "k1"})
check(st == 201, f"reservation through the gateway: {st}")
rid = r["reservation_id"]
st, _ = call("POST", f"{LB}/api/v1/payments/intents", {"reservation_id": rid}, rt, {"Idempotency-Key": "p1"})
check(st == 201, f"payment intent: {st}")
for _ in range(50):
    st, r = call("GET", f"{LB}/api/v1/reservations/{rid}", token=rt)
    if r and r.get("status") == "CONFIRMED": break
    time.sleep(0.2)
check(r.get("status") == "CONFIRMED", "payment webhook came back through nginx and confirmed the reservation")

st, j = call("POST", f"{LB}/api/v1/queue/join", {"event_id": "demo", "session_id": "s2"})
tok2 = j["waiting_token"]
socks = []
for _ in range(4):
    s, line, rest = ws(tok2); frame(s, rest, 5); socks.append(s)
os.kill(g1pid, signal.SIGTERM)
closed = 0
for s in socks:
    buf = b""
    while True:
        op, payload, buf = frame(s, buf, 3)
        if op in (8, None, "eof"): break
    if op == 8 and struct.unpack(">H", payload[:2])[0] == 1001: closed += 1
check(closed >= 1, f"SIGTERM to gateway-1: {closed} of 4 WebSockets closed with 1001 (round-robin puts about half on it)")
s, line, rest = ws(tok2)
op, payload, _ = frame(s, rest, 5)
check("101" in line and op == 1, f"reconnect through nginx resumes the place: {payload[:60]!r}")
codes = [call("POST", f"{LB}/api/v1/queue/join", {"event_id": "demo", "session_id": f"d{i}"})[0] for i in range(6)]
check(all(c == 201 for c in codes), f"joins after the SIGTERM: {codes}")
PY
echo "smoke test passed"
