#!/usr/bin/env bash
# The whole test suite, from a fresh clone on a fresh machine: installs what the tests need
# (redis-server and redis-cli, Chromium and ChromeDriver, from Debian) when missing, validates
# deploy/ (deploy/validate.sh), then runs every crate's tests. The tests start their own
# redis-server processes (and a local Redis Cluster), gateways and a headless Chromium on free
# ports. Before the tests: rustfmt, clippy (warnings are errors) and the module-cycle check.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
# The Debian package starts a system redis on 6379; the tests never use it (nor any fixed port).

# deploy/ validated offline (Kubernetes and Compose schemas, promtool, cross-checks); --install
# first fetches its validators from apt and PyPI into target/validate-tools (about 20 s once).
deploy/validate.sh --install

# The API fuzzer (gateway/tests/api_fuzz.rs) runs schemathesis from PyPI, installed once into
# target/api-fuzz-tools (a venv; reused by later runs).
fuzz_tools=target/api-fuzz-tools
if [ ! -x "$fuzz_tools/bin/schemathesis" ]; then
  python3 -m venv "$fuzz_tools"
  "$fuzz_tools/bin/pip" install -q schemathesis==4.32.5
fi

# Style and lints first: a minute, and a finding fails the run before the long tests start.
# The workspace's lint levels are in Cargo.toml ([workspace.lints]).
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# No module depends on another that depends back on it (docs/architecture.md).
python3 scripts/module-cycles.py

# --no-fail-fast: one failing test binary must not hide the results of the others.
cargo test --workspace --locked --no-fail-fast "$@"
