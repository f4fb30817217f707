#!/usr/bin/env bash
# Build the real Dockerfile with podman, run the image on 127.0.0.1 and check it end to end:
# HEALTHCHECK healthy, the seed's third example (gradients 4 and 27), a non-root process,
# and a graceful stop that lets a request in flight finish.
#
# Needs podman (with runc), debootstrap and python3 (3.11, with pip) on the host; runs as
# root. No registry is used: the base image is a local stand-in (scripts/container-base.sh,
# built once and cached), and the locked wheels are fetched by the host's pip (its index and
# TLS settings, hash-checked), cached, and mounted into a build that has no network.
# Bounded: the whole run is stopped after SMOKE_TIMEOUT seconds (default 900).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z "${SMOKE_BOUNDED:-}" ]]; then
  export SMOKE_BOUNDED=1
  exec timeout -k 30 "${SMOKE_TIMEOUT:-900}" "$0" "$@"
fi

podman=(podman --runtime runc)
py="${PYTHON:-python3}"  # the host interpreter (3.11, with pip)
# Without systemd, podman logs (harmless) errors about healthcheck timers; drop just those.
quiet_systemd() { grep -v 'systemd connection' >&2 || true; }
image=localhost/derivative-service:smoke
ctr="derivative-smoke-$$"
cache="${SMOKE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/derivative-service-smoke}"
wheels="$cache/wheels"
client_pid=""

cleanup() {
  if [[ -n "$client_pid" ]]; then kill "$client_pid" 2>/dev/null || true; fi
  "${podman[@]}" rm --force --time 0 "$ctr" >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 124' TERM INT

step() { echo "== $*"; }
# (grep reads all of the log: grep -q would close the pipe early and fail it under pipefail)
logged() { "${podman[@]}" logs "$ctr" 2>&1 | grep -E -- "$1" >/dev/null; }
fail() { echo "FAIL: $*" >&2; "${podman[@]}" logs "$ctr" 2>&1 | tail -30 >&2 || true; exit 1; }

step "base image"
base="$(scripts/container-base.sh)"

step "locked wheels -> $wheels"
mkdir -p "$wheels"
# Every locked wheel, whatever its environment marker: pip judges markers by the host's
# Python only (--python-version does not change that), and the image's may differ (Debian's
# 3.11.2 needs async-timeout, which a host's 3.11.7 skips). The build's own install reads
# the markers for the image's Python.
sed -E 's/ ; [^\\]*\\$/ \\/' requirements.lock >"$cache/requirements.all"
"$py" -m pip download --quiet --disable-pip-version-check --no-deps --require-hashes \
  --only-binary=:all: --dest "$wheels" -r "$cache/requirements.all" \
  2> >(grep -v 'is ignored' >&2 || true)

step "build (podman, no network)"
start=$SECONDS
"${podman[@]}" build --format docker --pull=never --network none \
  --volume "$wheels:/wheels:ro" --build-arg WHEELS=/wheels --build-arg PYTHON_IMAGE="$base" \
  --tag "$image" . >"$cache/build.log" 2>&1 || { tail -40 "$cache/build.log" >&2; exit 1; }
echo "built $image in $((SECONDS - start)) s (log: $cache/build.log)"

step "run on 127.0.0.1"
port="$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# Read-only root, no capabilities: as deploy/k8s/deployment.yaml runs it.
"${podman[@]}" run --detach --name "$ctr" --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
  --read-only --cap-drop ALL --security-opt no-new-privileges \
  --publish "127.0.0.1:$port:8000" "$image" >/dev/null 2> >(quiet_systemd)
for _ in $(seq 60); do
  "${podman[@]}" healthcheck run "$ctr" >/dev/null 2>&1 && break
  sleep 1
done
"${podman[@]}" healthcheck run "$ctr" >/dev/null 2>&1 || fail "HEALTHCHECK never passed"
echo "HEALTHCHECK: healthy; serving on 127.0.0.1:$port"

step "seed example 3 through the published port"
"$py" scripts/smoke_client.py gradient "$port"

step "non-root"
uids="$("${podman[@]}" exec "$ctr" sh -c 'cat /proc/[0-9]*/status' | awk '/^Uid:/ {print $2}' | sort -u)"
echo "process uids: $(echo "$uids" | tr '\n' ' ')"
grep -qx 0 <<<"$uids" && fail "a process runs as root"
echo "user: $("${podman[@]}" exec "$ctr" id)"

step "graceful stop with a request in flight"
coproc CLIENT { "$py" scripts/smoke_client.py inflight "$port" 2>&1; }
client_pid=$!
exec {from_client}<&"${CLIENT[0]}" {to_client}>&"${CLIENT[1]}"
line=""
read -r -t 30 line <&"$from_client" || true
[[ "$line" == sent-head ]] || fail "the client did not start: $line"
"${podman[@]}" stop --time 40 "$ctr" >/dev/null 2> >(quiet_systemd) &
stopper=$!
for _ in $(seq 50); do  # until the worker holding our connection says it is draining
  logged 'Waiting for connections to close' && break
  sleep 0.2
done
logged 'Waiting for connections to close' || fail "uvicorn did not drain after podman stop"
echo "uvicorn is draining (SIGTERM received); sending the rest of the request"
echo go >&"$to_client"
cat <&"$from_client"
wait "$client_pid" || fail "the request in flight did not complete"
client_pid=""
wait "$stopper"
code="$("${podman[@]}" inspect --format '{{.State.ExitCode}}' "$ctr")"
[[ "$code" == 0 ]] || fail "exit code $code after SIGTERM"
echo "container exited 0 after SIGTERM"
"${podman[@]}" logs "$ctr" 2>&1 | grep -E 'Received SIGTERM|Waiting for connections|Finished server process'

echo "container smoke: PASSED"
