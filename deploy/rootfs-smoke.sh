#!/usr/bin/env bash
# shellcheck disable=SC2015,SC2317  # `ok || fail` lines whose echo cannot fail; cleanup runs from the trap
# The runtime stage of deploy/Dockerfile, without Docker: builds the two binaries with the
# Dockerfile's own command, lays out a Debian bookworm minbase root filesystem (what
# debian:bookworm-slim is made of) with debootstrap from Debian's archive, runs the Dockerfile's
# runtime RUN step in it (ca-certificates, the uid 10001 user), copies the stripped binaries in,
# and starts `gateway` (the image's CMD, on loopback) and `backends` as uid 10001 in a chroot:
# /healthz, /readyz, a join on the demo event, SIGTERM and a clean exit. It prints the size of
# what the image would hold.
#
#   deploy/rootfs-smoke.sh        (as root: debootstrap and chroot need it; about 1 min after the build)
#
# What this proves, and what it does not: the binaries run, unprivileged, on the image's base
# with only glibc, libgcc and ca-certificates. The builder stage (rust:1-bookworm) and the
# Docker build itself are not exercised: no container engine or registry image is reachable
# from the development machine. Needs: cargo, debootstrap (apt-get install debootstrap), curl.
# ROOTFS=DIR reuses an existing root filesystem; SKIP_BUILD=1 uses target/release as it is.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
[ "$(id -u)" = 0 ] || { echo "run as root (debootstrap, chroot)"; exit 2; }
command -v debootstrap >/dev/null || { echo "missing debootstrap: apt-get install debootstrap"; exit 2; }

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  # The Dockerfile's build command, verbatim.
  cargo build --release --locked --bin gateway --bin backends
fi

work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

rootfs="${ROOTFS:-$work/rootfs}"
if [ ! -x "$rootfs/bin/sh" ]; then
  echo "== debootstrap bookworm (minbase) into $rootfs"
  debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 ||
    { tail -20 "$work/debootstrap.log"; exit 1; }
fi
base_size="$(du -sm "$rootfs" | cut -f1)"

echo "== the Dockerfile's runtime RUN step"
chroot "$rootfs" sh -c '
  set -e
  apt-get update -qq >/dev/null 2>&1 || true   # debootstrap leaves a usable archive list
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ca-certificates >/dev/null 2>&1
  rm -rf /var/lib/apt/lists/*
  getent group gateway >/dev/null || groupadd --system --gid 10001 gateway
  getent passwd gateway >/dev/null || useradd --system --uid 10001 --gid 10001 --no-create-home \
    --home-dir /nonexistent --shell /usr/sbin/nologin gateway 2>/dev/null
  id gateway'
install -m 0755 target/release/gateway target/release/backends "$rootfs/usr/local/bin/"
strip "$rootfs/usr/local/bin/gateway" "$rootfs/usr/local/bin/backends"
echo "sizes: gateway $(du -m "$rootfs/usr/local/bin/gateway" | cut -f1) MiB, backends $(du -m "$rootfs/usr/local/bin/backends" | cut -f1) MiB (stripped); the minbase root filesystem $base_size MiB (debian:bookworm-slim's is smaller: no apt caches, docs trimmed)"

run_as_image() { chroot --userspec=10001:10001 "$rootfs" env HOME=/nonexistent RUST_LOG=info "$@"; }

fail=0
port=$((20000 + RANDOM % 20000))
echo "== gateway (the image's CMD, on 127.0.0.1:$port) as uid 10001"
# Not through run_as_image: a backgrounded function is a subshell, and $! must be the gateway
# itself (chroot and env exec it) for the SIGTERM and the exit status below.
chroot --userspec=10001:10001 "$rootfs" env HOME=/nonexistent RUST_LOG=info \
  /usr/local/bin/gateway --listen "127.0.0.1:$port" >"$work/gateway.log" 2>&1 &
gw=$!
pids+=("$gw")
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
uid="$(ps -o uid= -p "$gw" | tr -d ' ')"
[ "$uid" = 10001 ] && echo "ok: runs as uid 10001" || { echo "FAIL: runs as uid '$uid'"; fail=1; }
for path in /healthz /readyz; do
  body="$(curl -s "http://127.0.0.1:$port$path")"
  [[ $body == *'"status"'* ]] && echo "ok: GET $path $body" || { echo "FAIL: GET $path: $body"; fail=1; }
done
join="$(curl -s -X POST "http://127.0.0.1:$port/api/v1/queue/join" -d '{"event_id":"demo","session_id":"smoke"}')"
[[ $join == *'"status":"WAITING"'* ]] && echo "ok: join answered WAITING" || { echo "FAIL: join: $join"; fail=1; }
kill -TERM "$gw"
if wait "$gw"; then echo "ok: SIGTERM, clean exit"; else echo "FAIL: exit status $? after SIGTERM"; fail=1; fi

echo "== backends as uid 10001"
if run_as_image /usr/local/bin/backends --help >"$work/backends.txt" 2>&1; then
  echo "ok: backends --help ($(wc -l <"$work/backends.txt") lines)"
else
  echo "FAIL: backends --help"; cat "$work/backends.txt"; fail=1
fi
[ "$fail" = 0 ] && echo "rootfs smoke: all checks passed" || { echo "rootfs smoke: FAILED"; tail -20 "$work/gateway.log"; }
exit "$fail"
